"""Alert rules of the webhook delivery service, as data.

Every alert is an `Alert`; `_rule` turns it into a promtool rule and is the one place that adds the
`team` label and the `runbook_url` annotation (`docs/runbooks/<alert>.md`). Service alerts read the
recorded series of `recording.py`, this cluster's only (`local`: federated copies of other clusters'
series alert in their own cluster), which aggregate by (namespace, service) before any comparison:
the error ratio is a ratio of sums, P95 comes from buckets summed across pods and endpoints, and the
queue depth is summed across replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from config import Duration, Settings
from monitoring.rules.config import RuleConfig, local, regex_alternation, rule_config
from monitoring.rules.recording import baseline_series_name
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


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = ""
    labels: dict[str, str] = field(default_factory=dict)


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
    """The service's three delivery alerts (errors, backlog, latency), the target and the synthetic probe checks."""
    up = f'up{{namespace=~"{regex_alternation(config.service_namespaces)}"}}'
    alerts = [
        Alert(
            "WebhookHighErrorRate",
            f"{local('service:webhook_delivery_errors:ratio_rate5m')} > {config.thresholds.error_ratio:g}\n"
            + _at_least_deliveries(config.thresholds.error_ratio, "5m"),
            "critical",
            "High webhook error rate detected",
            "Webhook error rate of {{ $labels.namespace }}/{{ $labels.service }} is {{ $value | humanizePercentage }} "
            f"over 5m (threshold {_percent(config.thresholds.error_ratio)}).",
            for_=config.thresholds.error_ratio_for.text,
        ),
        Alert(
            "WebhookQueueBacklog",
            f"{local('service:webhook_queue_depth:sum')} > {config.thresholds.queue_depth}",
            "critical",
            "Webhook queue backlog growing",
            "Queue depth of {{ $labels.namespace }}/{{ $labels.service }} is {{ $value }} messages across all "
            f"replicas (threshold {config.thresholds.queue_depth}).",
            for_=config.thresholds.queue_depth_for.text,
        ),
        Alert(
            "HighLatency",
            local("service:webhook_delivery_duration_seconds:histogram_quantile5m", 'quantile="0.95"')
            + f" > {config.thresholds.latency_p95:g}\n" + _at_least_deliveries(1 - 0.95, "5m"),
            "warning",
            "High webhook delivery latency",
            "P95 latency of {{ $labels.namespace }}/{{ $labels.service }} is {{ $value | humanizeDuration }} "
            f"(threshold {config.thresholds.latency_p95:g}s).",
            for_=config.thresholds.latency_p95_for.text,
        ),
        Alert(
            "WebhookTargetDown",
            # All targets down: no metric of the service can be trusted, so this one alert stands for
            # the others (Alertmanager inhibits them). One pod of several down is the chart's
            # KubePodNotReady / KubePodCrashLooping.
            f"count by (namespace, service) ({up} == 0)\n/\ncount by (namespace, service) ({up})\n== 1",
            "critical",
            "Every scrape target of a webhook delivery service is down",
            "{{ $value | humanizePercentage }} of the targets of {{ $labels.namespace }}/{{ $labels.service }} "
            f"have been down for {config.target_down_for}: the service is down or cannot be scraped.",
            for_=config.target_down_for,
        ),
    ]
    alerts += absence_alerts(config)
    if config.probe_urls:
        alerts.append(Alert(
            "WebhookProbeFailed",
            "1 - max by (instance) (avg_over_time(probe_success{instance=~\""
            + regex_alternation(config.probe_urls) + f"\"}}[5m])) > {config.probe_failure_ratio:g}",
            "warning",
            "Synthetic probe of a webhook endpoint failing",
            "{{ $value | humanizePercentage }} of the probes of {{ $labels.instance }} failed over the last 5m.",
            for_=config.probe_for,
            labels={"service": STATIC_SERVICE},
        ))
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
            f"sum by (namespace) (rate({dropped}[5m])) > 0",
            "warning",
            "The log agent is dropping log entries",
            f"The {config.log_agent} agents in {{{{ $labels.namespace }}}} drop {{{{ $value | humanize }}}} "
            "log entries/s that Loki never receives.",
            for_=config.log_pipeline_for,
            labels={"service": STATIC_SERVICE},
        ),
        Alert(
            "LogPipelineLokiPushErrors",
            f'sum by (namespace) (rate({push}, status_code=~"5.."}}[5m]))\n'
            f"/\nsum by (namespace) (rate({push}}}[5m]))\n> {config.log_push_error_ratio:g}",
            "warning",
            "Loki is failing to ingest logs",
            "{{ $value | humanizePercentage }} of the log pushes to Loki in {{ $labels.namespace }} fail with 5xx.",
            for_=config.log_pipeline_for,
            labels={"service": STATIC_SERVICE},
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
        "webhook-delivery.slo": slo_alerts(config),
        "webhook-delivery.anomaly": anomaly_alerts(config),
        "webhook-delivery.monitoring-pipeline": pipeline_alerts(config) + guard_alerts(config) + capacity_alerts(config),
    }


def _rule(alert: Alert, config: RuleConfig) -> dict[str, Any]:
    """The one place that adds the team label and the runbook link."""
    rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
    if alert.for_:
        rule["for"] = alert.for_
    rule["labels"] = dict(sorted({**alert.labels, "severity": alert.severity, "team": config.team}.items()))
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
    """The alert rule groups, in promtool's rule-file group format."""
    config = rule_config(settings)
    return [
        {"name": name, "rules": [_rule(a, config) for a in alerts]}
        for name, alerts in all_alerts(config).items()
    ]
