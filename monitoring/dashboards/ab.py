"""A/B: success rate and latency side by side by release track (canary against stable).

The track comes from a pod label (settings.metrics.track_label) that must be on the series
themselves: the ServiceMonitors copy it with `podTargetLabels`. The recorded series aggregate
it away, so this dashboard reads the raw application metrics. (A join on kube-state-metrics'
kube_pod_labels would also work, but needs the label allow-listed there and a join per query.)
"""

from __future__ import annotations

from config import Settings
from monitoring.dashboards.defaults import (
    COUNT,
    ENDPOINT_SCOPE,
    PER_SECOND,
    RATIO,
    SCOPE,
    SECONDS,
    Dashboard,
    Row,
    at_least,
    at_most,
    build,
    failed_statuses,
    metric_variables,
    prometheus_label,
    promql,
    stat,
    timeseries,
)

UID = "webhook-ab"


def ab(settings: Settings) -> Dashboard:
    track = prometheus_label(settings.metrics.track_label)
    t = settings.alerting.thresholds
    failed = failed_statuses(settings)

    def named(expr: str) -> str:
        # Series of pods without the label get the track "untracked" instead of an empty legend.
        return f'label_replace({expr}, "{track}", "untracked", "{track}", "")'

    def success(window: str) -> str:
        total = f"sum by ({track}) (rate(webhook_deliveries_total{{{ENDPOINT_SCOPE}}}[{window}]))"
        succeeded = f'sum by ({track}) (rate(webhook_deliveries_total{{{ENDPOINT_SCOPE}, status!~"{failed}"}}[{window}]))'
        return named(f"{succeeded} / {total}")

    def quantile(q: str, window: str) -> str:
        buckets = f"sum by ({track}, le) (rate(webhook_delivery_duration_seconds_bucket{{{ENDPOINT_SCOPE}}}[{window}]))"
        return named(f"histogram_quantile({q}, {buckets})")

    legend = f"{{{{{track}}}}}"
    summary = Row("Selected range", (
        stat("Success rate by track (range)",
             f"Successful share of delivery attempts over the selected range per {track}. Red below the SLO target.",
             [promql(success("$__range"), legend, instant=True)],
             RATIO, thresholds=at_least(t.slo_target), decimals=3, width=8),
        stat("P95 latency by track (range)",
             f"95th percentile delivery duration over the selected range per {track}.",
             [promql(quantile("0.95", "$__range"), legend, instant=True)],
             SECONDS, thresholds=at_most(t.latency_p95), width=8),
        stat("Pods by track",
             f"Scraped pods up per {track}.",
             [promql(named(f"count by ({track}) (up{{{SCOPE}}} == 1)"), legend)],
             COUNT, width=8),
    ))
    over_time = Row("Over time", (
        timeseries("Success rate by track",
                   f"Successful share of delivery attempts per {track}. Dashed line: the SLO target.",
                   [promql(success("$__rate_interval"), legend)],
                   RATIO, thresholds=at_least(t.slo_target)),
        timeseries("Latency P50 / P95 by track",
                   f"Delivery duration quantiles per {track}. Dashed line: the HighLatency P95 threshold.",
                   [promql(quantile("0.5", "$__rate_interval"), f"P50 {legend}"),
                    promql(quantile("0.95", "$__rate_interval"), f"P95 {legend}")],
                   SECONDS, thresholds=at_most(t.latency_p95)),
        timeseries("Traffic by track",
                   f"Delivery attempts per second per {track}: the canary's share of traffic.",
                   [promql(named(f"sum by ({track}) (rate(webhook_deliveries_total{{{ENDPOINT_SCOPE}}}[$__rate_interval]))"),
                           legend)],
                   PER_SECOND, stacked=True, width=24),
    ))
    return build(
        UID, "Webhook A/B (canary vs stable)", "webhook-delivery",
        f"Delivery success and latency side by side by the `{settings.metrics.track_label}` pod label.",
        metric_variables(settings),
        [summary, over_time],
        tags=["webhook-delivery", "canary"],
    )
