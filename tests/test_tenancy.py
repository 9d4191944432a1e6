"""Tenancy: what the stack brings when it owns the cluster and when it joins a platform's monitoring,
the names it gives shared scopes, and the check that a joined platform can serve it
(monitoring/tenancy.py, config/naming.py). The stack beside a reference platform install, through
the charts, is tests/test_coexistence.py."""

from __future__ import annotations

import re

import pytest

from config import ConfigError, load, naming
from monitoring import tenancy, versions
from monitoring.helm.kube_prometheus_stack import cluster_values, prometheus_values
from monitoring.logging.alloy import alloy_config
from monitoring.logging.promtail import promtail_config
from monitoring.rules.config import rule_config
from tests.support import MINIMAL_CLUSTER, minimal_settings, raw_config, rendered_stack, run_stack, stack_settings
from testkit.k8s import label_selector_matches
from tools.rendered import RenderedStack

JOIN = {"tenancy": {"mode": "join", "naming": "derived"}}


def problems(stack: str, overrides: dict) -> list[str]:
    raw, keys = raw_config(stack, overrides)
    with pytest.raises(ConfigError) as caught:
        load(raw, keys, lambda name: "secret")
    return caught.value.problems


# ------------------------------------------------------------------------------ names


def test_a_new_stack_joins_and_derives_its_names_from_the_instance_and_the_cluster():
    s = minimal_settings("prod", tenancy={})
    assert (s.tenancy.mode, s.tenancy.naming) == ("join", "derived")
    assert naming.instance(s) == "webhook-delivery-prod"
    assert (s.namespace, s.agents_namespace, s.storage.class_name) == (
        "webhook-delivery-prod-monitoring", "webhook-delivery-prod-agents", "webhook-delivery-prod-gp3")
    assert s.alerting.pagerduty.service_name == "Webhook Delivery (webhook-test-use1, prod)"
    assert naming.kube_prometheus_stack(s) == "webhook-delivery-prod"
    assert naming.alloy_cluster_role(s) == "webhook-delivery-prod-alloy-pod-discovery"
    assert naming.bucket_prefix(s, "metrics") == "webhook-test-use1-prod-metrics-"
    assert naming.role_prefix(s, "logs") == "webhook-test-use1-prod-logs-"
    # A long cluster name is cut to what S3 and IAM take, the environment and kind kept.
    long = minimal_settings("prod", tenancy={},
                            cluster={**MINIMAL_CLUSTER, "name": "a-very-long-cluster-name-of-the-payments-platform"})
    prefix = naming.bucket_prefix(long, "metrics")
    assert len(prefix) <= naming.BUCKET_PREFIX_MAX and prefix.endswith("-prod-metrics-")
    assert len(naming.role_prefix(long, "metrics")) <= naming.ROLE_PREFIX_MAX


def test_the_deployed_stacks_keep_the_names_they_were_deployed_with():
    for stack in ("dev", "prod"):
        s = stack_settings(stack)
        assert (s.tenancy.mode, s.tenancy.naming) == ("own", "legacy")
        assert (s.namespace, s.agents_namespace, s.storage.class_name) == ("monitoring", "monitoring-agents", "gp3")
        assert s.alerting.pagerduty.service_name == "Webhook Delivery"
        assert naming.kube_prometheus_stack(s) == "kube-prometheus-stack"
        assert naming.alloy_cluster_role(s) == "logging-alloy-pod-discovery"
        assert naming.bucket_prefix(s, "metrics") is None and naming.role_prefix(s, "metrics") is None


def test_a_name_set_in_the_stack_file_wins_over_the_derived_one():
    s = minimal_settings(tenancy={}, namespace="observability", storage={"className": "fast"},
                         alerting={"pagerduty": {"serviceName": "Webhooks EU"}})
    assert (s.namespace, s.storage.class_name, s.alerting.pagerduty.service_name) == ("observability", "fast", "Webhooks EU")
    assert s.agents_namespace == "webhook-delivery-dev-agents"


def test_the_instance_is_the_team_and_the_stack_and_fits_where_kube_prometheus_stack_cuts_names():
    assert naming.derived_instance("webhook-delivery", "prod-euw1") == "webhook-delivery-prod-euw1"
    long = naming.derived_instance("Webhook_Delivery", "staging-euw1")
    assert len(long) == naming.INSTANCE_MAX and long.startswith("webhook-delivery-stag-") and long[-5] == "-"
    assert long != naming.derived_instance("Webhook_Delivery", "staging-euw2")
    assert stack_settings("prod", {"tenancy": {"naming": "derived"}}).tenancy.instance == "webhook-delivery-prod"
    found = problems("prod", {"tenancy": {"naming": "derived", "instance": "webhook-delivery-production-eu1"}})
    assert "webhook-monitoring:tenancy.instance: got 'webhook-delivery-production-eu1', expected a name of at most 26 " \
           "characters starting with a letter: kube-prometheus-stack cuts the names it derives from it there" in found


def test_availability_zones_must_be_three_of_the_clusters_region():
    found = problems("prod", {"cluster": {"availabilityZones": ["us-east-1a", "us-east-1a", "eu-west-1b"]}})
    assert "webhook-monitoring:cluster.availabilityZones: got ['us-east-1a', 'us-east-1a', 'eu-west-1b'], expected " \
           "three different availability zones (one per copy of every series in the long-term store)" in found
    assert "webhook-monitoring:cluster.availabilityZones[2]: got 'eu-west-1b', expected an availability zone of " \
           "cluster.region (us-east-1), such as us-east-1a" in found
    assert stack_settings("prod").cluster.availability_zones == ("us-east-1a", "us-east-1b", "us-east-1c")


# ------------------------------------------------------------------------------ own


def test_owning_the_cluster_the_operator_and_its_webhook_keep_to_the_stacks_namespace():
    s = minimal_settings("prod")
    operator = cluster_values(s)["prometheusOperator"]
    for kind in ("prometheus", "alertmanager", "thanosRuler"):
        assert operator[f"{kind}InstanceNamespaces"] == ["monitoring"]
        assert operator[f"{kind}InstanceSelector"] == "team=webhook-delivery"
    assert operator["alertmanagerConfigNamespaces"] == ["monitoring"]
    webhook = operator["admissionWebhooks"]["namespaceSelector"]
    assert label_selector_matches(webhook, {"kubernetes.io/metadata.name": "monitoring"})
    assert not label_selector_matches(webhook, {"kubernetes.io/metadata.name": "payments"})
    # The stack's Prometheus carries the label the Operator selects it by (the chart's commonLabels).
    assert prometheus_values(s, "gp3", {})["commonLabels"] == {"team": "webhook-delivery"}
    values = prometheus_values(s, "gp3", {})
    # The CRDs are the prometheus-operator-crds release's (tests/test_releases.py), never the chart's hook.
    assert values["crds"] == {"enabled": False} and "enabled" not in values["prometheusOperator"]
    assert values["prometheus-node-exporter"]["namespaceOverride"] == "monitoring-agents"


def test_owning_the_cluster_the_agent_reads_every_pod():
    s = minimal_settings()
    assert tenancy.log_namespaces(s) == ()
    assert "namespaces {" not in alloy_config(s, "http://loki/push")
    assert "namespaces" not in promtail_config(s, "http://loki/push")["scrape_configs"][0]["kubernetes_sd_configs"][0]


# ------------------------------------------------------------------------------ join


def test_joining_brings_no_operator_crds_or_exporters_and_leaves_the_clusters_alerts_to_the_platform():
    s = minimal_settings("prod", tenancy={"mode": "join", "naming": "legacy"})
    values = prometheus_values(s, "gp3", {})
    assert values["crds"] == {"enabled": False}
    assert values["prometheusOperator"] == {"enabled": False}
    for section in ("kubeStateMetrics", "nodeExporter", "kubeApiServer", "coreDns"):
        assert values[section] == {"enabled": False}, section
    # Subchart values of exporters that do not run would be keys no template reads.
    assert "kube-state-metrics" not in values and "prometheus-node-exporter" not in values
    rules = values["defaultRules"]["rules"]
    assert rules["kubeStateMetrics"] is False and rules["nodeExporterAlerting"] is False
    assert "prometheus" not in rules and "alertmanager" not in rules and "general" not in rules
    assert values["defaultRules"]["appNamespacesTarget"] == "monitoring|monitoring-agents|webhook-delivery"


def test_joining_the_platforms_exporters_are_scraped_for_the_teams_namespaces_with_the_charts_jobs():
    s = minimal_settings("prod", tenancy={"mode": "join", "naming": "legacy", "platformNamespace": "observability",
                                          "platformRelease": "platform"},
                         metrics={"services": [{"name": "api", "namespace": "payments-api",
                                                "selector": {"app": "api"}}]})
    ksm, node = tenancy.platform_monitors(s)
    for monitor, app in ((ksm, "kube-state-metrics"), (node, "prometheus-node-exporter")):
        assert monitor["metadata"]["namespace"] == "monitoring" and monitor["metadata"]["labels"]["team"] == "webhook-delivery"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["observability"]}
        assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": app,
                                                              "app.kubernetes.io/instance": "platform"}
    # The jobs the charts' rules and the workload alerts select, as the platform's own monitors set them.
    for monitor, job in ((ksm, "kube-state-metrics"), (node, "node-exporter")):
        (relabel,) = monitor["spec"]["endpoints"][0]["relabelings"]
        assert relabel == {"action": "replace", "targetLabel": "job", "replacement": job}
    (keep,) = ksm["spec"]["endpoints"][0]["metricRelabelings"]
    assert keep["action"] == "keep" and keep["sourceLabels"] == ["namespace"]
    pattern = re.compile(keep["regex"])  # Prometheus anchors relabel regexes
    assert all(pattern.fullmatch(ns) for ns in ("payments-api", "monitoring", "monitoring-agents", ""))
    assert not any(pattern.fullmatch(ns) for ns in ("kube-system", "payments", "payments-api-canary"))
    assert tenancy.platform_monitors(minimal_settings("prod")) == []


def test_the_workload_rules_watch_the_namespaces_the_platforms_exporter_is_kept_for():
    """One list of the team's namespaces: an additional service's and the graphite exporter's count
    for the kube-state-metrics series kept in join mode and for the workload alerts that read them."""
    s = minimal_settings("prod", tenancy={"mode": "join"},
                         metrics={"services": [{"name": "api", "namespace": "payments-api", "selector": {"app": "api"}}],
                                  "additionalServices": [{"name": "dispatch", "namespace": "dispatch",
                                                          "selector": {"app": "dispatch"}}],
                                  "graphiteExporter": {"enabled": True, "namespace": "legacy-graphite"}})
    expected = tuple(sorted(("dispatch", "legacy-graphite", "payments-api", str(s.namespace), str(s.agents_namespace))))
    assert tenancy.tenant_namespaces(s) == expected
    assert rule_config(s).team_namespaces == expected
    ksm, _ = tenancy.platform_monitors(s)
    (keep,) = ksm["spec"]["endpoints"][0]["metricRelabelings"]
    assert all(re.fullmatch(keep["regex"], ns) for ns in expected)


def test_joining_the_agent_reads_the_teams_namespaces_or_those_configured():
    s = minimal_settings(tenancy={"mode": "join", "naming": "legacy"})
    assert tenancy.log_namespaces(s) == ("monitoring", "monitoring-agents", "webhook-delivery")
    assert 'namespaces {\n    names = ["monitoring", "monitoring-agents", "webhook-delivery"]\n  }' in alloy_config(s, "http://l")
    sd = promtail_config(s, "http://l")["scrape_configs"][0]["kubernetes_sd_configs"][0]
    assert sd == {"role": "pod", "namespaces": {"names": ["monitoring", "monitoring-agents", "webhook-delivery"]}}
    chosen = minimal_settings(tenancy={"mode": "join", "naming": "legacy"}, logging={"namespaces": ["webhook-delivery"]})
    assert tenancy.log_namespaces(chosen) == ("webhook-delivery",)


@pytest.fixture(scope="module")
def joined() -> RenderedStack:
    run = run_stack("prod", JOIN)
    assert run.error is None, run.error
    return RenderedStack.from_run("prod", run)


def test_joining_the_program_reads_the_platforms_crds_and_registers_namespaced_discovery(joined):
    reads = sorted(r["name"] for r in joined.of_type("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"))
    assert reads == sorted(f"metrics-platform-crd-{crd.split('.')[0]}" for crd in tenancy.STACK_CRDS)
    monitors = [m["metadata"]["name"] for m in joined.manifests("ServiceMonitor")]
    assert {"platform-kube-state-metrics", "platform-node-exporter"} <= set(monitors)
    assert not joined.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in joined.inputs("kubernetes:rbac.authorization.k8s.io/v1:Role")
             if r["metadata"]["name"].endswith("alloy-pod-discovery")}
    assert roles == {(ns, "webhook-delivery-prod-alloy-pod-discovery") for ns in
                     ("webhook-delivery", "webhook-delivery-prod-monitoring", "webhook-delivery-prod-agents")}
    assert joined.kube_prometheus_stack.name == "webhook-delivery-prod"
    # No CRDs of its own: the platform's, never installed or changed (its own release installs them in own mode).
    assert "prometheus-operator-crds" not in joined.releases and "prometheus-operator-crds" in rendered_stack("prod").releases
    assert joined.kube_prometheus_stack.namespace == "webhook-delivery-prod-monitoring"


def test_the_platforms_operator_must_serve_every_kind_at_v1_and_be_as_recent_as_the_tested_one():
    def crd(version: str, served=("v1",)) -> dict:
        return {"metadata": {"annotations": {tenancy.OPERATOR_VERSION_ANNOTATION: version}},
                "spec": {"versions": [{"name": v, "served": True} for v in served]}}
    current = ".".join(map(str, versions.PROMETHEUS_OPERATOR_MINOR)) + ".4"
    assert tenancy.platform_crd_problems({name: crd(current) for name in tenancy.STACK_CRDS}) == []
    assert tenancy.platform_crd_problems({name: crd("v1.2.0") for name in tenancy.STACK_CRDS}) == []
    found = tenancy.platform_crd_problems({**{name: crd(current) for name in tenancy.STACK_CRDS},
                                           "probes.monitoring.coreos.com": {},
                                           "prometheuses.monitoring.coreos.com": crd("0.71.2"),
                                           "prometheusrules.monitoring.coreos.com": crd(current, served=("v1beta1",))})
    assert found == [
        "webhook-monitoring:tenancy.mode: got 'join', but CRD prometheuses.monitoring.coreos.com is of Prometheus "
        "Operator 0.71.2, expected 0.93 or later (the version the stack is tested with): upgrade the platform's "
        "Operator and CRDs",
        "webhook-monitoring:tenancy.mode: got 'join', but the cluster has no CRD probes.monitoring.coreos.com: no "
        "Prometheus Operator to join; install the platform's, or set tenancy.mode to own",
        "webhook-monitoring:tenancy.mode: got 'join', but CRD prometheusrules.monitoring.coreos.com serves "
        "['v1beta1'], expected v1",
    ]


def test_grafanas_host_is_given_or_derived_from_a_domain_never_both():
    derived = stack_settings("prod", {"tenancy": {"naming": "derived"},
                                      "grafana": {"host": None, "domain": "grafana.example.com"}})
    assert derived.grafana.host == "webhook-delivery-prod.grafana.example.com"
    both = problems("prod", {"grafana": {"domain": "grafana.example.com"}})
    assert "webhook-monitoring:grafana.domain: got 'grafana.example.com', expected no domain when grafana.host is " \
           "set (the host is derived from it otherwise)" in both
    neither = problems("prod", {"grafana": {"host": None}})
    assert "webhook-monitoring:grafana.host: missing, expected a host name, or grafana.domain to derive one from" in neither
