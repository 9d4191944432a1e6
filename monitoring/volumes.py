"""The gp3 volumes: the StorageClass every claim names, and one VolumeAttributesClass per performance
profile (`storage.profiles`) that a workload's claims name to get more than gp3's baseline.

The class keeps what must be the same for every volume (gp3, encryption, the file system); IOPS and
throughput are per workload, because EC2 allows at most 500 IOPS per GiB (a 5 GiB Alertmanager
volume cannot have what a 200 GiB Prometheus volume needs) and because an attributes class can be
swapped on an existing claim (the driver's ModifyVolume), where a class cannot (policy/ebs.py,
docs/operations/volumes.md). Both classes' parameters are immutable: a profile whose numbers change
is a new attributes class, its name carrying them.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from config.settings import StorageSettings, VolumeProfile
from monitoring import PART_OF
from policy.ebs import EBS_CSI_DRIVER


def storage_class_parameters(storage: StorageSettings) -> dict[str, str]:
    """EBS CSI driver parameters: StorageClass parameters are strings, always."""
    parameters = {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}
    if storage.kms_key_id:
        parameters["kmsKeyId"] = str(storage.kms_key_id)
    return parameters


def attributes_class_name(storage: StorageSettings, profile: VolumeProfile) -> str:
    """`<class>-<profile>-<iops>iops-<throughput>mibps`: a change of the numbers is a new class."""
    parts = [str(storage.class_name), str(profile.name)]
    parts += [f"{profile.iops}iops"] if profile.iops is not None else []
    parts += [f"{profile.throughput}mibps"] if profile.throughput is not None else []
    return "-".join(parts)


def attributes_class(storage: StorageSettings, profile: VolumeProfile) -> dict[str, Any]:
    """The VolumeAttributesClass of a profile (storage.k8s.io/v1, GA in Kubernetes 1.34)."""
    parameters = {key: str(value) for key, value in (("iops", profile.iops), ("throughput", profile.throughput))
                  if value is not None}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "VolumeAttributesClass",
        "metadata": {"name": attributes_class_name(storage, profile),
                     "labels": {"app.kubernetes.io/managed-by": "pulumi", **PART_OF}},
        "driverName": EBS_CSI_DRIVER,
        "parameters": parameters,
    }


def claim_attributes(attributes_classes: Mapping[str, str], profile: Optional[str]) -> dict[str, str]:
    """What a claim template adds for a workload's `volumeProfile`: the attributes class' name, or nothing."""
    return {"volumeAttributesClassName": attributes_classes[profile]} if profile else {}
