"""Every Secret and ConfigMap a pod of the stack needs exists in its namespace.

A pod whose volume names a missing Secret or ConfigMap stays in ContainerCreating; a missing one in
`env` keeps it from starting (CreateContainerConfigError). The Prometheus Operator mounts the
Secrets and ConfigMaps of a Prometheus' `secrets` and `configMaps` as volumes, and reads the
`basicAuth`, `configSecret` and `additionalScrapeConfigs` it names (kubernetes/kubernetes
`pkg/kubelet/volumemanager`, prometheus-operator `Documentation/api-reference/api.md`). A
reference marked `optional: true` may be missing.

Each reference must be created by the stack (the program or a chart), in the referring object's
namespace, or be one of MADE_BY_OTHERS: what a controller of the cluster creates at run time, each
with who makes it.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from policy.model import Rule, StackView, Violation, is_unknown, object_name

POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
OPERATOR_KINDS = ("Prometheus", "Alertmanager", "PrometheusAgent", "ThanosRuler")

# (kind, name) -> who creates it, when no object of the stack does.
MADE_BY_OTHERS = {
    ("Secret", "kube-prometheus-stack-admission"):
        "kube-prometheus-stack's admission-webhook Job (prometheusOperator.admissionWebhooks.patch) creates it "
        "before the Operator starts",
}


def _pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def _pod_references(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(kind, name, where) of each Secret and ConfigMap a pod spec needs."""
    for volume in spec.get("volumes") or []:
        yield from _volume_references(volume, f"volume {volume.get('name')}")
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        where = f"container {container.get('name')}"
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = source.get(key)
                if ref and not ref.get("optional"):
                    yield kind, ref.get("name"), f"{where} env {env.get('name')}"
        for env_from in container.get("envFrom") or []:
            for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                ref = env_from.get(key)
                if ref and not ref.get("optional"):
                    yield kind, ref.get("name"), f"{where} envFrom"
    for pull in spec.get("imagePullSecrets") or []:
        yield "Secret", pull.get("name"), "imagePullSecrets"


def _volume_references(volume: Mapping[str, Any], where: str) -> Iterator[tuple[str, str, str]]:
    secret, config_map = volume.get("secret"), volume.get("configMap")
    if secret and not secret.get("optional"):
        yield "Secret", secret.get("secretName"), where
    if config_map and not config_map.get("optional"):
        yield "ConfigMap", config_map.get("name"), where
    for source in (volume.get("projected") or {}).get("sources") or []:
        for key, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
            ref = source.get(key)
            if ref and not ref.get("optional"):
                yield kind, ref.get("name"), where


# The Operator's fields holding a selector of one key of a Secret (or, `configMap`, a ConfigMap).
SELECTOR_FIELDS = {
    **dict.fromkeys(("username", "password", "credentials", "clientSecret", "keySecret", "bearerTokenSecret", "secret",
                     "additionalScrapeConfigs", "additionalAlertManagerConfigs", "additionalAlertRelabelConfigs"),
                    "Secret"),
    "configMap": "ConfigMap",
}


def _selectors(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """The Operator's SecretKeySelectors (`basicAuth`, `authorization`, `oauth2`, `tlsConfig`, ...)
    anywhere in a custom resource's spec: a mapping with `name` and `key` under a Secret-holding field."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(inner, Mapping) and set(inner) >= {"name", "key"} and not inner.get("optional") \
                    and key in SELECTOR_FIELDS:
                yield SELECTOR_FIELDS[key], inner["name"], f"{path}.{key}"
            else:
                yield from _selectors(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _selectors(inner, f"{path}[{i}]")


def _operator_references(obj: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    spec = obj.get("spec") or {}
    for name in spec.get("secrets") or []:
        yield "Secret", name, "spec.secrets (mounted in every pod)"
    for name in spec.get("configMaps") or []:
        yield "ConfigMap", name, "spec.configMaps (mounted in every pod)"
    if spec.get("configSecret"):
        yield "Secret", spec["configSecret"], "spec.configSecret"
    yield from _pod_references({"volumes": spec.get("volumes"), "containers": spec.get("containers"),
                                "initContainers": spec.get("initContainers")})
    yield from _selectors({k: v for k, v in spec.items() if k not in ("volumes", "containers", "initContainers")}, "spec")


def references(view: StackView) -> Iterator[Violation]:
    made = {(o.get("kind"), (o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name"))
            for o in view.kind("Secret", "ConfigMap")}
    # cert-manager writes each Certificate's Secret.
    made |= {("Secret", (c.get("metadata") or {}).get("namespace"), (c.get("spec") or {}).get("secretName"))
             for c in view.kind("Certificate")}
    for obj in view.objects:
        kind = obj.get("kind")
        if kind in POD_KINDS:
            needed = _pod_references(_pod_spec(obj))
        elif kind in OPERATOR_KINDS:
            needed = _operator_references(obj)
        else:
            continue
        namespace = (obj.get("metadata") or {}).get("namespace")
        for ref_kind, name, where in needed:
            if (ref_kind, namespace, name) in made or (ref_kind, name) in MADE_BY_OTHERS or is_unknown(name):
                continue
            yield Violation(object_name(obj), f"{where} needs {ref_kind} {namespace}/{name}, which nothing in the stack "
                            f"creates: its pods cannot start until it exists", view.urn_of(obj))


RULES = (
    Rule("pod-references-exist",
         "Every Secret and ConfigMap a pod of the stack mounts or reads (volumes, env, the Operator's secrets, "
         "configMaps, basicAuth, configSecret) is created by the stack in that namespace.",
         references,
         ("kubernetes v1.34 pod volumes and env (kubelet: ContainerCreating, CreateContainerConfigError)",
          "prometheus-operator v0.93 Documentation/api-reference/api.md (PrometheusSpec.secrets, configMaps)")),
)
