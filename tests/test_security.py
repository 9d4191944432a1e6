"""Security: the Pod Security labels of the namespaces (the API server judges the pods:
tests/test_apiserver.py), RBAC scope, the authenticating proxies and their credentials, SSO."""

from __future__ import annotations

import base64
import re

import jmespath
import pytest

from config import ConfigError
from monitoring import ha_tracker
from monitoring.grafana import grafana_ini
from monitoring.security import CHECKOV_ACCEPTED, PRIVILEGED, PROBE_EXCEPTIONS, RESTRICTED, pod_security_labels
from monitoring.web_auth import ALERTMANAGER, PROMETHEUS, htpasswd, nginx_config
from tests.support import ROOT, minimal_settings, run_stack
from testkit.k8s import granted_rules
from tools.mock_runtime import plain

def test_namespace_labels_enforce_the_level_and_audit_what_goes_beyond_restricted():
    assert pod_security_labels(RESTRICTED) == {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.34"}
    assert pod_security_labels(PRIVILEGED) == {
        "pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/enforce-version": "v1.34",
        "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "v1.34"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_makes_a_restricted_namespace_and_one_for_the_agents(stack):
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"]
                  for r in run_stack(stack).resources if r.type == "kubernetes:core/v1:Namespace"}
    assert namespaces == {
        "monitoring": {"team": "webhook-delivery", **pod_security_labels(RESTRICTED)},
        "monitoring-agents": {"team": "webhook-delivery", **pod_security_labels(PRIVILEGED)},
    }


def test_granted_rules_follow_bindings_to_roles_and_cluster_roles():
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "ns"}, "rules": [{"resources": ["configmaps"]}]}
    cluster_role = {"kind": "ClusterRole", "metadata": {"name": "c"}, "rules": [{"resources": ["secrets"]}]}
    account = {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}
    binding = {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "ns"},
               "roleRef": {"kind": "Role", "name": "r"}, "subjects": [account]}
    cluster_binding = {"kind": "ClusterRoleBinding", "metadata": {"name": "cb"},
                       "roleRef": {"kind": "ClusterRole", "name": "c"}, "subjects": [account]}
    other = {**cluster_binding, "subjects": [{**account, "name": "other"}]}
    assert granted_rules([role, cluster_role, binding, other], "ns", "sa") == [("ns", {"resources": ["configmaps"]})]
    assert granted_rules([role, cluster_role, binding, cluster_binding], "ns", "sa") == [
        ("ns", {"resources": ["configmaps"]}), ("*", {"resources": ["secrets"]})]
    with pytest.raises(AssertionError, match="missing Role r"):
        granted_rules([binding], "ns", "sa")


# ------------------------------------------------------------------------------ authentication


def test_the_proxy_asks_credentials_everywhere_but_its_health_endpoint_and_logs_the_user():
    config = nginx_config(PROMETHEUS)
    locations = re.findall(r"location ([^{]+)\{(.*?)\n    \}", config, re.S)
    assert [path.strip() for path, _ in locations] == ["= /healthz", "/"]
    health, everything = (body for _, body in locations)
    assert "auth_basic off;" in health and "proxy_pass" not in health
    assert 'auth_basic "prometheus";' in everything
    assert "auth_basic_user_file /etc/nginx/auth-users/htpasswd;" in everything
    assert "proxy_pass http://127.0.0.1:9090;" in everything
    assert 'proxy_set_header Authorization "";' in everything  # no credentials passed upstream
    assert "listen 9091;" in config and 'user="$remote_user" method=$request_method path="$uri"' in config


def test_the_users_file_has_one_sorted_line_per_client():
    assert htpasswd({"loki": "$2a$10$b", "grafana": "$2a$10$a"}) == "grafana:$2a$10$a\nloki:$2a$10$b\n"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_client_gets_generated_credentials_of_its_own_in_secrets(stack):
    run = run_stack(stack)
    secrets = {r.inputs["metadata"]["name"]: r for r in run.resources if r.type == "kubernetes:core/v1:Secret"}
    for server in (PROMETHEUS, ALERTMANAGER):
        users = plain(secrets[f"{server.name}-auth-users"].inputs["stringData"])
        assert users == {"__secret__": {"htpasswd": "".join(
            f"{c}:<bcrypt of web-auth-{server.name}-{c}>\n" for c in sorted(server.clients))}}
        for client in server.clients:
            data = plain(secrets[f"{server.name}-client-{client}"].inputs["stringData"])["__secret__"]
            password = f"<generated password: web-auth-{server.name}-{client}>"
            assert data == {"username": client, "password": password,
                            "basic-credentials": base64.b64encode(f"{client}:{password}".encode()).decode()}
    passwords = [r for r in run.resources if r.type == "random:index/randomPassword:RandomPassword"
                 and r.name.startswith("web-auth-")]
    assert len(passwords) == len(PROMETHEUS.clients) + len(ALERTMANAGER.clients)


def test_prometheus_and_alertmanager_listen_locally_behind_their_proxies():
    run = run_stack("prod")
    (kps,) = [r for r in run.resources if r.type == "kubernetes:helm.sh/v3:Release"
              and r.inputs["chart"] == "kube-prometheus-stack"]
    values = plain(kps.inputs["values"], reveal_secrets=True)
    for section, spec_key, server in (("prometheus", "prometheusSpec", PROMETHEUS),
                                      ("alertmanager", "alertmanagerSpec", ALERTMANAGER)):
        spec = values[section][spec_key]
        assert spec["listenLocal"] is True
        assert spec["containers"][0]["name"] == f"{server.name}-auth-proxy"
        assert values[section]["service"] == {"targetPort": server.proxy_port}
        assert values[section]["serviceMonitor"] == {"selfMonitor": False}
    (endpoint,) = values["prometheus"]["prometheusSpec"]["alertingEndpoints"]
    assert endpoint["basicAuth"]["password"] == {"name": "alertmanager-client-prometheus", "key": "password"}


def test_the_loki_ruler_reads_its_alertmanager_credentials_from_a_mounted_file():
    from tests.test_logging import loki_for

    for environment, target in (("dev", "singleBinary"), ("prod", "backend")):
        values = loki_for(minimal_settings(environment))
        client = values["loki"]["rulerConfig"]["alertmanager_client"]
        assert client == {"type": "Basic", "credentials_file": "/etc/secrets/alertmanager-client-loki/basic-credentials"}
        assert {"name": "alertmanager-credentials", "secret": {"secretName": "alertmanager-client-loki"}} in \
            values[target]["extraVolumes"]


# ------------------------------------------------------------------------------ SSO


SSO = {"clientId": "grafana", "authUrl": "https://id.example.com/authorize", "tokenUrl": "https://id.example.com/token",
       "apiUrl": "https://id.example.com/userinfo", "allowedDomains": ["example.com"]}


def role_of(sso: dict, groups: list[str]):
    settings = minimal_settings("prod", grafana={"sso": {**SSO, **sso}})
    ini = grafana_ini(settings, "grafana-oauth")["auth.generic_oauth"]
    return jmespath.search(ini["role_attribute_path"], {"groups": groups}) or None, ini["role_attribute_strict"]


def test_sso_roles_follow_the_groups_claim_and_a_user_in_no_group_is_refused():
    assert role_of({}, ["sre", "engineering"]) == ("Admin", True)
    assert role_of({}, ["engineering"]) == ("Editor", True)
    # No role: Grafana refuses the login (role_attribute_strict), rather than making a Viewer.
    assert role_of({}, ["marketing"]) == (None, True)
    assert role_of({}, []) == (None, True)
    mapping = {"adminGroups": ["platform", "sre"], "editorGroups": [], "viewerGroups": ["support"]}
    assert role_of(mapping, ["platform"]) == ("Admin", True)
    assert role_of(mapping, ["support"]) == ("Viewer", True)
    assert role_of(mapping, ["engineering"]) == (None, True)
    assert role_of({"strictRoleMapping": False}, ["marketing"]) == ("Viewer", False)


def test_sso_asks_for_the_groups_and_reads_its_client_secret_from_a_file():
    settings = minimal_settings("prod", grafana={"sso": SSO})
    ini = grafana_ini(settings, "grafana-oauth")["auth.generic_oauth"]
    assert ini["scopes"] == "openid email profile groups"
    assert ini["client_secret"] == "$__file{/etc/secrets/grafana-oauth/client-secret}"


@pytest.mark.parametrize("group", ["it's", "back\\slash", 'quo"te'])
def test_a_group_name_that_would_break_the_mapping_is_refused(group):
    with pytest.raises(ConfigError, match=r"grafana\.sso\.adminGroups: got \[.*\], expected a name without quotes"):
        minimal_settings("prod", grafana={"sso": {**SSO, "adminGroups": [group]}})


def test_docs_list_every_accepted_checkov_finding_and_probe_exception():
    """docs/security.md is the checklist: what the scan accepts and which sidecars go unprobed."""
    text = (ROOT / "docs" / "security.md").read_text()
    table = re.findall(r"^\| (CKV[\w, ]+) \|", text, re.M)
    documented = {check.strip() for row in table for check in row.split(",")}
    assert documented == set(CHECKOV_ACCEPTED)
    for sidecar in PROBE_EXCEPTIONS:
        assert sidecar.split("-")[0] in text.lower(), sidecar


@pytest.mark.parametrize("stack, tracked", [("dev", False), ("prod", True)])
def test_the_ha_trackers_etcd_takes_only_clients_with_a_certificate_of_its_ca(stack, tracked):
    run = run_stack(stack)
    secrets = {r.inputs["metadata"]["name"]: r.as_json()["inputs"] for r in run.of_type("kubernetes:core/v1:Secret")}
    certificates = {r.name: r.inputs for r in run.of_type("tls:index/locallySignedCert:LocallySignedCert")}
    if not tracked:
        assert not certificates and ha_tracker.SERVER_SECRET not in secrets
        return
    (registered,) = [r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == ha_tracker.NAME]
    # It mounts its TLS Secret: created after it, the pod would wait on a missing volume.
    (server_secret,) = [r for r in run.of_type("kubernetes:core/v1:Secret")
                        if r.inputs["metadata"]["name"] == ha_tracker.SERVER_SECRET]
    assert server_secret.urn in registered.depends_on
    deployment = registered.inputs
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][0] == "etcd" and "args" not in container
    flags = dict(flag.removeprefix("--").split("=", 1) for flag in container["command"][1:])
    tls = "/etc/etcd/tls"
    assert {k: flags[k] for k in ("cert-file", "key-file", "trusted-ca-file", "peer-cert-file", "peer-key-file",
                                  "peer-trusted-ca-file", "client-cert-auth", "peer-client-cert-auth")} == {
        "cert-file": f"{tls}/tls.crt", "key-file": f"{tls}/tls.key", "trusted-ca-file": f"{tls}/ca.crt",
        "peer-cert-file": f"{tls}/tls.crt", "peer-key-file": f"{tls}/tls.key", "peer-trusted-ca-file": f"{tls}/ca.crt",
        "client-cert-auth": "true", "peer-client-cert-auth": "true"}
    # Clients and peers over TLS; health and metrics on their own plain port, for probes and scrapes.
    assert flags["listen-client-urls"].startswith("https://") and flags["listen-peer-urls"].startswith("https://")
    assert flags["listen-metrics-urls"] == f"http://0.0.0.0:{ha_tracker.METRICS_PORT}"
    assert container["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert not {"auto-tls", "peer-auto-tls"} & set(flags)
    assert {"name": "tls", "secret": {"secretName": ha_tracker.SERVER_SECRET}} in pod["volumes"]
    # Two certificates from one CA: etcd's for its names, the distributors' for client auth only.
    server = certificates[f"metrics-{ha_tracker.SERVER_SECRET}"]
    client = certificates[f"metrics-{ha_tracker.CLIENT_SECRET}"]
    assert "server_auth" in server["allowedUses"] and "server_auth" not in client["allowedUses"]
    assert "client_auth" in client["allowedUses"]
    (request,) = [r.inputs for r in run.of_type("tls:index/certRequest:CertRequest")
                  if r.name == f"metrics-{ha_tracker.SERVER_SECRET}-request"]
    assert ha_tracker.host(minimal_settings("prod")) in request["dnsNames"]
    # The private keys stay Pulumi secrets, handed over in the Secrets only.
    for name in (ha_tracker.SERVER_SECRET, ha_tracker.CLIENT_SECRET):
        assert secrets[name]["type"] == "kubernetes.io/tls"
        assert set(secrets[name]["stringData"]["__secret__"]) == {"tls.crt", "tls.key", "ca.crt"}
    for key in run.of_type("tls:index/certRequest:CertRequest"):
        assert "__secret__" in key.as_json()["inputs"]["privateKeyPem"]
