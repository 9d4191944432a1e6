"""Grafana's credentials and access: a generated admin password and the SSO client secret, as
Secrets, and the Role its sidecars read ConfigMaps through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from monitoring.grafana import ADMIN_PASSWORD_KEY, ADMIN_USER_KEY, OAUTH_CLIENT_SECRET_KEY, SIDECAR_RULES


@dataclass(frozen=True)
class GrafanaAccessArgs:
    namespace: pulumi.Input[str]
    """Namespace Grafana runs in; the Secrets go there."""
    oauth_client_secret: Optional[Any] = None
    """Pulumi secret with the SSO client secret; None when SSO is off."""
    admin_user: str = "admin"
    """Name of the break-glass admin account (SSO users sign in with their own)."""
    password_rotation: int = 0
    """Raised by one, the admin gets a new generated password (0: the first one, kept)."""


class GrafanaAccess(pulumi.ComponentResource):
    sidecar_role_name: pulumi.Output[str]
    """Role (in the namespace) that lets Grafana's sidecars read ConfigMaps, and nothing else."""
    admin_secret_name: pulumi.Output[str]
    oauth_secret_name: Optional[pulumi.Output[str]]
    admin_password: pulumi.Output[str]
    admin_user: str

    def __init__(self, name: str, args: GrafanaAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:grafana_access:GrafanaAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Without keepers until the first rotation: a stack deployed before rotations keeps its password.
        keepers = {"rotation": str(args.password_rotation)} if args.password_rotation else None
        password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, keepers=keepers, opts=child)
        admin_secret = k8s.core.v1.Secret(
            f"{name}-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, name=f"{name}-admin"),
            type="Opaque",
            string_data={ADMIN_USER_KEY: args.admin_user, ADMIN_PASSWORD_KEY: password.result},
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
        )
        self.oauth_secret_name = None
        if args.oauth_client_secret is not None:
            oauth_secret = k8s.core.v1.Secret(
                f"{name}-oauth",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, name=f"{name}-oauth"),
                type="Opaque",
                string_data={OAUTH_CLIENT_SECRET_KEY: pulumi.Output.secret(args.oauth_client_secret)},
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
            )
            self.oauth_secret_name = oauth_secret.metadata.name
        sidecar_role = k8s.rbac.v1.Role(
            f"{name}-sidecar",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, name=f"{name}-sidecar"),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=r["apiGroups"], resources=r["resources"], verbs=r["verbs"])
                   for r in SIDECAR_RULES],
            opts=child,
        )
        self.sidecar_role_name = sidecar_role.metadata.name
        self.admin_secret_name = admin_secret.metadata.name
        self.admin_password = pulumi.Output.secret(password.result)
        self.admin_user = args.admin_user
        self.register_outputs({
            "sidecar_role_name": self.sidecar_role_name,
            "admin_secret_name": self.admin_secret_name,
            "oauth_secret_name": self.oauth_secret_name,
        })
