"""What an upgrade replaces: the identities of a stack's data-bearing resources, to compare between the
last release and this one (tests/test_upgrade.py).

Pulumi replaces a resource whose URN changes (its type, name or parent) without an alias, or one of
whose replace-on-change properties changes: a bucket's name or prefix, a role's, a Helm release's
name or namespace, a StorageClass's name, provisioner or parameters, a namespace's name. Inside a
release, Helm deletes a StatefulSet whose name changes and makes a new one with new, empty volumes,
and refuses to change a StatefulSet's volume claim templates, selector or service name; the
Prometheus Operator names its StatefulSets and their claims after the Prometheus and Alertmanager
resources. So each identity is a key (what names the thing) and the properties a change of which
replaces it or fails the upgrade.

Run as a script with another checkout first on the path (`PYTHONPATH=<checkout> python
testkit/upgrade.py <stack>`), it prints that checkout's identities of a stack as JSON: it imports only
what every release has (tools.render, tools.templating), so the same code reads both sides.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Mapping

# Pulumi types whose replacement loses data or history, and their replace-on-change inputs.
DATA_BEARING = {
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix"),
    "aws:iam/role:Role": ("name", "namePrefix"),
    "pagerduty:index/service:Service": (),
    "pagerduty:index/escalationPolicy:EscalationPolicy": (),
    "kubernetes:storage.k8s.io/v1:StorageClass": ("metadata.name", "provisioner", "parameters"),
    "kubernetes:core/v1:Namespace": ("metadata.name",),
}


def _get(inputs: Mapping[str, Any], dotted: str) -> Any:
    value: Any = inputs
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _claims(templates: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": t["metadata"]["name"], "spec": t.get("spec")} for t in templates]


def identities(stack: str) -> dict[str, Any]:
    """key -> the properties that must not change, of every data-bearing resource of the stack."""
    from tools.templating import template_stack  # the checkout's own

    output = template_stack(stack)
    found: dict[str, Any] = {}
    for resource in output.rendered.resources:
        if resource["type"] in DATA_BEARING and not resource.get("read"):
            key = f"pulumi {resource['type']} {resource['name']} (parent {resource['parent']})"
            found[key] = {prop: _get(resource["inputs"], prop) for prop in DATA_BEARING[resource["type"]]}
    for release in output.releases.values():
        if release.skipped:
            found[f"release {release.name}"] = {"skipped": release.skipped}
            continue
        for obj in release.objects:
            namespace = obj["metadata"].get("namespace") or release.namespace
            where = f"{namespace}/{obj['metadata']['name']}"
            if obj["kind"] == "StatefulSet":
                spec = obj["spec"]
                found[f"StatefulSet {where}"] = {
                    "volumeClaimTemplates": _claims(spec.get("volumeClaimTemplates") or []),
                    "selector": spec.get("selector"), "serviceName": spec.get("serviceName"),
                }
            elif obj["kind"] in ("Prometheus", "Alertmanager"):
                template = (obj["spec"].get("storage") or {}).get("volumeClaimTemplate")
                found[f"{obj['kind']} {where}"] = {"volumeClaimTemplate": template}
            elif obj["kind"] == "PersistentVolumeClaim":
                found[f"PersistentVolumeClaim {where}"] = {"spec": obj["spec"]}
    return found


def replaced(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[str]:
    """One line per data-bearing resource of `base` that `head` removes, renames or changes."""
    problems = []
    for key, properties in sorted(base.items()):
        if key not in head:
            problems.append(f"{key}: gone (renamed, moved or deleted: its data with it)")
        elif head[key] != properties:
            changed = sorted(p for p in set(properties) | set(head[key]) if properties.get(p) != head[key].get(p))
            problems.append(f"{key}: {', '.join(changed)} changed: {[properties.get(p) for p in changed]} -> "
                            f"{[head[key].get(p) for p in changed]}")
    return problems


if __name__ == "__main__":
    json.dump(identities(sys.argv[1]), sys.stdout, sort_keys=True, default=str)
