"""The one config the rules and the dashboards read (kubernetes-mixin style): selectors, thresholds
and the few fixed choices, built once from the settings by `rule_config`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from config import Settings
from config.naming import kube_prometheus_stack
from config.settings import AlertOverride, AlertThresholds
from monitoring.tenancy import tenant_namespaces

# Federation (monitoring/scrape.py) brings other clusters' recorded series into this Prometheus,
# labelled with their `cluster`; this cluster's own series carry no `cluster` label (external labels
# are added only on the way out). Every rule that reads a recorded series selects this cluster's only,
# through `local`: otherwise a `sum by (namespace, service)` adds other clusters in, alerts fire for
# them, and rules re-record federated series under the names they arrived with.
LOCAL_ONLY = 'cluster=""'

_RE2_SPECIAL = set(r"\.+*?()|[]{}^$")


def local(series: str, matchers: str = "") -> str:
    """Selector of recorded `series` in this cluster only, with further label `matchers`."""
    return f"{series}{{{', '.join(m for m in (LOCAL_ONLY, matchers) if m)}}}"


def regex_alternation(values: tuple[str, ...]) -> str:
    """`values` as an RE2 alternation inside a PromQL double-quoted string (escapes doubled)."""
    return "|".join("".join("\\\\" + ch if ch in _RE2_SPECIAL else ch for ch in v) for v in values)


@dataclass(frozen=True)
class Monitor:
    """The ServiceMonitor of one configured service: its targets carry its name as the `monitor` label
    (WebhookTargetsMissing, WebhookDeliveryMetricsMissing)."""

    namespace: str
    """Namespace of the service it scrapes."""
    name: str
    sample_limit: int
    """Samples per scrape past which a scrape fails (WebhookScrapeNearSampleLimit)."""
    interval_seconds: float = 30
    """Its scrape interval: a rate window needs two scrapes."""


@dataclass(frozen=True)
class Tunable:
    """A fixed choice of RuleConfig that is one alert's threshold, which `alerting.alertOverrides[].threshold`
    sets."""

    field: str
    """The RuleConfig field."""
    expected: str
    """What a value is, as the refusal of a bad one says it."""
    low: float
    high: float
    whole: bool = False


# Each field read by that alert's rule alone (and the dashboards that draw its line).
TUNABLE_THRESHOLDS = {
    "WebhookProbeFailed": Tunable("probe_failure_ratio", "a share of failed probes over 5m, above 0 and below 1", 0, 1),
    "LongTermStoreRemoteWriteFailing": Tunable("remote_write_failure_ratio",
                                               "a share of samples failed over 5m, above 0 and below 1", 0, 1),
    "LongTermStoreRemoteWriteBehind": Tunable("remote_write_max_lag_seconds",
                                              "whole seconds of lag, from 1 to 7200 (the WAL keeps about 2h)", 1, 7200,
                                              whole=True),
    "LogPipelineLokiPushErrors": Tunable("log_push_error_ratio", "a share of failed pushes over 5m, above 0 and below 1",
                                         0, 1),
    "WebhookScrapeNearSampleLimit": Tunable("sample_limit_warning",
                                            "a share of the sample limit, above 0 and below 1 (at 1 the scrape fails)", 0, 1),
    "MimirHATrackerFlapping": Tunable("ha_elections_per_hour", "whole elections per hour, from 1 to 60", 1, 60, whole=True),
    "MimirIngesterRestarting": Tunable("ingester_restarts", "whole restarts in the window, from 1 to 100", 1, 100,
                                       whole=True),
}
# The alerts whose threshold, or whose `for`, is a settings key: set there, in one place.
THRESHOLD_KEYS = {
    "WebhookHighErrorRate": "alerting.thresholds.errorRatio",
    "WebhookQueueBacklog": "alerting.thresholds.queueDepth",
    "WebhookQueueGrowing": "alerting.thresholds.queueDepth (and queueGrowthHorizon)",
    "WebhookDeliveriesStalled": "alerting.thresholds.stallQueueDepth",
    "HighLatency": "alerting.thresholds.latencyP95",
    "WebhookErrorBudgetBurn": "alerting.thresholds.sloTarget",
    "WebhookTrafficAnomaly": "alerting.thresholds.anomalyZScore",
    "PrometheusHeadSeriesAboveSizing": "prometheus.expectedSeries",
}
FOR_KEYS = {
    "WebhookHighErrorRate": "alerting.thresholds.errorRatioFor",
    "WebhookQueueBacklog": "alerting.thresholds.queueDepthFor",
    "HighLatency": "alerting.thresholds.latencyP95For",
}


@dataclass(frozen=True)
class RuleConfig:
    """Everything the rules take from settings (and the few fixed choices), in one place."""

    thresholds: AlertThresholds
    """`alerting.thresholds`: the alerts' thresholds and `for` durations, as configured."""
    monitors: tuple[Monitor, ...]
    failed_statuses: str
    """RE2 alternation of the `status` values that count as failed deliveries."""
    team: str
    platform_team: str
    """`team` of the stores' alerts: the platform runs Mimir and Loki."""
    runbook_base_url: str
    monitoring_namespace: str
    """Namespace of the monitoring stack (Prometheus' own targets)."""
    agents_namespace: str
    """Namespace of the agents on every node."""
    team_namespaces: tuple[str, ...]
    """Namespaces whose workloads are the team's (monitoring/tenancy.py `tenant_namespaces`: what the
    platform's kube-state-metrics is kept for in join mode, so what the workload rules can see)."""
    probe_urls: tuple[str, ...]
    log_agent: str
    expected_series: int
    """Head series each Prometheus replica is sized for (prometheus.expectedSeries)."""
    prometheus_job: str
    """Prometheus' own scrape job: the chart's Service `<fullname>-prometheus`, which its ServiceMonitor names."""
    kube_state_metrics_job: str
    """`job` of the kube-state-metrics series the workload alerts read."""
    grafana_certificate: str
    """Name of Grafana's cert-manager Certificate (the ingress' TLS Secret); "" when cert-manager does not issue it."""
    # The anomaly alert also needs the rate to differ from the mean by this share, so that a
    # near-zero standard deviation (very regular traffic) does not turn noise into an alert.
    anomaly_min_relative_change: float = 0.2
    anomaly_for: str = "30m"
    target_down_for: str = "5m"
    probe_failure_ratio: float = 0.5
    probe_for: str = "5m"
    remote_write_failure_ratio: float = 0.01
    remote_write_for: str = "15m"
    # Prometheus keeps about 2h of WAL: 10 minutes behind is well before data is lost.
    remote_write_max_lag_seconds: int = 600
    log_push_error_ratio: float = 0.05
    log_pipeline_for: str = "15m"
    # A deploy briefly has no ready target, or a metric appears after the first request: only longer gaps page.
    absence_for: str = "10m"
    # Share of a scrape's sample limit that warns; growth is slow, so it must last.
    sample_limit_warning: float = 0.8
    capacity_for: str = "30m"
    # A target counts as answering when it answered at least half of its scrapes over the window:
    # a crash-looping pod is up for the odd scrape, a healthy one misses the odd scrape.
    target_up_share: float = 0.5
    # Scrape gaps a condition on kube-state-metrics or kubelet series bridges (last_over_time): a
    # failed scrape writes stale markers, which would otherwise restart a pending alert.
    gap_bridge: str = "2m"
    # The kubelet's crash back-off grows to 5 minutes: a CrashLoopBackOff wait seen within that long
    # still counts while the container runs for a few seconds between waits.
    crash_back_off: str = "5m"
    crash_restarts: int = 3
    crash_window: str = "15m"
    # A PersistentVolumeClaim is filling up when less than 15% is free and it runs out within 4 days
    # at the growth of the last 6 hours; it is full at 3% (what the kubelet leaves for filesystem overhead).
    volume_free_warning: float = 0.15
    volume_free_critical: float = 0.03
    volume_forecast_window: str = "6h"
    volume_forecast_horizon_seconds: int = 4 * 86400
    # The stall alert waits this long once its 5m window shows no delivery: one window more of evidence.
    stall_for: str = "2m"
    queue_growth_window: str = "30m"
    queue_growth_for: str = "15m"
    queue_growth_confirmation: str = "10m"
    """The window in which the queue must still be rising for WebhookQueueGrowing."""
    # cert-manager renews a certificate when a third of its life is left (30 days for Let's Encrypt's
    # 90): two weeks left means renewal has been failing for two weeks.
    certificate_min_days: int = 14
    certificate_not_ready_for: str = "10m"
    certificate_expiry_for: str = "1h"
    # The stores: how long an internal failure must last (or how old a last success may be) before
    # the platform is told. Mimir's compactor runs hourly and its blocks cleaner every 15 minutes,
    # Loki's compactor and retention every 10 and 15 minutes, Mimir's store-gateway syncs every 15
    # minutes: each allowed age is several missed runs.
    store_for: str = "15m"
    mimir_compaction_max_age_seconds: int = 6 * 3600
    mimir_cleanup_max_age_seconds: int = 6 * 3600
    mimir_sync_max_age_seconds: int = 30 * 60
    loki_compaction_max_age_seconds: int = 3 * 3600
    loki_retention_max_age_seconds: int = 3 * 3600
    store_failures_window: str = "3h"
    object_store_error_ratio: float = 0.05
    # An elected replica changes when the other Prometheus replica took over: a rolling update of two
    # replicas makes two; more than four in an hour is failover flapping.
    ha_elections_per_hour: int = 4
    ingester_restarts: int = 2
    ingester_restart_window: str = "30m"
    overrides: dict[str, AlertOverride] = field(default_factory=dict)
    """`alerting.alertOverrides` by alert: rules turned off, or given another severity or `for` (`_rule`)."""

    @property
    def service_namespaces(self) -> tuple[str, ...]:
        """Namespaces of the scraped webhook delivery services (WebhookTargetDown), each once."""
        return tuple(sorted({m.namespace for m in self.monitors}))

    @property
    def error_confirmation_window(self) -> str:
        """The error-rate page's short window: a minute, or two scrapes of the slowest-scraped service
        (a rate needs two samples). A 30s blip keeps it true for 30s plus this window, under the 2m `for`."""
        seconds = max(60, 2 * max(m.interval_seconds for m in self.monitors))
        return f"{int(seconds)}s" if seconds % 60 else f"{int(seconds // 60)}m"

    def runbook_url(self, alert: str) -> str:
        """The one place an alert's runbook link is made: `docs/runbooks/<alert>.md`."""
        return f"{self.runbook_base_url}{alert}.md"

    @property
    def error_budget(self) -> float:
        return round(1 - self.thresholds.slo_target, 10)


def rule_config(settings: Settings) -> RuleConfig:
    overrides = {o.alert: o for o in settings.alerting.alert_overrides}
    tuned = {TUNABLE_THRESHOLDS[name].field: int(o.threshold) if TUNABLE_THRESHOLDS[name].whole else o.threshold
             for name, o in overrides.items() if o.threshold is not None and name in TUNABLE_THRESHOLDS}
    return dataclasses.replace(_rule_config(settings), overrides=overrides, **tuned)


def _rule_config(settings: Settings) -> RuleConfig:
    return RuleConfig(
        thresholds=settings.alerting.thresholds,
        monitors=tuple(Monitor(str(s.namespace), str(s.name), s.sample_limit, s.interval.seconds)
                       for s in settings.metrics.scraped_services),
        failed_statuses=regex_alternation(settings.metrics.failure_statuses),
        team=settings.team_label,
        platform_team=settings.alerting.platform.team_label,
        runbook_base_url=str(settings.alerting.runbook_base_url).rstrip("/") + "/",
        monitoring_namespace=str(settings.namespace),
        agents_namespace=str(settings.agents_namespace),
        team_namespaces=tenant_namespaces(settings),
        probe_urls=tuple(str(p.url) for p in settings.metrics.probes),
        log_agent=settings.logging.agent,
        expected_series=settings.prometheus.expected_series,
        prometheus_job=f"{kube_prometheus_stack(settings)}-prometheus",
        kube_state_metrics_job=settings.metrics.kube_state_metrics_job,
        grafana_certificate=str(settings.grafana.tls_secret) if settings.grafana.cluster_issuer else "",
    )
