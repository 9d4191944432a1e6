"""A stack's objects on the loopback API server (testkit/apiserver.py): applied as `pulumi up` would,
their pods judged by Pod Security, and installed on a cluster another platform team already runs.

- `apply_stack`: every object of every release (`helm template`'s output, CRDs and hooks included)
  and every object the program registers itself, server-side applied under the program's field
  manager with strict field validation: CRDs first, then namespaces, admission webhooks last.
- `pod_security_refusals`: each pod template created as a Pod with `dryRun=All` in its namespace:
  Pod Security admission judges Pods only, and nothing creates them here.
- `shared_cluster_clashes`: a reference platform install first (kube-prometheus-stack at its
  defaults, as `helm install` leaves it, and a `gp3` StorageClass), then the stack as its installers
  do it: pulumi-kubernetes creates the program's objects and fails on one that exists (it does not
  adopt); Helm refuses a release name in use in the namespace and, object by object, one that
  exists without its release's ownership metadata.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from policy.model import object_name
from testkit.apiserver import Kube
from testkit.k8s import WORKLOAD_KINDS, pod_template
from tools.templating import StackOutput

# Kinds applied before everything else, in this order: what other objects are checked against or live in.
FIRST_KINDS = ("CustomResourceDefinition", "Namespace")
# Admission webhooks last: theirs point at Services with no endpoints here, which would refuse the
# objects they judge (in a cluster, the webhook's pods answer once they run).
LAST_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
# Helm's ownership metadata (helm.sh/helm/v3/pkg/action/validate.go): an existing object is adopted
# by a release only when it carries all three, with the release's name and namespace.
HELM_MANAGED_BY = ("app.kubernetes.io/managed-by", "Helm")
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
HELM_HOOK = "helm.sh/hook"


def _rank(obj: dict[str, Any]) -> int:
    if obj["kind"] in FIRST_KINDS:
        return FIRST_KINDS.index(obj["kind"])
    return len(FIRST_KINDS) + (obj["kind"] in LAST_KINDS)


def apply_order(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """CRDs, then namespaces, then everything else, admission webhooks last (a stable sort)."""
    return sorted(objects, key=_rank)


def placed(kube: Kube, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object as its installer sends it: a namespaced object without a namespace goes to the
    release's (Helm) or the provider's default one (Pulumi); a cluster-scoped one has none."""
    metadata = dict(obj["metadata"])
    if kube.namespaced(obj):
        metadata.setdefault("namespace", namespace)
    else:
        metadata.pop("namespace", None)
    return {**obj, "metadata": metadata}


def default_service_account(namespace: str) -> dict[str, Any]:
    """What the controller manager makes in every namespace: pods that name no account run as it."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}


def stack_objects(output: StackOutput) -> list[tuple[dict[str, Any], str]]:
    """(object, the namespace it goes to when it names none): every release's output and the
    program's own objects (the provider's default namespace is the main one)."""
    return ([(obj, release.namespace) for release in output.releases.values() for obj in release.objects]
            + [(obj, output.settings.namespace) for obj in output.program])


@dataclass
class Applied:
    objects: list[dict[str, Any]]
    """Every object sent, placed in its namespace, in the order sent."""
    refused: dict[str, str]
    """`Kind namespace/name` -> the server's message, for each object it refused."""


def apply_all(kube: Kube, pairs: Iterable[tuple[dict[str, Any], str]]) -> Applied:
    """Server-side apply every (object, default namespace) in apply order. CRDs are waited for
    before anything uses them, and each namespace gets its `default` ServiceAccount. Within a stage
    (CRDs, namespaces, the rest, webhooks) the requests go four at a time, as a client's would."""
    pairs = list(pairs)
    namespace_of = {id(obj): namespace for obj, namespace in pairs}
    applied = Applied([], {})
    stages: dict[int, list[dict[str, Any]]] = {}
    for obj in apply_order([obj for obj, _ in pairs]):
        stages.setdefault(_rank(obj), []).append(obj)
    with ThreadPoolExecutor(4) as pool:
        for rank, objects in sorted(stages.items()):
            placed_objects = [obj if obj["kind"] == "CustomResourceDefinition" else placed(kube, obj, namespace_of[id(obj)])
                              for obj in objects]
            for obj, answer in zip(placed_objects, pool.map(kube.apply, placed_objects)):
                applied.objects.append(obj)
                if not answer.ok:
                    applied.refused[object_name(obj)] = answer.message
                elif obj["kind"] == "Namespace":
                    kube.must(kube.apply(default_service_account(obj["metadata"]["name"])), "default ServiceAccount")
            crds = [obj for obj in objects if obj["kind"] == "CustomResourceDefinition"]
            if crds:
                kube.wait_established(crds)
    return applied


def apply_stack(kube: Kube, output: StackOutput) -> Applied:
    return apply_all(kube, stack_objects(output))


# ------------------------------------------------------------------------------ Pod Security


def as_pod(workload: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The Pod a workload's controller would create from its template, in `namespace`: a
    StatefulSet's pod also gets a volume for each of its claim templates (its first pod's claims)."""
    template = copy.deepcopy(pod_template(workload))
    name = f"{workload['metadata']['name'][:52]}-pod"
    metadata = {"name": name, "namespace": namespace, "labels": (template.get("metadata") or {}).get("labels") or {}}
    spec = template["spec"]
    if workload["kind"] == "StatefulSet":
        for claim in workload["spec"].get("volumeClaimTemplates") or []:
            claim_name = f"{claim['metadata']['name']}-{workload['metadata']['name']}-0"
            spec.setdefault("volumes", []).append(
                {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def pods_of(objects: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`Kind namespace/name` of the workload, the Pod it makes) for every workload among `objects`
    (placed: namespaced objects carry their namespace)."""
    for obj in objects:
        if obj.get("kind") in WORKLOAD_KINDS:
            yield object_name(obj), as_pod(obj, obj["metadata"]["namespace"])


def pod_security_refusals(kube: Kube, pods: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """{workload: the server's refusal} for each Pod the API server does not admit (dry run: none is
    stored). Pod Security is not the only judge on the way: a Pod naming a ServiceAccount that does
    not exist is refused too."""
    refused = {}
    for workload, pod in pods:
        answer = kube.create(pod, dry_run=True)
        if not answer.ok:
            refused[workload] = answer.message
    return refused


# ------------------------------------------------------------------------------ a shared cluster


def helm_installed(objects: Iterable[dict[str, Any]], release: str, namespace: str) -> list[dict[str, Any]]:
    """What `helm install` leaves in the cluster: each object of the release (hooks are run and
    deleted) with Helm's ownership metadata, and the release's record (a Secret per revision)."""
    installed = []
    for obj in objects:
        annotations = (obj["metadata"].get("annotations") or {})
        if HELM_HOOK in annotations:
            continue
        obj = copy.deepcopy(obj)
        metadata = obj["metadata"]
        metadata["labels"] = {**(metadata.get("labels") or {}), HELM_MANAGED_BY[0]: HELM_MANAGED_BY[1]}
        metadata["annotations"] = {**(metadata.get("annotations") or {}), HELM_RELEASE_NAME: release,
                                   HELM_RELEASE_NAMESPACE: namespace}
        installed.append(obj)
    installed.append(helm_release_record(release, namespace))
    return installed


def helm_release_record(release: str, namespace: str) -> dict[str, Any]:
    """Helm 3's storage of a deployed release's first revision (the `secrets` driver)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{release}.v1", "namespace": namespace,
                         "labels": {"owner": "helm", "name": release, "status": "deployed", "version": "1"}},
            "data": {}}


def create_all(kube: Kube, pairs: Iterable[tuple[dict[str, Any], str]], manager: str) -> dict[str, str]:
    """Plain creates of every (object, default namespace) in apply order; {object: refusal}."""
    pairs = list(pairs)
    namespace_of = {id(obj): namespace for obj, namespace in pairs}
    refused = {}
    ordered = apply_order([obj for obj, _ in pairs])
    for obj in ordered:
        obj = placed(kube, obj, namespace_of[id(obj)])
        answer = kube.create(obj, manager=manager)
        if not answer.ok:
            refused[object_name(obj)] = answer.message
        elif obj["kind"] == "CustomResourceDefinition":
            kube.wait_established([obj])
    return refused


def helm_clashes(kube: Kube, objects: list[dict[str, Any]], release: str, namespace: str) -> list[str]:
    """What stops `helm install <release>` on this cluster, as Helm checks before creating anything:
    the release name in use in the namespace, and each object that exists without the release's
    ownership metadata. CRDs (a chart's crds/ folder) are installed only when absent: never a clash.
    Hooks are deleted before they are created again (their delete policy: before-hook-creation)."""
    records = kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets",
                           params={"labelSelector": f"owner=helm,name={release}"})
    clashes = []
    if kube.must(records, "release records")["items"]:
        clashes.append(f"Helm release {namespace}/{release}: the name is in use (a release record exists)")
    for obj in objects:
        annotations = obj["metadata"].get("annotations") or {}
        if obj["kind"] == "CustomResourceDefinition" or HELM_HOOK in annotations:
            continue
        obj = placed(kube, obj, namespace)
        existing = kube.get(obj)
        if existing.status == 404:
            continue
        metadata = kube.must(existing, object_name(obj))["metadata"]
        owner = ((metadata.get("labels") or {}).get(HELM_MANAGED_BY[0]),
                 (metadata.get("annotations") or {}).get(HELM_RELEASE_NAME),
                 (metadata.get("annotations") or {}).get(HELM_RELEASE_NAMESPACE))
        if owner != (HELM_MANAGED_BY[1], release, namespace):
            clashes.append(f"{object_name(obj)}: exists, owned by release {owner[2]}/{owner[1]}, not {namespace}/{release}")
    return clashes


def shared_cluster_clashes(kube: Kube, output: StackOutput) -> list[str]:
    """Every clash of installing the stack on a cluster where the reference install is: the Helm
    releases' (Helm's checks, above) and the program's objects that exist already (pulumi-kubernetes
    creates them and fails on AlreadyExists). Sorted."""
    clashes = []
    for release in output.releases.values():
        clashes += helm_clashes(kube, release.objects, release.name, release.namespace)
    for obj in apply_order(output.program):
        obj = placed(kube, obj, output.settings.namespace)
        answer = kube.create(obj)
        if answer.status == 409:
            clashes.append(f"{object_name(obj)}: exists (pulumi-kubernetes creates it; it does not adopt)")
        elif not answer.ok:
            raise AssertionError(f"{object_name(obj)}: HTTP {answer.status}: {answer.message}")
    return sorted(clashes)
