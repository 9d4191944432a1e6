"""The values of kube-prometheus-stack 88.5.3, whole: the Prometheus Operator, Prometheus,
Alertmanager, Grafana, node-exporter and kube-state-metrics.

`values(settings, refs)` is the one builder: a function of the settings and of the names of the
objects other components create (`ChartRefs`), which the chart's pods reference (the Alertmanager
configuration Secret, Grafana's admin and OAuth Secrets, the sidecars' Role, the StorageClass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from config.settings import Settings
from monitoring import ha_tracker, notifications, rules, tenancy, versions, web_auth
from monitoring.alertmanager import NOTHING
from monitoring.dashboards import DatasourceUrls, datasources
from monitoring.grafana import (
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    FOLDER_ANNOTATION,
    ROTATION_ANNOTATION,
    admin_reset_container,
    chart_image,
    ADMIN_PASSWORD_KEY,
    ADMIN_USER_KEY,
    CLUSTER_ISSUER_ANNOTATION,
    grafana_ini,
    oauth_mount,
)
from monitoring.ha_tracker import REPLICA_LABEL
from monitoring.helm import deep_merge
from monitoring.helm.mimir import mimir_urls
from monitoring.logging.loki import gateway_url
from monitoring.pods import (
    RESTRICTED_CONTAINER,
    container_resources,
    kubernetes_quantity,
    restricted_pod,
    small_resources,
    spread_replicas,
)
from monitoring.rules.alerts import chart_rule_overrides
from monitoring.volumes import claim_attributes
from monitoring.scrape import (
    federation_scrape_configs,
    federation_secrets,
    kube_prometheus_stack_fullname,
    team_labels,
)
from monitoring.versions import MIMIR
from monitoring.web_auth import ALERTMANAGER, PROMETHEUS, client_mount

# The release name, set as the chart's fullnameOverride too, so the in-cluster service names are
# known in advance (config/naming.py).
fullname = kube_prometheus_stack_fullname
CREATED_TIMESTAMP_ZERO_INGESTION = "created-timestamp-zero-ingestion"
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
OPERATOR_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


@dataclass(frozen=True)
class ChartRefs:
    """Names of the objects other components create that the chart's pods reference."""

    storage_class: str
    """The gp3 StorageClass of Prometheus', Alertmanager's and Grafana's volumes."""
    attributes_classes: Mapping[str, str]
    """Profile name -> its VolumeAttributesClass, for the volumes whose settings name a profile."""
    alertmanager_config_secret: str
    """The Secret holding `alertmanager.yaml` (the Alerting component's)."""
    grafana_admin_secret: str
    """The Secret holding Grafana's admin user and password."""
    grafana_oauth_secret: Optional[str]
    """The Secret holding the SSO client secret; None without SSO."""
    grafana_sidecar_role: str
    """The Role through which Grafana's sidecars read ConfigMaps of its namespace."""


def values(settings: Settings, refs: ChartRefs) -> dict[str, Any]:
    """The whole values of the release."""
    return deep_merge(
        prometheus_values(settings, refs.storage_class, refs.attributes_classes),
        {"alertmanager": alertmanager_values(settings, refs.alertmanager_config_secret, refs.storage_class,
                                             refs.attributes_classes)},
        {"grafana": grafana_values(settings, storage_class=refs.storage_class, admin_secret=refs.grafana_admin_secret,
                                   oauth_secret=refs.grafana_oauth_secret, sidecar_role=refs.grafana_sidecar_role)},
    )


# The grafana chart's Service port (service.port), in front of Grafana's 3000.
GRAFANA_SERVICE_PORT = 80


def grafana_name(settings: Settings) -> str:
    """Grafana's Deployment and Service: the subchart is named after the release."""
    return f"{fullname(settings)}-grafana"


def grafana_url(settings: Settings) -> str:
    """Grafana's Service inside the cluster."""
    return f"http://{grafana_name(settings)}.{settings.namespace}.svc.cluster.local:{GRAFANA_SERVICE_PORT}"


def service_urls(settings: Settings) -> tuple[str, str]:
    """(Prometheus URL, Alertmanager URL) inside the cluster."""
    base = f"{fullname(settings)}-{{}}.{settings.namespace}.svc.cluster.local"
    return (
        f"http://{base.format('prometheus')}:{PROMETHEUS_PORT}",
        f"http://{base.format('alertmanager')}:{ALERTMANAGER_PORT}",
    )


def _selector(settings: Settings) -> dict:
    return {"matchLabels": team_labels(settings)}


def selection_values(settings: Settings) -> dict:
    """Which monitors and rules this Prometheus loads: the team's, in the stack's two namespaces (where
    the program, the charts and the agents put every monitor and rule of the stack), and the chart's own.

    A label selector is an AND of its terms, so it cannot say "team=X OR release=<chart>". The
    sample's `serviceMonitorSelector: {team: ...}` alone would therefore drop the chart's own
    ServiceMonitors (kubelet/cAdvisor, node-exporter, kube-state-metrics, API server) and rules.
    Instead every object the chart creates gets the team label too: `commonLabels` reaches the
    parent chart's templates (its ServiceMonitors, PodMonitors, PrometheusRules), and the
    kube-state-metrics and node-exporter subcharts, where the stack runs them, take it through
    `prometheus.monitor.additionalLabels` (`cluster_values`). The team label alone would also select
    another stack's monitors and rules of the same team in the cluster (staging beside prod): each would
    scrape the other's targets and evaluate its rules twice.
    """
    selector = _selector(settings)
    own = {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In",
                                 "values": sorted({str(settings.namespace), str(settings.agents_namespace)})}]}
    return {
        "commonLabels": team_labels(settings),
        "prometheus": {
            "prometheusSpec": {
                "serviceMonitorSelector": selector,
                "serviceMonitorNamespaceSelector": own,
                "podMonitorSelector": selector,
                "podMonitorNamespaceSelector": own,
                "probeSelector": selector,
                "probeNamespaceSelector": own,
                "ruleSelector": selector,
                "ruleNamespaceSelector": own,
            }
        },
    }


def remote_write(settings: Settings, url: str) -> dict:
    """The long-term-store remote write: queue from settings, and only series worth 90 days.

    Every replica writes, with its replica label: Mimir keeps one replica's samples and drops the
    label (monitoring/ha_tracker.py). A single replica drops the label itself.
    """
    queue = settings.prometheus.remote_write_queue
    return {
        "name": "long-term-store",
        "url": url,
        "queueConfig": {
            "capacity": queue.capacity,
            "minShards": queue.min_shards,
            "maxShards": queue.max_shards,
            "maxSamplesPerSend": queue.max_samples_per_send,
            "batchSendDeadline": queue.batch_send_deadline.text,
        },
        "writeRelabelConfigs": [
            {"sourceLabels": ["__name__"], "regex": "|".join(settings.prometheus.remote_write_drop), "action": "drop"},
            *([] if ha_tracker.enabled(settings) else [{"regex": REPLICA_LABEL, "action": "labeldrop"}]),
        ],
    }


def retention_size(settings: Settings) -> str:
    """Prometheus takes `50GB` or `50GiB`, not the Kubernetes spelling `50Gi`."""
    text = settings.prometheus.retention_size.text
    return text + "B" if text.endswith("i") else text


def prometheus_values(settings: Settings, storage_class: str, attributes_classes: Mapping[str, str]) -> dict:
    """The values without the `grafana` and `alertmanager` sections: the Operator, Prometheus (remote
    writing to Mimir's gateway; federating the recorded series of `metrics.federation` sources) and
    the exporters."""
    p = settings.prometheus
    remote_write_url = mimir_urls(MIMIR.name, settings.namespace)[0]
    spec = {
        # What the tests run (tools/go_tools.py builds the same version), not whatever the chart picks.
        "image": {"tag": versions.PROMETHEUS_IMAGE_TAG},
        # Reached from the network only through the authenticating proxy (monitoring/web_auth.py).
        "listenLocal": True,
        "containers": [web_auth.sidecar(web_auth.PROMETHEUS)],
        "volumes": web_auth.sidecar_volumes(web_auth.PROMETHEUS),
        # Alerts go to Alertmanager's proxy with Prometheus' own credentials.
        "alertingEndpoints": [{
            "namespace": str(settings.namespace),
            "name": f"{fullname(settings)}-alertmanager",
            "port": "http-web",
            "pathPrefix": "/",
            "apiVersion": "v2",
            "basicAuth": web_auth.basic_auth_refs(web_auth.ALERTMANAGER, "prometheus"),
        }],
        # A counter series born with its first increment (the first error of an endpoint) has no
        # earlier sample, so rate() and increase() lose that increment. Ingesting the series' start
        # time as a zero sample counts it, for clients that expose it (Go: protobuf; Python, Java:
        # OpenMetrics `_created`, then no longer stored as series of their own). Measured in the live
        # suite's "fresh" scenario (docs/alerting.md).
        # (Not `extra-scrape-metrics`: Prometheus 3.14 warns that the flag goes away, and the Operator
        # has no field for its replacement; WebhookScrapeNearSampleLimit reads the configured limits.)
        "enableFeatures": [CREATED_TIMESTAMP_ZERO_INGESTION],
        "retention": p.retention.text,
        "retentionSize": retention_size(settings),
        # Replicas on one node or in one zone would go down together: the chart's default is a soft
        # preference only.
        **(spread_replicas("prometheus", "operator.prometheus.io/name") if p.replicas > 1 else {}),
        "replicas": p.replicas,
        "scrapeInterval": p.scrape_interval.text,
        "evaluationInterval": p.evaluation_interval.text,
        # Only on samples leaving Prometheus (remote write, federation, alerts), not in rule evaluation.
        "externalLabels": {"cluster": settings.cluster.name, "environment": settings.environment},
        # Each replica adds `<label>=<its pod>`: the label Mimir's HA tracker reads (alerts drop it).
        "replicaExternalLabelName": REPLICA_LABEL,
        "resources": container_resources(p.resources),
        "storageSpec": {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": kubernetes_quantity(p.volume_size)}},
                    **claim_attributes(attributes_classes, p.volume_profile),
                }
            }
        },
        "remoteWrite": [remote_write(settings, remote_write_url)],
        "additionalScrapeConfigs": federation_scrape_configs(settings, rules.federation_match(settings)),
        "secrets": federation_secrets(settings),
    }
    own = {
        "fullnameOverride": fullname(settings),
        # The CRDs are the prometheus-operator-crds release's (monitoring/helm/prometheus_operator_crds.py),
        # installed before this one when the stack owns its cluster, the platform's when it joins one: not
        # the chart's hook job, which force-applies them with a kubectl image pulled at every install,
        # upgrade and rollback, and re-applies older ones on a rollback.
        "crds": {"enabled": False},
        # Our own rule groups carry the one Watchdog; the chart's would add a second. The rest of
        # its `general` group stays: TargetDown, and InfoInhibitor (which keeps info alerts quiet).
        "defaultRules": {"disabled": {"Watchdog": True}, **chart_rule_overrides(settings)},
        # EKS runs the control plane out of reach and binds kube-proxy metrics to localhost:
        # their ServiceMonitors would only produce targets that are always down (and their alerts).
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheus": {
            "prometheusSpec": spec,
            **federation_ingress(settings),
            # The Service sends its clients to the proxy; the chart's self-monitor cannot authenticate,
            # the program's does (monitoring/scrape.py, self_monitor).
            "service": {"targetPort": web_auth.PROMETHEUS.proxy_port},
            "serviceMonitor": {"selfMonitor": False},
            # A node drain takes the replicas one at a time; a single replica gets no budget so nodes can drain.
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1} if p.replicas > 1 else {"enabled": False},
        },
    }
    return deep_merge(own, selection_values(settings), cluster_values(settings))


# The chart's rule groups about the cluster itself (nodes, kubelets, exporters, the Operator): in a
# cluster the stack joins they are the platform's, which alerts on them already. (Those of the control
# plane go with its scrapes, off in every mode on EKS or with the API server's in join mode.)
PLATFORM_RULE_GROUPS = (
    "kubelet", "kubernetesSystem", "kubeStateMetrics", "network", "node", "nodeExporterAlerting", "prometheusOperator",
)


def operator_scope(settings: Settings) -> dict[str, Any]:
    """`prometheusOperator` keys keeping the stack's Operator to its own: it reconciles the Prometheus,
    Alertmanager (and ThanosRuler) resources of its namespace carrying the team label, reads
    AlertmanagerConfigs there only, and its admission webhook judges the objects of that namespace only
    (failing closed elsewhere, it would stop every team's PrometheusRule writes while it is down)."""
    namespace = str(settings.namespace)
    selector = ",".join(f"{k}={v}" for k, v in team_labels(settings).items())
    return {
        "prometheusInstanceNamespaces": [namespace],
        "alertmanagerInstanceNamespaces": [namespace],
        "alertmanagerConfigNamespaces": [namespace],
        "thanosRulerInstanceNamespaces": [namespace],
        "prometheusInstanceSelector": selector,
        "alertmanagerInstanceSelector": selector,
        "thanosRulerInstanceSelector": selector,
        "admissionWebhooks": {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}},
    }


def cluster_values(settings: Settings) -> dict[str, Any]:
    """What the stack brings of the cluster's monitoring (`tenancy.mode`, monitoring/tenancy.py)."""
    if not tenancy.owns_cluster(settings):
        # The platform's Operator, CRDs and exporters serve it (monitoring/tenancy.py); the API
        # server's and CoreDNS' metrics and the cluster's alerts are the platform's, and the chart's
        # workload alerts look at the team's namespaces only.
        return {
            "prometheusOperator": {"enabled": False},
            "kubeStateMetrics": {"enabled": False},
            "nodeExporter": {"enabled": False},
            "kubeApiServer": {"enabled": False},
            "coreDns": {"enabled": False},
            "defaultRules": {
                "rules": {group: False for group in PLATFORM_RULE_GROUPS},
                "appNamespacesTarget": "|".join(tenancy.tenant_namespaces(settings)),
            },
        }
    return {
        "prometheusOperator": deep_merge({
            "resources": OPERATOR_RESOURCES,
            "admissionWebhooks": {
                # The webhook cannot answer while the release that deploys it is being installed;
                # afterwards invalid PrometheusRules are refused instead of silently ignored.
                "failurePolicy": "IgnoreOnInstallOnly",
                # The jobs that make and install the webhook's certificate.
                "patch": {"resources": small_resources("10m", "32Mi", "128Mi"), "securityContext": restricted_pod(65534)},
            },
        }, operator_scope(settings)),
        "kube-state-metrics": {"resources": small_resources("50m", "128Mi", "512Mi"),
                               "prometheus": {"monitor": {"additionalLabels": team_labels(settings)}}},
        "prometheus-node-exporter": {
            "prometheus": {"monitor": {"additionalLabels": team_labels(settings)}},
            # It needs the host's network and process namespaces, which `restricted` forbids.
            "namespaceOverride": str(settings.agents_namespace),
            "resources": small_resources("50m", "32Mi", "128Mi"),
            "containerSecurityContext": RESTRICTED_CONTAINER,
        },
    }


WHITELIST_ANNOTATION = "nginx.ingress.kubernetes.io/whitelist-source-range"
FEDERATE_PATH = "/federate"


def federation_ingress(settings: Settings) -> dict[str, Any]:
    """`prometheus.ingress` serving `/federate` alone to other clusters (`metrics.federationEndpoint`):
    TLS, through the ingress controller Grafana's ingress uses, to the Service, whose target is the
    authenticating proxy (the `federation` client's credentials); the controller turns away
    addresses not allowed. Nothing when the endpoint is not configured."""
    endpoint = settings.metrics.federation_endpoint
    if endpoint is None:
        return {}
    g = settings.grafana
    annotations = {**({CLUSTER_ISSUER_ANNOTATION: g.cluster_issuer} if g.cluster_issuer else {}),
                   **({WHITELIST_ANNOTATION: ",".join(endpoint.allowed_source_cidrs)}
                      if endpoint.allowed_source_cidrs else {})}
    return {"ingress": {
        "enabled": True,
        **({"annotations": annotations} if annotations else {}),
        "ingressClassName": g.ingress_class,
        "hosts": [str(endpoint.host)],
        "paths": [FEDERATE_PATH],
        "pathType": "Exact",
        "tls": [{"secretName": str(endpoint.tls_secret), "hosts": [str(endpoint.host)]}],
    }}


def alertmanager_values(settings: Settings, config_secret_name: str, storage_class_name: str,
                        attributes_classes: Mapping[str, str]) -> dict[str, Any]:
    """The `alertmanager:` section of the kube-prometheus-stack values.

    The configuration comes from `config_secret_name` (key `alertmanager.yaml`), which the
    Alerting component creates; `useExistingSecret` stops the chart rendering its own secret
    from `alertmanager.config`, which is therefore never set.
    """
    am = settings.alerting.alertmanager
    clustered = am.replicas > 1
    spec: dict[str, Any] = {
        # What the tests run (tools/go_tools.py builds the same version), not whatever the chart picks.
        "image": {"tag": versions.ALERTMANAGER_IMAGE_TAG},
        "replicas": am.replicas,
        "retention": am.retention.hours,
        "configSecret": config_secret_name,
        "useExistingSecret": True,
        "storage": {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage_class_name,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": kubernetes_quantity(am.volume_size)}},
                    **claim_attributes(attributes_classes, am.volume_profile),
                }
            }
        },
        "resources": container_resources(am.resources),
        # The routing is the program's Secret alone: no AlertmanagerConfig object, whoever creates it
        # and wherever, is merged in. The chart turns an empty selector into "select all", so the
        # selector is one no object can satisfy (a key both present and absent).
        # Links in notifications open the alert group in Grafana (Alertmanager itself is not exposed).
        "externalUrl": notifications.alertmanager_external_url(settings),
        "alertmanagerConfigSelector": NOTHING,
        "alertmanagerConfigNamespaceSelector": NOTHING,
    }
    # Reached from the network only through the authenticating proxy (monitoring/web_auth.py); the
    # Operator probes no Alertmanager that listens locally, so the probes come with it.
    spec["listenLocal"] = True
    spec["containers"] = [
        web_auth.sidecar(web_auth.ALERTMANAGER),
        {"name": "alertmanager", "livenessProbe": web_auth.local_probe(web_auth.ALERTMANAGER, "/-/healthy"),
         "readinessProbe": web_auth.local_probe(web_auth.ALERTMANAGER, "/-/ready")},
    ]
    spec["volumes"] = web_auth.sidecar_volumes(web_auth.ALERTMANAGER)
    if clustered:
        # Replicas gossip notifications and silences; two on one node would fail together.
        spec.update(spread_replicas("alertmanager", "alertmanager"))
    return {
        "enabled": True,
        "alertmanagerSpec": spec,
        "service": {"targetPort": web_auth.ALERTMANAGER.proxy_port},
        "serviceMonitor": {"selfMonitor": False},
        # Drains take one replica at a time; a single replica gets no budget so nodes can drain.
        "podDisruptionBudget": {"enabled": True, "minAvailable": am.replicas - 1} if clustered else {"enabled": False},
    }


def datasource_urls(settings: Settings) -> DatasourceUrls:
    """Where Grafana reaches each backend inside the cluster (release names are fixed)."""
    prometheus_url, alertmanager_url = service_urls(settings)
    return DatasourceUrls(
        prometheus=prometheus_url,
        mimir=mimir_urls(MIMIR.name, settings.namespace)[1],
        loki=gateway_url(settings.namespace),
        alertmanager=alertmanager_url,
    )


def grafana_values(
    settings: Settings,
    *,
    storage_class: str,
    admin_secret: str,
    oauth_secret: str | None,
    sidecar_role: str,
) -> dict:
    """The `grafana:` section of the kube-prometheus-stack values.

    Secrets are referenced by name, never inlined: the admin credentials from `admin_secret`,
    the OAuth client secret from `oauth_secret`. Data sources are ours alone, with stable UIDs
    that the dashboards reference, so the chart's defaults are switched off. The sidecars load data
    sources and dashboards (the chart's and ours, each of ours in the folder its annotation names)
    from ConfigMaps of Grafana's namespace only, through `sidecar_role` (a Role granting exactly
    that): the chart's own role would let Grafana read every Secret (a ClusterRole, as
    kube-prometheus-stack has the dashboard sidecar watch all namespaces). Nothing reaches Grafana
    through its public URL to configure it. Its admin password is reset from `admin_secret` at every
    start (monitoring/grafana.py), and a rotation restarts it.
    """
    g = settings.grafana
    ingress_annotations = {CLUSTER_ISSUER_ANNOTATION: g.cluster_issuer} if g.cluster_issuer else {}
    values = {
        # The version the admin reset's CLI is (monitoring/grafana.py): the server's own.
        "image": chart_image(versions.GRAFANA_IMAGE),
        "admin": {"existingSecret": admin_secret, "userKey": ADMIN_USER_KEY, "passwordKey": ADMIN_PASSWORD_KEY},
        "extraInitContainers": [admin_reset_container(versions.GRAFANA_IMAGE, admin_secret)],
        "podAnnotations": {ROTATION_ANNOTATION: str(g.admin_password_rotation)},
        # SQLite on a ReadWriteOnce gp3 volume: one replica, and the volume keeps users and preferences.
        "replicas": 1,
        # The chart's RollingUpdate starts the new pod before stopping the old: it cannot attach the
        # volume the old pod holds (on another node), never becomes ready, and the release times out.
        "deploymentStrategy": {"type": "Recreate"},
        "rbac": {"namespaced": True, "useExistingRole": sidecar_role},
        # Pod Security `restricted`: the pod's fsGroup gives the volume to Grafana's user, so the
        # chart's root init container that chowns it is not needed.
        "initChownData": {"enabled": False},
        "persistence": {
            "enabled": True,
            "type": "pvc",
            "storageClassName": storage_class,
            "size": g.volume_size.text,
            "accessModes": ["ReadWriteOnce"],
        },
        "ingress": {
            "enabled": True,
            # cert-manager issues the host's certificate into the TLS Secret and renews it.
            **({"annotations": ingress_annotations} if ingress_annotations else {}),
            "ingressClassName": g.ingress_class,
            "hosts": [g.host],
            "path": "/",
            "pathType": "Prefix",
            "tls": [{"secretName": g.tls_secret, "hosts": [g.host]}],
        },
        "grafana.ini": grafana_ini(settings, oauth_secret),
        # Secrets as files, read by `$__file{}` references (data source passwords, the SSO client secret).
        "extraSecretMounts": [client_mount(server, "grafana") for server in (PROMETHEUS, ALERTMANAGER)]
        + ([oauth_mount(oauth_secret)] if oauth_secret else []),
        "sidecar": {
            # The image the folder Job runs too (components/grafana_dashboards.py).
            "image": chart_image(versions.GRAFANA_SIDECAR_IMAGE),
            "resources": small_resources("10m", "64Mi", "128Mi"),
            "datasources": {"defaultDatasourceEnabled": False, "resource": "configmap"},
            "dashboards": {
                # Grafana's own namespace, where the dashboards are (kube-prometheus-stack says ALL).
                "searchNamespace": settings.namespace,
                "resource": "configmap",
                "label": DASHBOARD_LABEL,
                "labelValue": DASHBOARD_LABEL_VALUE,
                # Each of our dashboards in the folder its ConfigMap's annotation names.
                "folderAnnotation": FOLDER_ANNOTATION,
                "provider": {"foldersFromFilesStructure": True},
            },
        },
        "additionalDataSources": datasources(settings, datasource_urls(settings)),
        # The subchart's monitor does not get the parent chart's common labels: without the
        # team label Prometheus would not select it.
        "serviceMonitor": {"labels": team_labels(settings)},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }
    return values
