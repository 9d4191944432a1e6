"""The gp3 StorageClass every persistent volume of the monitoring stack uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from monitoring import PART_OF

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class Gp3StorageClassArgs:
    class_name: str
    """Kubernetes name of the StorageClass, referenced by every volume claim."""
    reclaim_policy: str
    """`Retain` keeps the EBS volume when its claim goes (prod); `Delete` removes it (dev)."""
    kms_key_id: Optional[str] = None
    """KMS key ARN encrypting the volumes; None: the account's default EBS key."""
    iops: Optional[int] = None
    """Provisioned IOPS per volume (3000-16000); None: the gp3 baseline of 3000."""
    throughput: Optional[int] = None
    """Provisioned throughput per volume in MiB/s (125-1000); None: the gp3 baseline of 125."""


def storage_class_parameters(args: Gp3StorageClassArgs) -> dict[str, str]:
    """EBS CSI driver parameters: StorageClass parameters are strings, always."""
    parameters = {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}
    if args.kms_key_id:
        parameters["kmsKeyId"] = args.kms_key_id
    if args.iops:
        parameters["iops"] = str(args.iops)
    if args.throughput:
        parameters["throughput"] = str(args.throughput)
    return parameters


class Gp3StorageClass(pulumi.ComponentResource):
    class_name: pulumi.Output[str]

    def __init__(self, name: str, args: Gp3StorageClassArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:storage_class:Gp3StorageClass", name, None, opts)
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.class_name,
                labels={"app.kubernetes.io/managed-by": "pulumi", **PART_OF},
            ),
            provisioner="ebs.csi.aws.com",
            parameters=storage_class_parameters(args),
            # The volume is created in the zone the pod lands in, not in a random one.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy=args.reclaim_policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.class_name = storage_class.metadata.name
        self.register_outputs({"class_name": self.class_name})
