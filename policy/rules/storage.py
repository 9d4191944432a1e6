"""EBS gp3 volumes: every claim judged as the EBS CSI driver and EC2 will provision it.

A claim's volume takes its StorageClass' parameters, overridden by its VolumeAttributesClass' where
it names one (CSI: "Values specified in mutable_parameters MUST take precedence over the values
from parameters"); the driver rounds the request up to whole GiB, caps IOPS as `capIOPS` does and
hands the rest to EC2 (policy/ebs.py). Claims come from PersistentVolumeClaims, StatefulSets'
volumeClaimTemplates and the Prometheus Operator's `storage.volumeClaimTemplate`, each volume of a
template alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

from policy.ebs import EBS_CSI_DRIVER, gp3_performance_problem, gp3_volume, round_up_gib
from policy.kubernetes import quantity
from policy.model import Rule, StackView, Violation, is_unknown, object_name

# StorageClass parameters of the EBS CSI driver (docs/parameters.md, v1.64.0; case-insensitive,
# compared lower-cased). The driver refuses any other key ("Invalid parameter key %s for
# CreateVolume"); the external provisioner strips its own `csi.storage.k8s.io/` keys first.
STORAGE_CLASS_KEYS = {k.lower() for k in (
    "type", "iops", "iopsPerGB", "allowAutoIOPSPerGBIncrease", "allowAutoIOPSIncreaseOnModify", "throughput",
    "encrypted", "kmsKeyId", "blockExpress", "blockSize", "inodeSize", "bytesPerInode", "numberOfInodes",
    "ext4BigAlloc", "ext4ClusterSize", "ext4EncryptionSupport", "volumeInitializationRate",
    "blockAttachUntilInitialized", "outpostArn")}
STORAGE_CLASS_KEY_PREFIXES = ("csi.storage.k8s.io/", "tagspecification_")
# VolumeAttributesClass parameters (docs/modify-volume.md v1.64.0: "type", "iops", "throughput"; tags
# by prefix), case-sensitive: anything else is "Invalid mutable parameter key".
ATTRIBUTES_CLASS_KEYS = {"type", "iops", "throughput"}
ATTRIBUTES_CLASS_KEY_PREFIXES = ("tagSpecification_", "tagDeletion_")
OPERATOR_KINDS = ("Prometheus", "Alertmanager", "ThanosRuler", "PrometheusAgent")


@dataclass(frozen=True)
class Claim:
    owner: str
    """The object and template making it, as a person finds it."""
    size: Any
    storage_class: Optional[str]
    attributes_class: Optional[str]
    urn: str = ""


def claims(view: StackView) -> Iterator[Claim]:
    """Every volume claim the stack's objects make (one per template: its replicas' are alike)."""
    for obj in view.objects:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        templates: list[tuple[str, Mapping[str, Any]]] = []
        if kind == "PersistentVolumeClaim":
            templates = [("", spec)]
        elif kind == "StatefulSet":
            templates = [(f", claim template {(t.get('metadata') or {}).get('name')}", t.get("spec") or {})
                         for t in spec.get("volumeClaimTemplates") or []]
        elif kind in OPERATOR_KINDS and isinstance((spec.get("storage") or {}).get("volumeClaimTemplate"), Mapping):
            templates = [(", storage.volumeClaimTemplate", spec["storage"]["volumeClaimTemplate"].get("spec") or {})]
        for where, claim_spec in templates:
            yield Claim(f"{object_name(obj)}{where}", ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage"),
                        claim_spec.get("storageClassName"), claim_spec.get("volumeAttributesClassName"), view.urn_of(obj))


def _by_name(view: StackView, kind: str) -> dict[str, Mapping[str, Any]]:
    return {(o.get("metadata") or {}).get("name"): o for o in view.kind(kind)}


def _int(value: Any) -> Optional[int]:
    try:
        return int(str(value))
    except ValueError:
        return None


def gp3_claims(view: StackView) -> Iterator[Violation]:
    classes, attributes = _by_name(view, "StorageClass"), _by_name(view, "VolumeAttributesClass")
    for claim in claims(view):
        if is_unknown(claim.size) or is_unknown(claim.storage_class):
            continue
        if claim.storage_class is None or claim.storage_class not in classes:
            yield Violation(claim.owner, f"StorageClass {claim.storage_class or '(the cluster default)'} is not one the "
                            f"stack creates ({', '.join(sorted(classes)) or 'none'}): its volumes are unknown",
                            claim.urn)
            continue
        storage_class = classes[claim.storage_class]
        if storage_class.get("provisioner") != EBS_CSI_DRIVER:
            continue
        parameters = {str(k).lower(): str(v) for k, v in (storage_class.get("parameters") or {}).items()}
        attributes_class = attributes.get(claim.attributes_class) if claim.attributes_class else None
        if claim.attributes_class and attributes_class is None:
            yield Violation(claim.owner, f"VolumeAttributesClass {claim.attributes_class} is not one the stack creates "
                            f"({', '.join(sorted(attributes)) or 'none'}): the claim stays Pending", claim.urn)
            continue
        mutable = {str(k): str(v) for k, v in ((attributes_class or {}).get("parameters") or {}).items()}
        if parameters.get("type", "gp3") != "gp3" and mutable.get("type", "gp3") != "gp3":
            continue
        size_bytes = quantity(claim.size)
        if size_bytes is None:
            yield Violation(claim.owner, f"storage request {claim.size!r} is not a Kubernetes quantity", claim.urn)
            continue
        size_gib = round_up_gib(int(size_bytes))
        iops = _int(mutable.get("iops") or parameters.get("iops") or "")
        if iops is None and parameters.get("iopspergb"):
            iops = (_int(parameters["iopspergb"]) or 0) * size_gib
        throughput = _int(mutable.get("throughput") or parameters.get("throughput") or "")
        volume = gp3_volume(size_gib, iops, throughput)
        asked = (f"{claim.size} ({size_gib} GiB) of StorageClass {claim.storage_class}"
                 + (f" with VolumeAttributesClass {claim.attributes_class}" if claim.attributes_class else ""))
        for problem in volume.problems:
            yield Violation(claim.owner, f"{asked}: {problem}", claim.urn)


def csi_parameters(view: StackView) -> Iterator[Violation]:
    for sc in view.kind("StorageClass"):
        if sc.get("provisioner") != EBS_CSI_DRIVER:
            continue
        parameters = {str(k).lower(): v for k, v in (sc.get("parameters") or {}).items()}
        for key in parameters:
            if key not in STORAGE_CLASS_KEYS and not key.startswith(STORAGE_CLASS_KEY_PREFIXES):
                yield Violation(object_name(sc), f"parameter {key!r} is not one of the EBS CSI driver's (Invalid parameter "
                                f"key {key} for CreateVolume)", view.urn_of(sc))
        if "iops" in parameters and "iopspergb" in parameters:
            yield Violation(object_name(sc), "sets both iops and iopsPerGB (invalid StorageClass parameters; specify "
                            "either IOPS or IOPSPerGb, not both)", view.urn_of(sc))
    for vac in view.kind("VolumeAttributesClass"):
        if vac.get("driverName") != EBS_CSI_DRIVER:
            continue
        parameters = {str(k): str(v) for k, v in (vac.get("parameters") or {}).items()}
        if not parameters:
            yield Violation(object_name(vac), "has no parameters (the API server: must contain at least one key/value "
                            "pair)", view.urn_of(vac))
        for key in parameters:
            if key not in ATTRIBUTES_CLASS_KEYS and not key.startswith(ATTRIBUTES_CLASS_KEY_PREFIXES):
                yield Violation(object_name(vac), f"parameter {key!r} is not one the EBS CSI driver modifies (Invalid "
                                f"mutable parameter key: {key}; keys are case-sensitive)", view.urn_of(vac))
        for key in ("iops", "throughput"):
            if key in parameters and _int(parameters[key]) is None:
                yield Violation(object_name(vac), f"{key} {parameters[key]!r} is not a whole number", view.urn_of(vac))
        if parameters.get("type", "gp3") == "gp3":
            problem = gp3_performance_problem(_int(parameters.get("iops", "")), _int(parameters.get("throughput", "")))
            if problem:
                yield Violation(object_name(vac), f"no gp3 volume can have it: {problem}", view.urn_of(vac))


RULES = (
    Rule("ebs-gp3-volumes",
         "Every volume claim of the stack gets the gp3 volume it asks for: EC2 creates it (size 1-65,536 GiB, "
         "3,000-80,000 IOPS at most 500 per GiB, 125-2,000 MiB/s at most 0.25 per IOPS) and the EBS CSI driver "
         "caps none of it.",
         gp3_claims,
         ("botocore 1.43.11 data/ec2/2016-11-15/service-2.json (CreateVolume, ModifyVolume)",
          "AWS EC2 user guide, ebs-volume-types (gp3 ratios)",
          "kubernetes-sigs/aws-ebs-csi-driver v1.64.0 pkg/cloud/cloud.go capIOPS")),
    Rule("ebs-csi-parameters",
         "StorageClass and VolumeAttributesClass parameters are ones the EBS CSI driver takes, and a "
         "VolumeAttributesClass' performance is one a gp3 volume can have.",
         csi_parameters,
         ("kubernetes-sigs/aws-ebs-csi-driver v1.64.0 docs/parameters.md, docs/modify-volume.md, "
          "pkg/driver/controller_modify_volume.go",)),
)
