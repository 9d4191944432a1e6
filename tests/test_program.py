"""The whole program under mocks: components connected through outputs, secrets kept secret."""

from __future__ import annotations

import importlib
import json

import pytest
import yaml

from monitoring.dashboards import DATASOURCES, FOLDERS
from tests.support import ROOT, SECRET_VALUES, run_stack, stack_settings
from tools.mock_runtime import plain

STACKS = ["dev", "prod"]
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


@pytest.mark.parametrize("stack", STACKS)
def test_folders_permissions_and_dashboards_through_the_grafana_provider(stack):
    run = run_stack(stack)
    provider = one(run, "pulumi:providers:grafana")
    assert provider.inputs["url"] == f"https://{stack_settings(stack).grafana.host}"
    assert plain(provider.inputs["auth"]) == {"__secret__": "admin:<generated password: grafana-admin-password>"}
    folders = {r.inputs["uid"]: r for r in run.resources if r.type == "grafana:oss/folder:Folder"}
    assert {uid: f.inputs["title"] for uid, f in folders.items()} == FOLDERS
    permissions = [r for r in run.resources if r.type == "grafana:oss/folderPermission:FolderPermission"]
    assert sorted(p.inputs["folderUid"] for p in permissions) == sorted(FOLDERS)
    for p in permissions:
        assert p.inputs["permissions"] == [{"permission": "View", "role": "Viewer"}, {"permission": "Edit", "role": "Editor"}]
    boards = [r for r in run.resources if r.type == "grafana:oss/dashboard:Dashboard"]
    assert len(boards) == 9
    for board in boards:
        assert board.inputs["folder"] in FOLDERS
        assert json.loads(board.inputs["configJson"])["uid"] == board.name.removeprefix("dashboards-")


def test_folder_permission_for_a_team_is_found_by_name():
    run = run_stack("dev", {"grafana": {"folderPermissions": [{"team": "sre", "permission": "Admin"}]}})
    permissions = [r for r in run.resources if r.type == "grafana:oss/folderPermission:FolderPermission"]
    assert permissions and all(p.inputs["permissions"] == [{"permission": "Admin", "teamId": "7"}] for p in permissions)


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


def test_logging_and_dashboards_wait_for_the_chart_that_brings_crds_and_grafana():
    run = run_stack("dev")
    (kps,) = [r for r in run.resources if r.type == RELEASE and r.inputs["chart"] == "kube-prometheus-stack"]
    namespaces = {one(run, "kubernetes:core/v1:Namespace", name).urn for name in ("monitoring-namespace", "agents-namespace")}
    # Loki and the agents ship ServiceMonitors: the CRDs come with kube-prometheus-stack.
    logging = one(run, "webhook-monitoring:logging:Logging")
    assert set(logging.depends_on) == {kps.urn, *namespaces}
    (loki,) = [r for r in run.resources if r.type == RELEASE and r.inputs["chart"] == "loki"]
    assert loki.parent == logging.urn
    # Grafana's API only answers once the release running Grafana is up.
    assert one(run, "webhook-monitoring:grafana_dashboards:GrafanaDashboards").depends_on == (kps.urn,)
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
