"""The whole program under mocks: components connected through outputs, secrets kept secret."""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest
import yaml

from monitoring.dashboards import DATASOURCES, FOLDERS, dashboards
from monitoring.grafana import (
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    FOLDER_ANNOTATION,
    FOLDER_JOB_LABELS,
)
from monitoring.versions import GRAFANA_SIDECAR_IMAGE
from tests.support import ROOT, SECRET_VALUES, run_stack, stack_settings
from tools.mock_runtime import Registered, plain
from tools.stacks import stacks

STACKS = stacks()
RELEASE = "kubernetes:helm.sh/v3:Release"


def release_values(run, chart: str) -> dict:
    (release,) = [r for r in run.resources if r.type == RELEASE and r.inputs["chart"] == chart]
    return release.inputs["values"]


def one(run, typ: str, name: str | None = None):
    found = [r for r in run.resources if r.type == typ and (name is None or r.name == name)]
    assert len(found) == 1, (typ, name, [r.name for r in found])
    return found[0]


def strings(value, inside_secret=False):
    """Every string leaf, with whether it sits inside a secret."""
    if isinstance(value, dict) and set(value) == {"__secret__"}:
        yield from strings(value["__secret__"], True)
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v, inside_secret)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, inside_secret)
    elif isinstance(value, str):
        yield value, inside_secret


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_appears_outside_a_secret(stack):
    run = run_stack(stack)
    leaks = [
        (r.type, r.name)
        for r in run.resources
        for text, secret in strings(plain(r.inputs))
        if not secret and any(value in text for value in SECRET_VALUES.values())
    ]
    assert leaks == []
    # And the values really are used, inside secrets: the test would pass vacuously otherwise.
    used = {text for r in run.resources for text, secret in strings(plain(r.inputs)) if secret}
    assert any(SECRET_VALUES["slackWebhookUrl"] in text for text in used)


@pytest.mark.parametrize("stack", STACKS)
def test_helm_values_hold_no_secret_at_all(stack):
    run = run_stack(stack)
    for release in [r for r in run.resources if r.type == RELEASE]:
        values = plain(release.inputs["values"])
        assert not [t for t, secret in strings(values) if secret], release.name
        text = json.dumps(values)
        assert not any(v in text for v in SECRET_VALUES.values()), release.name


def test_alertmanager_secret_carries_the_pagerduty_integration_key_output():
    run = run_stack("prod")
    integration = one(run, "pagerduty:index/serviceIntegration:ServiceIntegration")
    assert integration.inputs["type"] == "events_api_v2_inbound_integration"
    provider = one(run, "pulumi:providers:pagerduty")
    assert plain(provider.inputs["token"]) == {"__secret__": SECRET_VALUES["pagerdutyToken"]}
    assert provider.parent == one(run, "webhook-monitoring:alerting:Alerting").urn
    secret = one(run, "kubernetes:core/v1:Secret", "alerting-alertmanager-config")
    string_data = plain(secret.inputs["stringData"])
    assert set(string_data) == {"__secret__"}, "the whole config is a Pulumi secret"
    config = yaml.safe_load(string_data["__secret__"]["alertmanager.yaml"])
    (pd,) = [r for r in config["receivers"] if r["name"] == "pagerduty"]
    assert pd["pagerduty_configs"][0]["routing_key"] == (
        f"<PagerDuty integration key of {integration.name} after deploy>"
    )
    values = release_values(run, "kube-prometheus-stack")
    assert values["alertmanager"]["alertmanagerSpec"]["configSecret"] == "alerting-alertmanager-config"
    assert "config" not in values["alertmanager"]


def test_dev_without_pagerduty_registers_no_pagerduty_resource_and_pages_slack():
    run = run_stack("dev")
    assert not [r for r in run.resources if r.type.startswith("pagerduty:") or r.type == "pulumi:providers:pagerduty"]
    assert run.exports["criticalAlertsGoTo"] == "slack"
    assert run_stack("prod").exports["criticalAlertsGoTo"] == "pagerduty"


@pytest.mark.parametrize("stack", STACKS)
def test_stores_use_the_bucket_and_role_of_the_bucket_components(stack):
    run = run_stack(stack)
    roles = {r.name: f"arn:aws:iam::123456789012:role/{r.name}" for r in run.resources if r.type == "aws:iam/role:Role"}
    mimir = release_values(run, "mimir-distributed")
    assert mimir["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == roles["metrics-role"]
    assert mimir["serviceAccount"]["name"] == "mimir"
    assert "metrics-bucket-0000000" in json.dumps(mimir)
    loki = release_values(run, "loki")
    assert loki["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == roles["logs-role"]
    assert loki["serviceAccount"]["name"] == "loki"
    assert "logs-bucket-0000000" in json.dumps(loki)


@pytest.mark.parametrize("stack", STACKS)
def test_every_volume_uses_the_gp3_class(stack):
    run = run_stack(stack)
    classes = set()

    def walk(value):
        if isinstance(value, dict):
            for k, v in value.items():
                if k in ("storageClass", "storageClassName") and isinstance(v, str):
                    classes.add(v)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for release in [r for r in run.resources if r.type == RELEASE]:
        walk(release.inputs["values"])
    assert classes == {"gp3"}


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_is_hardened_and_takes_credentials_by_reference(stack):
    run = run_stack(stack)
    settings = stack_settings(stack)
    grafana = release_values(run, "kube-prometheus-stack")["grafana"]
    assert grafana["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    assert "adminPassword" not in grafana
    ini = grafana["grafana.ini"]
    assert ini["auth.anonymous"] == {"enabled": False}
    assert ini["server"]["root_url"] == f"https://{settings.grafana.host}"
    assert grafana["ingress"]["tls"] == [{"secretName": "grafana-tls", "hosts": [settings.grafana.host]}]
    assert grafana["persistence"]["storageClassName"] == "gp3" and grafana["persistence"]["enabled"] is True
    assert grafana["serviceMonitor"]["labels"] == {"team": "webhook-delivery"}
    admin = one(run, "kubernetes:core/v1:Secret", "grafana-admin")
    data = plain(admin.inputs["stringData"])
    assert data == {"__secret__": {"admin-user": "admin", "admin-password": "<generated password: grafana-admin-password>"}}
    assert "grafanaAdminPassword" in run.exports
    if stack == "prod":
        oauth = ini["auth.generic_oauth"]
        assert oauth["enabled"] is True and oauth["client_id"] == settings.grafana.sso.client_id
        assert oauth["allowed_domains"] == "example.com" and oauth["role_attribute_strict"] is True
        # Read from the mounted Secret: no secret value in the values, none in the environment.
        assert oauth["client_secret"] == "$__file{/etc/secrets/grafana-oauth/client-secret}"
        assert {"name": "grafana-oauth", "secretName": "grafana-oauth", "mountPath": "/etc/secrets/grafana-oauth",
                "readOnly": True} in grafana["extraSecretMounts"]
        assert "envValueFrom" not in grafana
        oauth_secret = one(run, "kubernetes:core/v1:Secret", "grafana-oauth")
        assert plain(oauth_secret.inputs["stringData"]) == {
            "__secret__": {"client-secret": SECRET_VALUES["grafanaOauthClientSecret"]}
        }
    else:
        assert "auth.generic_oauth" not in ini and "envValueFrom" not in grafana
        assert [m["secretName"] for m in grafana["extraSecretMounts"]] == [
            "prometheus-client-grafana", "alertmanager-client-grafana"]
        assert not [r for r in run.resources if r.name == "grafana-oauth"]


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_data_sources_are_ours_with_the_uids_dashboards_use(stack):
    grafana = release_values(run_stack(stack), "kube-prometheus-stack")["grafana"]
    assert grafana["sidecar"]["datasources"]["defaultDatasourceEnabled"] is False
    sources = {d["uid"]: d for d in grafana["additionalDataSources"]}
    assert set(sources) == set(DATASOURCES)
    assert sources["prometheus"]["isDefault"] is True
    # The in-cluster services the releases create, named after the fixed release names.
    assert {uid: source["url"] for uid, source in sources.items()} == {
        "prometheus": "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090",
        "mimir": "http://mimir-distributed-gateway.monitoring.svc.cluster.local:80/prometheus",
        "loki": "http://loki-gateway.monitoring.svc.cluster.local:80",
        "alertmanager": "http://kube-prometheus-stack-alertmanager.monitoring.svc.cluster.local:9093",
    }
    exports = run_stack(stack).exports
    assert (exports["prometheusUrl"], exports["lokiQueryUrl"]) == (sources["prometheus"]["url"], sources["loki"]["url"])
    assert exports["mimirQueryUrl"] == sources["mimir"]["url"]


PROVIDER_PREFIX = "pulumi:providers:"


def hosts_the_program_creates(settings) -> list[str]:
    """Addresses only this `pulumi up` makes reachable: Grafana's public host (its DNS record and
    certificate come with the release), in-cluster service names, and loopback (a port-forward)."""
    return [settings.grafana.host, ".svc", "localhost", "127.0.0.1"]


def providers_pointed_at(run, hosts: list[str]) -> list[tuple[str, str]]:
    return [(r.name, text) for r in run.resources if r.type.startswith(PROVIDER_PREFIX)
            for text, _ in strings(plain(r.inputs)) if any(host in text for host in hosts)]


@pytest.mark.parametrize("stack", STACKS)
def test_no_provider_is_pointed_at_a_host_the_program_creates(stack):
    """The first `pulumi up` cannot depend on what it is creating: Grafana is configured from inside."""
    run = run_stack(stack)
    providers = {r.type for r in run.resources if r.type.startswith(PROVIDER_PREFIX)}
    assert providers >= {"pulumi:providers:kubernetes", "pulumi:providers:aws"}
    assert "pulumi:providers:grafana" not in providers
    assert not [r for r in run.resources if r.type.startswith("grafana:")]
    assert providers_pointed_at(run, hosts_the_program_creates(stack_settings(stack))) == []


def test_a_provider_pointed_at_grafanas_public_host_would_be_found():
    """The negative case: the provider the program used to register for Grafana's API."""
    run = run_stack("dev")
    settings = stack_settings("dev")
    grafana = Registered("pulumi:providers:grafana", "dashboards-provider", "urn:x", None, True,
                         {"url": f"https://{settings.grafana.host}", "auth": "admin:x"})
    faked = dataclasses.replace(run, resources=[*run.resources, grafana])
    assert providers_pointed_at(faked, hosts_the_program_creates(settings)) == [
        ("dashboards-provider", f"https://{settings.grafana.host}")]


@pytest.mark.parametrize("stack", STACKS)
def test_dashboards_reach_grafana_through_its_sidecar_in_their_folders(stack):
    run = run_stack(stack)
    settings = stack_settings(stack)
    sidecar = release_values(run, "kube-prometheus-stack")["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"], sidecar["folderAnnotation"]) == (
        DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, FOLDER_ANNOTATION)
    assert sidecar["provider"] == {"foldersFromFilesStructure": True}
    assert (sidecar["searchNamespace"], sidecar["resource"]) == (settings.namespace, "configmap")
    maps = [r for r in run.of_type("kubernetes:core/v1:ConfigMap")
            if r.inputs["metadata"].get("labels", {}).get(DASHBOARD_LABEL) == DASHBOARD_LABEL_VALUE]
    expected = {d.uid: d for d in dashboards(settings)}
    assert len(maps) == len(expected) == 9
    for config_map in maps:
        (key, text), = config_map.inputs["data"].items()
        model = json.loads(text)
        dashboard = expected[model["uid"]]
        assert key == f"{dashboard.uid}.json" and text == dashboard.to_json()
        assert config_map.inputs["metadata"]["namespace"] == settings.namespace
        assert config_map.inputs["metadata"]["annotations"] == {FOLDER_ANNOTATION: FOLDERS[dashboard.folder]}
        # The API server refuses a ConfigMap whose data exceeds 1 MiB.
        assert len(text.encode()) < 2**20


def env_of(job) -> dict:
    (container,) = job.inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("stack", STACKS)
def test_folder_permissions_are_set_by_a_job_inside_the_cluster(stack):
    run = run_stack(stack)
    settings = stack_settings(stack)
    job = one(run, "kubernetes:batch/v1:Job")
    (container,) = job.inputs["spec"]["template"]["spec"]["containers"]
    env = env_of(job)
    assert env["GRAFANA_URL"] == f"http://kube-prometheus-stack-grafana.{settings.namespace}.svc.cluster.local:80"
    # The admin's credentials as files of the mounted Secret.
    assert (env["GRAFANA_USER_FILE"], env["GRAFANA_PASSWORD_FILE"]) == (
        "/etc/secrets/grafana-admin/admin-user", "/etc/secrets/grafana-admin/admin-password")
    assert job.inputs["spec"]["template"]["spec"]["volumes"] == [{"name": "admin", "secret": {"secretName": "grafana-admin"}}]
    assert container["volumeMounts"] == [{"name": "admin", "mountPath": "/etc/secrets/grafana-admin", "readOnly": True}]
    assert json.loads(env["FOLDERS"]) == [{"uid": uid, "title": title} for uid, title in FOLDERS.items()]
    assert json.loads(env["PERMISSIONS"]) == [{"role": "Viewer", "permission": "View"}, {"role": "Editor", "permission": "Edit"}]
    assert container["command"] == ["python", "-c", (ROOT / "monitoring" / "grafana_folders.py").read_text()]
    # The image Grafana's sidecars already run, pinned in one place.
    grafana = release_values(run, "kube-prometheus-stack")["grafana"]
    assert container["image"] == GRAFANA_SIDECAR_IMAGE == "{registry}/{repository}:{tag}".format(**grafana["sidecar"]["image"])
    # It runs once Grafana's release is up and the NetworkPolicy letting it in exists.
    component = one(run, "webhook-monitoring:grafana_dashboards:GrafanaDashboards")
    kps = [r for r in run.of_type(RELEASE) if r.inputs["chart"] == "kube-prometheus-stack"][0]
    policy = one(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "network-monitoring-grafana-from-its-folder-job")
    assert {kps.urn, policy.urn} <= set(component.depends_on)
    labels = job.inputs["spec"]["template"]["metadata"]["labels"]
    assert policy.inputs["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": FOLDER_JOB_LABELS}}]
    assert FOLDER_JOB_LABELS.items() <= labels.items()


@pytest.mark.parametrize("stack", STACKS)
def test_rules_are_deployed_where_prometheus_selects_them(stack):
    run = run_stack(stack)
    values = release_values(run, "kube-prometheus-stack")
    selector = values["prometheus"]["prometheusSpec"]["ruleSelector"]
    rules = [r for r in run.resources if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
    assert rules
    for rule in rules:
        labels = rule.inputs["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in selector["matchLabels"].items()), rule.name
        assert labels["role"] == "alert-rules" and labels["app"] == "webhook-delivery"


def test_logging_waits_for_the_chart_whose_operator_admits_its_monitors():
    run = run_stack("dev")
    (kps,) = [r for r in run.resources if r.type == RELEASE and r.inputs["chart"] == "kube-prometheus-stack"]
    namespaces = {one(run, "kubernetes:core/v1:Namespace", name).urn for name in ("monitoring-namespace", "agents-namespace")}
    # Loki and the agents ship ServiceMonitors, admitted by the Operator kube-prometheus-stack runs.
    logging = one(run, "webhook-monitoring:logging:Logging")
    assert set(logging.depends_on) == {kps.urn, *namespaces}
    (loki,) = [r for r in run.resources if r.type == RELEASE and r.inputs["chart"] == "loki"]
    assert loki.parent == logging.urn
    # Custom resources wait for their CRDs too.
    monitors = [r for r in run.resources if r.type == "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"]
    assert monitors and all(kps.urn in m.depends_on for m in monitors)


def test_every_component_type_token_names_its_file():
    """`webhook-monitoring:<module>:<Type>`: the module is the file in components/ that defines it."""
    tokens = {r.type for r in run_stack("prod").resources if r.type.startswith("webhook-monitoring:")}
    assert len(tokens) == 9
    for token in tokens:
        _, module, type_name = token.split(":")
        assert (ROOT / "components" / f"{module}.py").is_file(), token
        assert hasattr(importlib.import_module(f"components.{module}"), type_name), token
