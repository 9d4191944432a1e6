"""Change safety: the fields of an object that cannot change once it exists, as plain data, and the
changes between two renders that touch them.

A change to one of these fields is refused by the API server (a Helm upgrade then fails, or `pulumi
up` replaces the object: which a protected resource refuses), or, for the Operator's storage, is
accepted and does nothing to the volumes that exist. `make policy BASE=<rev>` (tools/changes.py)
fails on such a change unless a migration in MIGRATIONS carries it: its runbook says how the change
is made in the cluster (docs/operations/volumes.md). The API-server tests confirm the table against
kube-apiserver; `make diff` and day-2 tooling read it.

Source: k8s.io/kubernetes v1.34.12, `pkg/apis/storage/validation/validation.go`
(ValidateStorageClassUpdate, ValidateVolumeAttributesClassUpdate), `pkg/apis/apps/validation/validation.go`
(ValidateStatefulSetUpdate: only replicas, ordinals, template, updateStrategy, revisionHistoryLimit,
persistentVolumeClaimRetentionPolicy and minReadySeconds may change; ValidateDeploymentUpdate,
DaemonSet, ReplicaSet: selector), `pkg/apis/core/validation/validation.go`
(ValidatePersistentVolumeClaimUpdate: "spec is immutable after creation except resources.requests
and volumeAttributesClassName for bound claims"; a request "can not be less than previous value";
ValidateServiceUpdate: clusterIP), `pkg/apis/batch/validation/validation.go` (Job selector and
template); prometheus-operator v0.93 (a StatefulSet it cannot update is deleted and re-created; its
claims are the StatefulSet controller's, which never updates an existing claim).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional

from policy.kubernetes import quantity
from policy.model import object_key

RESIZE = "docs/operations/volumes.md#resize-a-volume"
PERFORMANCE = "docs/operations/volumes.md#change-the-performance-of-a-volume"
STORAGE_CLASS = "docs/operations/volumes.md#change-the-storage-class"
STATEFULSET = "docs/operations/volumes.md#change-what-a-statefulset-is-made-of"
RECREATE = "docs/operations/volumes.md#re-create-an-object-with-a-changed-immutable-field"

REFUSED = "refused by the API server"
NO_EFFECT = "accepted, but the volumes that exist keep what they have"


@dataclass(frozen=True)
class ImmutableField:
    kind: str
    path: str
    """Dotted path in the object (`spec.volumeClaimTemplates`)."""
    effect: str
    """REFUSED or NO_EFFECT."""
    says: str
    """What the API server (or the Operator) says or does."""
    runbook: str
    """How the change is made instead."""


IMMUTABLE_FIELDS: tuple[ImmutableField, ...] = (
    ImmutableField("StorageClass", "parameters", REFUSED, "parameters: Forbidden: updates to parameters are forbidden.",
                   STORAGE_CLASS),
    ImmutableField("StorageClass", "provisioner", REFUSED, "provisioner: Forbidden: updates to provisioner are forbidden.",
                   STORAGE_CLASS),
    ImmutableField("StorageClass", "reclaimPolicy", REFUSED,
                   "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.", STORAGE_CLASS),
    ImmutableField("StorageClass", "volumeBindingMode", REFUSED, "volumeBindingMode: field is immutable", STORAGE_CLASS),
    ImmutableField("VolumeAttributesClass", "driverName", REFUSED,
                   "driverName: Forbidden: updates to driverName are forbidden.", PERFORMANCE),
    ImmutableField("VolumeAttributesClass", "parameters", REFUSED,
                   "parameters: Forbidden: updates to parameters are forbidden.", PERFORMANCE),
    *(ImmutableField("StatefulSet", path, REFUSED,
                     "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                     "'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' "
                     "and 'minReadySeconds' are forbidden", STATEFULSET)
      for path in ("spec.volumeClaimTemplates", "spec.selector", "spec.serviceName", "spec.podManagementPolicy")),
    *(ImmutableField("PersistentVolumeClaim", path, REFUSED,
                     "spec: Forbidden: spec is immutable after creation except resources.requests and "
                     "volumeAttributesClassName for bound claims", STORAGE_CLASS)
      for path in ("spec.storageClassName", "spec.accessModes", "spec.volumeMode", "spec.selector", "spec.volumeName",
                   "spec.dataSource", "spec.dataSourceRef")),
    *(ImmutableField(kind, "spec.selector", REFUSED, "spec.selector: field is immutable", RECREATE)
      for kind in ("Deployment", "DaemonSet", "ReplicaSet", "Job")),
    ImmutableField("Job", "spec.template", REFUSED, "spec.template: field is immutable", RECREATE),
    *(ImmutableField("Service", path, REFUSED, "spec.clusterIPs[0]: may not change once set", RECREATE)
      for path in ("spec.clusterIP", "spec.clusterIPs")),
    *(ImmutableField(kind, "roleRef", REFUSED, "roleRef: Invalid value: cannot change roleRef", RECREATE)
      for kind in ("RoleBinding", "ClusterRoleBinding")),
    *(ImmutableField(kind, "spec.storage", NO_EFFECT,
                     "the Operator re-creates its StatefulSet with the new claim template; the claims that exist "
                     "keep their size, class and attributes class", RESIZE)
      for kind in ("Prometheus", "Alertmanager")),
)
# A claim's storage request may grow (where its class allows expansion), never shrink.
SHRINK_REFUSED = "spec.resources.requests.storage: Forbidden: field can not be less than previous value"


@dataclass(frozen=True)
class Change:
    kind: str
    namespace: str
    name: str
    path: str
    before: Any
    after: Any
    effect: str
    says: str
    runbook: str

    @property
    def subject(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    def __str__(self) -> str:
        return (f"{self.subject}: {self.path} changes from {_short(self.before)} to {_short(self.after)}: "
                f"{self.effect} ({self.says}); the supported path: {self.runbook}")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def _at(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


CLAIM_SIZE = "spec.resources.requests.storage"


def _shrinks(before: Any, after: Any) -> bool:
    """Whether a claim's requested size goes down (both sizes known)."""
    return None not in (quantity(before), quantity(after)) and quantity(after) < quantity(before)


def changes(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> list[Change]:
    """Every change to an immutable field between two sets of objects (matched by kind, namespace and
    name), and every claim that would shrink."""
    old = {object_key(o): o for o in before}
    found = []
    for obj in after:
        key = object_key(obj)
        if key not in old:
            continue
        for field in IMMUTABLE_FIELDS:
            if field.kind == key[0] and _at(old[key], field.path) != _at(obj, field.path):
                found.append(Change(*key, field.path, _at(old[key], field.path), _at(obj, field.path),
                                    field.effect, field.says, field.runbook))
        was, size = _at(old[key], CLAIM_SIZE), _at(obj, CLAIM_SIZE)
        if key[0] == "PersistentVolumeClaim" and _shrinks(was, size):
            found.append(Change(*key, CLAIM_SIZE, was, size, REFUSED, SHRINK_REFUSED, RESIZE))
    return found


@dataclass(frozen=True)
class Migration:
    """A change to immutable fields made on purpose, with the runbook that makes it in the cluster."""

    name: str
    runbook: str
    stacks: tuple[str, ...]
    covers: tuple[tuple[str, str, str], ...]
    """(kind, name regex, path) of each change it carries."""

    def carries(self, stack: str, change: Change) -> bool:
        return stack in self.stacks and any(
            kind == change.kind and re.fullmatch(name, change.name) and path == change.path
            for kind, name, path in self.covers)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "gp3-class-without-performance",
        "docs/operations/volumes.md#migration-gp3-class-without-performance",
        ("prod",),
        (("StorageClass", "gp3", "parameters"),
         ("Prometheus", ".*", "spec.storage"), ("Alertmanager", ".*", "spec.storage")),
    ),
)


def refusal(kind: str, path: tuple[Any, ...], before: Any = None, after: Any = None) -> Optional[str]:
    """What the API server says refusing to change the field at `path` (a path of keys from the object's
    top, under which the change lies) of an existing object from `before` to `after`; None when it
    accepts the change. Read from IMMUTABLE_FIELDS, whose kinds are unique across the API groups the
    stack uses (`make diff` flags what it returns)."""
    dotted = ".".join(str(part) for part in path)
    for field in IMMUTABLE_FIELDS:
        if field.kind == kind and field.effect == REFUSED and (dotted == field.path or dotted.startswith(field.path + ".")):
            return field.says
    if kind == "PersistentVolumeClaim" and dotted == CLAIM_SIZE and _shrinks(before, after):
        return SHRINK_REFUSED
    return None


def carried_by(stack: str, change: Change, migrations: tuple[Migration, ...] = MIGRATIONS) -> Optional[Migration]:
    return next((m for m in migrations if m.carries(stack, change)), None)


def uncarried(stack: str, found: Iterable[Change], migrations: tuple[Migration, ...] = MIGRATIONS) -> Iterator[Change]:
    return (c for c in found if carried_by(stack, c, migrations) is None)
