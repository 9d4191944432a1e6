"""Loki on S3, a log agent on every node, and the log-based alert rules.

Loki (grafana-community chart) keeps chunks and index in the logs bucket through the IRSA role
bound to its service account (`monitoring.logging.loki.LOKI_SERVICE_ACCOUNT`); the agent (Alloy by
default, Promtail when `logging.agent` says so) pushes to Loki's gateway. The LogQL alert rules
go into a ConfigMap mounted where the ruler runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.helm_release import helm_release
from config import Settings
from monitoring.logging.agent import ALLOY_RULES, ALLOY_SERVICE_ACCOUNT, alloy_values, promtail_values
from monitoring.logging.alloy import alloy_config
from monitoring.logging.logql import loki_rule_groups
from monitoring.logging.loki import (
    LOKI_SERVICE_ACCOUNT,
    RULES_CONFIGMAP_LABEL,
    RULES_CONFIGMAP_LABEL_VALUE,
    gateway_url,
    loki_values,
    push_url,
)
from monitoring.logging.promtail import promtail_config
from monitoring.tenancy import log_namespaces
from monitoring.versions import ALLOY, LOKI, PROMTAIL

RULES_FILE = "webhook-logs.yaml"


@dataclass(frozen=True)
class LoggingArgs:
    settings: Settings
    """Stack settings: `logging` (agent, mode, replicas, retention, volume, drop paths),
    `metrics.services` (namespaces the log alerts watch), `alerting.runbook_base_url`,
    `cluster.name`, `environment`, `team_label` and `helm_values` (merged over its releases' values) are read."""
    namespace: str
    """Namespace of Loki; the rule ConfigMap goes here too."""
    agent_namespace: str
    """Namespace of the log agent (it reads the host's log files, which `restricted` forbids)."""
    storage_class: pulumi.Input[str]
    """Name of the gp3 StorageClass for Loki's volumes."""
    attributes_classes: pulumi.Input[dict[str, str]]
    """Profile name -> its VolumeAttributesClass (Loki's volumes take `logging.volume_profile`'s)."""
    bucket_name: pulumi.Input[str]
    """Name of the logs bucket (chunks, index, ruler and admin data)."""
    bucket_region: pulumi.Input[str]
    """AWS region of the logs bucket."""
    role_arn: pulumi.Input[str]
    """ARN of the IRSA role that may use the bucket; it must trust `LOKI_SERVICE_ACCOUNT`."""
    alertmanager_url: pulumi.Input[str]
    """Alertmanager base URL the Loki ruler sends log-based alerts to (http://host:9093)."""
    agent_role_name: str
    """Name of the Role (in each namespace whose logs are collected) or ClusterRole (every pod's) that
    lets Alloy discover pods: cluster-scoped, it must be a name no other stack of the cluster uses."""


class Logging(pulumi.ComponentResource):
    loki_push_url: pulumi.Output[str]
    """Where log agents push (the gateway's /loki/api/v1/push)."""
    loki_query_url: pulumi.Output[str]
    """Base URL of the Loki gateway: Grafana's Loki data source."""
    agent: k8s.helm.v3.Release
    """The log agent's Helm release (Alloy or Promtail)."""
    loki: k8s.helm.v3.Release
    """Loki's Helm release."""

    def __init__(self, name: str, args: LoggingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:logging:Logging", name, None, opts)
        settings = args.settings
        namespace = args.namespace
        loki_push = push_url(namespace)

        # Mounted into the ruler's pods: it must exist first.
        rules = k8s.core.v1.ConfigMap(
            f"{name}-loki-rules",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{name}-loki-rules",
                namespace=namespace,
                labels={RULES_CONFIGMAP_LABEL: RULES_CONFIGMAP_LABEL_VALUE, "team": settings.team_label},
            ),
            data={RULES_FILE: yaml.safe_dump({"groups": loki_rule_groups(settings)}, sort_keys=True)},
            opts=pulumi.ResourceOptions(parent=self),
        )

        values = pulumi.Output.all(
            bucket_name=args.bucket_name,
            region=args.bucket_region,
            role_arn=args.role_arn,
            storage_class=args.storage_class,
            attributes_classes=args.attributes_classes,
            alertmanager_url=args.alertmanager_url,
            rules_config_map=rules.metadata.name,
        ).apply(lambda inputs: loki_values(settings, service_account=LOKI_SERVICE_ACCOUNT, **inputs))
        self.loki = helm_release(f"{name}-loki", LOKI, namespace, values, self, overrides=settings.helm_values,
                                 protect=settings.protect)

        if settings.logging.agent == "alloy":
            agent_chart, agent_values = ALLOY, alloy_values(settings, alloy_config(settings, loki_push))
            self._alloy_rbac(name, args.agent_role_name, args.agent_namespace, log_namespaces(settings))
        else:
            agent_chart, agent_values = PROMTAIL, promtail_values(settings, promtail_config(settings, loki_push))
        self.agent = helm_release(f"{name}-agent", agent_chart, args.agent_namespace, agent_values, self,
                                  overrides=settings.helm_values)

        self.loki_push_url = pulumi.Output.from_input(loki_push)
        self.loki_query_url = pulumi.Output.from_input(gateway_url(namespace))
        self.register_outputs(
            {
                "loki_push_url": self.loki_push_url,
                "loki_query_url": self.loki_query_url,
                "agent": self.agent,
                "loki": self.loki,
            }
        )

    def _alloy_rbac(self, name: str, role_name: str, namespace: str, namespaces: tuple[str, ...]) -> None:
        """Pod discovery for Alloy's service account, and nothing else: across the cluster, or in each of
        `namespaces` when the agent reads those only."""
        rules = [k8s.rbac.v1.PolicyRuleArgs(api_groups=r["apiGroups"], resources=r["resources"], verbs=r["verbs"])
                 for r in ALLOY_RULES]
        subjects = [k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=ALLOY_SERVICE_ACCOUNT, namespace=namespace)]
        child = pulumi.ResourceOptions(parent=self)
        if not namespaces:
            role = k8s.rbac.v1.ClusterRole(f"{name}-alloy-pod-discovery", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=role_name), rules=rules, opts=child)
            k8s.rbac.v1.ClusterRoleBinding(
                f"{name}-alloy-pod-discovery",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=role_name),
                role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                 name=role.metadata.name),
                subjects=subjects, opts=child)
            return
        for target in namespaces:
            metadata = k8s.meta.v1.ObjectMetaArgs(name=role_name, namespace=target)
            role = k8s.rbac.v1.Role(f"{name}-alloy-pod-discovery-{target}", metadata=metadata, rules=rules, opts=child)
            k8s.rbac.v1.RoleBinding(
                f"{name}-alloy-pod-discovery-{target}", metadata=metadata,
                role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role",
                                                 name=role.metadata.name),
                subjects=subjects, opts=child)
