"""The gp3 StorageClass every persistent volume of the monitoring stack uses, and the
VolumeAttributesClass of each performance profile (monitoring/volumes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from config.settings import StorageSettings
from monitoring import PART_OF
from monitoring.volumes import attributes_class, storage_class_parameters
from policy.ebs import EBS_CSI_DRIVER


@dataclass(frozen=True)
class Gp3StorageClassArgs:
    storage: StorageSettings
    """The class' name, KMS key and reclaim policy (`Retain` keeps a volume when its claim goes, `Delete`
    removes it), and the performance profiles."""
    protect: bool = False
    """Protect the class and the attributes classes, and keep an attributes class in the cluster when it
    leaves the program (a claim may still name it): prod."""


class Gp3StorageClass(pulumi.ComponentResource):
    class_name: pulumi.Output[str]
    attributes_classes: pulumi.Output[dict[str, str]]
    """Profile name -> the name of its VolumeAttributesClass."""

    def __init__(self, name: str, args: Gp3StorageClassArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:storage_class:Gp3StorageClass", name, None, opts)
        storage = args.storage
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=storage.class_name,
                labels={"app.kubernetes.io/managed-by": "pulumi", **PART_OF},
            ),
            provisioner=EBS_CSI_DRIVER,
            parameters=storage_class_parameters(storage),
            # The volume is created in the zone the pod lands in, not in a random one.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy=storage.reclaim_policy,
            # New volumes are provisioned (and, in prod, kept) by it: never deleted by accident.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        names = {}
        for profile in storage.profiles:
            manifest = attributes_class(storage, profile)
            attributes = k8s.storage.v1.VolumeAttributesClass(
                f"{name}-profile-{profile.name}",
                metadata=manifest["metadata"],
                driver_name=manifest["driverName"],
                parameters=manifest["parameters"],
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
            )
            names[str(profile.name)] = attributes.metadata.name
        self.class_name = storage_class.metadata.name
        self.attributes_classes = pulumi.Output.all(**names) if names else pulumi.Output.from_input({})
        self.register_outputs({"class_name": self.class_name, "attributes_classes": self.attributes_classes})
