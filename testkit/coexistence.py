"""The shared-cluster oracle: what goes wrong when a stack is installed beside another monitoring stack,
judged statically on what the charts make of both.

`reference_platform()` is what a platform team runs: kube-prometheus-stack at its defaults in
namespace `monitoring` (the pinned chart, `helm template` at its default values), and a `gp3`
StorageClass. `clashes(ours, theirs)` lists, one line each:

- objects of the same kind, namespace and name (cluster-scoped: kind and name): the API server's
  AlreadyExists on a plain create, Helm's "invalid ownership metadata" on an object of another release;
- host ports both claim (a container's hostPort, or a host-network pod's ports): the second pod never
  schedules on any node and its DaemonSet is never ready;
- a Prometheus Operator of one side that reconciles the other's Prometheus or Alertmanager, or writes
  the kubelet Service the other writes: two controllers rewrite the same StatefulSets and Service. (A
  stack whose Prometheus is served by the other's Operator and that runs none itself is what joining
  means, and is no clash.)
- an admission webhook of one side whose namespace and object selectors take in objects of
  namespaces that are not its own: failing closed, it blocks other teams' writes while it is down;
- a Prometheus of one side that selects the other's ServiceMonitors, PodMonitors, Probes or
  PrometheusRules: it scrapes the other's targets and evaluates its rules twice.

Operator flags and selectors are read as the Operator reads them (`--prometheus-instance-namespaces`,
`--prometheus-instance-selector`, ..., `--namespaces`, `--deny-namespaces`, `--kubelet-service`).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Optional

from monitoring import versions
from policy.kubernetes import CLUSTER_SCOPED
from testkit.k8s import label_selector_matches, pod_template
from tools import charts
from tools.go_tools import binary
from tools.templating import StackOutput, load_all

PLATFORM_NAMESPACE = "monitoring"
PLATFORM_RELEASE = "kube-prometheus-stack"
PLATFORM_STORAGE_CLASS = "gp3"
# Namespaces every cluster has, besides both sides' own: a webhook or Operator reaching into them
# reaches other teams.
OTHER_NAMESPACES = ("default", "kube-system", "payments")


@dataclass(frozen=True)
class Side:
    """One monitoring stack's objects, each with the namespace it lands in, and its own namespaces."""

    name: str
    objects: tuple[tuple[str, Mapping[str, Any]], ...]
    """(namespace an object lands in, the object); cluster-scoped objects carry ""."""
    namespaces: frozenset[str]

    def of_kind(self, *kinds: str) -> list[tuple[str, Mapping[str, Any]]]:
        return [(ns, o) for ns, o in self.objects if o.get("kind") in kinds]


def side(name: str, releases: Iterable[tuple[str, Iterable[Mapping[str, Any]]]],
         namespaces: Iterable[str]) -> Side:
    """A side from (release namespace, objects) pairs: an object without a namespace lands in its
    release's, unless its kind is cluster-scoped."""
    placed = []
    for release_namespace, objects in releases:
        for obj in objects:
            scoped = obj.get("kind") in CLUSTER_SCOPED
            placed.append(("" if scoped else (obj.get("metadata") or {}).get("namespace") or release_namespace, obj))
    return Side(name, tuple(placed), frozenset(namespaces))


def stack_side(output: StackOutput) -> Side:
    """A rendered stack's side: every release's objects and the program's, and the stack's namespaces."""
    releases = [(r.namespace, r.objects) for r in output.releases.values()] + [("default", output.program)]
    return side(output.stack, releases, [output.settings.namespace, output.settings.agents_namespace])


@lru_cache(maxsize=None)
def reference_platform() -> Optional[Side]:
    """kube-prometheus-stack at its defaults in `monitoring`, and a `gp3` class; None without the chart."""
    chart = charts.chart_dir(versions.KUBE_PROMETHEUS_STACK)
    if chart is None:
        return None
    text = subprocess.run([binary("helm"), "template", PLATFORM_RELEASE, str(chart), "--namespace", PLATFORM_NAMESPACE,
                           "--include-crds", "--kube-version", versions.KUBERNETES_VERSION],
                          capture_output=True, text=True, check=True, timeout=120).stdout
    extra = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PLATFORM_NAMESPACE}},
             {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": PLATFORM_STORAGE_CLASS},
              "provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3"}}]
    return side("platform", [(PLATFORM_NAMESPACE, load_all(text) + extra)], [PLATFORM_NAMESPACE])


# ------------------------------------------------------------------------------ names


def _key(namespace: str, obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], namespace, obj["metadata"]["name"]


def name_clashes(ours: Side, theirs: Side) -> list[str]:
    mine = {_key(ns, o) for ns, o in ours.objects}
    return [f"{kind} {namespace + '/' if namespace else ''}{name}: both make it"
            for kind, namespace, name in sorted(mine & {_key(ns, o) for ns, o in theirs.objects})]


# ------------------------------------------------------------------------------ host ports


def host_ports(s: Side) -> dict[tuple[int, str], str]:
    """(port, protocol) -> the workload taking it on every node it runs on."""
    taken = {}
    for namespace, obj in s.objects:
        template = pod_template(obj)
        if template is None:
            continue
        spec = template["spec"]
        for container in [*(spec.get("initContainers") or []), *spec.get("containers", [])]:
            for port in container.get("ports") or []:
                number = port.get("hostPort") or (port.get("containerPort") if spec.get("hostNetwork") else None)
                if number:
                    taken[(number, port.get("protocol", "TCP"))] = f"{obj['kind']} {namespace}/{obj['metadata']['name']}"
    return taken


def host_port_clashes(ours: Side, theirs: Side) -> list[str]:
    mine, other = host_ports(ours), host_ports(theirs)
    return [f"host port {port}/{protocol}: {mine[(port, protocol)]} and {other[(port, protocol)]}"
            for port, protocol in sorted(set(mine) & set(other))]


# ------------------------------------------------------------------------------ controllers


def parse_selector(text: str) -> dict[str, Any]:
    """A label selector in the Operator's flag syntax (`a=b,c=d`; `a!=b`; `a`) as a LabelSelector."""
    labels, expressions = {}, []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            expressions.append({"key": key.strip(), "operator": "NotIn", "values": [value.strip()]})
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            labels[key.strip()] = value.strip()
        elif term.startswith("!"):
            expressions.append({"key": term[1:], "operator": "DoesNotExist"})
        else:
            expressions.append({"key": term, "operator": "Exists"})
    return {"matchLabels": labels, "matchExpressions": expressions}


@dataclass(frozen=True)
class Operator:
    where: str
    flags: Mapping[str, str]

    def _namespaces(self, instance_flag: str) -> Optional[set[str]]:
        listed = self.flags.get(instance_flag) or self.flags.get("namespaces")
        return set(listed.split(",")) if listed else None

    def reconciles(self, namespace: str, resource: Mapping[str, Any]) -> bool:
        """Whether it reconciles a Prometheus or Alertmanager resource in `namespace`."""
        kind = "prometheus" if resource["kind"] == "Prometheus" else "alertmanager"
        allowed = self._namespaces(f"{kind}-instance-namespaces")
        if allowed is not None and namespace not in allowed:
            return False
        if namespace in set(filter(None, self.flags.get("deny-namespaces", "").split(","))):
            return False
        selector = parse_selector(self.flags.get(f"{kind}-instance-selector", ""))
        return label_selector_matches(selector, resource["metadata"].get("labels") or {})

    @property
    def kubelet_service(self) -> Optional[str]:
        return self.flags.get("kubelet-service")


def operators(s: Side) -> list[Operator]:
    """The Prometheus Operators a side runs, with their flags."""
    found = []
    for namespace, obj in s.of_kind("Deployment"):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            if "prometheus-operator" in container.get("image", "") and "admission" not in container.get("image", ""):
                flags = {}
                for arg in container.get("args") or []:
                    key, _, value = arg.lstrip("-").partition("=")
                    flags[key] = value
                found.append(Operator(f"Deployment {namespace}/{obj['metadata']['name']}", flags))
    return found


def controller_clashes(ours: Side, theirs: Side) -> list[str]:
    """Two Operators on one resource, or on one kubelet Service (in both directions)."""
    problems = []
    for operator in operators(ours):
        for namespace in OTHER_NAMESPACES:
            for kind in ("Prometheus", "Alertmanager"):
                stranger = {"kind": kind, "metadata": {"name": "any", "labels": {"app": "anything"}}}
                if operator.reconciles(namespace, stranger):
                    problems.append(f"{ours.name}'s Operator ({operator.where}) reconciles any {kind} of {namespace}")
    for a, b in ((ours, theirs), (theirs, ours)):
        for operator in operators(a):
            for namespace, resource in b.of_kind("Prometheus", "Alertmanager"):
                served_at_home = any(o.reconciles(namespace, resource) for o in operators(b))
                if operator.reconciles(namespace, resource) and served_at_home:
                    problems.append(f"{a.name}'s Operator ({operator.where}) reconciles {b.name}'s "
                                    f"{resource['kind']} {namespace}/{resource['metadata']['name']} beside {b.name}'s own")
    for mine in operators(ours):
        for other in operators(theirs):
            if mine.kubelet_service and mine.kubelet_service == other.kubelet_service:
                problems.append(f"both Operators write the kubelet Service {mine.kubelet_service}")
    return problems


def _webhook_reaches(hook: Mapping[str, Any], namespace: str) -> bool:
    """Whether a webhook is called for objects of `namespace` (objects of any labels)."""
    selector = hook.get("namespaceSelector") or {}
    return label_selector_matches(selector, {"kubernetes.io/metadata.name": namespace})


def webhook_clashes(ours: Side, theirs: Side) -> list[str]:
    """Our admission webhooks that are called for objects of namespaces not ours."""
    foreign = (set(theirs.namespaces) | set(OTHER_NAMESPACES)) - set(ours.namespaces)
    problems = []
    for _, config in ours.of_kind("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for hook in config.get("webhooks") or []:
            reached = sorted(ns for ns in foreign if _webhook_reaches(hook, ns))
            if reached:
                problems.append(f"{config['kind']} {config['metadata']['name']} webhook {hook['name']} is called for "
                                f"objects of {', '.join(reached)} (failurePolicy {hook.get('failurePolicy', 'Fail')})")
    return problems


_SELECTORS = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor", "Probe": "probe",
              "PrometheusRule": "rule", "ScrapeConfig": "scrapeConfig"}


def _selects(spec: Mapping[str, Any], field: str, namespace: str, obj: Mapping[str, Any]) -> bool:
    selector = spec.get(f"{field}Selector")
    if selector is None:  # a nil selector selects nothing
        return False
    namespace_selector = spec.get(f"{field}NamespaceSelector")
    if namespace_selector is None:  # nil: the Prometheus' own namespace only
        in_scope = namespace == spec.get("__namespace__")
    else:
        in_scope = label_selector_matches(namespace_selector, {"kubernetes.io/metadata.name": namespace})
    return in_scope and label_selector_matches(selector, obj["metadata"].get("labels") or {})


def selection_clashes(ours: Side, theirs: Side) -> list[str]:
    """Monitors and rules of one side that the other's Prometheus loads (both directions)."""
    problems = []
    for a, b in ((ours, theirs), (theirs, ours)):
        for prometheus_namespace, prometheus in a.of_kind("Prometheus"):
            spec = {**prometheus["spec"], "__namespace__": prometheus_namespace}
            for namespace, obj in b.of_kind(*_SELECTORS):
                if _selects(spec, _SELECTORS[obj["kind"]], namespace, obj):
                    problems.append(f"{a.name}'s Prometheus {prometheus['metadata']['name']} loads {b.name}'s "
                                    f"{obj['kind']} {namespace}/{obj['metadata']['name']}")
    return problems


def clashes(ours: Side, theirs: Side) -> list[str]:
    """Everything that goes wrong with `ours` installed beside `theirs`, one line each."""
    return (name_clashes(ours, theirs) + host_port_clashes(ours, theirs) + controller_clashes(ours, theirs)
            + webhook_clashes(ours, theirs) + selection_clashes(ours, theirs))
