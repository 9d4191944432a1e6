"""Values of kube-prometheus-stack 88.5.3 for the Prometheus Operator and Prometheus.

The `grafana:` and `alertmanager:` sections come from their own builders and are merged in by
the metrics component; this module owns everything else.
"""

from __future__ import annotations

from typing import Sequence

from config.settings import Settings
from monitoring import ha_tracker, versions, web_auth
from monitoring.ha_tracker import REPLICA_LABEL
from monitoring.helm import (
    RESTRICTED_CONTAINER,
    container_resources,
    deep_merge,
    kubernetes_quantity,
    restricted_pod,
    small_resources,
    spread_replicas,
)
from monitoring.rules.alerts import chart_rule_overrides
from monitoring.scrape import KUBE_PROMETHEUS_STACK_FULLNAME, federation_scrape_configs, federation_secrets, team_labels

# Set as the chart's fullnameOverride so the in-cluster service names are known in advance.
FULLNAME = KUBE_PROMETHEUS_STACK_FULLNAME
CREATED_TIMESTAMP_ZERO_INGESTION = "created-timestamp-zero-ingestion"
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093


OPERATOR_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def service_urls(namespace: str) -> tuple[str, str]:
    """(Prometheus URL, Alertmanager URL) inside the cluster."""
    base = f"{FULLNAME}-{{}}.{namespace}.svc.cluster.local"
    return (
        f"http://{base.format('prometheus')}:{PROMETHEUS_PORT}",
        f"http://{base.format('alertmanager')}:{ALERTMANAGER_PORT}",
    )


def _selector(settings: Settings) -> dict:
    return {"matchLabels": team_labels(settings)}


def selection_values(settings: Settings) -> dict:
    """Which monitors and rules this Prometheus loads: the team's, from any namespace, and the chart's own.

    A label selector is an AND of its terms, so it cannot say "team=X OR release=<chart>". The
    sample's `serviceMonitorSelector: {team: ...}` alone would therefore drop the chart's own
    ServiceMonitors (kubelet/cAdvisor, node-exporter, kube-state-metrics, API server) and rules.
    Instead every object the chart creates gets the team label too: `commonLabels` reaches the
    parent chart's templates (its ServiceMonitors, PodMonitors, PrometheusRules), and the
    kube-state-metrics and node-exporter subcharts take it through `prometheus.monitor.additionalLabels`.
    An empty namespace selector is rendered as `{}`, which means every namespace.
    """
    labels = team_labels(settings)
    selector = _selector(settings)
    return {
        "commonLabels": labels,
        "kube-state-metrics": {"prometheus": {"monitor": {"additionalLabels": labels}}},
        "prometheus-node-exporter": {"prometheus": {"monitor": {"additionalLabels": labels}}},
        "prometheus": {
            "prometheusSpec": {
                "serviceMonitorSelector": selector,
                "serviceMonitorNamespaceSelector": {},
                "podMonitorSelector": selector,
                "podMonitorNamespaceSelector": {},
                "probeSelector": selector,
                "probeNamespaceSelector": {},
                "ruleSelector": selector,
                "ruleNamespaceSelector": {},
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


def prometheus_values(
    settings: Settings,
    *,
    storage_class: str,
    remote_write_url: str,
    cluster: str,
    federation_match: Sequence[str] = (),
) -> dict:
    """Values of kube-prometheus-stack 88.5.3 without its `grafana` and `alertmanager` sections.

    `federation_match` is the `match[]` list the federation jobs pull (needed when
    `metrics.federation` lists sources).
    """
    p = settings.prometheus
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
            "name": f"{FULLNAME}-alertmanager",
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
        "externalLabels": {"cluster": cluster, "environment": settings.environment},
        # Each replica adds `<label>=<its pod>`: the label Mimir's HA tracker reads (alerts drop it).
        "replicaExternalLabelName": REPLICA_LABEL,
        "resources": container_resources(p.resources),
        "storageSpec": {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": kubernetes_quantity(p.volume_size)}},
                }
            }
        },
        "remoteWrite": [remote_write(settings, remote_write_url)],
        "additionalScrapeConfigs": federation_scrape_configs(settings, federation_match),
        "secrets": federation_secrets(settings),
    }
    own = {
        "fullnameOverride": FULLNAME,
        "crds": {
            "enabled": True,
            # Helm installs CRDs only once; this hook job upgrades them with
            # `kubectl apply --server-side --force-conflicts` (they are too large for client-side apply).
            "upgradeJob": {
                "enabled": True,
                "forceConflicts": True,
                "image": {"busybox": {"tag": versions.CRD_UPGRADE_BUSYBOX_TAG}},
                "resources": small_resources("50m", "64Mi", "256Mi"),
            },
        },
        # Our own rule groups carry the one Watchdog; the chart's would add a second. The rest of
        # its `general` group stays: TargetDown, and InfoInhibitor (which keeps info alerts quiet).
        "defaultRules": {"disabled": {"Watchdog": True}, **chart_rule_overrides(settings)},
        # EKS runs the control plane out of reach and binds kube-proxy metrics to localhost:
        # their ServiceMonitors would only produce targets that are always down (and their alerts).
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheusOperator": {
            "resources": OPERATOR_RESOURCES,
            "admissionWebhooks": {
                # The webhook cannot answer while the release that deploys it is being installed;
                # afterwards invalid PrometheusRules are refused instead of silently ignored.
                "failurePolicy": "IgnoreOnInstallOnly",
                # The jobs that make and install the webhook's certificate.
                "patch": {"resources": small_resources("10m", "32Mi", "128Mi"), "securityContext": restricted_pod(65534)},
            },
        },
        "kube-state-metrics": {"resources": small_resources("50m", "128Mi", "512Mi")},
        "prometheus-node-exporter": {
            # It needs the host's network and process namespaces, which `restricted` forbids.
            "namespaceOverride": str(settings.agents_namespace),
            "resources": small_resources("50m", "32Mi", "128Mi"),
            "containerSecurityContext": RESTRICTED_CONTAINER,
        },
        "prometheus": {
            "prometheusSpec": spec,
            # The Service sends its clients to the proxy; the chart's self-monitor cannot authenticate,
            # the program's does (monitoring/scrape.py, self_monitor).
            "service": {"targetPort": web_auth.PROMETHEUS.proxy_port},
            "serviceMonitor": {"selfMonitor": False},
            # A node drain takes the replicas one at a time; a single replica gets no budget so nodes can drain.
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1} if p.replicas > 1 else {"enabled": False},
        },
    }
    return deep_merge(own, selection_values(settings))
