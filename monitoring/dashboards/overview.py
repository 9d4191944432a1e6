"""Webhook delivery overview: four rows (overview, performance, infrastructure, alerts)."""

from __future__ import annotations

from config import Settings
from monitoring.dashboards.defaults import (
    BYTES,
    BYTES_PER_SECOND,
    CLUSTER,
    CORES,
    COUNT,
    ORANGE,
    PER_SECOND,
    RATIO,
    SCOPE,
    SECONDS,
    SERVICE_ENDPOINT_SCOPE,
    SERVICE_SCOPE,
    Dashboard,
    Row,
    at_least,
    at_most,
    build,
    metric_variables,
    number,
    promql,
    stat,
    state_timeline,
    steps,
    table,
    timeseries,
)
from monitoring.rules.recording import baseline_mean_series, baseline_stddev_series

UID = "webhook-overview"


def overview_row(settings: Settings) -> Row:
    t = settings.alerting.thresholds
    return Row("Overview", (
        stat("Webhooks queued",
             "Webhooks waiting in the queue per service, summed across replicas. Red at the "
             "WebhookQueueBacklog threshold.",
             [promql(f"service:webhook_queue_depth:sum{{{SERVICE_SCOPE}}}", "{{service}}")],
             COUNT, thresholds=at_most(t.queue_depth)),
        stat("Delivery success rate (24h)",
             f"Share of delivery attempts that succeeded over the last 24 hours, per service. "
             f"Red below the SLO target ({t.slo_target:.3%}).",
             [promql(f"service:webhook_delivery_success:ratio_rate1d{{{SERVICE_SCOPE}}}", "{{service}}")],
             RATIO, thresholds=at_least(t.slo_target), decimals=3),
        stat("Average delivery time",
             "Mean delivery duration over the last 5 minutes, per service. Red at the HighLatency P95 threshold.",
             [promql(f"service:webhook_delivery_duration_seconds:mean5m{{{SERVICE_SCOPE}}}", "{{service}}")],
             SECONDS, thresholds=at_most(t.latency_p95)),
        stat("Active endpoints",
             "Distinct endpoints that received at least one delivery attempt in the last 5 minutes.",
             [promql(f"sum(service:webhook_endpoints:count5m{{{SERVICE_SCOPE}}})", "endpoints")],
             COUNT),
    ))


def performance_row(settings: Settings) -> Row:
    t = settings.alerting.thresholds
    mean, stddev = baseline_mean_series(settings), baseline_stddev_series(settings)
    return Row("Performance", (
        timeseries("Delivery latency P50 / P95 / P99",
                   "Quantiles of delivery duration over 5-minute windows. Dashed line: the HighLatency P95 threshold.",
                   [promql(f'service:webhook_delivery_duration_seconds:histogram_quantile5m{{{SERVICE_SCOPE}, quantile="{q}"}}',
                           f"P{label} {{{{service}}}}")
                    for q, label in (("0.5", "50"), ("0.95", "95"), ("0.99", "99"))],
                   SECONDS, thresholds=at_most(t.latency_p95)),
        timeseries("Throughput by status",
                   "Delivery attempts per second, stacked by result status.",
                   [promql(f"sum by (status) (service_status:webhook_deliveries:rate5m{{{SERVICE_SCOPE}}})", "{{status}}")],
                   PER_SECOND, stacked=True),
        timeseries("Error rate",
                   "Share of delivery attempts that failed over 5-minute windows. Dashed line: the "
                   "WebhookHighErrorRate threshold.",
                   [promql(f"service:webhook_delivery_errors:ratio_rate5m{{{SERVICE_SCOPE}}}", "{{service}}")],
                   RATIO, thresholds=at_most(t.error_ratio)),
        timeseries("Queue depth",
                   "Webhooks waiting, summed across replicas. Dashed line: the WebhookQueueBacklog threshold.",
                   [promql(f"service:webhook_queue_depth:sum{{{SERVICE_SCOPE}}}", "{{service}}")],
                   COUNT, thresholds=at_most(t.queue_depth)),
        timeseries("Error rate by endpoint (top 10)",
                   "The ten endpoints with the highest failure share among those selected.",
                   [promql(f"topk(10, service_endpoint:webhook_delivery_errors:rate5m{{{SERVICE_ENDPOINT_SCOPE}}} "
                           f"/ service_endpoint:webhook_deliveries:rate5m{{{SERVICE_ENDPOINT_SCOPE}}})", "{{endpoint}}")],
                   RATIO, thresholds=at_most(t.error_ratio)),
        timeseries("Retries by attempt",
                   "Retry attempts per second by attempt number: growth in later attempts means endpoints stay down.",
                   [promql(f"sum by (attempt_number) (service_attempt:webhook_retries:rate5m{{{SERVICE_SCOPE}}})",
                           "attempt {{attempt_number}}")],
                   PER_SECOND, stacked=True),
        timeseries("Traffic against its weekly baseline",
                   f"Delivery attempts per second (1h average) against the same hour of the previous weeks: "
                   f"mean and ± {t.anomaly_z_score} standard deviations, the band outside which "
                   f"WebhookTrafficAnomaly fires.",
                   [promql(f"service:webhook_deliveries:rate1h{{{SERVICE_SCOPE}}}", "{{service}}"),
                    promql(f"{mean}{{{SERVICE_SCOPE}}}", "{{service}} baseline"),
                    promql(f"{mean}{{{SERVICE_SCOPE}}} + {number(t.anomaly_z_score)} * {stddev}{{{SERVICE_SCOPE}}}",
                           "{{service}} upper"),
                    promql(f"{mean}{{{SERVICE_SCOPE}}} - {number(t.anomaly_z_score)} * {stddev}{{{SERVICE_SCOPE}}}",
                           "{{service}} lower")],
                   PER_SECOND, width=24),
    ))


def infrastructure_row() -> Row:
    containers = f'{SCOPE}, container!=""'
    return Row("Infrastructure", (
        timeseries("CPU by pod",
                   "CPU cores used by each pod's containers (cAdvisor via the kubelet).",
                   [promql(f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{containers}}}[$__rate_interval]))",
                           "{{pod}}")],
                   CORES, width=6),
        timeseries("Memory by pod",
                   "Working-set memory of each pod's containers: what the OOM killer compares with the limit.",
                   [promql(f"sum by (pod) (container_memory_working_set_bytes{{{containers}}})", "{{pod}}")],
                   BYTES, width=6),
        timeseries("Replicas",
                   "Available against desired replicas of each deployment (kube-state-metrics).",
                   [promql(f"sum by (deployment) (kube_deployment_status_replicas_available{{{SCOPE}}})",
                           "{{deployment}} available"),
                    promql(f"sum by (deployment) (kube_deployment_spec_replicas{{{SCOPE}}})",
                           "{{deployment}} desired")],
                   COUNT, width=6),
        timeseries("Pod restarts",
                   "Container restarts per pod in each interval; any bar is a crash or a failed probe.",
                   [promql(f"sum by (pod) (increase(kube_pod_container_status_restarts_total{{{SCOPE}}}"
                           f"[$__rate_interval])) > 0", "{{pod}}")],
                   COUNT, bars=True, width=6),
        timeseries("Network I/O by pod",
                   "Bytes received (positive) and transmitted (negative) per second by each pod.",
                   [promql(f"sum by (pod) (rate(container_network_receive_bytes_total{{{SCOPE}}}[$__rate_interval]))",
                           "{{pod}} received"),
                    promql(f"-sum by (pod) (rate(container_network_transmit_bytes_total{{{SCOPE}}}"
                           f"[$__rate_interval]))", "{{pod}} transmitted")],
                   BYTES_PER_SECOND, width=24),
    ))


def alerts_row(settings: Settings) -> Row:
    team = f'{CLUSTER}, team="{settings.team_label}", alertname!="Watchdog"'
    firing = f'ALERTS{{{team}, alertstate="firing"}}'
    started = f"({firing} unless {firing} offset 1m)"
    pagerduty = settings.alerting.pagerduty
    if pagerduty.enabled and pagerduty.escalation_policy_id is None:
        delay = pagerduty.escalation_delay
        escalation = (f"Orange past the escalation delay of the policy this stack creates ({delay.text}): "
                      f"an unacknowledged page has moved to the next level.")
        escalation_thresholds = steps("transparent", (delay.seconds, ORANGE))
    else:
        escalation = ("This stack creates no escalation policy (PagerDuty off, or an existing policy "
                      "named), so no escalation delay is marked.")
        escalation_thresholds = None
    return Row("Alerts", (
        table("Active alerts",
              "Alerts of this team firing now (ALERTS series written by Prometheus's rule manager).",
              [promql(firing, instant=True, table=True)],
              hidden=("Time", "Value", "__name__", "alertstate"), width=12),
        state_timeline("Alert history",
                       "When each alert of this team was firing over the selected range.",
                       [promql(f"max by (alertname, severity) ({firing})", "{{alertname}} ({{severity}})")],
                       width=12),
        table("Mean time to resolution",
              "Per alert: minutes firing in the range divided by firing episodes started in it. A start "
              "is a minute where the alert fires and did not fire a minute before (ALERTS is marked stale "
              "on resolution). Episodes still open count their time so far; an episode begun before the "
              "range counts its time but not its start.",
              [promql(f"60 * sum by (alertname) (sum_over_time({firing}[$__range:1m])) "
                      f"/ sum by (alertname) (sum_over_time({started}[$__range:1m]))", instant=True, table=True)],
              unit=SECONDS, hidden=("Time",), width=8),
        table("Escalation status",
              f"Firing alerts and how long they have been active (from ALERTS_FOR_STATE, the time each "
              f"became pending). {escalation}",
              [promql(f'time() - ALERTS_FOR_STATE{{{team}}} and ignoring (alertstate) {firing}',
                      instant=True, table=True)],
              unit=SECONDS, hidden=("Time",), thresholds=escalation_thresholds, width=8),
        timeseries("Notifications by integration",
                   "Notifications Alertmanager sent and failed to send per integration (pagerduty, slack, "
                   "webhook): a failing integration means nobody is being paged.",
                   [promql(f"sum by (integration) (rate(alertmanager_notifications_total{{{CLUSTER}}}"
                           f"[$__rate_interval]))", "{{integration}} sent"),
                    promql(f"sum by (integration) (rate(alertmanager_notifications_failed_total{{{CLUSTER}}}"
                           f"[$__rate_interval]))", "{{integration}} failed")],
                   PER_SECOND, width=8),
    ))


def overview(settings: Settings) -> Dashboard:
    return build(
        UID, "Webhook Delivery Overview", "webhook-delivery",
        "Webhook delivery at a glance: volume, success, latency, queue, the pods behind it and its alerts.",
        metric_variables(settings, by_service=True),
        [overview_row(settings), performance_row(settings), infrastructure_row(), alerts_row(settings)],
        tags=["webhook-delivery"],
    )

