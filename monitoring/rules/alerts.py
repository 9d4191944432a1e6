"""Alert rules of the webhook delivery service, as data.

Every alert is an `Alert`; `_rule` turns it into a promtool rule and is the one place that adds the
`team` label (the team's, or the platform's for the stores' internals) and the `runbook_url`
annotation (`docs/runbooks/<alert>.md`). Service alerts read the recorded series of `recording.py`,
this cluster's only (`local`: federated copies of other clusters' series alert in their own cluster),
which aggregate by (namespace, service) before any comparison: the error ratio is a ratio of sums,
P95 comes from buckets summed across pods and endpoints, and the queue depth is summed across replicas.

The rules hold under the shapes failures really take (docs/alerting.md, the failure-mode matrix):
a pending alert restarts its `for` on one evaluation without a result (a failed scrape writes stale
markers), and `keep_firing_for` only holds alerts already firing, so conditions that must survive
gaps, flicker or a sawtooth are windowed (`avg_over_time`, `last_over_time`, counts over a subquery),
and alerts on measurements keep firing for `alerting.thresholds.keepFiringFor` after their condition
last held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from config import Duration, Settings
from monitoring.rules.config import RuleConfig, local, regex_alternation, rule_config
from monitoring.rules.recording import POD_SERVICE, baseline_series_name, workload_matchers
from monitoring.scrape import MONITOR_LABEL

# Where an alert has no application service to aggregate by, it is about this one.
STATIC_SERVICE = "webhook-delivery"

@dataclass(frozen=True)
class BurnRate:
    """One multi-window burn-rate alert (Google SRE workbook, "Alerting on SLOs", table 5-8)."""

    severity: str
    long_window: str
    short_window: str
    factor: float
    """How many times faster than the SLO allows the error budget is spent."""
    for_: str


BURN_RATES = (
    BurnRate("critical", "1h", "5m", 14.4, "2m"),
    BurnRate("critical", "6h", "30m", 6, "15m"),
    BurnRate("warning", "1d", "2h", 3, "1h"),
    BurnRate("warning", "3d", "6h", 1, "3h"),
)

# Loki's push routes (Loki 2.x and 3.x, including OTLP).
LOKI_PUSH_ROUTES = "loki_api_v1_push|api_prom_push|otlp_v1_logs"
# Entries the agent's Loki client gave up on (after retries, or refused as too old or rate-limited).
# Deliberate drops (health-check noise) are counted by other metrics and do not alert.
DROPPED_ENTRIES_METRIC = {"alloy": "loki_write_dropped_entries_total", "promtail": "promtail_dropped_entries_total"}
# Each push attempt of the agent's Loki client, retries included, by HTTP status: a 429 is Loki
# refusing the lines as rate-limited; the client retries it and drops the batch only minutes later.
PUSH_REQUESTS_METRIC = {"alloy": "loki_write_request_duration_seconds_count",
                        "promtail": "promtail_request_duration_seconds_count"}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    keep_firing_for: str = ""
    platform: bool = False
    """The platform's (the stores' internals): labelled with its team, routed to its receivers."""


def _duration(seconds: float) -> str:
    """Seconds as a Prometheus duration (`2m30s`)."""
    parts, rest = [], int(seconds)
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def _keep(config: RuleConfig) -> str:
    return config.thresholds.keep_firing_for.text


def _service_up(config: RuleConfig) -> str:
    """`up` of every target in the services' namespaces: the configured services', and the graphite
    exporter's, which relays a service's metrics under its namespace and service (monitoring/graphite.py)."""
    return f'up{{namespace=~"{regex_alternation(config.service_namespaces)}"}}'


def _answering(config: RuleConfig, window: str) -> str:
    """Per service, the largest share of its scrapes over `window` that one of its current targets
    answered. A crash-looping pod is up for the odd scrape and a healthy one misses the odd scrape:
    a share, not the last scrape, says whether a target answers. Targets gone from discovery (a pod
    replaced) no longer count."""
    up = _service_up(config)
    return f"max by (namespace, service) (avg_over_time({up}[{window}]) and {up})"


def _at_least_deliveries(ratio: float, window: str) -> str:
    """Low-traffic guard: enough deliveries in `window` that one failure alone stays at or under
    `ratio` (20 in 5m for 5%), so a single failed delivery never pages. For a quantile, `ratio` is
    the share above it (P95: 20 deliveries, or the "P95" is just the slowest one)."""
    count = math.ceil(round(1 / ratio, 6))
    seconds = int(Duration(window).seconds)
    rate = local("service:webhook_deliveries:rate5m")
    deliveries = rate if window == "5m" else f"avg_over_time({rate}[{window}])"
    return f"and on (namespace, service)\n{deliveries} * {seconds} >= {count}"


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def service_alerts(config: RuleConfig) -> list[Alert]:
    """The service's delivery alerts (errors, backlog, stall, latency), its targets, and the synthetic probe checks."""
    threshold = config.thresholds
    queue = local("service:webhook_queue_depth:sum")
    deliveries = local("service:webhook_deliveries:rate5m")
    backlog_minutes = int(threshold.queue_depth_for.seconds // 60)
    backlog_window = _duration(2 * threshold.queue_depth_for.seconds)
    target_window = config.target_down_for
    alerts = [
        Alert(
            "WebhookHighErrorRate",
            # The 5m ratio smears a 30s total failure over five minutes: the short window confirms the
            # failure is still happening, so a blip that is over does not page. Its last value bridges
            # missed scrapes (a short rate needs both of its samples) without stretching a blip.
            f"{local('service:webhook_delivery_errors:ratio_rate5m')} > {threshold.error_ratio:g}\n"
            f"and on (namespace, service)\nlast_over_time({local('service:webhook_delivery_errors:rate_short')}"
            f"[{config.gap_bridge}]) > {threshold.error_ratio:g} * {deliveries}\n"
            + _at_least_deliveries(threshold.error_ratio, "5m"),
            "critical",
            "High webhook error rate detected",
            "Webhook error rate of {{ $labels.namespace }}/{{ $labels.service }} is {{ $value | humanizePercentage }} "
            f"over 5m (threshold {_percent(threshold.error_ratio)}), and still failing over the last "
            f"{config.error_confirmation_window}.",
            for_=threshold.error_ratio_for.text,
            keep_firing_for=_keep(config),
        ),
        Alert(
            "WebhookQueueBacklog",
            # Counted minute by minute over twice the configured time: a sawtooth above the threshold
            # most of the time pages, and neither a dip nor a scrape gap restarts the count. Above it
            # within the last minutes too, so it resolves soon after the queue drains.
            f"max_over_time({queue}[{config.gap_bridge}]) > {threshold.queue_depth}\nand on (namespace, service)\n"
            f"count_over_time(({queue} > {threshold.queue_depth})[{backlog_window}:1m]) >= {backlog_minutes}",
            "critical",
            "Webhook queue backlog growing",
            "Queue depth of {{ $labels.namespace }}/{{ $labels.service }} is {{ $value }} messages across all "
            f"replicas (threshold {threshold.queue_depth}), above the threshold for {backlog_minutes} of the last "
            f"{backlog_window}.",
            keep_firing_for=_keep(config),
        ),
        Alert(
            "WebhookQueueGrowing",
            f"predict_linear({queue}[{config.queue_growth_window}], {int(threshold.queue_growth_horizon.seconds)}) "
            f"> {threshold.queue_depth}\n"
            # Confirmed by the last minutes: a queue that jumped and then held level (a batch enqueued at
            # once) has no trend left to follow, though the long window's fit still climbs for a while.
            f"and on (namespace, service)\nderiv({queue}[{config.queue_growth_confirmation}]) > 0",
            "warning",
            "Webhook queue on course for a backlog",
            f"At its growth over the last {config.queue_growth_window} the queue of {{{{ $labels.namespace }}}}/"
            f"{{{{ $labels.service }}}} reaches {{{{ $value | humanize }}}} messages within "
            f"{threshold.queue_growth_horizon.text}, past the backlog threshold of {threshold.queue_depth}.",
            for_=config.queue_growth_for,
            keep_firing_for=_keep(config),
        ),
        Alert(
            "WebhookDeliveriesStalled",
            # Messages queued all along and not one delivery counted in 5m, while the targets answer
            # (a service that is down is WebhookTargetDown's).
            f"min_over_time({queue}[5m]) >= {threshold.stall_queue_depth}\n"
            f"unless on (namespace, service)\n{deliveries} > 0\n"
            f"and on (namespace, service)\n{_answering(config, '5m')} >= {config.target_up_share:g}",
            "critical",
            "Webhook deliveries stalled with messages queued",
            "{{ $labels.namespace }}/{{ $labels.service }} has held at least {{ $value }} queued webhooks for 5m "
            "and delivered none: the consumers are stuck (a blocked worker, an exhausted connection pool).",
            for_=config.stall_for,
            keep_firing_for=_keep(config),
        ),
        Alert(
            "HighLatency",
            local("service:webhook_delivery_duration_seconds:histogram_quantile5m", 'quantile="0.95"')
            + f" > {threshold.latency_p95:g}\n" + _at_least_deliveries(1 - 0.95, "5m"),
            "warning",
            "High webhook delivery latency",
            "P95 latency of {{ $labels.namespace }}/{{ $labels.service }} is {{ $value | humanizeDuration }} "
            f"(threshold {threshold.latency_p95:g}s).",
            for_=threshold.latency_p95_for.text,
            keep_firing_for=_keep(config),
        ),
        Alert(
            "WebhookTargetDown",
            # No target answers: no metric of the service can be trusted, so this one alert stands for
            # the others (Alertmanager inhibits them). Some pods of several down are the workload alerts'.
            f"{_answering(config, target_window)} < {config.target_up_share:g}",
            "critical",
            "A webhook delivery service is down: none of its targets answers its scrapes",
            "No target of {{ $labels.namespace }}/{{ $labels.service }} answered half of its scrapes over the last "
            f"{target_window} (the best answered {{{{ $value | humanizePercentage }}}}): the service is down, crash "
            "looping, or cannot be scraped.",
            for_=_duration(Duration(target_window).seconds / 2),
            keep_firing_for=_keep(config),
        ),
    ]
    alerts += absence_alerts(config)
    if config.probe_urls:
        probed = regex_alternation(config.probe_urls)
        alerts += [Alert(
            "WebhookProbeFailed",
            f'1 - max by (instance) (avg_over_time(probe_success{{instance=~"{probed}"}}[5m])) > {config.probe_failure_ratio:g}',
            "warning",
            "Synthetic probe of a webhook endpoint failing",
            "{{ $value | humanizePercentage }} of the probes of {{ $labels.instance }} failed over the last 5m.",
            for_=config.probe_for,
            labels={"service": STATIC_SERVICE},
            keep_firing_for=_keep(config),
        ), Alert(
            "WebhookProbeCertificateExpiring",
            # The series exists only when the probe got a TLS answer: a failed handshake is WebhookProbeFailed's.
            f'min by (instance) (probe_ssl_earliest_cert_expiry{{instance=~"{probed}"}}) - time()\n'
            f"< {config.certificate_min_days} * 86400",
            "warning",
            "The certificate of a probed webhook endpoint expires soon",
            "The earliest certificate {{ $labels.instance }} presents expires in {{ $value | humanizeDuration }}: "
            "renew it before customers' TLS handshakes fail.",
            for_=config.certificate_expiry_for,
            labels={"service": STATIC_SERVICE},
        )]
    return alerts


def absence_alerts(config: RuleConfig) -> list[Alert]:
    """A service that vanishes silences every alert above: its targets gone from discovery (the
    Service deleted, its labels or port changed), or its delivery metrics gone while it is scraped
    (a metric renamed, instrumentation removed)."""
    monitors = regex_alternation(tuple(m.name for m in config.monitors))
    namespaces = regex_alternation(config.service_namespaces)
    scraped = f'up{{namespace=~"{namespaces}", {MONITOR_LABEL}=~"{monitors}"}}'
    deliveries = local("service:webhook_deliveries:rate5m")
    queue = local("service:webhook_queue_depth:sum")
    latency = local("service:webhook_delivery_duration_seconds:mean5m")
    # absent() cannot group: one rule per configured service, its labels those of its matchers.
    missing = [Alert(
        "WebhookTargetsMissing",
        f'absent(up{{namespace="{m.namespace}", {MONITOR_LABEL}="{m.name}"}})',
        "critical",
        "A webhook delivery service has no scrape target at all",
        f"No target of the ServiceMonitor {m.name} in {m.namespace} has been discovered for "
        f"{config.absence_for}: the Service is gone, its labels no longer match the monitor's selector, or "
        "its metrics port was renamed. Every delivery alert of the service is blind.",
        for_=config.absence_for,
        labels={"service": m.name},
    ) for m in config.monitors]
    # The delivery counters exist only once a delivery happened (they are labelled by status and
    # endpoint), so their absence alone is also an idle service. A service is accounted for when it
    # counts deliveries, or when it is idle: its queue gauge (always exported) empty all along, and no
    # latency observed either. Anything else scraped is blind: instrumentation gone (no queue gauge),
    # work queued but nothing counted, or latencies observed but no counter (a renamed counter).
    return missing + [Alert(
        "WebhookDeliveryMetricsMissing",
        f"count by (namespace, service) ({scraped} == 1)\nunless on (namespace, service) (\n"
        f"  {deliveries}\n  or\n"
        f"  (({queue} and on (namespace, service) max_over_time({queue}[{config.absence_for}]) == 0)\n"
        f"    unless on (namespace, service) {latency})\n)",
        "warning",
        "A webhook delivery service is scraped but its delivery metrics are missing",
        "{{ $labels.namespace }}/{{ $labels.service }} answers its scrapes but has counted no delivery for "
        f"{config.absence_for} while not idle (webhooks queued, latencies observed, or no queue gauge at all): "
        "a metric was renamed or its instrumentation removed, and the delivery alerts of the service are blind.",
        for_=config.absence_for,
    )]


def slo_alerts(config: RuleConfig) -> list[Alert]:
    """Error budget burn: page when a month's budget would go in days, ticket when in weeks."""
    alerts = []
    for rate in BURN_RATES:
        threshold = f"({rate.factor:g} * {config.error_budget:g})"
        expr = (
            f"{local(f'service:webhook_delivery_errors:ratio_rate{rate.long_window}')} > {threshold}\n"
            f"and on (namespace, service)\n{local(f'service:webhook_delivery_errors:ratio_rate{rate.short_window}')} > {threshold}"
        )
        if rate.severity == "critical":
            # Tickets wait for the long windows to fill; pages need enough traffic first.
            expr += "\n" + _at_least_deliveries(rate.factor * config.error_budget, rate.long_window)
        alerts.append(Alert(
            "WebhookErrorBudgetBurn",
            expr,
            rate.severity,
            f"Webhook delivery error budget burning {rate.factor:g}x too fast",
            "{{ $value | humanizePercentage }} of the deliveries of {{ $labels.namespace }}/{{ $labels.service }} "
            f"failed over the last {rate.long_window} (and over {rate.short_window}): at this rate the 30-day error "
            f"budget of {_percent(config.error_budget)} (SLO {_percent(config.thresholds.slo_target)}) is spent "
            f"{rate.factor:g}x too fast.",
            for_=rate.for_,
            labels={"slo_window": rate.long_window},
        ))
    return alerts


def anomaly_alerts(config: RuleConfig) -> list[Alert]:
    weeks = config.thresholds.anomaly_baseline_weeks
    mean, stddev = (local(baseline_series_name(statistic, weeks)) for statistic in ("mean", "stddev"))
    deviation = f"({local('service:webhook_deliveries:rate1h')} - {mean})"
    return [Alert(
        "WebhookTrafficAnomaly",
        f"abs({deviation} / {stddev}) > {config.thresholds.anomaly_z_score:g}\n"
        f"and\nabs{deviation} > {config.anomaly_min_relative_change:g} * {mean}",
        "warning",
        "Webhook delivery traffic far from its usual level for this time of week",
        "The delivery rate of {{ $labels.namespace }}/{{ $labels.service }} over the last hour is "
        "{{ $value | printf \"%.1f\" }} standard deviations from the same hour of the previous "
        f"{config.thresholds.anomaly_baseline_weeks} weeks (threshold {config.thresholds.anomaly_z_score:g}).",
        for_=config.anomaly_for,
    )]


def pipeline_alerts(config: RuleConfig) -> list[Alert]:
    """The monitoring pipeline itself: the dead man's switch, long-term storage and logs."""
    by_queue = "namespace, pod, remote_name, url"
    failed = f"sum by ({by_queue}) (rate(prometheus_remote_storage_samples_failed_total[5m]))"
    sent = f"sum by ({by_queue}) (rate(prometheus_remote_storage_samples_total[5m]))"
    dropped = DROPPED_ENTRIES_METRIC[config.log_agent]
    refused = f'{PUSH_REQUESTS_METRIC[config.log_agent]}{{status_code="429"}}'
    push = f'loki_request_duration_seconds_count{{route=~"{LOKI_PUSH_ROUTES}"'
    return [
        Alert(
            "Watchdog",
            "vector(1)",
            # Alertmanager routes it by alertname to the heartbeat receiver, whatever its severity.
            "info",
            "Alerting pipeline heartbeat",
            "Always firing: the heartbeat receiver raises an incident when it stops arriving, "
            "which means Prometheus or Alertmanager is not working.",
            labels={"service": STATIC_SERVICE},
        ),
        Alert(
            "LongTermStoreRemoteWriteFailing",
            f"{failed}\n/\n({failed} + {sent})\n> {config.remote_write_failure_ratio:g}",
            "warning",
            "Prometheus cannot write to the long-term store",
            "{{ $labels.pod }} failed to send {{ $value | humanizePercentage }} of its samples to "
            "{{ $labels.remote_name }} over 5m: the 90-day history is getting gaps.",
            for_=config.remote_write_for,
            labels={"service": STATIC_SERVICE},
        ),
        Alert(
            "LongTermStoreRemoteWriteBehind",
            # Per queue, what it enqueued against what it sent. Not the storage-wide highest timestamp:
            # a queue whose write relabelling drops every series enqueues nothing, and Prometheus 3
            # exports its timestamps as 0, which would read as "behind since 1970". A queue's two
            # timestamps are then both 0: never behind.
            f"max by ({by_queue}) (max_over_time(prometheus_remote_storage_queue_highest_timestamp_seconds[5m]))\n"
            "-\n"
            f"max by ({by_queue}) (max_over_time(prometheus_remote_storage_queue_highest_sent_timestamp_seconds[5m]))\n"
            f"> {config.remote_write_max_lag_seconds}",
            "warning",
            "Prometheus remote write to the long-term store is behind",
            "Remote write of {{ $labels.pod }} to {{ $labels.remote_name }} is {{ $value | humanizeDuration }} "
            "behind; past the WAL's ~2h the samples are lost.",
            for_=config.remote_write_for,
            labels={"service": STATIC_SERVICE},
        ),
        Alert(
            "LogPipelineEntriesDropped",
            # Dropped for good, or refused as rate-limited now (dropped once the retries run out).
            f"sum by (namespace) (rate({dropped}[5m])) > 0\nor\nsum by (namespace) (rate({refused}[5m])) > 0",
            "warning",
            "The log agent is dropping log entries, or Loki refuses them",
            f"The {config.log_agent} agents in {{{{ $labels.namespace }}}} drop log entries that Loki never "
            "receives, or Loki refuses their pushes as rate-limited (429): {{ $value | printf \"%.3g\" }}/s.",
            for_=config.log_pipeline_for,
            labels={"service": STATIC_SERVICE},
            keep_firing_for=_keep(config),
        ),
        Alert(
            "LogPipelineLokiPushErrors",
            f'sum by (namespace) (rate({push}, status_code=~"5..|429"}}[5m]))\n'
            f"/\nsum by (namespace) (rate({push}}}[5m]))\n> {config.log_push_error_ratio:g}",
            "warning",
            "Loki is failing or refusing to ingest logs",
            "{{ $value | humanizePercentage }} of the log pushes to Loki in {{ $labels.namespace }} fail with 5xx "
            "or are refused as rate-limited (429).",
            for_=config.log_pipeline_for,
            labels={"service": STATIC_SERVICE},
            keep_firing_for=_keep(config),
        ),
    ]


def sample_limit_share(config: RuleConfig, selector: str = "") -> str:
    """Each scrape of a configured service over its ServiceMonitor's sample limit (0 to 1, past 1 the
    scrape fails). The limits are the configured ones: the series that would carry them,
    scrape_sample_limit, needs a feature flag Prometheus 3.14 deprecates. Services sharing a limit
    share one selector, so the expression stays short however many services there are."""
    by_limit: dict[int, list[str]] = {}
    for monitor in config.monitors:
        by_limit.setdefault(monitor.sample_limit, []).append(monitor.name)
    return "\nor\n".join(
        f'scrape_samples_post_metric_relabeling{{{selector}{MONITOR_LABEL}=~"{regex_alternation(tuple(names))}"}} / {limit}'
        for limit, names in sorted(by_limit.items()))


def capacity_alerts(config: RuleConfig) -> list[Alert]:
    """Growth caught before it breaks: a service's scrape near its sample limit (past it, every scrape
    fails and its alerts go blind), and Prometheus holding more series than it is sized for."""
    namespaces = f'namespace=~"{regex_alternation(config.service_namespaces)}", '
    share = sample_limit_share(config, namespaces).replace("\n", "\n  ")
    return [
        Alert(
            "WebhookScrapeNearSampleLimit",
            f"max by (namespace, service) (\n  {share}\n) > {config.sample_limit_warning:g}",
            "warning",
            "A webhook delivery service's scrapes near their sample limit",
            "A scrape of {{ $labels.namespace }}/{{ $labels.service }} returns {{ $value | humanizePercentage }} "
            "of its sample limit: past it every scrape fails, the service's series stop and its alerts go "
            "blind. New customer endpoints, or a new label on its metrics?",
            for_=config.capacity_for,
        ),
        Alert(
            "PrometheusHeadSeriesAboveSizing",
            f'max by (namespace, pod) (prometheus_tsdb_head_series{{namespace="{config.monitoring_namespace}", '
            f'job="{config.prometheus_job}"}}) > {config.expected_series}',
            "warning",
            "Prometheus holds more series than it is sized for",
            "{{ $labels.pod }} holds {{ $value }} series in memory, above the "
            f"{config.expected_series} its memory is sized for (prometheus.expectedSeries): raise both before "
            "it runs out of memory.",
            for_=config.capacity_for,
            labels={"service": STATIC_SERVICE},
        ),
    ]


def guard_alerts(config: RuleConfig) -> list[Alert]:
    """What guards the alerting pipeline beyond the charts' own Prometheus and Alertmanager alerts
    (which route to the team, see monitoring/helm/kube_prometheus_stack.py): the stack's own targets
    down (the blackbox exporter, the agents, Loki, ...), and Loki's ruler not evaluating the log alerts."""
    monitoring = f'{config.monitoring_namespace}|{config.agents_namespace}'
    ruler = f'namespace="{config.monitoring_namespace}"'
    evaluations = f"loki_prometheus_rule_evaluations_total{{{ruler}}}"
    failures = f"loki_prometheus_rule_evaluation_failures_total{{{ruler}}}"
    return [
        Alert(
            "MonitoringTargetDown",
            'label_replace(\n  count by (namespace, job) (up{namespace=~"' + monitoring + '"} == 0),\n'
            '  "service", "$1", "job", "(.*)"\n)',
            "warning",
            "A component of the monitoring stack cannot be scraped",
            "{{ $value }} target(s) of {{ $labels.job }} in {{ $labels.namespace }} have been down for "
            f"{config.target_down_for}: what it does for monitoring (probes, logs, node metrics, storage) is "
            "missing or unseen.",
            for_=config.target_down_for,
        ),
        Alert(
            "LogRulerNotEvaluating",
            f"sum by (namespace) (rate({evaluations}[10m])) == 0\n"
            f"or\nsum by (namespace) (rate({failures}[10m])) > 0\n"
            f"or\nabsent({evaluations})",
            "warning",
            "Loki's ruler is not evaluating the log-based alerts",
            "Loki's ruler in {{ $labels.namespace }} has evaluated no log rule, or failed some, for "
            f"{config.log_pipeline_for}: WebhookLogErrorBurst and WebhookServicePanicked cannot fire.",
            for_=config.log_pipeline_for,
            labels={"service": "loki"},
        ),
    ]


def _by_workload(config: RuleConfig, per_pod: str, aggregate: str = "count") -> str:
    """`per_pod` (series with namespace and pod) aggregated per workload of the team's namespaces."""
    return (f"{aggregate} by (namespace, service) (\n  ({per_pod})\n"
            f"  * on (namespace, pod) group_left (service) {local(POD_SERVICE)}\n)")


def workload_alerts(config: RuleConfig) -> list[Alert]:
    """The team's own workloads, the services' and the monitoring stack's: pods crash looping, waiting,
    OOM-killed or Pending, workloads short of replicas, volumes filling up (kube-state-metrics of the
    configured job, and the kubelet's volume stats). Each is per workload (`service`: the Deployment,
    StatefulSet or DaemonSet), so one bad pod of several is told, which WebhookTargetDown is not for."""
    ksm = workload_matchers(config)
    keep = _keep(config)
    waiting = f"kube_pod_container_status_waiting_reason{{{ksm}"
    restarts = f"kube_pod_container_status_restarts_total{{{ksm}}}"
    replicas = " or ".join(
        f'label_replace(max by (namespace, {kind}) (last_over_time({desired}{{{ksm}}}[{config.gap_bridge}]) '
        f'- last_over_time({ready}{{{ksm}}}[{config.gap_bridge}])), "service", "$1", "{kind}", "(.+)")'
        for kind, desired, ready in (
            ("deployment", "kube_deployment_spec_replicas", "kube_deployment_status_replicas_available"),
            ("statefulset", "kube_statefulset_replicas", "kube_statefulset_status_replicas_ready"),
            ("daemonset", "kube_daemonset_status_desired_number_scheduled", "kube_daemonset_status_number_available")))
    volumes = f'namespace=~"{regex_alternation(config.team_namespaces)}"'
    claim = "namespace, persistentvolumeclaim"
    free = (f"max by ({claim}) (last_over_time(kubelet_volume_stats_available_bytes{{{volumes}}}[{config.gap_bridge}])\n"
            f"  / last_over_time(kubelet_volume_stats_capacity_bytes{{{volumes}}}[{config.gap_bridge}]))")
    forecast = (f"max by ({claim}) (predict_linear(kubelet_volume_stats_available_bytes{{{volumes}}}"
                f"[{config.volume_forecast_window}], {config.volume_forecast_horizon_seconds}))")

    def by_claim_owner(per_claim: str) -> str:
        """The least free share of each workload's volumes matching `per_claim` (a volume belongs to
        the workload of the pods that mount it)."""
        return (f"min by (namespace, service) (\n  ({per_claim})\n  * on ({claim}) group_left (service)\n"
                f"  topk by ({claim}) (1, max by ({claim}, service) (\n"
                f"    kube_pod_spec_volumes_persistentvolumeclaims_info{{{ksm}}}\n"
                f"    * on (namespace, pod) group_left (service) {local(POD_SERVICE)}\n  ))\n)")

    return [
        Alert(
            "WorkloadCrashLooping",
            _by_workload(config,
                         f'max by (namespace, pod) (max_over_time({waiting}, reason="CrashLoopBackOff"}}[{config.crash_back_off}]))\n'
                         f"  or\n  max by (namespace, pod) (increase({restarts}[{config.crash_window}])) >= {config.crash_restarts}"),
            "warning",
            "Pods of a workload are crash looping",
            "{{ $value }} pod(s) of {{ $labels.namespace }}/{{ $labels.service }} keep restarting (CrashLoopBackOff, "
            f"or {config.crash_restarts} restarts in {config.crash_window}).",
            for_=config.thresholds.workload_for.text,
            keep_firing_for=keep,
        ),
        Alert(
            "WorkloadContainerWaiting",
            _by_workload(config, f'max by (namespace, pod) (last_over_time({waiting}, reason!="CrashLoopBackOff"}}'
                                 f"[{config.gap_bridge}]))"),
            "warning",
            "Containers of a workload cannot start",
            "{{ $value }} pod(s) of {{ $labels.namespace }}/{{ $labels.service }} have a container waiting to start "
            f"(image pull, configuration, volume) for {config.thresholds.workload_for.text}.",
            for_=config.thresholds.workload_for.text,
            keep_firing_for=keep,
        ),
        Alert(
            "WorkloadContainerOOMKilled",
            # The last termination reason stays after the restart: only a restart in the window counts.
            _by_workload(config, f"max by (namespace, pod, container) (increase({restarts}[{config.crash_window}])) > 0\n"
                                 "  and on (namespace, pod, container)\n"
                                 f'  max by (namespace, pod, container) (last_over_time(kube_pod_container_status_last_terminated_reason'
                                 f'{{{ksm}, reason="OOMKilled"}}[{config.gap_bridge}])) == 1'),
            "warning",
            "Containers of a workload were killed for memory",
            "{{ $value }} container(s) of {{ $labels.namespace }}/{{ $labels.service }} were OOM-killed in the last "
            f"{config.crash_window}: their memory limit is too small for what they hold.",
        ),
        Alert(
            "WorkloadPodsPending",
            _by_workload(config, f'max by (namespace, pod) (last_over_time(kube_pod_status_phase{{{ksm}, phase="Pending"}}'
                                 f"[{config.gap_bridge}])) == 1"),
            "warning",
            "Pods of a workload cannot be scheduled or started",
            "{{ $value }} pod(s) of {{ $labels.namespace }}/{{ $labels.service }} have been Pending for "
            f"{config.thresholds.workload_for.text}: no node fits them, or their volumes cannot attach.",
            for_=config.thresholds.workload_for.text,
            keep_firing_for=keep,
        ),
        Alert(
            "WorkloadReplicasUnavailable",
            f"max by (namespace, service) (\n  {replicas}\n) > 0",
            "warning",
            "A workload runs fewer replicas than it wants",
            "{{ $labels.namespace }}/{{ $labels.service }} has been {{ $value }} replica(s) short of its desired "
            f"count for {config.thresholds.workload_for.text} (a rollout stuck, pods not ready).",
            for_=config.thresholds.workload_for.text,
            keep_firing_for=keep,
        ),
        Alert(
            "WorkloadVolumeFillingUp",
            by_claim_owner(f"{free} < {config.volume_free_warning:g}\n  and on ({claim})\n  {forecast} < 0"),
            "warning",
            "A workload's volume fills up",
            "A volume of {{ $labels.namespace }}/{{ $labels.service }} has {{ $value | humanizePercentage }} free and "
            f"runs out within {config.volume_forecast_horizon_seconds // 86400} days at its growth of the last "
            f"{config.volume_forecast_window}.",
            for_="1h",
            keep_firing_for=keep,
        ),
        Alert(
            "WorkloadVolumeFillingUp",
            by_claim_owner(f"{free} < {config.volume_free_critical:g}"),
            "critical",
            "A workload's volume is full",
            "A volume of {{ $labels.namespace }}/{{ $labels.service }} has {{ $value | humanizePercentage }} free: "
            "writes fail (Prometheus, Loki, Mimir and Alertmanager stop keeping data).",
            for_="5m",
            keep_firing_for=keep,
        ),
    ]


def _certificate(config: RuleConfig, metric: str, matchers: str) -> str:
    """Grafana's cert-manager Certificate `metric`. cert-manager's own `namespace` label becomes
    `exported_namespace` when its ServiceMonitor does not honour labels (its chart's default)."""
    name = f'name="{config.grafana_certificate}"'
    ns = config.monitoring_namespace
    return (f'{metric}{{{name}, exported_namespace="{ns}"{matchers}}}\n  or\n'
            f'  {metric}{{{name}, namespace="{ns}", exported_namespace=""{matchers}}}')


def certificate_alerts(config: RuleConfig) -> list[Alert]:
    """Grafana's certificate, which cert-manager issues through the ingress (grafana.clusterIssuer).
    Reads cert-manager's metrics: its ServiceMonitor must be one this Prometheus selects."""
    if not config.grafana_certificate:
        return []
    ready = _certificate(config, "certmanager_certificate_ready_status", ', condition!="True"')
    expiry = _certificate(config, "certmanager_certificate_expiration_timestamp_seconds", "")
    return [
        Alert(
            "GrafanaCertificateNotReady",
            f"max by (name) (\n  {ready}\n) == 1",
            "warning",
            "Grafana's certificate is not ready",
            f"cert-manager's Certificate {{{{ $labels.name }}}} for Grafana has not been Ready for "
            f"{config.certificate_not_ready_for} (value {{{{ $value }}}}): it cannot be issued or renewed, and "
            "Grafana's TLS breaks when the current one expires.",
            for_=config.certificate_not_ready_for,
            labels={"service": "grafana"},
        ),
        Alert(
            "GrafanaCertificateExpiring",
            # 0 until the certificate was first issued: that is GrafanaCertificateNotReady's.
            f"min by (name) (\n  ({expiry}) > 0\n) - time() < {config.certificate_min_days} * 86400",
            "warning",
            "Grafana's certificate expires soon",
            "Grafana's certificate {{ $labels.name }} expires in {{ $value | humanizeDuration }} and cert-manager "
            "has not renewed it (it renews a third of the lifetime before expiry).",
            for_=config.certificate_expiry_for,
            labels={"service": "grafana"},
        ),
    ]


def _loop_not_succeeding(config: RuleConfig, name: str, component: str, last_success: str, failed: str,
                         succeeded: str, max_age_seconds: int, summary: str, effect: str) -> list[Alert]:
    """A periodic loop of a store (compaction, retention, sync) that stopped succeeding: its last
    success too old (0, never, is left to the failures rule), or its runs failing with none succeeding."""
    ns = f'namespace="{config.monitoring_namespace}"'
    service = component.split("'")[0].lower()
    window = config.store_failures_window
    return [
        Alert(name, f"time() - max by (namespace) ({last_success}{{{ns}}} > 0) > {max_age_seconds}",
              "warning", summary,
              f"{component} in {{{{ $labels.namespace }}}} last succeeded {{{{ $value | humanizeDuration }}}} ago: {effect}",
              for_=config.store_for, labels={"service": service, "signal": "last-success"}, platform=True),
        Alert(name, f"sum by (namespace) (increase({failed}[{window}])) >= 2\n"
                    f"unless on (namespace)\nsum by (namespace) (increase({succeeded}[{window}])) > 0",
              "warning", summary,
              f"{component} in {{{{ $labels.namespace }}}} failed {{{{ $value | humanize }}}} runs in the last {window} "
              f"and completed none: {effect}",
              labels={"service": service, "signal": "failed-runs"}, platform=True),
    ]


def store_alerts(config: RuleConfig) -> list[Alert]:
    """The stores' internals, the platform's to handle: Mimir (the 90-day metrics) and Loki (the logs)
    refusing data, their compactors, retention, store-gateway sync, write-ahead logs, object storage
    and Mimir's HA-tracker elections. What the team sees from outside (remote write failing, pushes
    failing, targets down) stays the team's (pipeline and guard alerts)."""
    ns = f'namespace="{config.monitoring_namespace}"'
    mimir, loki = {"service": "mimir"}, {"service": "loki"}
    keep = _keep(config)
    mimir_ingester_restarts = (f'kube_pod_container_status_restarts_total{{job="{config.kube_state_metrics_job}", '
                               f'{ns}, container="ingester"}}')
    return [
        Alert(
            "MimirIngestionRefused",
            f"sum by (namespace, reason) (rate(cortex_discarded_samples_total{{{ns}}}[5m])) > 0",
            "warning",
            "Mimir refuses samples",
            "Mimir in {{ $labels.namespace }} discards {{ $value | printf \"%.3g\" }} samples/s as {{ $labels.reason }} "
            "(rate_limited: over the ingestion limit; per_user_series_limit: too many series): the 90-day history "
            "gets gaps.",
            for_=config.store_for, labels=mimir, keep_firing_for=keep, platform=True,
        ),
        *_loop_not_succeeding(
            config, "MimirCompactorNotCompacting", "Mimir's compactor",
            "cortex_compactor_last_successful_run_timestamp_seconds",
            f'cortex_compactor_runs_failed_total{{{ns}, reason!="shutdown"}}', f"cortex_compactor_runs_completed_total{{{ns}}}",
            config.mimir_compaction_max_age_seconds, "Mimir's compactor is not compacting",
            "blocks are not merged, queries over days slow down and the bucket grows."),
        *_loop_not_succeeding(
            config, "MimirRetentionNotApplied", "Mimir's blocks cleaner",
            "cortex_compactor_block_cleanup_last_successful_run_timestamp_seconds",
            f"cortex_compactor_block_cleanup_failed_total{{{ns}}}", f"cortex_compactor_block_cleanup_completed_total{{{ns}}}",
            config.mimir_cleanup_max_age_seconds, "Mimir is not applying its retention",
            "blocks past the retention are not deleted and the bucket grows (its lifecycle rule is the only limit)."),
        Alert(
            "MimirStoreGatewayNotSyncing",
            f"max by (namespace) (time() - (cortex_bucket_stores_blocks_last_successful_sync_timestamp_seconds"
            f'{{{ns}, component="store-gateway"}} > 0)) > {config.mimir_sync_max_age_seconds}',
            "warning",
            "Mimir's store-gateway is not syncing the bucket",
            "A store-gateway in {{ $labels.namespace }} last synced the bucket {{ $value | humanizeDuration }} ago: "
            "queries beyond Prometheus' 15 days miss the newest blocks, or fail.",
            for_=config.store_for, labels=mimir, keep_firing_for=keep, platform=True,
        ),
        Alert(
            "MimirIngesterWALFailing",
            f"sum by (namespace) (increase(cortex_ingester_tsdb_wal_corruptions_total{{{ns}}}[10m])) > 0",
            "critical",
            "Mimir's ingester write-ahead log is corrupt or failing",
            "Mimir's ingesters in {{ $labels.namespace }} found {{ $value | humanize }} corrupt write-ahead log "
            "segments replaying them: the samples after the corruption are lost.",
            labels={**mimir, "signal": "corruption"}, platform=True,
        ),
        Alert(
            "MimirIngesterWALFailing",
            f"sum by (namespace) (rate(cortex_ingester_tsdb_wal_writes_failed_total{{{ns}}}[5m])) > 0",
            "critical",
            "Mimir's ingester write-ahead log is corrupt or failing",
            "Mimir's ingesters in {{ $labels.namespace }} fail {{ $value | printf \"%.3g\" }} write-ahead log writes/s "
            "(disk full or failing): a restart loses what they hold.",
            for_="3m", labels={**mimir, "signal": "write-failures"}, keep_firing_for=keep, platform=True,
        ),
        Alert(
            "MimirIngesterRestarting",
            f"max by (namespace, pod) (increase({mimir_ingester_restarts}[{config.ingester_restart_window}])) "
            f">= {config.ingester_restarts}",
            "warning",
            "A Mimir ingester keeps restarting",
            "Mimir ingester {{ $labels.pod }} restarted {{ $value | humanize }} times in the last "
            f"{config.ingester_restart_window}: an ingester killed for memory while replaying its write-ahead log "
            "is killed again at each start (give it memory before the replay can finish).",
            labels=mimir, platform=True,
        ),
        Alert(
            "MimirObjectStoreErrors",
            f"sum by (namespace, component, operation) (rate(thanos_objstore_bucket_operation_failures_total{{{ns}}}[5m]))\n"
            f"/\nsum by (namespace, component, operation) (rate(thanos_objstore_bucket_operations_total{{{ns}}}[5m]))\n"
            f"> {config.object_store_error_ratio:g}",
            "warning",
            "Mimir's object storage operations fail",
            "{{ $value | humanizePercentage }} of the {{ $labels.operation }} operations of Mimir's "
            "{{ $labels.component }} on S3 fail (credentials, bucket policy, KMS key, throttling).",
            for_=config.store_for, labels=mimir, keep_firing_for=keep, platform=True,
        ),
        Alert(
            "MimirHATrackerFlapping",
            f"sum by (namespace, user) (increase(cortex_ha_tracker_elected_replica_changes_total{{{ns}}}[1h])) "
            f"> {config.ha_elections_per_hour}",
            "warning",
            "Mimir's HA tracker keeps switching Prometheus replicas",
            "Mimir changed the elected Prometheus replica of tenant {{ $labels.user }} {{ $value | humanize }} times "
            "in the last hour: a replica keeps stalling past the failover timeout, and each switch can leave a gap.",
            labels=mimir, platform=True,
        ),
        Alert(
            "LokiIngestionRefused",
            f"sum by (namespace, reason) (rate(loki_discarded_samples_total{{{ns}}}[5m])) > 0",
            "warning",
            "Loki refuses log lines",
            "Loki in {{ $labels.namespace }} discards {{ $value | printf \"%.3g\" }} lines/s as {{ $labels.reason }} "
            "(rate_limited, stream_limit, per_stream_rate_limit: over its limits, answered with 429).",
            for_=config.store_for, labels=loki, keep_firing_for=keep, platform=True,
        ),
        *_loop_not_succeeding(
            config, "LokiCompactorNotCompacting", "Loki's compactor",
            "loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds",
            f'loki_boltdb_shipper_compact_tables_operation_total{{{ns}, status="failure"}}',
            f'loki_boltdb_shipper_compact_tables_operation_total{{{ns}, status="success"}}',
            config.loki_compaction_max_age_seconds, "Loki's compactor is not compacting",
            "index files pile up and queries slow down."),
        *_loop_not_succeeding(
            config, "LokiRetentionNotApplied", "Loki's retention",
            "loki_compactor_apply_retention_last_successful_run_timestamp_seconds",
            f'loki_compactor_apply_retention_operation_total{{{ns}, status="failure"}}',
            f'loki_compactor_apply_retention_operation_total{{{ns}, status="success"}}',
            config.loki_retention_max_age_seconds, "Loki is not applying its retention",
            "logs past the retention are not deleted and the bucket grows (its lifecycle rule is the only limit)."),
        Alert(
            "LokiIngesterWALFailing",
            f"sum by (namespace) (increase(loki_ingester_wal_corruptions_total{{{ns}}}[10m])) > 0",
            "critical",
            "Loki's ingester write-ahead log is corrupt or full",
            "Loki's ingesters in {{ $labels.namespace }} found {{ $value | humanize }} corrupt write-ahead log "
            "segments or checkpoints replaying them: the lines after the corruption are lost.",
            labels={**loki, "signal": "corruption"}, platform=True,
        ),
        Alert(
            "LokiIngesterWALFailing",
            f"sum by (namespace) (increase(loki_ingester_wal_disk_full_failures_total{{{ns}}}[10m])) > 0",
            "critical",
            "Loki's ingester write-ahead log is corrupt or full",
            "Loki's ingesters in {{ $labels.namespace }} could not write their write-ahead log {{ $value | humanize }} "
            "times in 10m, the disk full: a restart loses the lines they hold.",
            labels={**loki, "signal": "disk-full"}, platform=True,
        ),
        Alert(
            "LokiObjectStoreErrors",
            f'sum by (namespace, operation) (rate(loki_s3_request_duration_seconds_count{{{ns}, status_code=~"5..|cancel"}}[5m]))\n'
            f"/\nsum by (namespace, operation) (rate(loki_s3_request_duration_seconds_count{{{ns}}}[5m]))\n"
            f"> {config.object_store_error_ratio:g}",
            "warning",
            "Loki's object storage requests fail",
            "{{ $value | humanizePercentage }} of Loki's {{ $labels.operation }} requests to S3 fail (credentials, "
            "bucket policy, KMS key, throttling): chunks are not flushed or not read.",
            for_=config.store_for, labels=loki, keep_firing_for=keep, platform=True,
        ),
    ]


# The stores' internals, the platform's: the one group whose alerts carry its team.
STORE_GROUP = "webhook-delivery.stores"
SLO_GROUP = "webhook-delivery.slo"

# The charts' rule groups that watch this program's alerting pipeline (Prometheus evaluating and
# sending, Alertmanager notifying): they carry the team label, so they reach the team's receivers,
# not the platform's. The rest of the charts' alerts (nodes, kubelet, storage, ...) are the cluster's.
CHART_GROUPS_OF_THE_TEAM = ("prometheus", "alertmanager")
# The charts' alerts whose failure silences ours, with runbooks of ours (docs/runbooks/<alert>.md).
# TargetDown stays the platform's; its runbook says which of its targets are the team's.
CHART_GUARD_ALERTS = (
    "PrometheusRuleFailures",
    "PrometheusMissingRuleEvaluations",
    "PrometheusNotConnectedToAlertmanagers",
    "PrometheusErrorSendingAlertsToAnyAlertmanager",
    "AlertmanagerFailedToSendAlerts",
    "TargetDown",
)


def chart_rule_overrides(settings: Settings) -> dict[str, Any]:
    """kube-prometheus-stack `defaultRules` keys: who owns the chart's guarding alerts and their runbooks."""
    config = rule_config(settings)
    return {
        "additionalRuleGroupLabels": {group: {"team": config.team} for group in CHART_GROUPS_OF_THE_TEAM},
        "additionalRuleAnnotations": {alert: {"runbook_url": config.runbook_url(alert)} for alert in CHART_GUARD_ALERTS},
    }


def all_alerts(config: RuleConfig) -> dict[str, list[Alert]]:
    """Alerts by rule group name."""
    return {
        "webhook-delivery.alerts": service_alerts(config),
        SLO_GROUP: slo_alerts(config),
        "webhook-delivery.anomaly": anomaly_alerts(config),
        "webhook-delivery.monitoring-pipeline": pipeline_alerts(config) + guard_alerts(config) + capacity_alerts(config),
        "webhook-delivery.workloads": workload_alerts(config) + certificate_alerts(config),
        STORE_GROUP: store_alerts(config),
    }


def _rule(alert: Alert, config: RuleConfig) -> dict[str, Any]:
    """The one place that adds the team label (the owner's) and the runbook link, and applies an alert's
    override (`alerting.alertOverrides`: its severity and `for`)."""
    override = config.overrides.get(alert.name)
    severity = override.severity if override and override.severity else alert.severity
    for_ = override.for_.text if override and override.for_ else alert.for_
    rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
    if for_:
        rule["for"] = for_
    if alert.keep_firing_for:
        rule["keep_firing_for"] = alert.keep_firing_for
    team = config.platform_team if alert.platform else config.team
    rule["labels"] = dict(sorted({**alert.labels, "severity": severity, "team": team}.items()))
    rule["annotations"] = {
        "description": alert.description,
        "runbook_url": config.runbook_url(alert.name),
        "summary": alert.summary,
        # The number the alert fired on, for the notifications' details (not `humanize`: its SI
        # prefixes turn a 0.02 ratio into "20m").
        "value": '{{ printf "%.6g" $value }}',
    }
    return rule


def alert_groups(settings: Settings) -> list[dict[str, Any]]:
    """The alert rule groups, in promtool's rule-file group format; a rule turned off by its override is
    left out (and a group left without rules)."""
    config = rule_config(settings)
    groups = []
    for name, alerts in all_alerts(config).items():
        kept = [a for a in alerts if a.name not in config.overrides or config.overrides[a.name].enabled]
        if kept:
            groups.append({"name": name, "rules": [_rule(a, config) for a in kept]})
    return groups
