"""What a render deploys, in words a person reads before `pulumi up`: the summary `make render` ends with.

Read from the render itself where it says it (the ServiceMonitors and Probes registered, the Prometheus and
Alertmanager the chart is given, the Alertmanager routing walked for each kind of alert, the releases and
their chart versions, the rules and dashboards), from the settings for what lives outside the cluster (the
stores' retention, the secrets to set), and the warnings of the settings and of the fleet.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Optional

import yaml

from config import Settings
from config.secrets import SECRET_KEYS
from monitoring.alertmanager import WATCHDOG
from monitoring.footprint import GIB, Footprint
from tools.rendered import RenderedStack
from tools.routing import receivers_for

# A name no alert has: the routing of an alert that no route names.
ANY_ALERT = "AnyOtherAlert"
SEVERITY_ORDER = ("critical", "warning", "info", "none")


def _table(rows: Iterable[Iterable[str]], indent: str = "  ") -> list[str]:
    rows = [list(r) for r in rows]
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    return [indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]


def _receiver_text(config: dict[str, Any], name: str) -> str:
    """A receiver and where it sends: `slack (Slack #webhook-alerts)`, `null (nowhere)`."""
    receiver = next((r for r in config.get("receivers") or [] if r.get("name") == name), {})
    where = [f"Slack {c.get('channel')}" for c in receiver.get("slack_configs") or []]
    where = ["PagerDuty" for _ in receiver.get("pagerduty_configs") or []] + where
    where += ["webhook" for _ in receiver.get("webhook_configs") or []]
    return f"{name} ({', '.join(where) or 'nowhere'})"


def routing_rows(settings: Settings, config: dict[str, Any], severities: dict[str, str]) -> list[tuple[str, str]]:
    """(kind of alert, where it goes) through the rendered routing: each severity of the team's alerts and of
    the platform's, Watchdog, and every alert a route of `alerting.routes` names (at its severity)."""
    route = config.get("route") or {}
    team, platform = settings.team_label, settings.alerting.platform.team_label

    def goes(labels: dict[str, str]) -> str:
        return ", then ".join(_receiver_text(config, r) for r in receivers_for(route, labels))

    rows = [(f"{severity} alerts of team {team}", goes({"alertname": ANY_ALERT, "team": team, "severity": severity}))
            for severity in ("critical", "warning", "info")]
    rows += [(f"{severity} alerts of the cluster and of team {platform}",
              goes({"alertname": ANY_ALERT, "team": platform, "severity": severity})) for severity in ("critical", "warning")]
    rows.append((f"{WATCHDOG} (the dead man's switch)", goes({"alertname": WATCHDOG, "team": team, "severity": "info"})))
    for r in settings.alerting.routes:
        for alert in r.alerts:
            # The charts' guarding alerts have their severities in the chart: the route takes them by name.
            severity = severities.get(alert, "")
            shown = severity or "the chart's severity"
            rows.append((f"{alert} ({shown})",
                         goes({"alertname": alert, "team": team, "severity": severity})))
    return rows


def requests_lines(stack: str, found: Optional[Footprint], missing: list[str]) -> list[str]:
    """The stack's requests of its cluster (`make footprint`'s, for these very releases), or why not known."""
    if found is None:
        return [f"Requests: not known for these values: `make footprint STACK={stack}` templates the charts "
                f"({', '.join(missing)} not templated with them yet)"]
    return [f"Requests (make footprint): {found.cpu:.2f} cores, {found.memory / GIB:.2f} GiB memory, "
            f"{found.storage / GIB:.0f} GiB of volumes; and on each node, its agents: {found.cpu_per_node:.2f} cores, "
            f"{found.memory_per_node / GIB:.2f} GiB"]


def summary(settings: Settings, rendered: RenderedStack, warnings: list[str],
            requests: tuple[Optional[Footprint], list[str]] = (None, [])) -> str:
    """The plain-text summary of what `rendered` deploys; `requests`: its footprint as far as known
    (tools/footprint.py `known_footprint`)."""
    c = settings.cluster
    where = f"infrastructure stack {c.infra_stack}" if c.infra_stack else f"kubeconfig context {c.kube_context or '(current)'}"
    lines = [f"Stack {rendered.stack}: environment {settings.environment}, cluster {c.name} in {c.region} "
             f"(Kubernetes through {where}); Grafana at https://{settings.grafana.host}"]

    lines.append("Scraped services (ServiceMonitors):")
    monitors = []
    for name, monitor in rendered.service_monitors.items():
        endpoint = monitor["spec"]["endpoints"][0]
        selector = ",".join(f"{k}={v}" for k, v in monitor["spec"]["selector"].get("matchLabels", {}).items())
        namespaces = ",".join(monitor["spec"].get("namespaceSelector", {}).get("matchNames", []))
        monitors.append((name, f"namespace {namespaces}", selector,
                         f"port {endpoint.get('port')} {endpoint.get('path', '/metrics')} every {endpoint.get('interval')}"))
    lines += _table(monitors) or ["  none"]
    probes = rendered.manifests("Probe")
    if probes:
        lines.append("Probes (blackbox exporter):")
        lines += _table((p["metadata"]["name"], ", ".join(p["spec"]["targets"]["staticConfig"]["static"]),
                         f"{p['spec'].get('module')} every {p['spec'].get('interval')}") for p in probes)
    if settings.metrics.federation:
        lines.append("Federated from:")
        lines += _table((str(f.cluster), str(f.url), f"basic auth from Secret {f.credentials_secret}"
                         if f.credentials_secret else "no auth") for f in settings.metrics.federation)

    lines.append("Retention and volumes:")
    prometheus, alertmanager = rendered.prometheus_spec, rendered.alertmanager_spec

    def volume(spec: dict[str, Any]) -> str:
        claim = (spec.get("volumeClaimTemplate") or {}).get("spec") or {}
        size = ((claim.get("resources") or {}).get("requests") or {}).get("storage", "?")
        profile = claim.get("volumeAttributesClassName")
        return f"{size} {claim.get('storageClassName', '')}" + (f" ({profile})" if profile else "")

    lines += _table([
        ("Prometheus", f"{prometheus.get('retention')} or {prometheus.get('retentionSize')}",
         f"{prometheus.get('replicas')} x {volume(prometheus.get('storageSpec') or {})}"),
        ("Alertmanager", str(alertmanager.get("retention")),
         f"{alertmanager.get('replicas')} x {volume(alertmanager.get('storage') or {})}"),
        ("Long-term store", f"{settings.long_term_storage.retention.text} (Mimir, S3)",
         f"bucket objects expire after {settings.long_term_storage.bucket_expiration.text}"),
        ("Logs", f"{settings.logging.retention.text} (Loki, S3)",
         f"bucket objects expire after {settings.logging.bucket_expiration.text}"),
    ])

    t = settings.alerting.thresholds
    lines.append(f"Thresholds (alerting.thresholds): errors {t.error_ratio * 100:g}% of deliveries for "
                 f"{t.error_ratio_for.text}, queue {t.queue_depth} for {t.queue_depth_for.text}, P95 latency "
                 f"{t.latency_p95:g}s for {t.latency_p95_for.text}, SLO {t.slo_target * 100:g}%")
    rules = [r for g in rendered.rule_groups for r in g["rules"] if "alert" in r]
    log_rules = [r for g in yaml.safe_load(rendered.logging.get("loki-rules.yaml") or "{}").get("groups", [])
                 for r in g["rules"] if "alert" in r]
    severities = {r["alert"]: r["labels"].get("severity", "") for r in rules + log_rules}
    by_severity = Counter(r["labels"].get("severity", "none") for r in rules)
    groups = sum(1 for g in rendered.rule_groups if any("alert" in r for r in g["rules"]))
    counts = ", ".join(f"{by_severity[s]} {s}" for s in sorted(by_severity, key=SEVERITY_ORDER.index))
    lines.append(f"Alert rules: {len(rules)} in {groups} groups ({counts})")
    overrides = settings.alerting.alert_overrides
    for o in overrides:
        changes = ["turned off"] if not o.enabled else [
            text for text in (o.severity and f"severity {o.severity}", o.for_ and f"for {o.for_.text}",
                              o.threshold is not None and f"threshold {o.threshold:g}") if text]
        lines.append(f"  {o.alert}: {', '.join(changes)} (alerting.alertOverrides)")

    lines.append("Where alerts go (the rendered Alertmanager routing):")
    lines += _table((kind, "-> " + goes) for kind, goes in routing_rows(settings, rendered.alertmanager, severities))

    required = [k.name for k in SECRET_KEYS if k.required(settings)]
    lines.append(f"Secrets to set (pulumi config set --secret <key>): {', '.join(required)}")
    lines += requests_lines(rendered.stack, *requests)
    lines.append("Charts: " + ", ".join(f"{r.chart} {r.version}" for r in rendered.releases.values()))
    if settings.helm_values:
        lines.append("Helm value overrides (helmValues, merged over the program's):")
        lines += [f"  {chart}: {path} = {value}" for chart, values in settings.helm_values.items()
                  for path, value in _leaves(values)]
    lines.append(f"Dashboards: {len(rendered.dashboards)} ({', '.join(rendered.dashboards)})")
    lines += [f"  {p.dashboard}: panel {p.title!r} of the stack's own (grafana.extraPanels)"
              for p in settings.grafana.extra_panels]
    if warnings:
        lines.append(f"Warnings ({len(warnings)}):")
        lines += [f"  {w}" for w in warnings]
    return "\n".join(lines)


def _leaves(value: Any, path: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(value, dict) and value:
        for key, inner in sorted(value.items()):
            yield from _leaves(inner, f"{path}.{key}" if path else str(key))
    else:
        yield path, repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
