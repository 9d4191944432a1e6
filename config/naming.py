"""Names in shared scopes, derived so that no two stacks share one (`tenancy.naming`).

Kubernetes names cluster-scoped objects (ClusterRoles, webhook configurations, StorageClasses,
namespaces) once per cluster; PagerDuty names a service once per account; S3 names a bucket once
in the world and IAM a role once per account. Under the `derived` scheme every such name starts
with the stack's instance (`tenancy.instance`, unique among a cluster's stacks) and, where the scope
is wider than a cluster, names the cluster too. The `legacy` scheme keeps the fixed names stacks were
deployed with: a new name for a release, a StorageClass or a bucket replaces it, and its data with it.

`resolve` fills the settings a stack may name itself and left unset (namespaces, StorageClass,
PagerDuty service); the other names are functions of the resolved settings. Pure Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Optional

from config.settings import Settings
from policy.aws import BUCKET_PREFIX_MAX, ROLE_PREFIX_MAX

# kube-prometheus-stack cuts its fullname (the stem of every object it names) at 26 characters.
INSTANCE_MAX = 26
KUBE_PROMETHEUS_STACK = "kube-prometheus-stack"
SERVICE = "Webhook Delivery"
LEGACY = {"namespace": "monitoring", "agents_namespace": "monitoring-agents", "class_name": "gp3",
          "service_name": SERVICE}


def legacy(settings: Settings) -> bool:
    return settings.tenancy.naming == "legacy"


def derived_instance(team_label: str, stack: str) -> str:
    """`<teamLabel>-<stack>` as a Kubernetes name of at most INSTANCE_MAX characters: a longer one keeps
    its start and ends with a hash of the whole, so that it stays unique."""
    name = "-".join(part for part in (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
                                      for text in (team_label, stack)) if part)
    if len(name) <= INSTANCE_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:4]
    return f"{name[:INSTANCE_MAX - 5].rstrip('-')}-{digest}"


def instance(settings: Settings) -> str:
    """The instance name (`resolve` sets it when the stack does not)."""
    return str(settings.tenancy.instance)


def resolve(settings: Settings, stack: str) -> Settings:
    """The settings with every name left unset filled in under the naming scheme (and the cluster's
    availability zones, `<region>a` to `c` unless given); `stack` is the Pulumi stack's name (the
    environment's where it is not known)."""
    old = legacy(settings)
    stem = str(settings.tenancy.instance or derived_instance(settings.team_label, stack or settings.environment))

    def pick(given: Optional[str], key: str, derived: str) -> str:
        return given if given is not None else LEGACY[key] if old else derived

    pagerduty = settings.alerting.pagerduty
    grafana = settings.grafana
    return dataclasses.replace(
        settings,
        tenancy=dataclasses.replace(settings.tenancy, instance=stem),
        namespace=pick(settings.namespace, "namespace", f"{stem}-monitoring"),
        agents_namespace=pick(settings.agents_namespace, "agents_namespace", f"{stem}-agents"),
        storage=dataclasses.replace(settings.storage, class_name=pick(
            settings.storage.class_name, "class_name", f"{stem}-gp3")),
        alerting=dataclasses.replace(settings.alerting, pagerduty=dataclasses.replace(pagerduty, service_name=pick(
            pagerduty.service_name, "service_name", f"{SERVICE} ({settings.cluster.name}, {settings.environment})"))),
        cluster=dataclasses.replace(settings.cluster, availability_zones=settings.cluster.availability_zones or tuple(
            f"{settings.cluster.region}{letter}" for letter in "abc")),
        # Without a domain the check of `grafana.host` reports the missing host.
        grafana=dataclasses.replace(grafana, host=grafana.host or (f"{stem}.{grafana.domain}" if grafana.domain else None)),
    )


def kube_prometheus_stack(settings: Settings) -> str:
    """The kube-prometheus-stack release name and fullname: its ClusterRoles, webhook configurations
    and the `release` label other stacks' Prometheus select monitors and rules by derive from it."""
    return KUBE_PROMETHEUS_STACK if legacy(settings) else instance(settings)


def alloy_cluster_role(settings: Settings) -> str:
    return "logging-alloy-pod-discovery" if legacy(settings) else f"{instance(settings)}-alloy-pod-discovery"


def _aws_prefix(settings: Settings, kind: str, limit: int) -> str:
    """`<cluster>-<environment>-<kind>-`, the cluster part shortened to fit `limit`."""
    tail = f"-{settings.environment}-{kind}-"
    head = re.sub(r"[^a-z0-9-]+", "-", settings.cluster.name.lower())[: limit - len(tail)].strip("-")
    return head + tail


def bucket_prefix(settings: Settings, kind: str) -> Optional[str]:
    """Prefix of the `kind` bucket's name (S3 adds a unique suffix); None: Pulumi's auto-name (legacy)."""
    return None if legacy(settings) else _aws_prefix(settings, kind, BUCKET_PREFIX_MAX)


def role_prefix(settings: Settings, kind: str) -> Optional[str]:
    """Prefix of the `kind` bucket's IAM role name; None: Pulumi's auto-name (legacy)."""
    return None if legacy(settings) else _aws_prefix(settings, kind, ROLE_PREFIX_MAX)
