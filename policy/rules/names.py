"""Names and labels of everything the stack makes, as the API server and Helm take them."""

from __future__ import annotations

from typing import Iterator, Mapping

from policy.kubernetes import DNS1123_SUBDOMAIN, dns1123_label_problem, label_problems, name_problem
from policy.model import RELEASE, Rule, StackView, Violation, is_unknown, object_name

# Helm 3.20 pkg/chartutil/validate_name.go: release names are DNS-1123 subdomains of at most 53
# characters (charts append suffixes to them).
HELM_RELEASE_NAME_MAX = 53
# The Prometheus Operator runs each Prometheus and Alertmanager as the StatefulSet `<kind>-<name>`.
OPERATOR_STATEFULSETS = ("Prometheus", "Alertmanager")


def _template_labels(obj: Mapping) -> Mapping:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def names(view: StackView) -> Iterator[Violation]:
    for obj in view.objects:
        meta = obj.get("metadata") or {}
        kind, name, urn = str(obj.get("kind")), meta.get("name"), view.urn_of(obj)
        if is_unknown(name) or is_unknown(meta.get("namespace")):
            continue
        if isinstance(name, str) and (problem := name_problem(kind, name)) is not None:
            yield Violation(object_name(obj), f"name {name!r}: {problem}", urn)
        namespace = meta.get("namespace")
        if isinstance(namespace, str) and (problem := dns1123_label_problem(namespace)) is not None:
            yield Violation(object_name(obj), f"namespace {namespace!r}: {problem}", urn)
        if kind in OPERATOR_STATEFULSETS and isinstance(name, str):
            statefulset = f"{kind.lower()}-{name}"
            if (problem := name_problem("StatefulSet", statefulset)) is not None:
                yield Violation(object_name(obj), f"the Operator's StatefulSet {statefulset!r}: {problem}", urn)
        for problem in label_problems({k: v for k, v in (meta.get("labels") or {}).items() if not is_unknown(v)}):
            yield Violation(object_name(obj), problem, urn)
        for problem in label_problems(_template_labels(obj)):
            yield Violation(object_name(obj), f"pod template {problem}", urn)
    for release in view.of_type(RELEASE):
        name = release.inputs.get("name")
        if not isinstance(name, str) or is_unknown(name):
            continue
        if len(name) > HELM_RELEASE_NAME_MAX or not DNS1123_SUBDOMAIN.fullmatch(name):
            yield Violation(f"Helm release {name}", f"name {name!r}: Helm takes DNS-1123 subdomains of at most "
                            f"{HELM_RELEASE_NAME_MAX} characters ({len(name)})", release.urn)


RULES = (
    Rule("kubernetes-names",
         "Names, namespaces and labels of every object (the program's and the charts'), and Helm release names, "
         "are what the API server and Helm accept, StatefulSet names leaving room for their pods' labels.",
         names,
         ("k8s.io/apimachinery v0.34.12 pkg/util/validation/validation.go",
          "k8s.io/kubernetes v1.34.12 pkg/apis/{core,apps,batch}/validation, pkg/controller/history",
          "helm/helm v3.20 pkg/chartutil/validate_name.go")),
)
