"""The stack's network policies (monitoring/network.py) as Kubernetes objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    policies: tuple[dict, ...]
    """NetworkPolicy manifests (`metadata`, `spec`), each in its namespace."""


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:network_policies:NetworkPolicies", name, None, opts)
        for policy in args.policies:
            meta = policy["metadata"]
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{meta['namespace']}-{meta['name']}",
                metadata=meta,
                spec=policy["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
