"""Kubernetes semantics the checks need offline: manifests, label selectors, schema validation.

Shared by the chart check (tools/chart_check.py) and the tests: the objects the program registers
under the mock runtime as plain manifests, the API server's label-selector matching, strict
validation of built-in kinds (kubernetes-validate) and of custom resources against the
`openAPIV3Schema` of their CustomResourceDefinitions.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping, Optional

import jsonschema
import referencing
import yaml
from kubernetes_validate import utils

from tools.mock_runtime import Registered, plain

# The Kubernetes version the charts are templated and the objects validated for (EKS).
KUBERNETES_VERSION = "1.34"


class _Loader(yaml.CSafeLoader):
    """YAML as the API server reads it; `=` is a string (an enum value in the Operator's CRDs), not
    YAML 1.1's `value` tag."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_all(text: str) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML stream."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


def api_version_and_kind(type_token: str) -> tuple[str, str]:
    """`kubernetes:core/v1:Secret` -> (`v1`, `Secret`); `kubernetes:apps/v1:Deployment` -> (`apps/v1`, ...)."""
    _, group_version, kind = type_token.split(":")
    return group_version.removeprefix("core/"), kind


def program_manifests(resources: Iterable[Registered]) -> list[dict[str, Any]]:
    """The Kubernetes objects the program registers itself (not Helm releases), as manifests, secret
    placeholders revealed."""
    manifests = []
    for resource in resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith("kubernetes:helm.sh/"):
            continue
        api_version, kind = api_version_and_kind(resource.type)
        body = plain(resource.inputs, reveal_secrets=True)
        body.pop("apiVersion", None)
        body.pop("kind", None)
        manifests.append({"apiVersion": api_version, "kind": kind, **body})
    return manifests


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
    definitions = utils.schema_contents(f"kubernetes-json-schema/{_SCHEMA_DIR}/_definitions.json", KUBERNETES_VERSION)
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


_SCHEMA_DIR = f"v{KUBERNETES_VERSION}.0-local-strict"


@lru_cache(maxsize=None)
def builtin_validator(api_version: str, kind: str) -> Optional[jsonschema.protocols.Validator]:
    """kubernetes-validate's strict schema of a built-in kind (what `kubernetes_validate.validate(...,
    strict=True)` uses), loaded once: it reads its 3 MB of definitions again on every call."""
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files.
    file_api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"kubernetes-json-schema/{_SCHEMA_DIR}/{kind.lower()}-{file_api}.json",
                                       KUBERNETES_VERSION)
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
