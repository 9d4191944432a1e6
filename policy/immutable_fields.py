"""The one table of the fields the Kubernetes API server refuses to change on an existing object.

An upgrade that changes one of them fails (Helm's upgrade, or Pulumi's update), or, where the
provider knows it, replaces the object: for a StatefulSet or a claim, that is the data's volume.
Each rule is the API server's own validation (k8s.io/kubernetes pkg/apis/<group>/validation,
`Validate<Kind>Update`), quoted in its message; the API-server tests apply a base revision's
objects and then the head's and confirm the table against the real server.

    immutable(api_version, kind, path, before, after) -> the server's message, or None
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

Path = tuple[Any, ...]
MISSING = object()


@dataclass(frozen=True)
class Rule:
    group: str
    kind: str
    applies: Callable[[Path, Any, Any], bool]
    """Whether the change of the field at this path (from `metadata`/`spec`/... down) is refused."""
    message: str
    """The API server's message."""


def _under(*prefixes: Path) -> Callable[[Path, Any, Any], bool]:
    return lambda path, before, after: any(path[:len(p)] == p for p in prefixes)


# StatefulSetSpec fields the server lets an update change (ValidateStatefulSetUpdate).
_STATEFULSET_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds"}


def _statefulset(path: Path, before: Any, after: Any) -> bool:
    return path[:1] == ("spec",) and len(path) > 1 and path[1] not in _STATEFULSET_MUTABLE


def _quantity_bytes(text: Any) -> Optional[float]:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    if not isinstance(text, str):
        return None
    for suffix, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(suffix):
            try:
                return float(text[:-len(suffix)]) * factor
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None


_CLAIM_STORAGE = ("spec", "resources", "requests", "storage")


def _claim_spec(path: Path, before: Any, after: Any) -> bool:
    """A bound claim's spec is immutable but for its storage request and its attributes class."""
    return path[:1] == ("spec",) and path[:4] != _CLAIM_STORAGE and path[:2] != ("spec", "volumeAttributesClassName")


def _claim_shrinks(path: Path, before: Any, after: Any) -> bool:
    """A volume grows; it never shrinks."""
    if path != _CLAIM_STORAGE:
        return False
    old, new = _quantity_bytes(before), _quantity_bytes(after)
    return old is None or new is None or new < old


RULES = (
    Rule("storage.k8s.io", "StorageClass", _under(("parameters",)), "updates to parameters are forbidden."),
    Rule("storage.k8s.io", "StorageClass", _under(("provisioner",)), "updates to provisioner are forbidden."),
    Rule("storage.k8s.io", "StorageClass", _under(("reclaimPolicy",)), "updates to reclaimPolicy are forbidden."),
    Rule("storage.k8s.io", "StorageClass", _under(("volumeBindingMode",)), "updates to volumeBindingMode are forbidden."),
    Rule("apps", "StatefulSet", _statefulset,
         "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
         "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"),
    Rule("apps", "Deployment", _under(("spec", "selector")), "field is immutable"),
    Rule("apps", "DaemonSet", _under(("spec", "selector")), "field is immutable"),
    Rule("batch", "Job", _under(("spec", "selector"), ("spec", "template")), "field is immutable"),
    Rule("", "PersistentVolumeClaim", _claim_spec,
         "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"),
    Rule("", "PersistentVolumeClaim", _claim_shrinks, "field can not be less than previous value"),
    Rule("", "Service", _under(("spec", "clusterIP"), ("spec", "clusterIPs")), "field is immutable"),
    Rule("rbac.authorization.k8s.io", "RoleBinding", _under(("roleRef",)), "cannot change roleRef"),
    Rule("rbac.authorization.k8s.io", "ClusterRoleBinding", _under(("roleRef",)), "cannot change roleRef"),
)


def immutable(api_version: str, kind: str, path: Path, before: Any = MISSING, after: Any = MISSING) -> Optional[str]:
    """The API server's message refusing to change the field at `path` of an existing object of this
    kind from `before` to `after`, or None when it accepts the change."""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    for rule in RULES:
        if rule.group == group and rule.kind == kind and rule.applies(tuple(path), before, after):
            return rule.message
    return None
