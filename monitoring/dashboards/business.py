"""Business metrics: SLA success against target, delivery time, customers affected, revenue at risk."""

from __future__ import annotations

from config import Settings
from monitoring.dashboards.defaults import (
    COUNT,
    ENDPOINT_SCOPE,
    GREEN,
    ORANGE,
    RATIO,
    RED,
    SCOPE,
    SECONDS,
    USD,
    Dashboard,
    Row,
    at_least,
    at_most,
    build,
    failed_statuses,
    gauge,
    metric_variables,
    number,
    promql,
    stat,
    steps,
    table,
    timeseries,
)
from monitoring.rules.config import rule_config

UID = "webhook-business"


def _range_error_ratio() -> str:
    """Failed share of deliveries over the dashboard range, per service, weighted by volume.

    Summing the 5m rates over the range weighs each window by its traffic; an average of the
    5m ratios would weigh a quiet night like a busy day.
    """
    errors = f"sum_over_time(service:webhook_delivery_errors:rate5m{{{SCOPE}}}[$__range])"
    total = f"sum_over_time(service:webhook_deliveries:rate5m{{{SCOPE}}}[$__range])"
    return f"{errors} / {total}"


def service_level_row(settings: Settings) -> Row:
    target = rule_config(settings).thresholds.slo_target
    budget = round(1 - target, 10)  # 1 - 0.999 is 0.0010000000000000009 in floating point
    return Row("Service level", (
        gauge("SLA success rate (range)",
              f"Successful share of delivery attempts over the selected range, per service, against the "
              f"SLA target {target:.3%} (green at or above it).",
              [promql(f"1 - {_range_error_ratio()}", "{{service}}", instant=True)],
              RATIO, thresholds=at_least(target), minimum=max(0.0, 1 - 10 * budget), maximum=1, decimals=3),
        stat("Error budget remaining (range)",
             f"Share of the error budget ({budget:.3%} of attempts may fail) left over the selected "
             f"range. Below zero the SLA is missed.",
             [promql(f"1 - {_range_error_ratio()} / {number(budget)}", "{{service}}", instant=True)],
             RATIO, thresholds=steps(RED, (0, ORANGE), (0.25, GREEN)), decimals=1),
        timeseries("Success rate (24h) against target",
                   "Successful share over a sliding 24 hours. Dashed line: the SLA target.",
                   [promql(f"service:webhook_delivery_success:ratio_rate1d{{{SCOPE}}}", "{{service}}")],
                   RATIO, thresholds=at_least(target)),
    ))


def delivery_row(settings: Settings) -> Row:
    latency = rule_config(settings).thresholds.latency_p95
    duration = "webhook_delivery_duration_seconds"
    return Row("Delivery", (
        stat("Average delivery time (range)",
             "Mean delivery duration over the selected range, per service.",
             [promql(f"sum by (service) (increase({duration}_sum{{{SCOPE}}}[$__range])) "
                     f"/ sum by (service) (increase({duration}_count{{{SCOPE}}}[$__range]))",
                     "{{service}}", instant=True)],
             SECONDS, thresholds=at_most(latency)),
        stat("Delivery attempts (range)",
             "Delivery attempts over the selected range.",
             [promql(f"sum(increase(webhook_deliveries_total{{{SCOPE}}}[$__range]))", "attempts", instant=True)],
             COUNT),
        timeseries("Average delivery time",
                   "Mean delivery duration over 5-minute windows. Dashed line: the HighLatency P95 threshold.",
                   [promql(f"service:webhook_delivery_duration_seconds:mean5m{{{SCOPE}}}", "{{service}}")],
                   SECONDS, thresholds=at_most(latency)),
    ))


def customer_row(settings: Settings) -> Row:
    failed = f'webhook_deliveries_total{{{ENDPOINT_SCOPE}, status=~"{failed_statuses(settings)}"}}'
    return Row("Customers affected", (
        stat("Endpoints failing now",
             "Endpoints (customers) with at least one failed delivery in the last 5 minutes.",
             [promql(f"count(count by (endpoint) (service_endpoint:webhook_delivery_errors:rate5m{{{ENDPOINT_SCOPE}}} > 0))"
                     " or vector(0)", "endpoints")],
             COUNT, thresholds=at_most(1)),
        stat("Endpoints affected (range)",
             "Endpoints (customers) with at least one failed delivery over the selected range.",
             [promql(f"count(count by (endpoint) (increase({failed}[$__range]) > 0)) or vector(0)", "endpoints",
                     instant=True)],
             COUNT, thresholds=at_most(1)),
        timeseries("Endpoints failing over time",
                   "Endpoints with failed deliveries in each 5-minute window.",
                   [promql(f"count(count by (endpoint) (service_endpoint:webhook_delivery_errors:rate5m{{{ENDPOINT_SCOPE}}} > 0))",
                           "endpoints failing")],
                   COUNT),
        table("Most affected endpoints (range)",
              "The 20 endpoints with the most failed delivery attempts over the selected range.",
              [promql(f"topk(20, sum by (endpoint) (increase({failed}[$__range])) > 0)", instant=True, table=True)],
              unit=COUNT),
    ))


def revenue_row(settings: Settings) -> Row:
    value = number(settings.grafana.revenue_per_delivery)
    failed = f'webhook_deliveries_total{{{SCOPE}, status=~"{failed_statuses(settings)}"}}'
    note = (f"Failed attempts × {settings.grafana.revenue_per_delivery} USD per delivery. Attempts, not "
            f"webhooks: a failure later retried successfully still counts, so this is an upper bound.")
    return Row("Revenue impact", (
        stat("Revenue at risk (range)", note,
             [promql(f"sum(increase({failed}[$__range])) * {value}", "USD", instant=True)],
             USD, decimals=2),
        timeseries("Revenue at risk per hour", note,
                   [promql(f"service:webhook_delivery_errors:rate5m{{{SCOPE}}} * 3600 * {value}", "{{service}}")],
                   USD, width=18),
    ))


def business(settings: Settings) -> Dashboard:
    return build(
        UID, "Webhook Business Metrics", "business",
        "Is the SLA met, how fast are webhooks delivered, which customers are hurt and what it costs.",
        # The SLA is judged over 30 days, longer than Prometheus keeps: Mimir by default.
        metric_variables(settings, long_term=True),
        [service_level_row(settings), delivery_row(settings), customer_row(settings), revenue_row(settings)],
        time_from="now-30d", tags=["business"],
    )
