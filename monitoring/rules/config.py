"""The one config the rules and the dashboards read (kubernetes-mixin style): selectors, thresholds
and the few fixed choices, built once from the settings by `rule_config`."""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from config.naming import kube_prometheus_stack
from config.settings import AlertThresholds

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


@dataclass(frozen=True)
class RuleConfig:
    """Everything the rules take from settings (and the few fixed choices), in one place."""

    thresholds: AlertThresholds
    """`alerting.thresholds`: the alerts' thresholds and `for` durations, as configured."""
    monitors: tuple[Monitor, ...]
    failed_statuses: str
    """RE2 alternation of the `status` values that count as failed deliveries."""
    team: str
    runbook_base_url: str
    monitoring_namespace: str
    """Namespace of the monitoring stack (Prometheus' own targets)."""
    agents_namespace: str
    """Namespace of the agents on every node."""
    probe_urls: tuple[str, ...]
    log_agent: str
    expected_series: int
    """Head series each Prometheus replica is sized for (prometheus.expectedSeries)."""
    prometheus_job: str
    """Prometheus' own scrape job: the chart's Service `<fullname>-prometheus`, which its ServiceMonitor names."""
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

    @property
    def service_namespaces(self) -> tuple[str, ...]:
        """Namespaces of the scraped webhook delivery services (WebhookTargetDown), each once."""
        return tuple(sorted({m.namespace for m in self.monitors}))

    def runbook_url(self, alert: str) -> str:
        """The one place an alert's runbook link is made: `docs/runbooks/<alert>.md`."""
        return f"{self.runbook_base_url}{alert}.md"

    @property
    def error_budget(self) -> float:
        return round(1 - self.thresholds.slo_target, 10)


def rule_config(settings: Settings) -> RuleConfig:
    return RuleConfig(
        thresholds=settings.alerting.thresholds,
        monitors=tuple(Monitor(str(s.namespace), str(s.name), s.sample_limit) for s in settings.metrics.services),
        failed_statuses=regex_alternation(settings.metrics.failure_statuses),
        team=settings.team_label,
        runbook_base_url=str(settings.alerting.runbook_base_url).rstrip("/") + "/",
        monitoring_namespace=str(settings.namespace),
        agents_namespace=str(settings.agents_namespace),
        probe_urls=tuple(str(p.url) for p in settings.metrics.probes),
        log_agent=settings.logging.agent,
        expected_series=settings.prometheus.expected_series,
        prometheus_job=f"{kube_prometheus_stack(settings)}-prometheus",
    )
