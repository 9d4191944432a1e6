"""What a rule judges, the same under `pulumi preview` and offline: a stack's resources and the
Kubernetes objects they make.

`StackView.resources` are the registered resources with their inputs (secrets as plain values: a
policy pack sees them so, and the offline render has placeholders). `StackView.objects` are the
Kubernetes objects: the program's own, plus what the charts make of the Helm releases. Offline,
where the charts are available, that is the `helm template` output (tools/templating.py); under
`pulumi preview` a release is one resource, so the pack only knows the custom resources the
Prometheus Operator turns into StatefulSets, whose specs kube-prometheus-stack takes verbatim from
its values (`prometheus_objects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Optional

# What a value known only after deployment reads as (the render's placeholder; the pack maps
# Pulumi's own unknown markers to it).
UNKNOWN = "<unknown until deployed>"

RELEASE = "kubernetes:helm.sh/v3:Release"
# What Pulumi appends to a resource's name when it names the object itself (Kubernetes: 8
# characters; AWS: 7), as placeholders of the right length.
AUTONAME_SUFFIX = "xxxxxxxx"
KUBE_PROMETHEUS_STACK = "kube-prometheus-stack"


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and UNKNOWN in value


def api_version_and_kind(type_token: str) -> tuple[str, str]:
    """`kubernetes:core/v1:Secret` -> (`v1`, `Secret`); `kubernetes:apps/v1:Deployment` -> (`apps/v1`, ...);
    a type of another provider -> ("", the type)."""
    if not type_token.startswith("kubernetes:"):
        return "", type_token
    _, group_version, kind = type_token.split(":")
    return group_version.removeprefix("core/"), kind


@dataclass(frozen=True)
class Resource:
    type: str
    """Pulumi type token."""
    name: str
    """Pulumi resource name."""
    inputs: Mapping[str, Any]
    protect: bool = False
    urn: str = ""

    def manifest(self) -> Optional[dict[str, Any]]:
        """The Kubernetes object of a `kubernetes:` resource (not a Helm release); None otherwise."""
        if not self.type.startswith("kubernetes:") or self.type == RELEASE:
            return None
        api_version, kind = api_version_and_kind(self.type)
        if self.type == "kubernetes:apiextensions.k8s.io:CustomResource":
            api_version, kind = self.inputs["apiVersion"], self.inputs["kind"]
        body = {k: v for k, v in self.inputs.items() if k not in ("apiVersion", "kind")}
        metadata = dict(body.get("metadata") or {})
        if "name" not in metadata:
            # Pulumi names the object after the resource, with 8 random characters.
            metadata["name"] = f"{self.name}-{AUTONAME_SUFFIX}"
        return {"apiVersion": api_version, "kind": kind, **body, "metadata": metadata}


@dataclass(frozen=True)
class Violation:
    subject: str
    """What is wrong, named as a person finds it: `StorageClass gp3`, `claim data of StatefulSet monitoring/loki-write`."""
    message: str
    """The value and the limit, and where the limit comes from."""
    urn: str = ""
    rule: str = ""
    """The rule's name (set by `Rule.run`)."""

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.message}"


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


@dataclass(frozen=True)
class StackView:
    resources: tuple[Resource, ...]
    objects: tuple[Mapping[str, Any], ...]
    charts_templated: bool = False
    """Whether `objects` hold the charts' output (offline) or only what the releases' values tell (preview)."""
    urns: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    """The URN of the resource registering each of the program's own objects, by `object_key`."""

    @classmethod
    def of(cls, resources: Iterable[Resource], chart_objects: Optional[Iterable[Mapping[str, Any]]] = None) -> "StackView":
        """The view of `resources`, with the charts' output when it is given, else what the
        releases' values tell of the Operator's custom resources."""
        resources = tuple(resources)
        owned = [(m, r.urn) for r in resources if (m := r.manifest()) is not None]
        program = [m for m, _ in owned]
        urns = {object_key(m): urn for m, urn in owned}
        if chart_objects is None:
            made = [(o, r.urn) for r in resources if r.type == RELEASE for o in prometheus_objects(r.inputs)]
            urns.update({object_key(o): urn for o, urn in made})
            return cls(resources, tuple(program + [o for o, _ in made]), charts_templated=False, urns=urns)
        return cls(resources, tuple(program + list(chart_objects)), charts_templated=True, urns=urns)

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def kind(self, *kinds: str) -> list[Mapping[str, Any]]:
        return [o for o in self.objects if o.get("kind") in kinds]

    def urn_of(self, obj: Mapping[str, Any]) -> str:
        """The URN of the resource that registers `obj` (the program's own objects); "" for a chart's."""
        return self.urns.get(object_key(obj), "")


def object_name(obj: Mapping[str, Any], default_namespace: str = "") -> str:
    """`Kind namespace/name` (`Kind name` when cluster-scoped)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or default_namespace
    return f"{obj.get('kind')} {namespace + '/' if namespace else ''}{meta.get('name', '?')}"


def prometheus_objects(release_inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Prometheus and Alertmanager custom resources a kube-prometheus-stack release makes,
    as far as its values say: the chart copies `prometheusSpec` and `alertmanagerSpec` into them
    (`storage` from `storageSpec`), named `<fullname>-prometheus` and `<fullname>-alertmanager`.
    The charts' output confirms it where the charts are templated (tests/test_policy.py)."""
    values = release_inputs.get("values")
    if release_inputs.get("chart") != KUBE_PROMETHEUS_STACK or not isinstance(values, Mapping):
        return []
    fullname = values.get("fullnameOverride") or f"{release_inputs.get('name')}-{KUBE_PROMETHEUS_STACK}"
    namespace = release_inputs.get("namespace")
    made = []
    for kind, section, spec_key in (("Prometheus", "prometheus", "prometheusSpec"),
                                    ("Alertmanager", "alertmanager", "alertmanagerSpec")):
        spec = dict(((values.get(section) or {}).get(spec_key)) or {})
        if not isinstance(spec, dict) or (values.get(section) or {}).get("enabled") is False:
            continue
        if kind == "Prometheus" and "storageSpec" in spec:
            spec["storage"] = spec.pop("storageSpec")
        made.append({"apiVersion": "monitoring.coreos.com/v1", "kind": kind,
                     "metadata": {"name": f"{fullname}-{section}", "namespace": namespace}, "spec": spec})
    return made


@dataclass(frozen=True)
class Rule:
    name: str
    """The policy's name in the pack (`pulumi preview` prints it)."""
    description: str
    check: Callable[[StackView], Iterable[Violation]] = field(repr=False)
    sources: tuple[str, ...] = ()
    """Where its limits come from (docs/platform-rules.md quotes them)."""
    account_wide: bool = False
    """Judged over every stack at once by `make policy` (names PagerDuty keeps unique per account)."""

    def run(self, view: StackView) -> list[Violation]:
        return [replace(v, rule=self.name) for v in self.check(view)]
