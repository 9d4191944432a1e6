"""Kubernetes semantics the checks need offline: label selectors, schema validation, RBAC, pod
templates, the flows network policies allow (Pod Security is the API server's: tests/test_apiserver.py).

Shared by the chart check (testkit/chart_check.py) and the tests: the API server's label-selector
matching, strict validation of built-in kinds (kubernetes-validate) and of custom resources against
the `openAPIV3Schema` of their CustomResourceDefinitions.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping, Optional

import jsonschema
import referencing
from kubernetes_validate import utils

from monitoring.versions import KUBERNETES_MINOR


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics: every matchLabels pair and every expression holds; {}
    matches everything. (A nil selector is the caller's business: it means "nothing" in some
    fields and "everything" in others.)"""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# ------------------------------------------------------------------------------ validation


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 structural schema as a JSON schema that refuses unknown fields (the API server
    would silently prune them, which hides typos) and accepts null where `nullable` says so."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if (schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def crd_validators(crds: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator of the object's spec and status, per served version of each CRD."""
    validators = {}
    for crd in crds:
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            # ObjectMeta is validated by the API server itself, not by the CRD's (opaque) schema.
            schema.get("properties", {}).pop("metadata", None)
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            validators[key] = jsonschema.Draft7Validator(_strict(schema))
    return validators


def validation_problems(objects: Iterable[Mapping[str, Any]],
                        validators: Mapping[tuple[str, str], jsonschema.protocols.Validator]) -> Iterator[str]:
    """One line per problem: built-in kinds strictly against Kubernetes' own schemas, custom
    resources against their CRD's schema; an object of a kind neither knows is a problem too."""
    for obj in objects:
        where = f"{obj.get('kind')} {obj.get('metadata', {}).get('namespace', '')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key in validators:
            body = {k: v for k, v in obj.items() if k != "metadata"}
            for error in validators[key].iter_errors(body):
                path = ".".join(str(p) for p in error.absolute_path)
                yield f"{where}: {path}: {error.message[:300]}"
            continue
        validator = builtin_validator(*key)
        if validator is None:
            yield f"{where}: no schema for {key[0]} {key[1]} (neither built in nor a CRD of the stack)"
            continue
        for error in validator.iter_errors(dict(obj)):
            path = ".".join(str(p) for p in error.absolute_path)
            yield f"{where}: {path}: {error.message[:300]}"


@lru_cache(maxsize=None)
def _definitions() -> referencing.Registry:
    definitions = utils.schema_contents(f"kubernetes-json-schema/{_SCHEMA_DIR}/_definitions.json", KUBERNETES_MINOR)
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


_SCHEMA_DIR = f"v{KUBERNETES_MINOR}.0-local-strict"


@lru_cache(maxsize=None)
def builtin_validator(api_version: str, kind: str) -> Optional[jsonschema.protocols.Validator]:
    """kubernetes-validate's strict schema of a built-in kind (what `kubernetes_validate.validate(...,
    strict=True)` uses), loaded once: it reads its 3 MB of definitions again on every call."""
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files.
    file_api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"kubernetes-json-schema/{_SCHEMA_DIR}/{kind.lower()}-{file_api}.json",
                                       KUBERNETES_MINOR)
    except FileNotFoundError:
        return None
    registry = referencing.Resource.from_contents(schema) @ _definitions()
    return jsonschema.Draft202012Validator(schema, registry=registry)


# ------------------------------------------------------------------------------ RBAC


def granted_rules(objects: Iterable[Mapping[str, Any]], namespace: str, service_account: str) -> list[tuple[str, dict]]:
    """Every RBAC rule the service account holds through the objects' bindings, as (scope, rule):
    scope is the namespace a RoleBinding grants it in, or `*` for a ClusterRoleBinding."""
    objects = list(objects)
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o.get("rules") or []
             for o in objects if o.get("kind") in ("Role", "ClusterRole")}
    granted = []
    for binding in objects:
        if binding.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding.get("subjects") or []
        binding_namespace = binding["metadata"].get("namespace")
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == service_account
                   and s.get("namespace", binding_namespace) == namespace for s in subjects):
            continue
        ref = binding["roleRef"]
        role_namespace = binding_namespace if ref["kind"] == "Role" else None
        scope = binding_namespace if binding["kind"] == "RoleBinding" else "*"
        if (ref["kind"], role_namespace, ref["name"]) not in roles:
            raise AssertionError(f"{binding['kind']} {binding['metadata']['name']} refers to a missing {ref['kind']} {ref['name']}")
        granted += [(scope, rule) for rule in roles[(ref["kind"], role_namespace, ref["name"])]]
    return granted


# ------------------------------------------------------------------------------ workloads

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod")


def pod_template(workload: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The pod template (metadata and spec) a workload object runs; None for other kinds."""
    kind = workload.get("kind")
    if kind == "Pod":
        return workload
    if kind == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]
    if kind in WORKLOAD_KINDS:
        return workload["spec"]["template"]
    return None


# ------------------------------------------------------------------------------ network policies


@dataclass(frozen=True)
class Peer:
    """One end of a network flow: a pod (its namespace and labels) or an address outside the cluster."""

    name: str
    namespace: Optional[str] = None
    """None: outside the cluster, matched by ipBlocks only."""
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = ""
    ports: Mapping[str, int] = field(default_factory=dict)
    """Named container ports (a policy may name a port instead of numbering it)."""
    host_network: bool = False
    """On the node's network: no network policy selects it."""


def flow_allowed(policies: Iterable[Mapping[str, Any]], src: Peer, dst: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether the NetworkPolicies let `src` open `port`/`protocol` on `dst`: the source's egress and
    the destination's ingress must both allow it (Kubernetes NetworkPolicy semantics)."""
    policies = list(policies)
    return (_direction_allows(policies, "Egress", src, dst, port, protocol)
            and _direction_allows(policies, "Ingress", dst, src, port, protocol))


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _direction_allows(policies: list, direction: str, subject: Peer, other: Peer, port: int, protocol: str) -> bool:
    if subject.namespace is None or subject.host_network:
        return True
    applicable = [p for p in policies if p["metadata"]["namespace"] == subject.namespace
                  and direction in _policy_types(p["spec"]) and label_selector_matches(p["spec"]["podSelector"], subject.labels)]
    if not applicable:
        return True
    destination = subject if direction == "Ingress" else other
    for policy in applicable:
        for rule in policy["spec"].get(direction.lower()) or []:
            peers = rule.get("from" if direction == "Ingress" else "to")
            if peers and not any(_peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers):
                continue
            if not rule.get("ports") or any(_port_matches(p, destination, port, protocol) for p in rule["ports"]):
                return True
    return False


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Peer) -> bool:
    if "ipBlock" in peer:
        if other.namespace is not None:
            return False  # pod addresses are the policies' selectors' business, not CIDRs'
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return (address in ipaddress.ip_network(block["cidr"])
                and not any(address in ipaddress.ip_network(e) for e in block.get("except") or []))
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": other.namespace}
        if not label_selector_matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or label_selector_matches(peer["podSelector"], other.labels)


def _port_matches(entry: Mapping[str, Any], destination: Peer, port: int, protocol: str) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    if "port" not in entry:
        return True
    wanted = entry["port"]
    number = destination.ports.get(wanted) if isinstance(wanted, str) else wanted
    return number is not None and number <= port <= entry.get("endPort", number)
