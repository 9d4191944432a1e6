"""What EC2 and the EBS CSI driver do with a gp3 volume: the limits, and the driver's capping rule.

The one source of these numbers: the settings' bounds (config/settings.py, config/checks.py) and the
policy pack's storage rule (policy/rules/storage.py) both read them here.

Sources (docs/platform-rules.md gives the quotes):
- EC2 API model, botocore 1.43.11 `data/ec2/2016-11-15/service-2.json`, CreateVolumeRequest and
  ModifyVolumeRequest (the 2025 raise, first in botocore 1.40.52): "gp3: 1 - 65,536 GiB",
  "gp3: 3,000 (default) - 80,000 IOPS", throughput "Valid Range: 125 - 2000 MiB/s".
- AWS EC2 user guide, ebs-volume-types: "The maximum ratio of provisioned IOPS to provisioned volume
  size is 500 IOPS per GiB. The maximum ratio of provisioned throughput to provisioned IOPS is .25
  MiB/s per IOPS." EC2 refuses past them: "Iops to volume size ratio of ... is too high; maximum is
  500", "Throughput (MiBps) to iops ratio of ... is too high; maximum is 0.250000 MiBps per iops".
- kubernetes-sigs/aws-ebs-csi-driver v1.64.0 `pkg/cloud/cloud.go` `capIOPS`: IOPS above the volume
  type's maximum are capped to it, and above 500 per GiB to 500 x GiB, but the latter only when that
  cap is still at least the 3,000 minimum (6 GiB and more): a smaller volume's request goes to EC2
  unchanged, which refuses it. Throughput is never capped: EC2 judges it. The driver rounds a claim
  up to whole GiB. Since v1.50.0 it learns the IOPS maximum from EC2 (before: 16,000 hard-coded);
  v1.50.0 and v1.50.1 mishandle throughput ("skip directly to v1.50.2"). VolumeAttributesClass
  (ControllerModifyVolume) arrived in v1.29.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

GIB = 2**30

# The EBS CSI driver the stack assumes (README, prerequisites): the first release that provisions up
# to EC2's current IOPS maximum and handles throughput correctly; VolumeAttributesClass needs 1.29+.
EBS_CSI_DRIVER = "ebs.csi.aws.com"
EBS_CSI_DRIVER_MIN_VERSION = "1.50.2"


@dataclass(frozen=True)
class Gp3Limits:
    min_size_gib: int = 1
    max_size_gib: int = 65_536
    baseline_iops: int = 3_000
    """Included with every gp3 volume, whatever its size; also the least IOPS EC2 accepts."""
    max_iops: int = 80_000
    iops_per_gib: int = 500
    baseline_throughput: int = 125
    """MiB/s included with every gp3 volume; also the least EC2 accepts."""
    max_throughput: int = 2_000
    throughput_per_iops: float = 0.25
    """MiB/s per provisioned IOPS."""


GP3 = Gp3Limits()


def round_up_gib(size_bytes: int) -> int:
    """The volume the driver asks EC2 for: the claim's request rounded up to whole GiB."""
    return max(1, math.ceil(size_bytes / GIB))


@dataclass(frozen=True)
class Gp3Volume:
    """What a gp3 volume gets, once the driver and EC2 have had their say."""

    size_gib: int
    iops: int
    throughput: int
    refused: tuple[str, ...] = ()
    """Why EC2 refuses to create it (the claim stays Pending); empty when it is created."""
    capped: tuple[str, ...] = ()
    """What the driver silently lowered: the volume is created with less than was asked."""

    @property
    def problems(self) -> tuple[str, ...]:
        return self.refused + self.capped


def gp3_volume(size_gib: int, iops: Optional[int] = None, throughput: Optional[int] = None,
               limits: Gp3Limits = GP3) -> Gp3Volume:
    """A gp3 volume of `size_gib` asked for `iops` and `throughput` (None: not asked, the baseline),
    as the EBS CSI driver (>= EBS_CSI_DRIVER_MIN_VERSION) and EC2 would provision it."""
    refused: list[str] = []
    capped: list[str] = []
    if not limits.min_size_gib <= size_gib <= limits.max_size_gib:
        refused.append(f"EC2 refuses a gp3 volume of {size_gib} GiB: sizes are {limits.min_size_gib} to "
                       f"{limits.max_size_gib:,} GiB")
    effective_iops = limits.baseline_iops
    if iops is not None:
        effective_iops = iops
        if iops < limits.baseline_iops:
            refused.append(f"EC2 refuses {iops:,} IOPS: gp3 takes {limits.baseline_iops:,} to {limits.max_iops:,}")
        if effective_iops > limits.max_iops:
            capped.append(f"{iops:,} IOPS are capped to {limits.max_iops:,} by the driver (gp3's maximum)")
            effective_iops = limits.max_iops
        by_size = limits.iops_per_gib * size_gib
        if effective_iops > by_size:
            if by_size >= limits.baseline_iops:
                capped.append(f"{effective_iops:,} IOPS are capped to {by_size:,} by the driver: at most "
                              f"{limits.iops_per_gib} IOPS per GiB of a {size_gib} GiB volume")
                effective_iops = by_size
            else:
                refused.append(f"EC2 refuses {effective_iops:,} IOPS on {size_gib} GiB (Iops to volume size ratio of "
                               f"{effective_iops / size_gib:.6f} is too high; maximum is {limits.iops_per_gib}): the "
                               f"driver caps only volumes of {math.ceil(limits.baseline_iops / limits.iops_per_gib)} "
                               f"GiB and more; leave IOPS unset below that (the {limits.baseline_iops:,} baseline)")
    effective_throughput = limits.baseline_throughput if throughput is None else throughput
    if throughput is not None and not limits.baseline_throughput <= throughput <= limits.max_throughput:
        refused.append(f"EC2 refuses {throughput:,} MiB/s: gp3 takes {limits.baseline_throughput} to "
                       f"{limits.max_throughput:,} MiB/s")
    if effective_throughput > limits.throughput_per_iops * effective_iops:
        refused.append(f"EC2 refuses {effective_throughput:,} MiB/s with {effective_iops:,} IOPS (Throughput (MiBps) to "
                       f"iops ratio of {effective_throughput / effective_iops:.6f} is too high; maximum is "
                       f"{limits.throughput_per_iops:.6f} MiBps per iops)")
    return Gp3Volume(size_gib, effective_iops, effective_throughput, tuple(refused), tuple(capped))


def gp3_performance_problem(iops: Optional[int], throughput: Optional[int], limits: Gp3Limits = GP3) -> Optional[str]:
    """A performance profile no gp3 volume of any size can have, in one phrase; None when one can."""
    largest = gp3_volume(limits.max_size_gib, iops, throughput, limits)
    return "; ".join(largest.problems) or None
