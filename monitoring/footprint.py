"""What a stack asks of its cluster: the CPU, memory and volume requests of every workload, from the
objects the charts and the program make (the chart check's `helm template` output).

Requests are what the scheduler reserves and what the cluster is sized and billed by, so the
footprint counts requests, not use. A pod's request is the scheduler's: the sum of its containers'
requests, or its largest init container's where that is more. Pods the Prometheus Operator makes
from a Prometheus or Alertmanager resource carry the resource's `resources` and the requests of its
extra `containers` (the authenticating proxy). DaemonSet pods are counted per node, apart: they cost
as many times as the cluster has nodes. Jobs (hooks) run and go, and are not counted. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from policy import kubernetes
from policy.ebs import GIB


def quantity(value: Any) -> float:
    """A Kubernetes resource quantity as a number: `250m` -> 0.25, `1Gi` -> 1073741824, `2` -> 2."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    parsed = kubernetes.quantity(value)
    if parsed is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(parsed)


@dataclass(frozen=True)
class Workload:
    """One workload's requests: per pod, and how many pods (per node for a DaemonSet)."""

    namespace: str
    kind: str
    name: str
    pods: int
    cpu: float
    """Cores requested by one pod."""
    memory: float
    """Bytes requested by one pod."""
    storage: float = 0.0
    """Bytes of volumes claimed per pod (its StatefulSet's volume claim templates)."""

    @property
    def per_node(self) -> bool:
        return self.kind == "DaemonSet"

    @property
    def total_cpu(self) -> float:
        return self.cpu * self.pods

    @property
    def total_memory(self) -> float:
        return self.memory * self.pods

    @property
    def total_storage(self) -> float:
        return self.storage * self.pods


def _requests(container: Mapping[str, Any]) -> tuple[float, float]:
    requests = (container.get("resources") or {}).get("requests") or {}
    return quantity(requests.get("cpu", 0)), quantity(requests.get("memory", 0))


def pod_requests(containers: Iterable[Mapping[str, Any]], init_containers: Iterable[Mapping[str, Any]] = ()) -> tuple[float, float]:
    """(cores, bytes) the scheduler reserves for a pod: its containers' sum, or its largest init
    container's where that is larger (init containers run one at a time, before the others)."""
    running = [_requests(c) for c in containers]
    init = [_requests(c) for c in init_containers]
    return (max([sum(cpu for cpu, _ in running), *(cpu for cpu, _ in init)]),
            max([sum(mem for _, mem in running), *(mem for _, mem in init)]))


def _claims(templates: Iterable[Mapping[str, Any]]) -> float:
    return sum(quantity(((t.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", 0))
               for t in templates)


def _operator_pod(resource: Mapping[str, Any]) -> tuple[float, float, float]:
    """(cores, bytes, volume bytes) of a pod the Operator makes from a Prometheus or Alertmanager: the
    main container's `resources`, the extra containers' (a container named after the main one only
    changes it), and the volume claim template of `storage`."""
    spec = resource["spec"]
    main = resource["kind"].lower()
    cpu, memory = _requests({"resources": spec.get("resources") or {}})
    for extra in spec.get("containers") or []:
        if extra.get("name") != main and extra.get("name") != "config-reloader":
            extra_cpu, extra_memory = _requests(extra)
            cpu, memory = cpu + extra_cpu, memory + extra_memory
    template = (spec.get("storage") or {}).get("volumeClaimTemplate")
    return cpu, memory, _claims([template] if template else [])


def workloads(objects: Iterable[Mapping[str, Any]], default_namespace: str = "default") -> list[Workload]:
    """Every long-running workload among `objects`, in the order given."""
    found = []
    for obj in objects:
        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        namespace = meta.get("namespace") or default_namespace
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            spec = obj["spec"]
            pod = spec["template"]["spec"]
            cpu, memory = pod_requests(pod.get("containers") or [], pod.get("initContainers") or [])
            pods = 1 if kind == "DaemonSet" else spec.get("replicas", 1)
            storage = _claims(spec.get("volumeClaimTemplates") or []) if kind == "StatefulSet" else 0.0
            found.append(Workload(namespace, kind, meta["name"], pods, cpu, memory, storage))
        elif kind in ("Prometheus", "Alertmanager"):
            cpu, memory, storage = _operator_pod(obj)
            found.append(Workload(namespace, kind, meta["name"], obj["spec"].get("replicas", 1), cpu, memory, storage))
        elif kind == "PersistentVolumeClaim":
            storage = quantity(obj["spec"]["resources"]["requests"]["storage"])
            found.append(Workload(namespace, kind, meta["name"], 1, 0.0, 0.0, storage))
    return found


@dataclass(frozen=True)
class Footprint:
    workloads: tuple[Workload, ...]

    def _sum(self, attribute: str, per_node: bool) -> float:
        return sum(getattr(w, attribute) for w in self.workloads if w.per_node == per_node)

    @property
    def cpu(self) -> float:
        """Cores requested, DaemonSets aside."""
        return self._sum("total_cpu", False)

    @property
    def memory(self) -> float:
        return self._sum("total_memory", False)

    @property
    def storage(self) -> float:
        return self._sum("total_storage", False)

    @property
    def cpu_per_node(self) -> float:
        return self._sum("total_cpu", True)

    @property
    def memory_per_node(self) -> float:
        return self._sum("total_memory", True)

    def by(self, match: str) -> tuple[float, float]:
        """(cores, bytes) of the workloads whose name contains `match`."""
        chosen = [w for w in self.workloads if match in w.name and not w.per_node]
        return sum(w.total_cpu for w in chosen), sum(w.total_memory for w in chosen)

    def table(self, nodes: Optional[int] = None) -> str:
        """One line per workload and the totals, as `make render` prints them."""
        lines = [f"{'workload':58} {'pods':>5} {'cpu':>7} {'memory':>9} {'volumes':>9}"]
        for w in sorted(self.workloads, key=lambda w: (w.per_node, w.namespace, w.name)):
            pods = f"{w.pods}/node" if w.per_node else str(w.pods)
            lines.append(f"{w.namespace + '/' + w.kind + '/' + w.name:58.58} {pods:>5} {w.total_cpu:7.2f} "
                         f"{w.total_memory / GIB:8.2f}G {w.total_storage / GIB:8.0f}G")
        lines.append(f"{'total, per-node agents aside':58} {'':>5} {self.cpu:7.2f} {self.memory / GIB:8.2f}G "
                     f"{self.storage / GIB:8.0f}G")
        lines.append(f"{'per-node agents, each node':58} {'':>5} {self.cpu_per_node:7.2f} "
                     f"{self.memory_per_node / GIB:8.2f}G")
        if nodes:
            lines.append(f"{f'total on {nodes} nodes':58} {'':>5} {self.cpu + nodes * self.cpu_per_node:7.2f} "
                         f"{(self.memory + nodes * self.memory_per_node) / GIB:8.2f}G")
        return "\n".join(lines)


def footprint(objects: Iterable[Mapping[str, Any]], default_namespace: str = "default") -> Footprint:
    return Footprint(tuple(workloads(objects, default_namespace)))
