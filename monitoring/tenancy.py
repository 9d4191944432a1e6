"""How the stack shares its cluster (`tenancy.mode`, docs/tenancy.md): what it brings, what it leaves
to a platform's monitoring, and where the signals it does not make itself come from.

`own`: the stack is the cluster's monitoring. It runs the Prometheus Operator and its CRDs,
node-exporter (on the host network, port 9100: one per node in the whole cluster) and
kube-state-metrics, and its log agent reads every pod. Even then its Operator reconciles only its own
Prometheus and Alertmanager and its admission webhook judges only its own namespace.

`join`: the cluster's platform runs kube-prometheus-stack already. The stack brings no Operator, no
CRDs, no node-exporter and no kube-state-metrics: the platform's Operator serves its Prometheus and
Alertmanager, and its Prometheus scrapes the platform's kube-state-metrics and node-exporter across
namespaces, keeping the series of the team's namespaces (and the nodes'). The log agent reads the
team's namespaces only. Either way the series carry the jobs the charts' rules and the team's
workload alerts read: `metrics.kubeStateMetricsJob` and `node-exporter`.
"""

from __future__ import annotations

from typing import Any

from config.schema import NAMESPACE
from config.settings import Settings
from monitoring import PART_OF, versions
from monitoring.scrape import MONITORING_API, team_labels

# The job label of node-exporter's series, as kube-prometheus-stack's own monitor sets it: what the
# charts' rules and dashboards select, in either mode. (kube-state-metrics': `metrics.kubeStateMetricsJob`.)
NODE_EXPORTER_JOB = "node-exporter"


def owns_cluster(settings: Settings) -> bool:
    return settings.tenancy.mode == "own"


def tenant_namespaces(settings: Settings) -> tuple[str, ...]:
    """The team's namespaces: its services', the graphite exporter's service's and the stack's own."""
    names = {str(s.namespace) for s in settings.metrics.scraped_services}
    if settings.metrics.graphite_exporter.enabled:
        names.add(str(settings.metrics.graphite_exporter.namespace))
    names |= {str(settings.namespace), str(settings.agents_namespace)}
    return tuple(sorted(names))


def log_namespaces(settings: Settings) -> tuple[str, ...]:
    """Namespaces the log agent reads; empty: every pod of the cluster."""
    if settings.logging.namespaces:
        return tuple(sorted({str(n) for n in settings.logging.namespaces}))
    return () if owns_cluster(settings) else tenant_namespaces(settings)


def _platform_monitor(settings: Settings, name: str, app: str, endpoint: dict[str, Any], job: str) -> dict:
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": f"platform-{name}", "namespace": str(settings.namespace),
                     "labels": {**team_labels(settings), **PART_OF}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": app,
                                         "app.kubernetes.io/instance": str(settings.tenancy.platform_release)}},
            "namespaceSelector": {"matchNames": [str(settings.tenancy.platform_namespace)]},
            # The job the rules read, whatever labels the platform's Services carry.
            "endpoints": [{**endpoint, "relabelings": [{"action": "replace", "targetLabel": "job", "replacement": job}]}],
        },
    }


def platform_monitors(settings: Settings) -> list[dict]:
    """`join`: ServiceMonitors of the platform's kube-state-metrics and node-exporter, as the platform's
    chart scrapes them; of kube-state-metrics' series only the team's namespaces' (and those of no
    namespace: nodes, volumes) are kept, other teams' objects are not this stack's business.
    `own`: none (the stack's chart scrapes its own exporters)."""
    if owns_cluster(settings):
        return []
    # Namespace names have no regex metacharacter.
    keep = "|".join(tenant_namespaces(settings))
    return [
        _platform_monitor(settings, "kube-state-metrics", "kube-state-metrics", {
            "port": "http",
            # The object's namespace and pod labels are kube-state-metrics', not the target's.
            "honorLabels": True,
            "metricRelabelings": [{"action": "keep", "sourceLabels": ["namespace"], "regex": f"({keep})?"}],
        }, str(settings.metrics.kube_state_metrics_job)),
        _platform_monitor(settings, "node-exporter", "prometheus-node-exporter",
                          {"port": "http-metrics", "scheme": "http"}, NODE_EXPORTER_JOB),
    ]


# The custom resources the stack makes, by CRD name: the platform must serve each at v1.
STACK_CRDS = tuple(f"{plural}.monitoring.coreos.com" for plural in
                   ("prometheuses", "alertmanagers", "servicemonitors", "podmonitors", "probes", "prometheusrules"))
OPERATOR_VERSION_ANNOTATION = "operator.prometheus.io/version"


def operator_minor(version: str) -> tuple[int, ...]:
    """`0.93.1` (or `v0.93.1`) -> (0, 93); () when it is no version."""
    parts = version.lstrip("v").split(".")[:2]
    return tuple(int(p) for p in parts) if len(parts) == 2 and all(p.isdigit() for p in parts) else ()


def platform_crd_problems(crds: dict[str, dict[str, Any]]) -> list[str]:
    """What keeps the platform's Operator from serving the stack (`join`), one line each: a CRD the
    cluster does not have, one that does not serve v1, or one of an Operator older than the one whose
    CRDs the stack's objects are checked against (versions.PROMETHEUS_OPERATOR_MINOR). `crds` maps
    each of STACK_CRDS to the CRD object read from the cluster (an empty dict when absent)."""
    key = f"{NAMESPACE}:tenancy.mode"
    wanted = versions.PROMETHEUS_OPERATOR_MINOR
    problems = []
    for name in STACK_CRDS:
        crd = crds.get(name) or {}
        if not crd:
            problems.append(f"{key}: got 'join', but the cluster has no CRD {name}: no Prometheus Operator to join; "
                            "install the platform's, or set tenancy.mode to own")
            continue
        served = [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]
        if "v1" not in served:
            problems.append(f"{key}: got 'join', but CRD {name} serves {served}, expected v1")
        version = ((crd.get("metadata") or {}).get("annotations") or {}).get(OPERATOR_VERSION_ANNOTATION, "")
        if operator_minor(version) < wanted:
            problems.append(
                f"{key}: got 'join', but CRD {name} is of Prometheus Operator {version or 'unknown'}, expected "
                f"{'.'.join(map(str, wanted))} or later (the version the stack is tested with): upgrade the "
                "platform's Operator and CRDs")
    return problems
