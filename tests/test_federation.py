"""Federation between the clusters of a fleet, as docs/tenancy.md says to set it up: the source serves
`/federate` through the ingress controller (TLS, allowed addresses) to its authenticating proxy, whose
network policy admits the controller, the source's pods seeing it rather than the other cluster; the
federating stack reads the `federation` client's password from the source stack into the Secret its
scrape job reads, and sends it as basic auth."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.metrics import FEDERATION_PASSWORD
from monitoring.helm.kube_prometheus_stack import FEDERATE_PATH, WHITELIST_ANNOTATION, fullname
from monitoring.scrape import MOUNTED_SECRETS
from monitoring.web_auth import FEDERATION_CLIENT, PASSWORD_KEY, PROMETHEUS, USERNAME_KEY
from tests.support import raw_config, rendered_stack, stack_settings
from tests.test_network_policies import PEERS, allowed
from config import ConfigError, load
from tools.templating import template_stack

SOURCE_HOST = "prometheus.use1.webhooks.example.com"
# prod serving /federate to the other prod cluster, and federating from it with its stack's credentials.
FLEET = {"metrics": {
    "federation": [{"cluster": "webhook-prod-euw1", "url": "https://prometheus.euw1.webhooks.example.com",
                    "credentialsSecret": "federation-euw1", "stack": "acme/webhook-monitoring/prod-euw1"}],
    "federationEndpoint": {"host": SOURCE_HOST, "allowedSourceCidrs": ["203.0.113.10/32", "198.51.100.0/28"]},
}}
PROXY = PROMETHEUS.proxy_port


@pytest.fixture(scope="module")
def fleet():
    return rendered_stack("prod", FLEET)


def policies(rendered) -> list[dict]:
    return rendered.manifests("NetworkPolicy")


def test_behind_the_ingress_the_pods_see_the_controller_which_the_policy_admits(fleet):
    served = policies(fleet)
    assert allowed(served, "ingress-controller", "prometheus", PROXY, "TCP")
    # The controller reaches Prometheus' proxy alone, and other clusters do not go round it.
    assert not allowed(served, "ingress-controller", "alertmanager", 9095, "TCP")
    for source in ("other-cluster", "internet", "stranger", "webhook-api"):
        assert not allowed(served, source, "prometheus", PROXY, "TCP"), source
    # Without the endpoint, no way in through the controller (the old recipe's CIDRs saw the controller).
    assert not allowed(policies(rendered_stack("prod")), "ingress-controller", "prometheus", PROXY, "TCP")
    assert PEERS["other-cluster"].namespace is None


def test_the_ingress_serves_federate_alone_with_tls_from_the_allowed_addresses(fleet):
    ingress = fleet.kube_prometheus_stack.values["prometheus"]["ingress"]
    assert ingress["hosts"] == [SOURCE_HOST] and ingress["paths"] == [FEDERATE_PATH] and ingress["pathType"] == "Exact"
    assert ingress["tls"] == [{"secretName": "prometheus-federation-tls", "hosts": [SOURCE_HOST]}]
    assert ingress["annotations"][WHITELIST_ANNOTATION] == "203.0.113.10/32,198.51.100.0/28"
    assert ingress["ingressClassName"] == stack_settings("prod").grafana.ingress_class
    assert "ingress" not in rendered_stack("prod").kube_prometheus_stack.values["prometheus"]


def test_the_federating_stack_sends_the_credentials_it_reads_from_the_source_stack(fleet):
    (reference,) = [r for r in fleet.of_type("pulumi:pulumi:StackReference") if "federation" in r["name"]]
    assert reference["inputs"]["name"] == "acme/webhook-monitoring/prod-euw1" and reference.get("read")
    (secret,) = [s for s in fleet.of_type("kubernetes:core/v1:Secret") if s["inputs"]["metadata"]["name"] == "federation-euw1"]
    assert secret["inputs"]["metadata"]["namespace"] == "monitoring"
    # Secret as a whole; the password is the source stack's output (its render placeholder).
    data = secret["inputs"]["stringData"]["__secret__"]
    assert data == {USERNAME_KEY: FEDERATION_CLIENT, PASSWORD_KEY: "<federation password of the source stack>"}
    (job,) = fleet.prometheus_spec["additionalScrapeConfigs"]
    assert job["basic_auth"] == {"username_file": f"{MOUNTED_SECRETS}/federation-euw1/username",
                                 "password_file": f"{MOUNTED_SECRETS}/federation-euw1/password"}
    assert "federation-euw1" in fleet.prometheus_spec["secrets"]
    # The source's side: its proxy knows the client, and its stack offers the password, secret.
    assert fleet.exports[FEDERATION_PASSWORD] == f"<generated password: web-auth-{PROMETHEUS.name}-{FEDERATION_CLIENT}>"
    assert fleet.exports["federationUrl"] == f"https://{SOURCE_HOST}"


def test_a_source_stack_needs_the_secret_its_credentials_go_to():
    bad = {"metrics": {"federation": [{"cluster": "webhook-prod-euw1", "url": "https://p.example.com",
                                       "stack": "acme/webhook-monitoring/prod-euw1"}]}}
    raw, keys = raw_config("prod", bad)
    with pytest.raises(ConfigError) as caught:
        load(raw, keys, lambda name: "secret")
    assert "webhook-monitoring:metrics.federation[0].credentialsSecret: got None, expected the Secret to hold the " \
           "credentials read from metrics.federation[0].stack" in caught.value.problems


@pytest.mark.charts
def test_the_charts_ingress_routes_federate_to_the_proxy(tmp_path):
    config = yaml.safe_load(Path(__file__).resolve().parent.parent.joinpath("Pulumi.prod.yaml").read_text())
    config["config"]["webhook-monitoring:metrics"].update(FLEET["metrics"])
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(config))
    output = template_stack("prod", path)
    if output.unavailable():
        pytest.skip(output.unavailable())
    name = f"{fullname(output.settings)}-prometheus"
    ingress = output.one("kube-prometheus-stack", "Ingress", name)
    (rule,) = ingress["spec"]["rules"]
    (route,) = rule["http"]["paths"]
    assert (rule["host"], route["path"], route["pathType"]) == (SOURCE_HOST, FEDERATE_PATH, "Exact")
    backend = route["backend"]["service"]
    service = output.one("kube-prometheus-stack", "Service", backend["name"])
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == backend["port"]["number"]]
    assert port["targetPort"] == PROXY
