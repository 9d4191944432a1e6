"""The Prometheus Operator the chart deploys, run against the loopback API server (tests only).

`make tools` builds the Operator of kube-prometheus-stack's appVersion. It runs here with the
arguments the chart gives its Deployment (those naming files of its pod aside), authenticated as the
chart's service account (impersonated: the Operator has no token flag), so its RBAC is the chart's
too. From the Prometheus and Alertmanager resources, ServiceMonitors, Probes and PrometheusRules it
writes what the pods would read: the Prometheus configuration (Secret `prometheus-<name>`), the
rule files (ConfigMaps `prometheus-<name>-rulefiles-<n>`), Alertmanager's configuration (Secret
`alertmanager-<name>-generated`) and the StatefulSets.

`for_outside` turns the Prometheus configuration into one a Prometheus outside the cluster runs:
what the config reloader does in the pod (`$(POD_NAME)`, `$(SHARD)` substituted), Kubernetes
discovery pointed at the API server with the service account's token (what the pod gets mounted),
the rule files where they were written. Scrape jobs, relabelling, limits and rule selection stay
the Operator's.
"""

from __future__ import annotations

import base64
import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from monitoring.versions import KUBE_PROMETHEUS_STACK, PROMETHEUS_OPERATOR_CRDS
from testkit.apiserver import ApiServer, Kube, host_address, service_account
from testkit.live import Process, free_port, wait_until
from policy.model import object_name
from testkit.stack_apply import apply_all
from tools.go_tools import binary
from tools.rendered import RenderedStack
from tools.templating import ChartRelease, api_versions, template_release

PROMETHEUS_CONFIG_KEY = "prometheus.yaml.gz"
ALERTMANAGER_CONFIG_KEY = "alertmanager.yaml.gz"
# Where the Operator's StatefulSet mounts what the configuration names (pkg/prometheus): the rule-file
# ConfigMaps, the Secrets of spec.secrets, the TLS assets; and where the kubelet mounts the token.
RULES_DIR = "/etc/prometheus/rules"
SECRETS_DIR = "/etc/prometheus/secrets"
CERTS_DIR = "/etc/prometheus/certs"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Flags of the chart's Operator container that name files of its pod (its webhook's TLS certificate)
# or its pod's address: replaced by a loopback listener here.
POD_ONLY_FLAGS = ("--web.",)


def operator_args(deployment: dict[str, Any]) -> list[str]:
    """The arguments of the Operator container of the chart's Deployment, less the pod-only ones."""
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                    if "prometheus-operator" in c["image"]]
    return [arg for arg in container.get("args") or [] if not arg.startswith(POD_ONLY_FLAGS)]


class Operator:
    """The Operator process; `stop()` ends it."""

    def __init__(self, server: ApiServer, workdir: Path, args: list[str], identity: Optional[str] = None) -> None:
        credentials = server.admin_credentials
        self.process = Process(
            [binary("prometheus-operator"), f"--apiserver={server.url}", f"--ca-file={credentials.ca}",
             f"--cert-file={credentials.cert}", f"--key-file={credentials.key}",
             *([f"--as={identity}"] if identity else []), f"--web.listen-address=127.0.0.1:{free_port()}", *args],
            workdir / "prometheus-operator.log")

    def stop(self) -> None:
        self.process.stop()


def chart_operator(server: ApiServer, workdir: Path, deployment: dict[str, Any]) -> Operator:
    """The Operator as the chart's Deployment runs it, with its service account's rights."""
    spec = deployment["spec"]["template"]["spec"]
    identity = service_account(deployment["metadata"]["namespace"], spec["serviceAccountName"])
    return Operator(server, workdir, operator_args(deployment), identity)


def _secret_file(kube: Kube, namespace: str, name: str, key: str) -> Optional[str]:
    found = kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    data = (found.body.get("data") or {}) if found.ok else {}
    return gzip.decompress(base64.b64decode(data[key])).decode() if key in data else None


def reconciled(kube: Kube, resource: dict[str, Any]) -> bool:
    """Whether the Operator has reconciled the resource's current generation."""
    found = kube.get(resource)
    if not found.ok:
        return False
    conditions = {c["type"]: c for c in (found.body.get("status") or {}).get("conditions") or []}
    done = conditions.get("Reconciled") or {}
    return done.get("status") == "True" and done.get("observedGeneration") == found.body["metadata"]["generation"]


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    return wait_until(condition, timeout=timeout, interval=0.2, what=what)


def prometheus_config(kube: Kube, prometheus: dict[str, Any], timeout: float = 60.0) -> str:
    """The configuration the Operator generated for a Prometheus resource, once it has reconciled it."""
    metadata = prometheus["metadata"]
    wait_for(f"the Operator to reconcile Prometheus {metadata['name']}", lambda: reconciled(kube, prometheus), timeout)
    return wait_for("the generated Prometheus configuration", lambda: _secret_file(
        kube, metadata["namespace"], f"prometheus-{metadata['name']}", PROMETHEUS_CONFIG_KEY), timeout)


def rule_files(kube: Kube, prometheus: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{ConfigMap name: {file name: rules}}: the rule files the Operator selected for a Prometheus."""
    metadata = prometheus["metadata"]
    prefix = f"prometheus-{metadata['name']}-rulefiles-"
    return {c["metadata"]["name"]: c.get("data") or {} for c in kube.items("v1", "ConfigMap", metadata["namespace"])
            if c["metadata"]["name"].startswith(prefix)}


def alertmanager_config(kube: Kube, alertmanager: dict[str, Any], timeout: float = 60.0) -> str:
    """The configuration the Operator generated for an Alertmanager resource from its config Secret."""
    metadata = alertmanager["metadata"]
    wait_for(f"the Operator to reconcile Alertmanager {metadata['name']}", lambda: reconciled(kube, alertmanager), timeout)
    return wait_for("the generated Alertmanager configuration", lambda: _secret_file(
        kube, metadata["namespace"], f"alertmanager-{metadata['name']}-generated", ALERTMANAGER_CONFIG_KEY), timeout)


def service_account_token(kube: Kube, namespace: str, name: str) -> str:
    """A token of the service account, as the kubelet mounts one into its pods (TokenRequest)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 7200}}
    answer = kube.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", request)
    return kube.must(answer, f"token of {namespace}/{name}")["status"]["token"]


def _write_files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def pod_mounts(kube: Kube, prometheus: dict[str, Any], directory: Path) -> dict[str, Path]:
    """What a Prometheus pod of the resource has mounted, written under `directory`: {the folder in
    the pod: its copy here}. The service account's token and the cluster's CA (what Kubernetes
    discovery authenticates with), the rule-file ConfigMaps, the Secrets the spec names, the TLS
    assets the Operator collected."""
    metadata, spec = prometheus["metadata"], prometheus["spec"]
    namespace = metadata["namespace"]
    token = service_account_token(kube, namespace, spec.get("serviceAccountName") or "default")
    mounts = {SERVICE_ACCOUNT_DIR: _write_files(directory / "serviceaccount", {
        "token": token, "ca.crt": kube.credentials.ca.read_text(), "namespace": namespace})}
    for config_map, files in rule_files(kube, prometheus).items():
        mounts[f"{RULES_DIR}/{config_map}"] = _write_files(directory / "rules" / config_map, files)
    for secret in spec.get("secrets") or []:
        mounts[f"{SECRETS_DIR}/{secret}"] = _write_files(directory / "secrets" / secret, _secret_data(kube, namespace, secret))
    assets = {name: text for secret in kube.items("v1", "Secret", namespace)
              if secret["metadata"]["name"].startswith(f"prometheus-{metadata['name']}-tls-assets")
              for name, text in _secret_data(kube, namespace, secret["metadata"]["name"]).items()}
    mounts[CERTS_DIR] = _write_files(directory / "certs", assets)
    return mounts


def _secret_data(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    """A Secret's files; none for one the stack names but leaves to the cluster's operators (the
    federation credentials), which a test does not have."""
    found = kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    if found.status == 404:
        return {}
    secret = kube.must(found, f"Secret {name}")
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def for_outside(config: str, pod: str, api_url: str, mounts: dict[str, Path]) -> dict[str, Any]:
    """The Operator's Prometheus configuration as the replica `pod` runs it, outside the cluster:
    the placeholders the config reloader substitutes, the pod's mounted folders where `pod_mounts`
    wrote them, Kubernetes discovery through `api_url` (in a pod, the in-cluster address)."""
    # Shard 0 of 1: the Operator's hashmod relabelling keeps the targets of the pod's shard.
    text = config.replace("$(POD_NAME)", pod).replace("$(SHARD)", "0")
    for inside, here in sorted(mounts.items(), key=lambda m: -len(m[0])):
        text = text.replace(inside, str(here))
    loaded = yaml.safe_load(text)
    sd_configs = [sd for job in loaded.get("scrape_configs") or [] for sd in job.get("kubernetes_sd_configs") or []]
    sd_configs += [sd for am in (loaded.get("alerting") or {}).get("alertmanagers") or []
                   for sd in am.get("kubernetes_sd_configs") or []]
    account = mounts[SERVICE_ACCOUNT_DIR]
    for sd in sd_configs:
        sd.update({"api_server": api_url, "authorization": {"credentials_file": str(account / "token")},
                   "tls_config": {"ca_file": str(account / "ca.crt")}})
    return loaded


# ------------------------------------------------------------------------------ a stack under the Operator


def stand_in_pod(name: str, namespace: str, labels: dict[str, str], container: str, port: int) -> dict[str, Any]:
    """A Pod object for a process of the test that stands in for a pod: never scheduled (there are no
    nodes), it gives discovery what a pod gives it (its name and labels, its container by port).
    Restricted, as the stack's namespace requires."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"automountServiceAccountToken": False,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": container, "image": "stand-in", "ports": [{"name": "stand-in", "containerPort": port}],
                                     "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}


def endpoint_slice(service: dict[str, Any], port_name: str, pod: str, address: str, port: int) -> dict[str, Any]:
    """One pod of a Service, as the EndpointSlice controller lists it: its address, the port under
    the Service port's name, the pod as target. A slice per pod: the processes standing in for a
    Service's pods share one address and listen on ports of their own."""
    metadata = service["metadata"]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{metadata['name']}-{pod}"[-63:].lstrip("-"), "namespace": metadata["namespace"],
                         "labels": {"kubernetes.io/service-name": metadata["name"],
                                    "endpointslice.kubernetes.io/managed-by": "webhook-monitoring-tests"}},
            "endpoints": [{"addresses": [address], "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "name": pod, "namespace": metadata["namespace"]}}],
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}]}


def operator_releases(rendered: RenderedStack) -> list[ChartRelease]:
    """The releases of the Operator and its resources, templated in install order: its CRDs' chart
    (where the stack installs them apart) and kube-prometheus-stack."""
    releases: list[ChartRelease] = []
    for chart in (PROMETHEUS_OPERATOR_CRDS.name, KUBE_PROMETHEUS_STACK.name):
        if chart in rendered.releases:
            apis = api_versions([o for r in releases for o in r.objects if o["kind"] == "CustomResourceDefinition"])
            releases.append(template_release(rendered, chart, apis))
    return releases


class OperatedStack:
    """A rendered stack on the loopback API server, under the chart's Operator: kube-prometheus-stack's
    objects as its chart makes them and the program's, each changed by `adapt` (a test scales
    durations, points the remote write at its receiver), applied; then the Operator started. Processes
    standing in for pods are published as pods of Services (`publish`), at this machine's address."""

    def __init__(self, workdir: Path, rendered: RenderedStack, adapt: Callable[[dict[str, Any]], dict[str, Any]],
                 namespaces: tuple[str, ...] = ()) -> None:
        self.address = host_address()
        self.operator: Optional[Operator] = None
        with ThreadPoolExecutor(1) as pool:  # the charts are templated while the servers start
            templated = pool.submit(operator_releases, rendered)
            self.server = ApiServer(workdir / "kubernetes")
        try:
            releases = templated.result()
            skipped = [release.skipped for release in releases if release.skipped]
            if skipped:
                raise ChartUnavailable("; ".join(skipped))
            kube = self.kube
            applied = apply_all(kube, [(adapt(o), release.namespace) for release in releases for o in release.objects]
                                + [(adapt(o), rendered.namespace) for o in rendered.manifests()]
                                + [({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}, n) for n in namespaces])
            assert applied.refused == {}, applied.refused
            self.objects = {(o["kind"], o["metadata"]["name"]): o for o in applied.objects}
            self.prometheus = next(o for o in applied.objects if o["kind"] == "Prometheus")
            self.alertmanager = next(o for o in applied.objects if o["kind"] == "Alertmanager")
            self.operator = chart_operator(self.server, workdir, self.objects[("Deployment", f"{rendered.fullname}-operator")])
        except BaseException:
            self.close()
            raise

    @property
    def kube(self) -> Kube:
        return self.server.admin

    def service(self, name: str) -> dict[str, Any]:
        return self.objects[("Service", name)]

    def publish(self, service: dict[str, Any], port_name: str, pods: dict[str, int], container: str,
                labels: dict[str, str]) -> None:
        """The Service, and pods of it standing in for `pods` (pod name -> the port its process listens on here)."""
        namespace = service["metadata"]["namespace"]
        self.kube.must(self.kube.apply(service), object_name(service))
        for pod, port in pods.items():
            self.kube.must(self.kube.apply(stand_in_pod(pod, namespace, labels, container, port)), pod)
            self.kube.must(self.kube.apply(endpoint_slice(service, port_name, pod, self.address, port)), pod)

    def unpublish(self, service: dict[str, Any], port_name: str, pods: dict[str, int]) -> None:
        """The pods leave the Service's endpoints (their EndpointSlices deleted)."""
        for pod, port in pods.items():
            self.kube.must(self.kube.delete(endpoint_slice(service, port_name, pod, self.address, port)), pod)

    def prometheus_configs(self, pods: list[str], workdir: Path) -> dict[str, dict[str, Any]]:
        """{pod: its configuration}: the Operator's, as each replica runs it here."""
        generated = prometheus_config(self.kube, self.prometheus)
        mounts = pod_mounts(self.kube, self.prometheus, workdir)
        return {pod: for_outside(generated, pod, self.server.url, mounts) for pod in pods}

    def alertmanager_config(self) -> str:
        return alertmanager_config(self.kube, self.alertmanager)

    def close(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        self.server.close()


class ChartUnavailable(Exception):
    """A chart of the Operator's releases is not available (tools/charts.py says why)."""
