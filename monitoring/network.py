"""Network policies of the stack's namespaces: deny every ingress, then allow exactly what is needed.

One policy per flow, named after it, in the two namespaces the program owns (the main one and the
agents'). Ingress only: what a pod may reach is its own business; who may reach a pod is ours (no
pod in the cluster can silence an alert, read the logs or push fake metrics and logs). The charts'
own networkPolicy switches are left off: each expresses its chart's idea of the flows (Loki's
limits egress to storage by CIDR lists, kube-prometheus-stack's Alertmanager policy allows gossip
over TCP only), and one set in one module is what tests/test_network_policies.py evaluates.

Traffic from a pod's own node (the kubelet's probes) is not subject to network policies; pods on
the host network (node-exporter) are not selected by them. EKS enforces network policies only with
the VPC CNI's network policy support enabled (README, prerequisites).
"""

from __future__ import annotations

from typing import Any, Optional

from config.settings import Settings
from monitoring import ha_tracker, web_auth
from monitoring.grafana import FOLDER_JOB_LABELS
from monitoring.graphite import GRAPHITE_PORT
from monitoring.graphite import NAME as GRAPHITE_EXPORTER
from monitoring import PART_OF

# Pod labels of the stack's components, as the charts and the Operator set them.
PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
ALERTMANAGER = {"app.kubernetes.io/name": "alertmanager"}
GRAFANA = {"app.kubernetes.io/name": "grafana"}
OPERATOR = {"app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator"}
LOKI = {"app.kubernetes.io/name": "loki"}
LOKI_GATEWAY = {**LOKI, "app.kubernetes.io/component": "gateway"}
MIMIR = {"app.kubernetes.io/name": "mimir"}
MIMIR_GATEWAY = {**MIMIR, "app.kubernetes.io/component": "gateway"}
MIMIR_DISTRIBUTOR = {**MIMIR, "app.kubernetes.io/component": "distributor"}
HA_TRACKER_STORE = {"app.kubernetes.io/name": ha_tracker.NAME}
ROLLOUT_OPERATOR = {"app.kubernetes.io/name": "rollout-operator"}
# cert-manager v1.21's HTTP-01 solver pod (pkg/issuer/acme/http/pod.go): started in the namespace of
# the Certificate (Grafana's, through the ingress annotation) and reached by the ACME server, and by
# cert-manager's own self-check, through the ingress controller on port 8089
# (pkg/issuer/acme/http/http.go acmeSolverListenPort).
ACME_HTTP01_SOLVER = {"acme.cert-manager.io/http01-solver": "true"}
ACME_HTTP01_SOLVER_PORT = 8089
LOG_AGENTS = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["alloy", "promtail"]}]}
# Where Loki's ruler runs: the single binary (Monolithic) or the backend (SimpleScalable).
LOKI_RULER = {"matchLabels": LOKI, "matchExpressions": [
    {"key": "app.kubernetes.io/component", "operator": "In", "values": ["single-binary", "backend"]}]}

GRAFANA_PORT = 3000
LOKI_GATEWAY_PORT = 8080
MIMIR_GATEWAY_PORT = 8080
ALERTMANAGER_GOSSIP_PORT = 9094
OPERATOR_WEBHOOK_PORT = 10250
ROLLOUT_OPERATOR_WEBHOOK_PORT = 8443

NAMESPACE_NAME = "kubernetes.io/metadata.name"


def _namespace(name: str) -> dict:
    return {"matchLabels": {NAMESPACE_NAME: name}}


def _pods(labels: dict) -> dict:
    return {"podSelector": labels if "matchLabels" in labels or "matchExpressions" in labels else {"matchLabels": labels}}


def _ports(*ports: int, protocols: tuple[str, ...] = ("TCP",)) -> list[dict]:
    return [{"port": port, "protocol": protocol} for port in ports for protocol in protocols]


def _policy(name: str, namespace: str, selected: Optional[dict], sources: list[dict],
            ports: Optional[list[dict]] = None) -> dict:
    """A NetworkPolicy letting `sources` reach the `selected` pods (all of the namespace's when
    None) on `ports` (all when None); without sources it lets nothing in."""
    rule: dict[str, Any] = {"from": sources}
    if ports:
        rule["ports"] = ports
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
        "spec": {
            "podSelector": {} if selected is None else _pods(selected)["podSelector"],
            "policyTypes": ["Ingress"],
            "ingress": [rule] if sources else [],
        },
    }


def network_policies(settings: Settings) -> list[dict]:
    """Every NetworkPolicy of the stack, in the main and the agents' namespace."""
    main, agents = str(settings.namespace), str(settings.agents_namespace)
    net = settings.network_policy
    prometheus, grafana = _pods(PROMETHEUS), _pods(GRAFANA)
    api_server = [{"ipBlock": {"cidr": cidr}} for cidr in net.api_server_cidrs]
    policies = [
        _policy("default-deny-ingress", main, None, []),
        # Scrapes: Prometheus reads the metrics of every pod of the namespace.
        _policy("scrapes-from-prometheus", main, None, [prometheus]),
        _policy("grafana-from-the-ingress-controller", main, GRAFANA,
                [{"namespaceSelector": _namespace(net.ingress_controller_namespace)}], _ports(GRAFANA_PORT)),
        # Without it the certificate never issues or renews where the issuer uses HTTP-01.
        *([_policy("acme-http01-solver-from-the-ingress-controller", main, ACME_HTTP01_SOLVER,
                   [{"namespaceSelector": _namespace(net.ingress_controller_namespace)}],
                   _ports(ACME_HTTP01_SOLVER_PORT))] if settings.grafana.cluster_issuer else []),
        # The Job that sets the folders' permissions through Grafana's API (components/grafana_dashboards.py).
        _policy("grafana-from-its-folder-job", main, GRAFANA, [_pods(FOLDER_JOB_LABELS)], _ports(GRAFANA_PORT)),
        # Other clusters federate straight to the pods (their addresses kept), or through the ingress
        # controller (the source the pods see), which serves /federate alone (metrics.federationEndpoint).
        _policy("prometheus-from-its-clients", main, PROMETHEUS,
                [grafana, *({"ipBlock": {"cidr": cidr}} for cidr in net.federation_client_cidrs),
                 *([{"namespaceSelector": _namespace(net.ingress_controller_namespace)}]
                   if settings.metrics.federation_endpoint else [])],
                _ports(web_auth.PROMETHEUS.proxy_port)),
        _policy("alertmanager-from-its-clients", main, ALERTMANAGER, [prometheus, grafana, _pods(LOKI_RULER)],
                _ports(web_auth.ALERTMANAGER.proxy_port)),
        _policy("alertmanager-peers", main, ALERTMANAGER, [_pods(ALERTMANAGER)],
                _ports(ALERTMANAGER_GOSSIP_PORT, protocols=("TCP", "UDP"))),
        _policy("mimir-gateway-from-its-clients", main, MIMIR_GATEWAY, [prometheus, grafana], _ports(MIMIR_GATEWAY_PORT)),
        _policy("mimir-internal", main, MIMIR, [_pods(MIMIR)]),
        *([_policy("ha-tracker-store-from-mimir-distributors", main, HA_TRACKER_STORE, [_pods(MIMIR_DISTRIBUTOR)],
                   _ports(ha_tracker.CLIENT_PORT))] if ha_tracker.enabled(settings) else []),
        _policy("loki-gateway-from-its-clients", main, LOKI_GATEWAY,
                [grafana, {"namespaceSelector": _namespace(agents), **_pods(LOG_AGENTS)}], _ports(LOKI_GATEWAY_PORT)),
        _policy("loki-internal", main, LOKI, [_pods(LOKI)]),
        _policy("operator-webhook-from-the-api-server", main, OPERATOR, api_server, _ports(OPERATOR_WEBHOOK_PORT)),
        _policy("rollout-operator-webhook-from-the-api-server", main, ROLLOUT_OPERATOR, api_server,
                _ports(ROLLOUT_OPERATOR_WEBHOOK_PORT)),
        _policy("default-deny-ingress", agents, None, []),
        _policy("scrapes-from-prometheus", agents, None, [{"namespaceSelector": _namespace(main), **prometheus}]),
    ]
    exporter = settings.metrics.graphite_exporter
    if exporter.enabled:
        policies.append(_policy(
            "graphite-exporter-from-its-service", main, {"app.kubernetes.io/name": GRAPHITE_EXPORTER},
            [{"namespaceSelector": _namespace(str(exporter.namespace))}], _ports(GRAPHITE_PORT, protocols=("TCP", "UDP"))))
    return policies
