"""The metrics pipeline: Prometheus Operator and Prometheus, Mimir on S3, and what they scrape.

The Operator's CRDs (a release of their own, first), kube-prometheus-stack (one release, its pods
referencing the Secrets, Role and StorageClass other components create), mimir-distributed storing
blocks in the metrics bucket through its IRSA role, a ServiceMonitor per configured service,
blackbox Probes when probes are configured, the graphite_exporter when enabled, and one
PrometheusRule per rule group. The custom resources wait for the kube-prometheus-stack release:
Helm marks it ready once the new Operator, which serves the admission webhook that judges them, is.
Providers come through `opts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.helm_release import helm_release
from config.settings import Settings
from monitoring import graphite, ha_tracker, scrape, web_auth
from monitoring.helm import blackbox_exporter, kube_prometheus_stack, prometheus_operator_crds
from monitoring.helm.kube_prometheus_stack import ChartRefs, service_urls
from monitoring.helm.mimir import MIMIR_SERVICE_ACCOUNT, mimir_urls, mimir_values
from monitoring.versions import BLACKBOX_EXPORTER, KUBE_PROMETHEUS_STACK, MIMIR, PROMETHEUS_OPERATOR_CRDS

RULE_LABELS = {"role": "alert-rules", "app": "webhook-delivery"}

# The kinds the graphite exporter needs, with the field holding their body.
_CORE_KINDS = {
    "ConfigMap": (k8s.core.v1.ConfigMap, "data"),
    "Deployment": (k8s.apps.v1.Deployment, "spec"),
    "Service": (k8s.core.v1.Service, "spec"),
}


@dataclass(frozen=True)
class MetricsStackArgs:
    settings: Settings
    """The stack settings: `prometheus`, `long_term_storage`, `metrics`, `cluster.name`,
    `environment`, `team_label` and `namespace` (where everything goes) are read."""
    storage_class: pulumi.Input[str]
    """Name of the gp3 StorageClass for Prometheus' and Mimir's volumes."""
    metrics_bucket_name: pulumi.Input[str]
    """Name of the S3 bucket Mimir stores blocks in."""
    region: pulumi.Input[str]
    """AWS region of the metrics bucket."""
    role_arn: pulumi.Input[str]
    """ARN of the metrics bucket's IRSA role; it must trust `MIMIR_SERVICE_ACCOUNT` in `settings.namespace`."""
    alertmanager_config_secret: pulumi.Input[str]
    """Name of the Secret holding `alertmanager.yaml` (the Alerting component's)."""
    grafana_admin_secret: pulumi.Input[str]
    """Name of the Secret holding Grafana's admin user and password."""
    grafana_oauth_secret: pulumi.Input[Optional[str]]
    """Name of the Secret holding the SSO client secret; None without SSO."""
    grafana_sidecar_role: pulumi.Input[str]
    """Name of the Role through which Grafana's sidecars read ConfigMaps."""
    rule_groups: tuple[dict, ...] = ()
    """Prometheus rule groups (promtool format), one PrometheusRule each."""


def kubernetes_name(text: str) -> str:
    """A rule group name as a Kubernetes object name: `webhook.recording_5m` -> `webhook-recording-5m`."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def prometheus_rule(settings: Settings, group: dict) -> dict:
    """The PrometheusRule object holding one rule group."""
    return {
        "apiVersion": scrape.MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": {
            "name": kubernetes_name(group["name"]),
            "namespace": settings.namespace,
            "labels": {**scrape.team_labels(settings), **RULE_LABELS},
        },
        "spec": {"groups": [group]},
    }


class MetricsStack(pulumi.ComponentResource):
    prometheus_url: pulumi.Output[str]
    """Prometheus inside the cluster (http://host:9090)."""
    alertmanager_url: pulumi.Output[str]
    """Alertmanager inside the cluster (http://host:9093)."""
    mimir_push_url: pulumi.Output[str]
    """Mimir's remote-write endpoint (…/api/v1/push)."""
    mimir_query_url: pulumi.Output[str]
    """Mimir's Prometheus-compatible query base URL (…/prometheus): Grafana's long-term data source."""
    operator_crds: k8s.helm.v3.Release
    """The prometheus-operator-crds release: the monitoring.coreos.com CRDs."""
    kube_prometheus_stack: k8s.helm.v3.Release
    """The kube-prometheus-stack release (depend on it for custom resources: its Operator serves their
    admission webhook)."""
    mimir: k8s.helm.v3.Release
    """The mimir-distributed release."""

    def __init__(self, name: str, args: MetricsStackArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:metrics:MetricsStack", name, None, opts)
        settings = args.settings
        namespace = str(settings.namespace)
        push_url, query_url = mimir_urls(MIMIR.name, namespace)
        prometheus_url, alertmanager_url = service_urls(namespace)

        kps_values = pulumi.Output.all(
            storage_class=args.storage_class,
            alertmanager_config_secret=args.alertmanager_config_secret,
            grafana_admin_secret=args.grafana_admin_secret,
            grafana_oauth_secret=args.grafana_oauth_secret,
            grafana_sidecar_role=args.grafana_sidecar_role,
        ).apply(lambda refs: kube_prometheus_stack.values(settings, ChartRefs(**refs)))
        # Every custom resource of the cluster hangs on the CRDs: protected where the data is.
        self.operator_crds = helm_release(f"{name}-operator-crds", PROMETHEUS_OPERATOR_CRDS, namespace,
                                          prometheus_operator_crds.values(), self, protect=settings.protect)
        self.kube_prometheus_stack = helm_release(
            f"{name}-kube-prometheus-stack", KUBE_PROMETHEUS_STACK, namespace, kps_values, self,
            depends_on=[self.operator_crds], protect=settings.protect,
        )

        mimir = pulumi.Output.all(
            bucket_name=args.metrics_bucket_name,
            region=args.region,
            role_arn=args.role_arn,
            storage_class=args.storage_class,
        ).apply(lambda inputs: mimir_values(settings, service_account=MIMIR_SERVICE_ACCOUNT, **inputs))
        # Mimir ships ServiceMonitors and rules, admitted by the Operator's webhook.
        self.mimir = helm_release(f"{name}-mimir", MIMIR, namespace, mimir, self, depends_on=[self.kube_prometheus_stack],
                                  protect=settings.protect)

        objects: list[tuple[str, dict]] = [
            (f"{name}-monitor-{target.name}", scrape.service_monitor(settings, target))
            for target in settings.metrics.services
        ] + [(f"{name}-self-monitor-{server.name}", scrape.self_monitor(settings, server)) for server in web_auth.SERVERS]
        if settings.metrics.probes:
            helm_release(f"{name}-blackbox-exporter", BLACKBOX_EXPORTER, namespace, blackbox_exporter.values(settings), self,
                         depends_on=[self.operator_crds])
            prober = scrape.blackbox_prober_url(BLACKBOX_EXPORTER.name, namespace)
            objects += [
                (f"{name}-probe-{target.name}", scrape.probe(settings, target, prober))
                for target in settings.metrics.probes
            ]
        # The key-value store of Mimir's HA tracker, when several Prometheus replicas write.
        objects += [(f"{name}-ha-tracker-{obj['kind'].lower()}", obj) for obj in ha_tracker.manifests(settings)]
        if settings.metrics.graphite_exporter.enabled:
            objects += [
                (f"{name}-graphite-exporter-{obj['kind'].lower()}", obj) for obj in graphite.manifests(settings)
            ]
        objects += [
            (f"{name}-rules-{kubernetes_name(group['name'])}", prometheus_rule(settings, group))
            for group in args.rule_groups
        ]
        for resource_name, obj in objects:
            self._kubernetes_object(resource_name, obj)

        self.prometheus_url = pulumi.Output.from_input(prometheus_url)
        self.alertmanager_url = pulumi.Output.from_input(alertmanager_url)
        self.mimir_push_url = pulumi.Output.from_input(push_url)
        self.mimir_query_url = pulumi.Output.from_input(query_url)
        self.register_outputs(
            {
                "prometheus_url": self.prometheus_url,
                "alertmanager_url": self.alertmanager_url,
                "mimir_push_url": self.mimir_push_url,
                "mimir_query_url": self.mimir_query_url,
                "operator_crds": self.operator_crds,
                "kube_prometheus_stack": self.kube_prometheus_stack,
                "mimir": self.mimir,
            }
        )


    def _kubernetes_object(self, resource_name: str, obj: dict[str, Any]) -> pulumi.Resource:
        """A core object as its typed resource; a monitoring.coreos.com one once the Operator that admits it runs."""
        if obj["kind"] in _CORE_KINDS:
            cls, body = _CORE_KINDS[obj["kind"]]
            return cls(resource_name, metadata=obj["metadata"], **{body: obj[body]}, opts=pulumi.ResourceOptions(parent=self))
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            metadata=obj["metadata"],
            spec=obj["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.kube_prometheus_stack]),
        )
