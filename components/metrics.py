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
import pulumi_tls as tls

from components.helm_release import helm_release
from config.naming import kube_prometheus_stack as kube_prometheus_stack_release
from config.secrets import federation_credentials
from config.settings import FederationSource, Settings
from monitoring import PART_OF, graphite, ha_tracker, scrape, tenancy, web_auth
from monitoring.helm import blackbox_exporter, kube_prometheus_stack, prometheus_operator_crds
from monitoring.helm.kube_prometheus_stack import ChartRefs, service_urls
from monitoring.helm.mimir import MIMIR_SERVICE_ACCOUNT, mimir_urls, mimir_values
from monitoring.versions import BLACKBOX_EXPORTER, KUBE_PROMETHEUS_STACK, MIMIR, PROMETHEUS_OPERATOR_CRDS

RULE_LABELS = {"role": "alert-rules", "app": "webhook-delivery"}
# The output of a stack serving /federate that holds its `federation` client's password.
FEDERATION_PASSWORD = "federationPassword"

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
    `environment`, `team_label`, `namespace` (where everything goes) and `helm_values` (merged over its
    releases' values) are read."""
    storage_class: pulumi.Input[str]
    """Name of the gp3 StorageClass for Prometheus', Alertmanager's, Grafana's and Mimir's volumes."""
    attributes_classes: pulumi.Input[dict[str, str]]
    """Profile name -> its VolumeAttributesClass, for the volumes whose settings name a profile."""
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
    federation_credentials: Optional[pulumi.Input[str]] = None
    """The `federationCredentials` secret (JSON, cluster -> username and password): each federation source
    naming a `credentials_secret` gets that Secret from its entry. None when no source does."""


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
    operator_crds: Optional[k8s.helm.v3.Release]
    """The prometheus-operator-crds release: the monitoring.coreos.com CRDs; None when the stack joins a
    platform, whose CRDs they are."""
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
        prometheus_url, alertmanager_url = service_urls(settings)

        # Prometheus mounts them (its `secrets`): they exist before its pods.
        labels = {"team": settings.team_label, **PART_OF}
        credentials = [self._federation_secret(name, namespace, labels, source, args.federation_credentials)
                       for source in settings.metrics.federation if source.credentials_secret]
        kps_values = pulumi.Output.all(
            storage_class=args.storage_class,
            attributes_classes=args.attributes_classes,
            alertmanager_config_secret=args.alertmanager_config_secret,
            grafana_admin_secret=args.grafana_admin_secret,
            grafana_oauth_secret=args.grafana_oauth_secret,
            grafana_sidecar_role=args.grafana_sidecar_role,
        ).apply(lambda refs: kube_prometheus_stack.values(settings, ChartRefs(**refs)))
        # Every custom resource of the cluster hangs on the CRDs: protected where the data is. Joining a
        # platform, the CRDs are its own (checked at preview), never installed or changed by the stack.
        self.operator_crds = None
        if tenancy.owns_cluster(settings):
            self.operator_crds = helm_release(f"{name}-operator-crds", PROMETHEUS_OPERATOR_CRDS, namespace,
                                              prometheus_operator_crds.values(), self, overrides=settings.helm_values,
                                              protect=settings.protect)
        else:
            self._check_platform_operator(name)
        crds = [self.operator_crds] if self.operator_crds else []
        self.kube_prometheus_stack = helm_release(
            f"{name}-kube-prometheus-stack", KUBE_PROMETHEUS_STACK, namespace, kps_values, self,
            overrides=settings.helm_values, depends_on=[*crds, *credentials], protect=settings.protect,
            release_name=kube_prometheus_stack_release(settings),
        )

        # The HA tracker's etcd and Mimir's distributors authenticate each other with these.
        ha_tracker_tls, client_certificate = (self._ha_tracker_tls(name, namespace, labels, settings)
                                              if ha_tracker.enabled(settings) else ([], None))
        mimir = pulumi.Output.all(
            bucket_name=args.metrics_bucket_name,
            region=args.region,
            role_arn=args.role_arn,
            storage_class=args.storage_class,
            ha_tracker_client_certificate=client_certificate,
        ).apply(lambda inputs: mimir_values(settings, service_account=MIMIR_SERVICE_ACCOUNT, **inputs))
        # Mimir ships ServiceMonitors and rules, admitted by the Operator's webhook.
        self.mimir = helm_release(f"{name}-mimir", MIMIR, namespace, mimir, self, overrides=settings.helm_values,
                                  depends_on=[self.kube_prometheus_stack, *ha_tracker_tls], protect=settings.protect)

        objects: list[tuple[str, dict]] = [
            (f"{name}-monitor-{target.name}", scrape.service_monitor(settings, target))
            for target in settings.metrics.scraped_services
        ] + [(f"{name}-self-monitor-{server.name}", scrape.self_monitor(settings, server)) for server in web_auth.SERVERS]
        # Joining a platform's monitoring: its kube-state-metrics and node-exporter.
        objects += [(f"{name}-{obj['metadata']['name']}", obj) for obj in tenancy.platform_monitors(settings)]
        if settings.metrics.probes:
            helm_release(f"{name}-blackbox-exporter", BLACKBOX_EXPORTER, namespace, blackbox_exporter.values(settings), self,
                         overrides=settings.helm_values, depends_on=crds)
            prober = scrape.blackbox_prober_url(BLACKBOX_EXPORTER.name, namespace)
            objects += [
                (f"{name}-probe-{target.name}", scrape.probe(settings, target, prober))
                for target in settings.metrics.probes
            ]
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
        # The key-value store of Mimir's HA tracker, when several Prometheus replicas write: it mounts its TLS Secrets.
        for obj in ha_tracker.manifests(settings):
            self._kubernetes_object(f"{name}-ha-tracker-{obj['kind'].lower()}", obj, depends_on=ha_tracker_tls)

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


    def _federation_secret(self, name: str, namespace: str, labels: dict[str, str], source: FederationSource,
                           credentials: Optional[pulumi.Input[str]]) -> k8s.core.v1.Secret:
        """The Secret of a federation source's basic auth: the `federation` client's password read from the
        source's stack (`stack`: its `federationPassword` output), or its entry in the credentials secret."""
        if source.stack is not None:
            reference = pulumi.StackReference(f"{name}-federation-{source.cluster}", stack_name=source.stack,
                                              opts=pulumi.ResourceOptions(parent=self))
            entry = {"username": web_auth.FEDERATION_CLIENT,
                     "password": pulumi.Output.secret(reference.require_output(FEDERATION_PASSWORD))}
        elif credentials is None:
            raise ValueError(f"MetricsStack {name}: federation source {source.cluster} needs credentials, none given")
        else:
            entry = pulumi.Output.secret(credentials).apply(lambda text: federation_credentials(text)[str(source.cluster)])
        return k8s.core.v1.Secret(
            f"{name}-federation-{source.cluster}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=source.credentials_secret, namespace=namespace, labels=labels),
            type="Opaque",
            string_data={"username": entry["username"], "password": entry["password"]},
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
        )

    def _ha_tracker_tls(self, name: str, namespace: str, labels: dict[str, str],
                        settings: Settings) -> tuple[list[k8s.core.v1.Secret], pulumi.Output[str]]:
        """The HA tracker's CA, etcd's certificate and the distributors' (monitoring/ha_tracker.py), each in
        its Secret; and the distributors' certificate, whose checksum rolls them when it is renewed."""
        child = pulumi.ResourceOptions(parent=self)
        # (The provider marks private keys secret; said here too, so the offline render shows them so.)
        ca_key = pulumi.Output.secret(tls.PrivateKey(f"{name}-ha-tracker-ca-key", algorithm="ECDSA", ecdsa_curve="P256",
                                                     opts=child).private_key_pem)
        ca = tls.SelfSignedCert(
            f"{name}-ha-tracker-ca", private_key_pem=ca_key, is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{ha_tracker.NAME} CA"),
            validity_period_hours=ha_tracker.CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"], opts=child)
        secrets, issued = [], {}
        for certificate in ha_tracker.certificates(settings):
            key = pulumi.Output.secret(tls.PrivateKey(f"{name}-{certificate.secret}-key", algorithm="ECDSA",
                                                      ecdsa_curve="P256", opts=child).private_key_pem)
            request = tls.CertRequest(
                f"{name}-{certificate.secret}-request", private_key_pem=key,
                subject=tls.CertRequestSubjectArgs(common_name=certificate.common_name),
                dns_names=list(certificate.dns_names), ip_addresses=list(certificate.ip_addresses), opts=child)
            issued[certificate.secret] = tls.LocallySignedCert(
                f"{name}-{certificate.secret}", cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key, ca_cert_pem=ca.cert_pem,
                validity_period_hours=ha_tracker.VALIDITY_HOURS, early_renewal_hours=ha_tracker.EARLY_RENEWAL_HOURS,
                allowed_uses=list(certificate.uses), opts=child).cert_pem
            secrets.append(k8s.core.v1.Secret(
                f"{name}-{certificate.secret}-secret",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=certificate.secret, namespace=namespace, labels=labels),
                type="kubernetes.io/tls",
                string_data={ha_tracker.CERTIFICATE_KEY: issued[certificate.secret],
                             ha_tracker.PRIVATE_KEY_KEY: key,
                             ha_tracker.CA_KEY: ca.cert_pem},
                opts=child))
        return secrets, issued[ha_tracker.CLIENT_SECRET]

    def _check_platform_operator(self, name: str) -> None:
        """Joining a platform's monitoring: its CRDs are read at preview, and the run stops, one line per
        problem, unless they serve what the stack makes at a version it is tested with."""
        reads = {crd: k8s.apiextensions.v1.CustomResourceDefinition.get(
            f"{name}-platform-crd-{crd.split('.')[0]}", crd, opts=pulumi.ResourceOptions(parent=self))
            for crd in tenancy.STACK_CRDS}

        def as_object(parts: dict) -> dict:
            # The SDK's output types are dicts of the API's fields.
            return {"metadata": {"annotations": dict(parts["annotations"] or {})},
                    "spec": {"versions": [dict(v) for v in parts["versions"] or []]}}

        def check(crds: dict) -> None:
            problems = tenancy.platform_crd_problems({crd: as_object(parts) for crd, parts in crds.items()})
            if problems:
                raise pulumi.RunError("\n".join(problems))

        pulumi.Output.all(**{crd: pulumi.Output.all(annotations=read.metadata.annotations, versions=read.spec.versions)
                             for crd, read in reads.items()}).apply(check)

    def _kubernetes_object(self, resource_name: str, obj: dict[str, Any],
                           depends_on: Optional[list[pulumi.Resource]] = None) -> pulumi.Resource:
        """A core object as its typed resource; a monitoring.coreos.com one once the Operator that admits it runs."""
        if obj["kind"] in _CORE_KINDS:
            cls, body = _CORE_KINDS[obj["kind"]]
            return cls(resource_name, metadata=obj["metadata"], **{body: obj[body]},
                       opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []))
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            metadata=obj["metadata"],
            spec=obj["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.kube_prometheus_stack]),
        )
