"""What every pod of the stack shares: a `restricted` security context, resources, spread over
nodes and zones, and volume sizes as Kubernetes quantities."""

from __future__ import annotations

import re
from typing import Mapping

from config.settings import Resources
from config.types import Size


def container_resources(resources: Resources) -> dict:
    """A Kubernetes `resources` block; no CPU limit when none is set (throttling hurts more than it protects)."""
    limits = {"memory": str(resources.memory_limit)}
    if resources.cpu_limit is not None:
        limits["cpu"] = str(resources.cpu_limit)
    return {
        "requests": {"cpu": str(resources.cpu_request), "memory": str(resources.memory_request)},
        "limits": limits,
    }


ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"


def zone_spread(match_labels: Mapping[str, str], match_label_keys: tuple[str, ...] = (), hard: bool = False) -> dict:
    """A topology spread constraint over availability zones, a skew of one.

    Soft for stateless pods: they start wherever there is room, and a zone may be short of nodes for
    a while. Hard for pods whose volumes bind them to their zones: the scheduler never puts two of
    them where one zone's loss takes both (an evicted one comes back to its volume's zone, which keeps
    the skew it had), and that is the only placement decision it ever makes for them."""
    constraint = {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
                  "labelSelector": {"matchLabels": dict(match_labels)}}
    if match_label_keys:
        constraint["matchLabelKeys"] = list(match_label_keys)
    return constraint


def one_per_node(match_labels: Mapping[str, str]) -> dict:
    """A pod affinity keeping the pods `match_labels` selects on different nodes (required: a node
    going down takes one replica, never two)."""
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": dict(match_labels)}}]}}


def spread_replicas(app: str, instance_label: str) -> dict:
    """Prometheus Operator spec keys (prometheusSpec, alertmanagerSpec) for replicas that must not
    fail together: never two on one node (the chart's `hard` anti-affinity), nor, their volumes binding
    them to their zones, in one zone. `instance_label` is the pod label the Operator sets to the
    resource's name."""
    return {
        "podAntiAffinity": "hard",
        "podAntiAffinityTopologyKey": HOSTNAME,
        "topologySpreadConstraints": [zone_spread({"app.kubernetes.io/name": app}, (instance_label,), hard=True)],
    }


# Kubernetes quantities spell decimal units without the B: 50GB is `50G`, 500KB is `500k`.
_KUBERNETES_DECIMAL = {"B": "", "KB": "k", "MB": "M", "GB": "G", "TB": "T"}


def kubernetes_quantity(size: Size) -> str:
    """A setting size as a Kubernetes quantity (`100Gi` stays, `50GB` becomes `50G`)."""
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", size.text).groups()
    return number + _KUBERNETES_DECIMAL.get(unit, unit)


# What Pod Security `restricted` asks of every container, and a read-only root file system.
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def restricted_pod(uid: int) -> dict:
    """A pod security context `restricted` admits: a non-root user (and group, and volume group)."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def small_resources(cpu: str, memory: str, memory_limit: str) -> dict:
    """Requests and a memory limit for a helper container (sidecar, exporter, job): no CPU limit,
    as for every container here (throttling a scrape or a reload hurts more than it protects)."""
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}
