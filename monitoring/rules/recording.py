"""Recording rules of the webhook delivery service, as data.

Every recorded series is described once (`recorded_series`): its name, expression template, labels,
unit and meaning. The rule groups, the federation `match[]` selectors and the metric catalog are
all built from that one list, with the selectors and thresholds of `RuleConfig` (monitoring/rules/config.py).

Cardinality: the application's `endpoint` label (the customer's webhook URL) is unbounded. Only the
`service_endpoint:*` series keep it (for the per-endpoint dashboard panels). Every other series
aggregates it away, the long windows are derived from those aggregated 5m series (never from raw
counters over hours or days), and only the aggregated series are federated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template
from typing import Any

from config import Settings
from monitoring.rules.config import RuleConfig, local, regex_alternation, rule_config

SERVICE = ("namespace", "service")

# Windows of the error ratio: 5m for WebhookHighErrorRate, the rest for the multi-window
# multi-burn-rate SLO alerts (Google SRE workbook, chapter 5).
SLO_WINDOWS = ("30m", "1h", "2h", "6h", "1d", "3d")

@dataclass(frozen=True)
class MetricDoc:
    """An application metric, as the service's metrics contract defines it."""

    name: str
    type: str
    labels: tuple[str, ...]
    unit: str
    meaning: str


APPLICATION_METRICS = (
    MetricDoc("webhook_deliveries_total", "counter", ("status", "endpoint"), "deliveries",
              "Webhook delivery attempts, by outcome (`status`) and target (`endpoint`, the customer's URL). "
              "A delivery is failed when its status is one of `metrics.failureStatuses` (default `error`)."),
    MetricDoc("webhook_delivery_duration_seconds", "histogram", ("endpoint",), "seconds",
              "Time spent delivering one webhook (buckets: Prometheus DefBuckets, 5ms to 10s); exposed as "
              "`_bucket{le}`, `_sum` and `_count`."),
    MetricDoc("webhook_queue_depth", "gauge", (), "messages",
              "Webhooks waiting in the queue, one series per replica: sum it across replicas."),
    MetricDoc("webhook_retries_total", "counter", ("attempt_number",), "retries",
              "Retry attempts, by attempt number (1 = first retry)."),
)

# Target labels the Prometheus Operator adds to every scraped series (`endpoint` is the app's own,
# the ServiceMonitors honour it).
TARGET_LABELS = ("namespace", "service", "pod", "container", "job")


@dataclass(frozen=True)
class RecordedSeries:
    record: str
    expr: str
    """PromQL, a `string.Template`: `$failed` is the failed-status regex, `$workloads` the matchers of
    the kube-state-metrics series of the team's namespaces, `$confirmation` the error page's short window,
    `$bridge` the scrape gaps a workload series bridges."""
    labels: tuple[str, ...]
    unit: str
    meaning: str
    static_labels: dict[str, str] = field(default_factory=dict)

    @property
    def federated(self) -> bool:
        """Per-endpoint series stay in this cluster (unbounded cardinality), and so do per-pod ones."""
        return not {"endpoint", "pod"} & set(self.labels)

    def rule(self, config: RuleConfig) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "record": self.record,
            "expr": Template(self.expr).substitute(failed=config.failed_statuses, workloads=workload_matchers(config),
                                                   confirmation=config.error_confirmation_window,
                                                   bridge=config.gap_bridge),
        }
        if self.static_labels:
            rule["labels"] = dict(sorted(self.static_labels.items()))
        return rule


def workload_matchers(config: RuleConfig) -> str:
    """Label matchers of the kube-state-metrics series of the team's namespaces, by its configured job."""
    return f'job="{config.kube_state_metrics_job}", namespace=~"{regex_alternation(config.team_namespaces)}"'


# One group: rules in a group run in order, so each reads the series recorded just before it at the
# same timestamp (across groups it would read the previous evaluation's).
RECORDING_GROUP = "webhook-delivery.recording"

_BY_SERVICE = "sum by (namespace, service)"
_FAILED = 'status=~"$failed"'


def _ratio(window: str) -> RecordedSeries:
    return RecordedSeries(
        f"service:webhook_delivery_errors:ratio_rate{window}",
        f"sum_over_time({local('service:webhook_delivery_errors:rate5m')}[{window}])\n"
        f"/\nsum_over_time({local('service:webhook_deliveries:rate5m')}[{window}])",
        SERVICE, "ratio 0..1",
        f"Share of deliveries that failed over {window}, from the recorded 5m rates (never from raw "
        "per-endpoint counters over long windows).",
    )


_BUCKET_RATE = "service_le:webhook_delivery_duration_seconds_bucket:rate5m"
_ENDPOINT_STATUS_RATE = "service_endpoint_status:webhook_deliveries:rate5m"
_ENDPOINT_ERRORS = "service_endpoint:webhook_delivery_errors:rate5m"


def _quantile(q: str) -> RecordedSeries:
    return RecordedSeries(
        "service:webhook_delivery_duration_seconds:histogram_quantile5m",
        f"histogram_quantile({q}, {local(_BUCKET_RATE)})",
        SERVICE + ("quantile",), "seconds",
        "P50/P95/P99 delivery latency over 5m, from the buckets summed across pods and endpoints.",
        {"quantile": q},
    )


_RATE1H = "service:webhook_deliveries:rate1h"
POD_SERVICE = "service_pod:kube_pod_owner:relabel"


def baseline_series_name(statistic: str, weeks: int) -> str:
    """Name of the recorded baseline `statistic` ("mean" or "stddev"): it names its weeks."""
    return f"{_RATE1H}_{statistic}_same_hour_{weeks}w"


def baseline_mean_series(settings: Settings) -> str:
    """Name of the recorded traffic baseline mean of this stack."""
    return baseline_series_name("mean", settings.alerting.thresholds.anomaly_baseline_weeks)


def baseline_stddev_series(settings: Settings) -> str:
    """Name of the recorded traffic baseline standard deviation of this stack."""
    return baseline_series_name("stddev", settings.alerting.thresholds.anomaly_baseline_weeks)


def _baseline(weeks: int) -> tuple[RecordedSeries, RecordedSeries]:
    """Mean and (population) standard deviation of the 1h rate at the same hour of the previous
    `weeks` weeks; Prometheus must keep them (the settings refuse a shorter retention)."""
    mean = baseline_series_name("mean", weeks)
    offsets = [f"{local(_RATE1H)} offset {w}w" for w in range(1, weeks + 1)]
    squares = [f"({offset} - {local(mean)}) ^ 2" for offset in offsets]
    return (
        RecordedSeries(
            mean,
            f"({' + '.join(offsets)}) / {weeks}",
            SERVICE, "deliveries/s",
            f"Mean of the 1h delivery rate at this time of week over the previous {weeks} weeks "
            "(`alerting.thresholds.anomalyBaselineWeeks`; absent until that much history exists).",
        ),
        RecordedSeries(
            baseline_series_name("stddev", weeks),
            f"sqrt(({' + '.join(squares)}) / {weeks})",
            SERVICE, "deliveries/s",
            f"Standard deviation of the 1h delivery rate at this time of week over the previous {weeks} weeks.",
        ),
    )


# The raw series are per pod and per customer endpoint: 20 pods x 2,000 endpoints make 80,000
# delivery counters and, with the histogram, most of the head. Each is read once per evaluation:
# the counters into the per-endpoint-and-status rates every per-endpoint and per-service delivery
# series derives from, the buckets into the per-service bucket rates the quantiles derive from.
_SERIES: tuple[RecordedSeries, ...] = (
    RecordedSeries(
        _ENDPOINT_STATUS_RATE,
        "sum by (namespace, service, endpoint, status) (rate(webhook_deliveries_total[5m]))",
        SERVICE + ("endpoint", "status"), "deliveries/s",
        "Delivery rate per customer endpoint and outcome: the one pass over the raw counters (kept "
        "here, neither federated nor sent to the long-term store).",
    ),
    RecordedSeries(
        "service_status:webhook_deliveries:rate5m",
        f"sum by (namespace, service, status) ({local(_ENDPOINT_STATUS_RATE)})",
        SERVICE + ("status",), "deliveries/s", "Delivery rate by outcome.",
    ),
    RecordedSeries(
        _ENDPOINT_ERRORS,
        f'sum by (namespace, service, endpoint) ({local(_ENDPOINT_STATUS_RATE, _FAILED)}) > 0',
        SERVICE + ("endpoint",), "deliveries/s",
        "Failed delivery rate of each customer endpoint that fails (the others record nothing): the "
        "noisiest-endpoints table and the endpoint picker.",
    ),
    RecordedSeries(
        "service_endpoint:webhook_deliveries:rate5m",
        f"sum by (namespace, service, endpoint) ({local(_ENDPOINT_STATUS_RATE)})\n"
        f"and on (namespace, service, endpoint)\n{local(_ENDPOINT_ERRORS)}",
        SERVICE + ("endpoint",), "deliveries/s",
        "Delivery rate of each customer endpoint that fails: the denominator of its error ratio.",
    ),
    RecordedSeries(
        "service:webhook_endpoints:count5m",
        f"count by (namespace, service) (sum by (namespace, service, endpoint) ({local(_ENDPOINT_STATUS_RATE)}) > 0)",
        SERVICE, "endpoints", "Customer endpoints delivered to over the last 5m.",
    ),
    RecordedSeries(
        "service:webhook_deliveries:rate5m",
        f"{_BY_SERVICE} ({local('service_status:webhook_deliveries:rate5m')})",
        SERVICE, "deliveries/s", "Delivery throughput of the service (all outcomes, pods and endpoints).",
    ),
    RecordedSeries(
        "service:webhook_delivery_errors:rate5m",
        # `or 0 * ...`: a service with no failure yet records 0, not nothing.
        f"{_BY_SERVICE} ({local('service_status:webhook_deliveries:rate5m', _FAILED)})\n"
        f"or\n0 * {local('service:webhook_deliveries:rate5m')}",
        SERVICE, "deliveries/s", "Failed delivery rate of the service (0 when nothing failed).",
    ),
    RecordedSeries(
        "service:webhook_delivery_errors:rate_short",
        # The failed-status counters only, over a short window: a small pass beside the one above.
        'sum by (namespace, service) (rate(webhook_deliveries_total{status=~"$failed"}[$confirmation]))',
        SERVICE, "deliveries/s",
        "Failed delivery rate over the last minute (two scrapes of the slowest-scraped service, if "
        "longer): WebhookHighErrorRate pages only while the failure is current.",
    ),
    RecordedSeries(
        "service:webhook_delivery_errors:ratio_rate5m",
        f"{local('service:webhook_delivery_errors:rate5m')}\n/\n{local('service:webhook_deliveries:rate5m')}",
        SERVICE, "ratio 0..1",
        "Share of deliveries that failed over 5m: a ratio of sums, so one noisy endpoint weighs by its traffic.",
    ),
    RecordedSeries(
        "service:webhook_delivery_success:ratio_rate5m",
        f"1 - {local('service:webhook_delivery_errors:ratio_rate5m')}",
        SERVICE, "ratio 0..1", "Share of deliveries that succeeded over 5m.",
    ),
    RecordedSeries(
        _BUCKET_RATE,
        "sum by (namespace, service, le) (rate(webhook_delivery_duration_seconds_bucket[5m]))",
        SERVICE + ("le",), "observations/s",
        "Delivery latency histogram of the service, bucket by bucket: the one pass over the raw buckets.",
    ),
    _quantile("0.5"),
    _quantile("0.95"),
    _quantile("0.99"),
    RecordedSeries(
        "service:webhook_delivery_duration_seconds:mean5m",
        "sum by (namespace, service) (rate(webhook_delivery_duration_seconds_sum[5m]))\n"
        "/\nsum by (namespace, service) (rate(webhook_delivery_duration_seconds_count[5m]))",
        SERVICE, "seconds", "Average delivery time over 5m.",
    ),
    RecordedSeries(
        "service_attempt:webhook_retries:rate5m",
        "sum by (namespace, service, attempt_number) (rate(webhook_retries_total[5m]))",
        SERVICE + ("attempt_number",), "retries/s", "Retry rate by attempt number.",
    ),
    RecordedSeries(
        "service:webhook_queue_depth:sum",
        f"{_BY_SERVICE} (webhook_queue_depth)",
        SERVICE, "messages", "Webhooks queued, summed across replicas.",
    ),
    RecordedSeries(
        _RATE1H,
        f"avg_over_time({local('service:webhook_deliveries:rate5m')}[1h])",
        SERVICE, "deliveries/s", "Delivery throughput over the last hour.",
    ),
    *(_ratio(w) for w in SLO_WINDOWS),
    RecordedSeries(
        POD_SERVICE,
        # The owner of a Deployment's pod is its ReplicaSet, `<deployment>-<pod-template-hash>`.
        # One workload per pod, should a pod name two owners. The last owner seen within the gap
        # bridge: a failed kube-state-metrics scrape does not unmap every pod for an evaluation.
        "topk by (namespace, pod) (1, max by (namespace, service, pod) (\n"
        '  label_replace(last_over_time(kube_pod_owner{$workloads, owner_kind="ReplicaSet"}[$bridge]), "service", "$$1", "owner_name", "(.+)-[^-]+")\n'
        '  or\n'
        '  label_replace(last_over_time(kube_pod_owner{$workloads, owner_kind!~"ReplicaSet|<none>"}[$bridge]), "service", "$$1", "owner_name", "(.+)")\n'
        '  or\n'
        '  label_replace(last_over_time(kube_pod_owner{$workloads, owner_kind="<none>"}[$bridge]), "service", "$$1", "pod", "(.+)")\n'
        "))",
        SERVICE + ("pod",), "1",
        "Each pod of the team's namespaces (the services' and the monitoring stack's) with the workload "
        "it belongs to as `service`: its Deployment, StatefulSet, DaemonSet or Job (kube-state-metrics, "
        "`metrics.kubeStateMetricsJob`). The workload alerts aggregate by it.",
    ),
    RecordedSeries(
        "service:webhook_delivery_success:ratio_rate1d",
        f"1 - {local('service:webhook_delivery_errors:ratio_rate1d')}",
        SERVICE, "ratio 0..1", "Share of deliveries that succeeded over 24h (the SLA panel).",
    ),
)


def recorded_series(baseline_weeks: int) -> tuple[RecordedSeries, ...]:
    """Every recorded series, each after those it reads, with a baseline of `baseline_weeks` weeks."""
    return _SERIES + _baseline(baseline_weeks)


def recording_groups(settings: Settings) -> list[dict[str, Any]]:
    """The recording rule group, in promtool's rule-file group format, each rule after those it reads."""
    config = rule_config(settings)
    return [{"name": RECORDING_GROUP, "rules": [s.rule(config) for s in recorded_series(config.thresholds.anomaly_baseline_weeks)]}]


def federation_match(settings: Settings) -> list[str]:
    """`match[]` selectors for a federating Prometheus: the aggregated recorded series only."""
    series = recorded_series(settings.alerting.thresholds.anomaly_baseline_weeks)
    return sorted({f'{{__name__="{s.record}"}}' for s in series if s.federated})
