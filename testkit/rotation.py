"""Node rotations and zone outages, judged on a stack's workloads (the chart check's `helm template`
output): does a managed node group upgrade proceed, and does an availability zone's loss keep each
store's quorum?

What a rotation is, from the EKS documentation ("Understand each phase of node updates",
managed-node-update-behavior): the node group first launches new nodes, up to two per availability
zone, in the zones of the nodes it replaces (EC2 AZ rebalancing), and marks every old node
unschedulable; then it drains the old nodes one at a time (`maxUnavailable` 1 by default) through the
Eviction API, which refuses while a PodDisruptionBudget allows no disruption; pods still there after 15
minutes fail the upgrade (PodEvictionFailure). So, for every replicated workload (the pods one budget
selects, or one object of several replicas):

- the budget admits an eviction at all (PodEvictionFailure otherwise), and never so many that fewer
  than the workload's quorum stay up;
- a node holds no more of its pods than the budget lets go at once, or draining (or losing) that node
  breaks the quorum: required anti-affinity by node keeps it to one;
- an evicted pod comes back on a new node of its zone (the one its volume or node selector binds it
  to): with required anti-affinity, its pods in one zone must not outnumber the new nodes there;
- a stateful workload (volumes bind its pods to their zones: no pod moves out of a lost zone) keeps its
  quorum when one zone goes, counting the most pods its hard constraints let one zone hold (node
  selectors pinning pods to zones, topology spread that refuses to schedule past its skew).

Pure data in, one line per problem out.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from testkit.k8s import label_selector_matches

ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
# New nodes per zone before the first drain (EKS managed node groups: "up to two instances per
# Availability Zone").
SURGE_PER_ZONE = 2


@dataclass(frozen=True)
class Pods:
    """Pods of one object: how many, their labels, and what binds them to nodes and zones."""

    where: str
    replicas: int
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    """The pod spec (or the Operator resource's spec): affinity, nodeSelector, topologySpreadConstraints."""
    stateful: bool
    """Volumes bind the pods to their zones."""


@dataclass
class Workload:
    name: str
    pods: list[Pods] = field(default_factory=list)
    budget: Optional[Mapping[str, Any]] = None
    """The spec of the one PodDisruptionBudget selecting its pods."""
    budgets: int = 0

    @property
    def replicas(self) -> int:
        return sum(p.replicas for p in self.pods)

    @property
    def stateful(self) -> bool:
        return any(p.stateful for p in self.pods)

    def allowed_disruptions(self) -> int:
        """Evictions the budget admits with every pod healthy."""
        spec = self.budget or {}
        if "maxUnavailable" in spec:
            return _count(spec["maxUnavailable"], self.replicas)
        if "minAvailable" in spec:
            return max(0, self.replicas - _count(spec["minAvailable"], self.replicas))
        return self.replicas


def _count(value: Any, replicas: int) -> int:
    """An int-or-percent budget field as a number of pods (percentages rounded up, as the API does)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


def _hard_anti_affinity(pods: Pods) -> bool:
    terms = (((pods.spec.get("affinity") or {}).get("podAntiAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    return any(t.get("topologyKey") == HOSTNAME and label_selector_matches(t.get("labelSelector"), pods.labels)
               for t in terms)


def _pinned_zone(pods: Pods) -> Optional[str]:
    return (pods.spec.get("nodeSelector") or {}).get(ZONE)


def _hard_zone_skew(pods: Pods) -> Optional[int]:
    for constraint in pods.spec.get("topologySpreadConstraints") or []:
        if (constraint.get("topologyKey") == ZONE and constraint.get("whenUnsatisfiable") == "DoNotSchedule"
                and label_selector_matches(constraint.get("labelSelector"), pods.labels)):
            return int(constraint.get("maxSkew", 1))
    return None


def most_in_one_zone(workload: Workload, zones: Sequence[str]) -> int:
    """The most pods of the workload one zone can hold under its hard constraints."""
    pinned = [(_pinned_zone(p), p.replicas) for p in workload.pods]
    if all(zone is not None for zone, _ in pinned):
        per_zone: dict[str, int] = {}
        for zone, count in pinned:
            per_zone[zone] = per_zone.get(zone, 0) + count
        return max(per_zone.values())
    skews = [_hard_zone_skew(p) for p in workload.pods]
    if all(skew is not None for skew in skews):
        skew, total = max(skews), workload.replicas
        spreads = (c for c in itertools.product(range(total + 1), repeat=len(zones))
                   if sum(c) == total and max(c) - min(c) <= skew)
        return max(max(c) for c in spreads)
    return workload.replicas


def problems(workloads: Sequence[Workload], zones: Sequence[str], quorum: Mapping[str, int]) -> list[str]:
    """What stops a rotation or breaks a quorum, one line per problem; `quorum`: pods each workload needs
    up (by name; 1 when not given)."""
    found = []
    for w in workloads:
        need = quorum.get(w.name, 1)
        allowed = w.allowed_disruptions()
        if w.budgets != 1:
            found.append(f"{w.name}: {w.budgets} disruption budgets select its {w.replicas} pods, expected one")
            continue
        if allowed < 1:
            limits = {k: v for k, v in (w.budget or {}).items() if k in ("minAvailable", "maxUnavailable")}
            found.append(f"{w.name}: its budget {limits} admits no eviction: a drain fails (PodEvictionFailure)")
        if w.replicas - allowed < need:
            found.append(f"{w.name}: its budget lets {allowed} of {w.replicas} go at once, leaving fewer than the "
                         f"{need} its quorum needs")
        crowded = most_in_one_zone(w, zones)
        # Kept apart by node: required anti-affinity, or one pod pinned to each zone.
        pinned_alone = all(_pinned_zone(p) for p in w.pods) and crowded == 1
        apart = pinned_alone or all(_hard_anti_affinity(p) for p in w.pods)
        if not apart and min(allowed, w.replicas) < w.replicas:
            found.append(f"{w.name}: two pods may share a node (no required anti-affinity by node): draining it "
                         "takes more than the budget lets go, and losing it more than one replica")
        if apart and (w.stateful or any(_pinned_zone(p) for p in w.pods)) and crowded > SURGE_PER_ZONE:
            found.append(f"{w.name}: up to {crowded} pods bound to one zone, one per node, but a rotation brings "
                         f"{SURGE_PER_ZONE} new nodes there: an evicted pod finds no node")
        if w.stateful and w.replicas - crowded < need:
            found.append(f"{w.name}: one zone may hold {crowded} of its {w.replicas} pods, bound there by their "
                         f"volumes: losing it leaves fewer than the {need} its quorum needs")
    return found


def workloads(objects: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Workload]:
    """The replicated workloads among (namespace, object) pairs: the pods each budget selects (an object
    of one replica counts when a budget takes it in with others), and each object of several replicas
    no budget selects."""
    pods: list[tuple[str, Pods]] = []
    for namespace, obj in objects:
        kind = obj.get("kind")
        if kind in ("Deployment", "StatefulSet"):
            spec = obj["spec"]
            labels = spec["template"]["metadata"].get("labels") or {}
            pods.append((namespace, Pods(f"{kind}/{obj['metadata']['name']}", spec.get("replicas", 1), labels,
                                         spec["template"]["spec"], bool(spec.get("volumeClaimTemplates")))))
        elif kind in ("Prometheus", "Alertmanager"):
            # The Operator labels the pods with the resource's kind and name.
            name = obj["metadata"]["name"]
            extra = {"operator.prometheus.io/name": name, "prometheus": name} if kind == "Prometheus" else {"alertmanager": name}
            labels = {"app.kubernetes.io/name": kind.lower(), "app.kubernetes.io/instance": name, **extra}
            pods.append((namespace, Pods(f"{kind}/{name}", obj["spec"].get("replicas", 1), labels, obj["spec"],
                                         bool((obj["spec"].get("storage") or {}).get("volumeClaimTemplate")))))
    budgets = [(ns, o) for ns, o in objects if o.get("kind") == "PodDisruptionBudget"]
    found: list[Workload] = []
    taken: set[int] = set()
    for namespace, budget in budgets:
        selected = [i for i, (ns, p) in enumerate(pods)
                    if ns == namespace and label_selector_matches(budget["spec"].get("selector"), p.labels)]
        if sum(pods[i][1].replicas for i in selected) < 2:
            continue
        workload = Workload(f"{namespace}/{budget['metadata']['name']}", [pods[i][1] for i in selected], budget["spec"])
        workload.budgets = sum(1 for ns, b in budgets if ns == namespace and all(
            label_selector_matches(b["spec"].get("selector"), pods[i][1].labels) for i in selected))
        found.append(workload)
        taken |= set(selected)
    for i, (namespace, p) in enumerate(pods):
        if i not in taken and p.replicas > 1:
            found.append(Workload(f"{namespace}/{p.where}", [p], None, 0))
    return found
