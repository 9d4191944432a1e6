"""Credentials of the authenticating proxies in front of Prometheus and Alertmanager.

Per protected server (monitoring/web_auth.py): a generated password per client, each client's
credentials in a Secret of their own (what the client mounts or the Operator reads), the users
file of bcrypt hashes the proxy checks (a Secret), and the proxy's configuration (a ConfigMap).
Passwords never leave Secrets and Pulumi secret outputs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from monitoring.web_auth import (
    BASIC_CREDENTIALS_KEY,
    CONFIG_FILE,
    PASSWORD_KEY,
    SERVERS,
    USERNAME_KEY,
    USERS_FILE,
    htpasswd,
    nginx_config,
)


@dataclass(frozen=True)
class WebAuthArgs:
    namespace: pulumi.Input[str]
    """Namespace of Prometheus and Alertmanager; the Secrets and ConfigMaps go there (the Operator
    reads Secrets from its own namespace only)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of every object made."""


def basic_credentials(username: str, password: str) -> str:
    """What an `Authorization: Basic` header carries, for clients that read it from a file (Loki's ruler)."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


class WebAuth(pulumi.ComponentResource):
    passwords: dict[tuple[str, str], pulumi.Output[str]]
    """(server, client) -> the client's password (secret)."""

    def __init__(self, name: str, args: WebAuthArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:web_auth:WebAuth", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secret = pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"])
        self.passwords = {}
        for server in SERVERS:
            hashes = {}
            for client in server.clients:
                password = random.RandomPassword(f"{name}-{server.name}-{client}", length=32, special=False, opts=child)
                self.passwords[(server.name, client)] = pulumi.Output.secret(password.result)
                hashes[client] = password.bcrypt_hash
                k8s.core.v1.Secret(
                    f"{name}-{server.resource_name('client', client)}",
                    metadata=self._metadata(args, server.resource_name("client", client)),
                    type="Opaque",
                    string_data={
                        USERNAME_KEY: client,
                        PASSWORD_KEY: pulumi.Output.secret(password.result),
                        BASIC_CREDENTIALS_KEY: pulumi.Output.secret(
                            password.result.apply(lambda p, c=client: basic_credentials(c, p))),
                    },
                    opts=secret,
                )
            k8s.core.v1.Secret(
                f"{name}-{server.resource_name('auth-users')}",
                metadata=self._metadata(args, server.resource_name("auth-users")),
                type="Opaque",
                string_data={USERS_FILE: pulumi.Output.secret(pulumi.Output.all(**hashes).apply(htpasswd))},
                opts=secret,
            )
            k8s.core.v1.ConfigMap(
                f"{name}-{server.resource_name('auth-proxy')}",
                metadata=self._metadata(args, server.resource_name("auth-proxy")),
                data={CONFIG_FILE: nginx_config(server)},
                opts=child,
            )
        self.register_outputs({f"{server}-{client}": password for (server, client), password in self.passwords.items()})

    @staticmethod
    def _metadata(args: WebAuthArgs, name: str) -> k8s.meta.v1.ObjectMetaArgs:
        # A fixed name: the Helm values and the clients refer to it.
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=dict(args.labels))
