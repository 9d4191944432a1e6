"""The stack on the real kube-apiserver (testkit/apiserver.py): every object accepted, every pod
admitted by Pod Security, immutable fields refused on upgrade, the clashes on a shared cluster, and
what each service account may do, as the server decides.

The API server and etcd are built by `make tools`; without them (no Go) these tests are skipped
with the reason. The API server is the release the stack targets, or with KUBERNETES_UNDER_TEST=next
(`make apiserver-next`) the next minor's, before an upgrade. The Operator's own Prometheus and Alertmanager pods come from the real Operator,
which makes their StatefulSets from the applied resources.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from monitoring import versions
from monitoring.grafana import SIDECAR_RULES
from monitoring.helm.mimir import MIMIR_SERVICE_ACCOUNT
from monitoring.logging.agent import ALLOY_SERVICE_ACCOUNT
from monitoring.logging.loki import LOKI_SERVICE_ACCOUNT
from monitoring.security import RESTRICTED, pod_security_labels
from policy.immutable import IMMUTABLE_FIELDS as PLATFORM_IMMUTABLE_FIELDS, REFUSED as PLATFORM_REFUSED
from policy.kubernetes import CLUSTER_SCOPED
from policy.model import object_name
from testkit.apiserver import ApiServer, Kube, service_account
from testkit.operator import Operator, chart_operator
from testkit.stack_apply import (Applied, apply_stack, as_pod, create_all, default_service_account, helm_clashes,
                                 helm_installed, pod_security_refusals, pods_of, shared_cluster_clashes)
from tools import charts
from tools.go_tools import binary, reported_version
from tools.stacks import stacks
from tools.templating import ChartRelease, StackOutput, helm_template, load_all, template_stack

STACKS = sorted(stacks())
KPS = versions.KUBE_PROMETHEUS_STACK.name
SERVER_VERSION = {"next": versions.KUBERNETES_NEXT_VERSION}.get(os.environ.get("KUBERNETES_UNDER_TEST", ""),
                                                              versions.KUBERNETES_VERSION)


def test_the_kubernetes_pins_agree():
    """One Kubernetes version: the API server built, the charts' --kube-version, Pod Security's
    version and kubernetes-validate's schemas (its releases follow Kubernetes': 1.34.x for 1.34)."""
    requirement = next(line for line in (Path(__file__).parents[1] / "requirements-dev.txt").read_text().splitlines()
                       if line.startswith("kubernetes-validate=="))
    assert requirement.split("==")[1].rsplit(".", 1)[0] == versions.KUBERNETES_MINOR
    assert pod_security_labels(RESTRICTED)["pod-security.kubernetes.io/enforce-version"] == f"v{versions.KUBERNETES_MINOR}"
    assert versions.KUBERNETES_VERSION.startswith(versions.KUBERNETES_MINOR + ".")
    major, minor = (int(part) for part in versions.KUBERNETES_MINOR.split("."))
    assert versions.KUBERNETES_NEXT_VERSION.startswith(f"{major}.{minor + 1}.")


def test_the_built_etcd_and_operator_are_the_pinned_releases():
    """etcd is the HA tracker's (its image tag), the Operator kube-prometheus-stack's appVersion."""
    try:
        assert reported_version("etcd") == versions.ETCD_VERSION
        assert reported_version("prometheus-operator") == versions.PROMETHEUS_OPERATOR_VERSION
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    assert versions.ETCD_IMAGE.endswith(f":v{versions.ETCD_VERSION}")


def start_server(workdir: Path) -> ApiServer:
    try:
        binary("kube-apiserver", SERVER_VERSION), binary("etcd")
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    return ApiServer(workdir, SERVER_VERSION)


def stack_output(stack: str) -> StackOutput:
    output = template_stack(stack)
    if output.unavailable():
        pytest.skip(output.unavailable())
    return output


@dataclass
class Cluster:
    server: ApiServer
    output: StackOutput
    applied: Applied
    operator: Operator

    @property
    def kube(self) -> Kube:
        return self.server.admin


@pytest.fixture(scope="module", params=STACKS)
def cluster(request, tmp_path_factory) -> Iterator[Cluster]:
    """A stack applied to a fresh API server, and the chart's Operator running against it."""
    output = stack_output(request.param)
    server = start_server(tmp_path_factory.mktemp(f"apiserver-{request.param}"))
    try:
        applied = apply_stack(server.admin, output)
        operator = chart_operator(server, server.workdir, output.one(KPS, "Deployment", f"{KPS}-operator"))
        try:
            yield Cluster(server, output, applied, operator)
        finally:
            operator.stop()
    finally:
        server.close()


pytestmark = pytest.mark.apiserver


# ------------------------------------------------------------------------------ every object


def test_the_server_is_the_pinned_release(cluster):
    assert cluster.server.version() == f"v{SERVER_VERSION}"


def test_every_object_is_accepted(cluster):
    """Every object of every release and every object of the program, server-side applied with
    strict field validation under the program's field manager."""
    assert cluster.applied.refused == {}
    sent = len(cluster.applied.objects)
    assert sent == len(cluster.output.objects()), "an object was not sent"
    assert {o["kind"] for o in cluster.applied.objects} >= {"CustomResourceDefinition", "Prometheus", "StatefulSet",
                                                           "DaemonSet", "NetworkPolicy", "StorageClass"}


def test_the_kinds_we_put_no_namespace_on_are_the_servers_cluster_scoped_ones(cluster):
    """policy/kubernetes.py CLUSTER_SCOPED (the kinds the diff, the coexistence oracle and the
    security scan give no namespace) against the server's discovery: each is served and cluster-scoped
    there, and every kind the stack applies that the server keeps without a namespace is in it."""
    served = cluster.kube.served_kinds()
    assert {kind: served.get(kind) for kind in CLUSTER_SCOPED} == {kind: {False} for kind in CLUSTER_SCOPED}
    applied = {o["kind"] for o in cluster.applied.objects}
    assert {kind for kind in applied if False in served[kind]} <= CLUSTER_SCOPED
    assert {"Namespace", "StorageClass", "CustomResourceDefinition", "ClusterRole"} <= applied


def test_an_unknown_field_or_a_wrong_value_is_refused(cluster):
    kube = cluster.kube
    monitor = copy.deepcopy(next(o for o in cluster.applied.objects if o["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    refused = kube.apply(monitor, dry_run=True)
    assert not refused.ok and ".spec.endpoints[0].intervall: field not declared in schema" in refused.message
    storage = copy.deepcopy(next(o for o in cluster.applied.objects if o["kind"] == "StorageClass"))
    storage["metadata"]["name"] += "-typo"
    storage["volumeBindingMod"] = "Immediate"
    refused = kube.apply(storage, dry_run=True)
    assert not refused.ok and ".volumeBindingMod: field not declared in schema" in refused.message
    deployment = copy.deepcopy(next(o for o in cluster.applied.objects if o["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = -1
    refused = kube.apply(deployment, dry_run=True)
    assert refused.status == 422 and "spec.replicas: Invalid value: -1" in refused.message


# ------------------------------------------------------------------------------ Pod Security


def operator_pods(cluster: Cluster) -> list[tuple[str, dict[str, Any]]]:
    """The Pods of the StatefulSets the Operator makes for each Prometheus and Alertmanager."""
    kube = cluster.kube
    resources = [o for o in cluster.applied.objects if o["kind"] in ("Prometheus", "Alertmanager")]
    names = {f"{r['kind'].lower()}-{r['metadata']['name']}" for r in resources}

    def made() -> list[dict[str, Any]]:
        sets = [s for s in kube.items("apps/v1", "StatefulSet", cluster.output.settings.namespace)
                if s["metadata"]["name"] in names]
        return sets if len(sets) == len(names) else []

    from testkit.live import wait_until
    sets = wait_until(made, timeout=60, interval=0.2, what=f"the Operator's StatefulSets {sorted(names)}")
    return [(object_name({**s, "kind": "StatefulSet"}), as_pod({**s, "kind": "StatefulSet"}, s["metadata"]["namespace"]))
            for s in sets]


def test_every_pod_is_admitted_by_the_pod_security_of_its_namespace(cluster):
    """Each pod template, the Operator's Prometheus and Alertmanager pods included, created as a Pod
    (dry run) in its namespace: restricted for the main one, privileged for the node agents'."""
    pods = [*pods_of(cluster.applied.objects), *operator_pods(cluster)]
    assert pod_security_refusals(cluster.kube, pods) == {}
    namespaces = {o["metadata"]["name"] for o in cluster.output.program if o["kind"] == "Namespace"}
    assert {pod["metadata"]["namespace"] for _, pod in pods} <= namespaces, "a pod runs outside the stack's namespaces"
    kinds = {workload.split()[0] for workload, _ in pods}
    assert kinds >= {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    assert any(f"prometheus-{KPS}-prometheus" in workload for workload, _ in pods)


# The checks of the `restricted` standard that the node agents fail, and may: they read the node
# (host network and PID namespace, and so its ports: node-exporter; the node's files through
# hostPath volumes: both; the log files, which root owns: the log agent as root). The server names
# each check failed, with its details.
HOST_ACCESS_CHECKS = {"host namespaces": "", "hostPort": "", "runAsNonRoot != true": "", "runAsUser=0": "",
                      "restricted volume types": 'restricted volume type "hostPath"'}


def failed_checks(message: str) -> dict[str, str]:
    """{check: its details} of a Pod Security refusal: `violates PodSecurity "restricted:v1.34": host
    namespaces (hostNetwork=true), hostPort (container "x" uses hostPort 9100)` -> {"host namespaces":
    "hostNetwork=true", "hostPort": ...}."""
    found = re.search(r'violates PodSecurity "[^"]+": (.*)$', message)
    assert found, message
    return {name.strip(): details for name, details in re.findall(r"(?:^|, )([^(]+?) \(([^)]*)\)", found[1])}


def beyond_host_access(message: str) -> dict[str, str]:
    """The failed checks that are not host access (restricted volume types other than hostPath: the
    server then names them all, `use restricted volume types "hostPath", "nfs"`)."""
    return {check: details for check, details in failed_checks(message).items()
            if check not in HOST_ACCESS_CHECKS or HOST_ACCESS_CHECKS[check] not in details}


def test_the_host_access_judgement_reads_the_servers_words():
    ok = ('pods "x" is forbidden: violates PodSecurity "restricted:v1.34": host namespaces (hostNetwork=true), '
          'restricted volume types (volumes "proc", "sys" use restricted volume type "hostPath")')
    assert beyond_host_access(ok) == {}
    privileged = ('pods "x" is forbidden: violates PodSecurity "restricted:v1.34": privileged (container "c" must not set '
                  'securityContext.privileged=true), restricted volume types (volume "n" uses restricted volume type "nfs")')
    assert set(beyond_host_access(privileged)) == {"privileged", "restricted volume types"}


def test_node_agents_go_beyond_restricted_only_for_the_host_access_they_need(cluster):
    """The agents' pods, judged by `restricted` in a namespace that enforces it: refused, and only
    for reading the node."""
    kube = cluster.kube
    scratch = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "restricted-scratch", "labels": pod_security_labels(RESTRICTED)}}
    kube.must(kube.apply(scratch), "scratch namespace")
    kube.must(kube.apply(default_service_account(scratch["metadata"]["name"])), "its default ServiceAccount")
    agents = cluster.output.settings.agents_namespace
    pods = [(w, pod) for w, pod in pods_of(cluster.applied.objects) if pod["metadata"]["namespace"] == agents]
    assert {w.split()[0] for w, _ in pods} == {"DaemonSet"}, pods
    for workload, pod in pods:
        pod["metadata"]["namespace"] = scratch["metadata"]["name"]
        pod["spec"].pop("serviceAccountName", None)  # the accounts live in the agents' namespace
        answer = kube.create(pod, dry_run=True)
        assert answer.status == 403, f"{workload} passes `restricted`: its namespace need not be privileged"
        assert beyond_host_access(answer.message) == {}, f"{workload}: {answer.message}"


def test_pod_security_refuses_a_node_agent_in_the_restricted_namespace(cluster):
    kube = cluster.kube
    agents = cluster.output.settings.agents_namespace
    workload, pod = next((w, p) for w, p in pods_of(cluster.applied.objects) if p["metadata"]["namespace"] == agents)
    pod["metadata"]["namespace"] = cluster.output.settings.namespace
    pod["spec"].pop("serviceAccountName", None)
    answer = kube.create(pod, dry_run=True)
    assert answer.status == 403 and "violates PodSecurity" in answer.message, (workload, answer.message)


# ------------------------------------------------------------------------------ RBAC


@dataclass(frozen=True)
class Access:
    verb: str
    resource: str
    namespace: str = ""
    """Empty: in every namespace (or cluster-scoped)."""
    group: str = ""
    subresource: str = ""

    def __str__(self) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {self.group + '/' if self.group else ''}{what} in {self.namespace or 'every namespace'}"


def rbac_expectations(cluster: Cluster) -> dict[str, tuple[list[Access], list[Access]]]:
    """Service account -> (what it must be able to do, what it must not)."""
    main, agents = cluster.output.settings.namespace, cluster.output.settings.agents_namespace
    secrets_anywhere = [Access("get", "secrets"), Access("list", "secrets", main), Access("get", "secrets", main)]
    writes = [Access("create", "pods", main), Access("delete", "configmaps", main), Access("patch", "deployments", main, "apps")]
    sidecar = [Access(verb, resource, main) for rule in SIDECAR_RULES for resource in rule["resources"] for verb in rule["verbs"]]
    return {
        # The dashboard and data source sidecars: the ConfigMaps of their namespace, nothing else.
        service_account(main, f"{KPS}-grafana"): (sidecar, [*secrets_anywhere, *writes, Access("list", "configmaps", agents)]),
        # The log agent discovers the pods of its node; it reads no Secret and changes nothing.
        service_account(agents, ALLOY_SERVICE_ACCOUNT): (
            [Access("list", "pods"), Access("watch", "pods"), Access("get", "pods")],
            [*secrets_anywhere, Access("list", "configmaps", main), *writes, Access("get", "nodes", subresource="proxy")]),
        # Prometheus (behind its authenticating proxy, in the same pod) discovers its targets.
        service_account(main, f"{KPS}-prometheus"): (
            [Access("list", "endpointslices", group="discovery.k8s.io"), Access("watch", "services"), Access("list", "pods"),
             Access("get", "nodes", subresource="metrics")],
            [*secrets_anywhere, *writes]),
        # Alertmanager (and its proxy), Mimir and Loki use no Kubernetes API: S3 through IRSA.
        service_account(main, f"{KPS}-alertmanager"): ([], [*secrets_anywhere, *writes, Access("list", "pods")]),
        service_account(main, MIMIR_SERVICE_ACCOUNT): ([], [*secrets_anywhere, *writes, Access("list", "pods")]),
        service_account(main, LOKI_SERVICE_ACCOUNT): ([], [*secrets_anywhere, *writes, Access("list", "pods")]),
    }


def test_each_service_account_may_do_what_it_needs_and_nothing_it_must_not(cluster):
    kube = cluster.kube
    accounts = {service_account(o["metadata"]["namespace"], o["metadata"]["name"])
                for o in cluster.applied.objects if o["kind"] == "ServiceAccount"}
    problems = []
    for account, (must, must_not) in rbac_expectations(cluster).items():
        if account not in accounts:
            continue  # a release this stack does not install
        problems += [f"{account} cannot {a}" for a in must if not kube.can(account, a.verb, a.resource, a.namespace,
                                                                           a.group, a.subresource)]
        problems += [f"{account} can {a}" for a in must_not if kube.can(account, a.verb, a.resource, a.namespace,
                                                                        a.group, a.subresource)]
    assert problems == []
    assert service_account(cluster.output.settings.agents_namespace, ALLOY_SERVICE_ACCOUNT) in accounts


def test_a_service_account_without_a_binding_may_do_nothing(cluster):
    """The negative case of the reviews above: the server says no."""
    nobody = service_account(cluster.output.settings.namespace, "nobody")
    assert not cluster.kube.can(nobody, "list", "configmaps", cluster.output.settings.namespace)
    assert cluster.kube.can(service_account("kube-system", "x"), "list", "configmaps") is False


# ------------------------------------------------------------------------------ upgrades


def _other(value: str, choices: tuple[str, str]) -> str:
    return choices[1] if value == choices[0] else choices[0]


def _previous_selector(obj: dict[str, Any]) -> None:
    # An extra label in the selector and the template, as an earlier revision may have selected by.
    obj["spec"]["selector"].setdefault("matchLabels", {})["revision"] = "previous"
    obj["spec"]["template"]["metadata"].setdefault("labels", {})["revision"] = "previous"


def _previous_claim_size(obj: dict[str, Any]) -> None:
    requests = obj["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    requests["storage"] = "1Gi" if requests["storage"] != "1Gi" else "2Gi"


# How an earlier revision differed in each field of the platform's table of immutable fields
# (policy/immutable.py): the change each entry is shown by here. Turns a copy of the head's object
# into the earlier revision's.
PREVIOUS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("StorageClass", "parameters"): lambda o: o["parameters"].update(previous="true"),
    ("StorageClass", "provisioner"): lambda o: o.update(provisioner="previous.example.com"),
    ("StorageClass", "reclaimPolicy"): lambda o: o.update(
        reclaimPolicy=_other(o.get("reclaimPolicy", "Delete"), ("Delete", "Retain"))),
    ("StorageClass", "volumeBindingMode"): lambda o: o.update(
        volumeBindingMode=_other(o.get("volumeBindingMode", "Immediate"), ("Immediate", "WaitForFirstConsumer"))),
    ("VolumeAttributesClass", "driverName"): lambda o: o.update(driverName="previous.example.com"),
    ("VolumeAttributesClass", "parameters"): lambda o: o["parameters"].update(previous="true"),
    ("StatefulSet", "spec.volumeClaimTemplates"): _previous_claim_size,
    ("StatefulSet", "spec.selector"): _previous_selector,
    ("StatefulSet", "spec.serviceName"): lambda o: o["spec"].update(serviceName="previous"),
    ("StatefulSet", "spec.podManagementPolicy"): lambda o: o["spec"].update(
        podManagementPolicy=_other(o["spec"].get("podManagementPolicy", "OrderedReady"), ("OrderedReady", "Parallel"))),
    ("PersistentVolumeClaim", "spec.storageClassName"): lambda o: o["spec"].update(storageClassName="previous"),
    ("PersistentVolumeClaim", "spec.accessModes"): lambda o: o["spec"].update(
        accessModes=["ReadWriteMany"] if o["spec"].get("accessModes") != ["ReadWriteMany"] else ["ReadWriteOnce"]),
    ("PersistentVolumeClaim", "spec.volumeMode"): lambda o: o["spec"].update(volumeMode="Block"),
    ("PersistentVolumeClaim", "spec.selector"): lambda o: o["spec"].update(selector={"matchLabels": {"revision": "previous"}}),
    ("PersistentVolumeClaim", "spec.volumeName"): lambda o: o["spec"].update(volumeName="previous"),
    ("PersistentVolumeClaim", "spec.dataSource"): lambda o: o["spec"].update(
        dataSource={"kind": "PersistentVolumeClaim", "name": "previous"}),
    ("PersistentVolumeClaim", "spec.dataSourceRef"): lambda o: o["spec"].update(
        dataSourceRef={"kind": "PersistentVolumeClaim", "name": "previous"}),
    ("RoleBinding", "roleRef"): lambda o: o["roleRef"].update(name="previous"),
    ("ClusterRoleBinding", "roleRef"): lambda o: o["roleRef"].update(name="previous"),
    ("Deployment", "spec.selector"): _previous_selector,
    ("DaemonSet", "spec.selector"): _previous_selector,
    ("Job", "spec.template"): lambda o: o["spec"]["template"].update(
        metadata={**(o["spec"]["template"].get("metadata") or {}), "annotations": {"revision": "previous"}}),
}
# Fields the stack's objects leave unset that the server fills from a sibling when an apply drops them
# (a claim's data source and its ref mirror each other): shown by a change from one value to another.
HEAD_HAS = {
    ("PersistentVolumeClaim", "spec.dataSource"): lambda o: o["spec"].update(
        dataSource={"kind": "PersistentVolumeClaim", "name": "current"}),
    ("PersistentVolumeClaim", "spec.dataSourceRef"): lambda o: o["spec"].update(
        dataSourceRef={"kind": "PersistentVolumeClaim", "name": "current"}),
}
# Entries of the table no change is shown for here, and why.
NOT_SHOWN_HERE = {
    ("ReplicaSet", "spec.selector"): "the stack makes no ReplicaSet of its own (a Deployment's are its controller's)",
    ("Job", "spec.selector"): "the API server generates a Job's selector (the stack sets no manualSelector)",
    ("Service", "spec.clusterIP"): "no Service of the stack sets its address: the server keeps the one it gave",
    ("Service", "spec.clusterIPs"): "no Service of the stack sets its addresses: the server keeps the ones it gave",
}
REFUSED_FIELDS = [f for f in PLATFORM_IMMUTABLE_FIELDS if f.effect == PLATFORM_REFUSED]


def test_every_refused_field_of_the_platform_table_is_shown_or_said_why_not():
    table = {(f.kind, f.path) for f in REFUSED_FIELDS}
    assert set(PREVIOUS) | set(NOT_SHOWN_HERE) == table
    assert not set(PREVIOUS) & set(NOT_SHOWN_HERE)


def claims_of(statefulset: dict[str, Any]) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims the StatefulSet controller makes for its first pod."""
    name, namespace = statefulset["metadata"]["name"], statefulset["metadata"]["namespace"]
    return [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": f"{t['metadata']['name']}-{name}-0", "namespace": namespace},
             "spec": t["spec"]} for t in statefulset["spec"].get("volumeClaimTemplates") or []]


def head_object(cluster: Cluster, kind: str) -> dict[str, Any]:
    """The first object of the kind the stack applies that has something to change (a StatefulSet
    with a volume claim template; a claim of one)."""
    sets = [o for o in cluster.applied.objects if o["kind"] == "StatefulSet" and o["spec"].get("volumeClaimTemplates")]
    if kind == "PersistentVolumeClaim":
        return claims_of(sets[0])[0]
    if kind == "StatefulSet":
        return sets[0]
    found = [o for o in cluster.applied.objects if o["kind"] == kind]
    if not found:
        pytest.skip(f"stack {cluster.output.stack} makes no {kind}")
    return found[0]


def said(message: str) -> str:
    """A refusal without the refused value (`Invalid value: "x": field is immutable` -> `field is
    immutable`): the server's words and the table's compared alike."""
    return re.sub(r"Invalid value: (?:.*?: )?(?=field is immutable|may not change|cannot change)", "", message)


@pytest.mark.parametrize("field", [f for f in REFUSED_FIELDS if (f.kind, f.path) in PREVIOUS],
                         ids=lambda f: f"{f.kind}.{f.path}")
def test_a_change_of_an_immutable_field_is_refused_as_the_platform_table_says(cluster, field):
    """The previous revision's object applied, then the head's: the server refuses the change, in
    the words of the table (the refused value left out)."""
    kube = cluster.kube
    head = copy.deepcopy(head_object(cluster, field.kind))
    # A copy of its own per case, beside the stack's object: a deleted object may wait for a
    # controller that is not here (a claim's or a class's protection finalizer).
    head["metadata"]["name"] = f"{head['metadata']['name'][:40]}-{field.path.rsplit('.', 1)[-1].lower()}"
    HEAD_HAS.get((field.kind, field.path), lambda o: None)(head)
    base = copy.deepcopy(head)
    PREVIOUS[(field.kind, field.path)](base)
    assert base != head
    try:
        kube.must(kube.apply(base), f"the previous revision of {object_name(head)}")
        answer = kube.apply(head)
        assert answer.status == 422, f"{object_name(head)}: changing {field.path} was accepted"
        assert said(field.says).rstrip(".") in said(answer.message), f"{object_name(head)}, {field.path}: {answer.message}"
    finally:
        kube.delete(head)


def test_applying_the_same_revision_again_changes_nothing(cluster):
    """The negative case: the head over itself is accepted and leaves every object as it was."""
    kube = cluster.kube
    for obj in [o for o in cluster.applied.objects if o["kind"] in ("StorageClass", "StatefulSet")][:5]:
        before = kube.must(kube.get(obj), object_name(obj))["metadata"]["resourceVersion"]
        kube.must(kube.apply(obj), object_name(obj))
        assert kube.must(kube.get(obj), object_name(obj))["metadata"]["resourceVersion"] == before, object_name(obj)


# ------------------------------------------------------------------------------ a shared cluster


REFERENCE_RELEASE = KPS
REFERENCE_NAMESPACE = "monitoring"
REFERENCE_STORAGE_CLASS = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gp3"},
                           "provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3"},
                           "volumeBindingMode": "WaitForFirstConsumer"}


def reference_install() -> list[dict[str, Any]]:
    """The platform team's install: kube-prometheus-stack at its defaults as `helm install
    kube-prometheus-stack --namespace monitoring --create-namespace` leaves it, and a gp3 class."""
    chart_dir = charts.chart_dir(versions.KUBE_PROMETHEUS_STACK)
    if chart_dir is None:
        pytest.skip(charts.unavailable_reason(versions.KUBE_PROMETHEUS_STACK))
    release = ChartRelease(REFERENCE_RELEASE, versions.KUBE_PROMETHEUS_STACK, REFERENCE_NAMESPACE, {})
    objects = load_all(helm_template(release, {}, chart_dir, []))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": REFERENCE_NAMESPACE}}
    return [namespace, REFERENCE_STORAGE_CLASS, *helm_installed(objects, REFERENCE_RELEASE, REFERENCE_NAMESPACE)]


# Today's clashes of each stack (dev and prod alike) with the reference install: the oracle of
# coexistence. Issue 25 empties this list; until then the test fails when it changes either way, so
# a new clash is never silent. Helm stops at the first: the release name (the reference install's and
# the program's kube-prometheus-stack release are both `kube-prometheus-stack` in `monitoring`);
# behind it, objects of the same names (fullnameOverride `kube-prometheus-stack`) would be adopted by
# the same-named release and so are not listed: renaming the release shows them here.
KNOWN_CLASHES = [
    "Helm release monitoring/kube-prometheus-stack: the name is in use (a release record exists)",
    "Namespace monitoring: exists (pulumi-kubernetes creates it; it does not adopt)",
    "ServiceMonitor monitoring/kube-prometheus-stack-alertmanager: exists (pulumi-kubernetes creates it; it does not adopt)",
    "ServiceMonitor monitoring/kube-prometheus-stack-prometheus: exists (pulumi-kubernetes creates it; it does not adopt)",
    "StorageClass gp3: exists (pulumi-kubernetes creates it; it does not adopt)",
]


@pytest.mark.parametrize("stack", STACKS)
def test_the_clashes_with_a_platform_install_on_a_shared_cluster(tmp_path_factory, stack):
    output = stack_output(stack)
    server = start_server(tmp_path_factory.mktemp(f"apiserver-shared-{stack}"))
    try:
        kube = server.admin
        refused = create_all(kube, [(obj, REFERENCE_NAMESPACE) for obj in reference_install()], manager="helm")
        assert refused == {}, "the reference install itself"
        clashes = shared_cluster_clashes(kube, output)
    finally:
        server.close()
    assert clashes == KNOWN_CLASHES


def test_helm_adopts_an_object_of_its_release_and_refuses_one_of_another(tmp_path_factory):
    """Helm's ownership check, emulated: the negative case beside the one above."""
    server = start_server(tmp_path_factory.mktemp("apiserver-ownership"))
    try:
        kube = server.admin
        config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared", "namespace": "default"}}
        mine, record = helm_installed([config_map], "mine", "default")
        kube.must(kube.create(mine), "ConfigMap")
        assert helm_clashes(kube, [config_map], "mine", "default") == []
        assert helm_clashes(kube, [config_map], "theirs", "default") == [
            "ConfigMap default/shared: exists, owned by release default/mine, not default/theirs"]
        kube.must(kube.create(record), "release record")
        assert helm_clashes(kube, [config_map], "mine", "default") == [
            "Helm release default/mine: the name is in use (a release record exists)"]
    finally:
        server.close()
