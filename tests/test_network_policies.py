"""Network policies: a matrix of flows that must pass and flows that must be refused, evaluated on
the NetworkPolicy objects the program registers (Kubernetes semantics, testkit/k8s.py), and the pods
of the matrix checked against the pods the charts really make when the chart check runs."""

from __future__ import annotations

import pytest

from monitoring import network
from monitoring.web_auth import ALERTMANAGER, PROMETHEUS
from tests.support import minimal_settings, rendered_stack
from tools.templating import template_stack
from testkit.k8s import Peer, flow_allowed

MAIN, AGENTS = "monitoring", "monitoring-agents"
FEDERATION_CIDR = "10.20.0.0/16"


def pod(name: str, namespace: str, labels: dict, **kwargs) -> Peer:
    return Peer(name, namespace, labels, **kwargs)


LOKI = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki"}
MIMIR = {"app.kubernetes.io/name": "mimir", "app.kubernetes.io/instance": "mimir-distributed"}
PEERS = {p.name: p for p in (
    # The Operator's pods: it labels them with the resource's kind and name.
    pod("prometheus", MAIN, {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"}),
    pod("alertmanager", MAIN, {"app.kubernetes.io/name": "alertmanager", "alertmanager": "kube-prometheus-stack-alertmanager"}),
    # The charts' pods (checked against the chart output in test_the_matrix_pods_are_the_charts_pods).
    pod("grafana", MAIN, {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"}),
    pod("kube-state-metrics", MAIN, {"app.kubernetes.io/name": "kube-state-metrics"}),
    pod("operator", MAIN, {"app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator"}),
    pod("loki-gateway", MAIN, {**LOKI, "app.kubernetes.io/component": "gateway"}),
    pod("loki-backend", MAIN, {**LOKI, "app.kubernetes.io/component": "backend"}),
    pod("loki-single-binary", MAIN, {**LOKI, "app.kubernetes.io/component": "single-binary"}),
    pod("loki-write", MAIN, {**LOKI, "app.kubernetes.io/component": "write"}),
    pod("loki-read", MAIN, {**LOKI, "app.kubernetes.io/component": "read"}),
    pod("loki-canary", MAIN, {**LOKI, "app.kubernetes.io/component": "canary"}),
    pod("mimir-gateway", MAIN, {**MIMIR, "app.kubernetes.io/component": "gateway"}),
    pod("mimir-distributor", MAIN, {**MIMIR, "app.kubernetes.io/component": "distributor"}),
    pod("mimir-ingester", MAIN, {**MIMIR, "app.kubernetes.io/component": "ingester"}),
    pod("blackbox-exporter", MAIN, {"app.kubernetes.io/name": "prometheus-blackbox-exporter"}),
    pod("graphite-exporter", MAIN, {"app.kubernetes.io/name": "graphite-exporter"}),
    pod("ha-tracker-etcd", MAIN, {"app.kubernetes.io/name": "mimir-ha-tracker-etcd"}),
    # cert-manager's HTTP-01 solver for Grafana's certificate (labels of cert-manager v1.21's pod.go).
    pod("acme-solver", MAIN, {"acme.cert-manager.io/http01-solver": "true", "acme.cert-manager.io/http-domain": "1234",
                              "acme.cert-manager.io/http-token": "5678"}),
    # The program's Job that sets Grafana's folder permissions.
    pod("grafana-folders", MAIN, {"app.kubernetes.io/name": "grafana-folders", "team": "webhook-delivery"}),
    pod("alloy", AGENTS, {"app.kubernetes.io/name": "alloy"}),
    pod("node-exporter", AGENTS, {"app.kubernetes.io/name": "prometheus-node-exporter"}, host_network=True),
    # Outside the stack.
    pod("ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    pod("webhook-api", "webhook-delivery", {"app.kubernetes.io/name": "webhook-api"}),
    pod("stranger", "default", {"app": "anything"}),
    Peer("api-server", ip="10.0.12.34"),
    Peer("other-cluster", ip="10.20.5.6"),
    Peer("internet", ip="203.0.113.9"),
)}

PROM, AM = PROMETHEUS.proxy_port, ALERTMANAGER.proxy_port
GOSSIP, LOKI_GW, MIMIR_GW = network.ALERTMANAGER_GOSSIP_PORT, network.LOKI_GATEWAY_PORT, network.MIMIR_GATEWAY_PORT

# (source, destination, port, protocol): every flow the stack needs.
MUST_PASS = [
    ("grafana", "prometheus", PROM, "TCP"), ("grafana", "alertmanager", AM, "TCP"),
    ("grafana", "loki-gateway", LOKI_GW, "TCP"), ("grafana", "mimir-gateway", MIMIR_GW, "TCP"),
    ("ingress-controller", "grafana", network.GRAFANA_PORT, "TCP"),
    # The ACME server's challenge, and cert-manager's self-check, come through the ingress controller.
    ("ingress-controller", "acme-solver", network.ACME_HTTP01_SOLVER_PORT, "TCP"),
    ("grafana-folders", "grafana", network.GRAFANA_PORT, "TCP"),
    ("prometheus", "alertmanager", AM, "TCP"), ("prometheus", "mimir-gateway", MIMIR_GW, "TCP"),
    # Scrapes, of every kind of target, in both namespaces (itself through its proxy).
    ("prometheus", "prometheus", PROM, "TCP"), ("prometheus", "kube-state-metrics", 8080, "TCP"),
    ("prometheus", "grafana", network.GRAFANA_PORT, "TCP"), ("prometheus", "loki-write", 3100, "TCP"),
    ("prometheus", "mimir-ingester", 8080, "TCP"), ("prometheus", "blackbox-exporter", 9115, "TCP"),
    ("prometheus", "operator", 10250, "TCP"), ("prometheus", "alloy", 12345, "TCP"),
    ("prometheus", "node-exporter", 9100, "TCP"),
    ("alloy", "loki-gateway", LOKI_GW, "TCP"),
    ("loki-backend", "alertmanager", AM, "TCP"), ("loki-single-binary", "alertmanager", AM, "TCP"),
    ("loki-canary", "loki-gateway", LOKI_GW, "TCP"), ("loki-read", "loki-write", 9095, "TCP"),
    ("loki-write", "loki-backend", 7946, "TCP"), ("loki-gateway", "loki-read", 3100, "TCP"),
    ("alertmanager", "alertmanager", GOSSIP, "TCP"), ("alertmanager", "alertmanager", GOSSIP, "UDP"),
    ("mimir-gateway", "mimir-distributor", 8080, "TCP"), ("mimir-distributor", "mimir-ingester", 9095, "TCP"),
    ("api-server", "operator", network.OPERATOR_WEBHOOK_PORT, "TCP"),
]
# Flows that must be refused: anyone else silencing alerts, reading or pushing logs and metrics.
MUST_REFUSE = [
    ("webhook-api", "alertmanager", AM, "TCP"), ("webhook-api", "prometheus", PROM, "TCP"),
    ("webhook-api", "loki-gateway", LOKI_GW, "TCP"), ("webhook-api", "mimir-gateway", MIMIR_GW, "TCP"),
    ("webhook-api", "grafana", network.GRAFANA_PORT, "TCP"), ("webhook-api", "loki-write", 3100, "TCP"),
    ("stranger", "alertmanager", AM, "TCP"), ("stranger", "loki-gateway", LOKI_GW, "TCP"),
    ("stranger", "alloy", 12345, "TCP"),
    ("ingress-controller", "prometheus", PROM, "TCP"), ("ingress-controller", "alertmanager", AM, "TCP"),
    ("alloy", "alertmanager", AM, "TCP"), ("alloy", "prometheus", PROM, "TCP"), ("alloy", "loki-write", 3100, "TCP"),
    # Inside the namespace too, only the clients: no pod of the stack silences alerts because it is there.
    ("kube-state-metrics", "alertmanager", AM, "TCP"), ("loki-write", "alertmanager", AM, "TCP"),
    ("loki-canary", "alertmanager", AM, "TCP"), ("grafana", "loki-write", 3100, "TCP"),
    ("grafana", "mimir-ingester", 9095, "TCP"), ("loki-backend", "prometheus", PROM, "TCP"),
    ("grafana", "alertmanager", GOSSIP, "TCP"), ("kube-state-metrics", "mimir-gateway", MIMIR_GW, "TCP"),
    ("internet", "prometheus", PROM, "TCP"), ("other-cluster", "prometheus", PROM, "TCP"),
    ("internet", "grafana", network.GRAFANA_PORT, "TCP"), ("stranger", "graphite-exporter", 9109, "TCP"),
    ("webhook-api", "acme-solver", network.ACME_HTTP01_SOLVER_PORT, "TCP"),
    ("ingress-controller", "acme-solver", 80, "TCP"),
    # The folder Job reaches Grafana and nothing else.
    ("grafana-folders", "prometheus", PROM, "TCP"), ("grafana-folders", "alertmanager", AM, "TCP"),
    ("grafana-folders", "loki-gateway", LOKI_GW, "TCP"),
]


def policies_of(stack: str, overrides: dict | None = None) -> list[dict]:
    return rendered_stack(stack, overrides).manifests("NetworkPolicy")


def allowed(policies, source: str, destination: str, port: int, protocol: str) -> bool:
    return flow_allowed(policies, PEERS[source], PEERS[destination], port, protocol)


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("flow", MUST_PASS, ids=lambda f: f"{f[0]}->{f[1]}:{f[2]}/{f[3]}")
def test_every_flow_the_stack_needs_passes(stack, flow):
    assert allowed(policies_of(stack), *flow)


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("flow", MUST_REFUSE, ids=lambda f: f"{f[0]}->{f[1]}:{f[2]}/{f[3]}")
def test_every_other_flow_is_refused(stack, flow):
    assert not allowed(policies_of(stack), *flow)


def test_without_the_policies_every_refused_flow_would_pass():
    """The refusals come from the policies, not from the evaluator: with none, all flows pass."""
    assert all(allowed([], *flow) for flow in MUST_REFUSE)
    deny_only = [p for p in policies_of("prod") if p["metadata"]["name"] == "default-deny-ingress"]
    assert not any(allowed(deny_only, *flow) for flow in MUST_PASS if not PEERS[flow[1]].host_network)


def test_graphite_metrics_are_accepted_from_the_service_namespace_when_the_exporter_runs():
    dev = policies_of("dev")  # the exporter runs in dev
    assert allowed(dev, "webhook-api", "graphite-exporter", 9109, "UDP")
    assert allowed(dev, "webhook-api", "graphite-exporter", 9109, "TCP")
    assert not allowed(dev, "stranger", "graphite-exporter", 9109, "UDP")
    assert not [p for p in policies_of("prod") if p["metadata"]["name"] == "graphite-exporter-from-its-service"]


def test_only_mimirs_distributors_reach_the_ha_trackers_store_where_it_runs():
    prod = policies_of("prod")  # two Prometheus replicas: the tracker and its etcd run
    assert allowed(prod, "mimir-distributor", "ha-tracker-etcd", 2379, "TCP")
    assert allowed(prod, "prometheus", "ha-tracker-etcd", 2381, "TCP")  # its metrics
    # (Prometheus reaches every pod of the namespace, as it scrapes them all.)
    for source in ("mimir-ingester", "mimir-gateway", "grafana", "webhook-api", "stranger"):
        assert not allowed(prod, source, "ha-tracker-etcd", 2379, "TCP"), source
    assert not [p for p in policies_of("dev") if p["metadata"]["name"] == "ha-tracker-store-from-mimir-distributors"]


def test_the_http01_solver_is_admitted_only_where_cert_manager_issues_the_certificate():
    """With `grafana.clusterIssuer` null the Secret comes from elsewhere: no solver runs, no door for one."""
    assert allowed(policies_of("prod"), "ingress-controller", "acme-solver", network.ACME_HTTP01_SOLVER_PORT, "TCP")
    policies = network.network_policies(minimal_settings("prod", grafana={"clusterIssuer": None}))
    assert not allowed(policies, "ingress-controller", "acme-solver", network.ACME_HTTP01_SOLVER_PORT, "TCP")
    assert "acme-http01-solver-from-the-ingress-controller" not in [p["metadata"]["name"] for p in policies]


def test_federation_clients_reach_prometheus_only_from_their_configured_addresses():
    policies = policies_of("prod", {"networkPolicy": {"federationClientCidrs": [FEDERATION_CIDR]}})
    assert allowed(policies, "other-cluster", "prometheus", PROM, "TCP")
    assert not allowed(policies, "internet", "prometheus", PROM, "TCP")
    assert not allowed(policies, "other-cluster", "alertmanager", AM, "TCP")


def test_the_webhook_reaches_the_operator_only_from_the_configured_api_server_addresses():
    policies = policies_of("prod", {"networkPolicy": {"apiServerCidrs": ["10.0.0.0/16"]}})
    assert allowed(policies, "api-server", "operator", network.OPERATOR_WEBHOOK_PORT, "TCP")
    assert not allowed(policies, "internet", "operator", network.OPERATOR_WEBHOOK_PORT, "TCP")


def test_each_namespace_denies_by_default_and_every_policy_is_named_after_its_flow():
    policies = policies_of("prod")
    for namespace in (MAIN, AGENTS):
        (deny,) = [p for p in policies if p["metadata"]["namespace"] == namespace
                   and p["metadata"]["name"] == "default-deny-ingress"]
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}
    names = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies]
    assert len(names) == len(set(names))


@pytest.mark.charts
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_matrix_pods_are_the_charts_pods_and_no_chart_brings_policies(stack):
    """The labels the matrix gives the charts' pods are theirs in the chart output, so the
    evaluation speaks of the real pods; and the charts add no NetworkPolicy of their own."""
    output = template_stack(stack)
    if output.unavailable():
        pytest.skip(output.unavailable())
    templated = list(output.releases.values())
    assert output.objects(kind="NetworkPolicy") == [p for p in output.program if p["kind"] == "NetworkPolicy"]
    pods = [(o["metadata"].get("namespace") or r.namespace, o["spec"]["template"]["metadata"].get("labels") or {})
            for r in templated for o in r.objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]
    pods += [(o["metadata"]["namespace"], o["spec"]["template"]["metadata"]["labels"])
             for o in output.program if o["kind"] in ("Deployment", "Job")]
    charted = {"grafana", "kube-state-metrics", "operator", "loki-gateway", "loki-backend", "loki-single-binary",
               "loki-write", "loki-read", "loki-canary", "blackbox-exporter", "graphite-exporter", "alloy", "node-exporter",
               "grafana-folders"}
    found = {name for name in charted for namespace, labels in pods
             if PEERS[name].namespace == namespace and PEERS[name].labels.items() <= labels.items()}
    expected = {"grafana", "kube-state-metrics", "operator", "loki-gateway", "alloy", "node-exporter", "grafana-folders"}
    expected |= ({"loki-single-binary", "graphite-exporter"} if stack == "dev" else
                 {"loki-backend", "loki-write", "loki-read", "loki-canary", "blackbox-exporter"})
    assert found == expected
