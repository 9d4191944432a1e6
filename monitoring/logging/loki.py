"""Helm values of the Loki chart (grafana-community `loki`, see monitoring/versions.py).

Chunks, index and ruler data live in the logs bucket, reached through the IRSA role bound to the
`loki` service account (no static credentials). Retention is the compactor's job
(`retention_period` + `retention_enabled`); the deprecated table manager is never configured.
Log-based alert rules reach the ruler as a ConfigMap mounted into the single tenant's rule
directory (the kubelet refreshes the files when it changes; the ruler reads them every minute). The
chart's rules sidecar would need a Role reading every Secret of the namespace: without it, no Loki
pod talks to the Kubernetes API at all.
"""

from __future__ import annotations

from typing import Any, Mapping

from config import Settings
from monitoring import capacity
from monitoring.pods import container_resources, small_resources, zone_spread
from monitoring.volumes import claim_attributes
from monitoring.web_auth import ALERTMANAGER, BASIC_CREDENTIALS_KEY, client_file, client_mount

LOKI_SERVICE_ACCOUNT = "loki"
"""The service account every Loki pod runs as; the logs bucket's IRSA role must trust exactly it."""

# Fixed names (fullnameOverride) so that URLs do not depend on the Helm release name.
LOKI_FULLNAME = "loki"
GATEWAY_SERVICE = f"{LOKI_FULLNAME}-gateway"
GATEWAY_PORT = 80

# Label (and value) of the ConfigMap holding the ruler's rule files.
RULES_CONFIGMAP_LABEL = "loki_rule"
RULES_CONFIGMAP_LABEL_VALUE = "true"
# With auth disabled every request is the tenant `fake`; local rule storage is <directory>/<tenant>.
_RULES_DIRECTORY = "/rules"
_TENANT = "fake"

# The index period TSDB requires; the schema starts before any data this program writes.
SCHEMA = {"from": "2024-04-01", "store": "tsdb", "object_store": "s3", "schema": "v13",
          "index": {"prefix": "loki_index_", "period": "24h"}}

# Memcached caches: the chart defaults to 8 GiB of chunks cache; a small cache suits this volume.
_CHUNKS_CACHE_MB = 1024
_RESULTS_CACHE_MB = 256


def gateway_url(namespace: str) -> str:
    """Base URL of the Loki gateway service: Grafana's Loki data source and LogQL queries."""
    return f"http://{GATEWAY_SERVICE}.{namespace}.svc.cluster.local:{GATEWAY_PORT}"


def push_url(namespace: str) -> str:
    """Where log agents push."""
    return f"{gateway_url(namespace)}/loki/api/v1/push"


def loki_values(
    settings: Settings,
    *,
    bucket_name: str,
    region: str,
    role_arn: str,
    storage_class: str,
    attributes_classes: Mapping[str, str],
    service_account: str = LOKI_SERVICE_ACCOUNT,
    alertmanager_url: str,
    rules_config_map: str,
) -> dict[str, Any]:
    """Values of the Loki release.

    `bucket_name`/`region`: the logs bucket; `role_arn`: its IRSA role, annotated on
    `service_account` (which that role must trust); `storage_class`: class of every Loki volume, and
    `attributes_classes` (profile -> VolumeAttributesClass) the one of `logging.volume_profile`;
    `alertmanager_url`: where the ruler sends log-based alerts; `rules_config_map`: the ConfigMap
    holding the ruler's rule files.
    """
    logging = settings.logging
    monolithic = logging.mode == "Monolithic"
    persistence = {"size": logging.volume_size.text, "storageClass": storage_class,
                   **claim_attributes(attributes_classes, logging.volume_profile)}
    return {
        "fullnameOverride": LOKI_FULLNAME,
        # The chart's own name for single binary mode ("SingleBinary" is its deprecated alias).
        "deploymentMode": "Monolithic" if monolithic else "SimpleScalable",
        "loki": {
            # One tenant: the gateway is cluster-internal and the agents push without credentials.
            "auth_enabled": False,
            "commonConfig": {"replication_factor": capacity.loki_replication_factor(settings)},
            "schemaConfig": {"configs": [SCHEMA]},
            "storage": {
                "type": "s3",
                # Chunks and index; the ruler reads its rules from local files (the mounted ConfigMap).
                "bucketNames": {"chunks": bucket_name},
                "s3": {"region": region},
            },
            "limits_config": {
                "allow_structured_metadata": True,
                "retention_period": logging.retention.hours,
                # Sized from logging.dailyVolume and logging.streams: a push above them is refused.
                **capacity.loki_limits(settings),
            },
            "compactor": {
                "retention_enabled": True,
                "delete_request_store": "s3",
                "working_directory": "/var/loki/compactor",
            },
            "rulerConfig": {
                "alertmanager_url": alertmanager_url,
                # Through Alertmanager's authenticating proxy, with the ruler's own credentials.
                "alertmanager_client": {"type": "Basic", "credentials_file": RULER_CREDENTIALS},
                "enable_api": True,
                "external_labels": {"cluster": settings.cluster.name, "environment": settings.environment},
                "storage": {"type": "local", "local": {"directory": _RULES_DIRECTORY}},
                # Scratch space on the data volume, apart from the read-only rule files.
                "rule_path": "/var/loki/rules-temp",
            },
        },
        "serviceAccount": {
            "create": True,
            "name": service_account,
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            "automountServiceAccountToken": False,
        },
        # No Loki pod calls the Kubernetes API (the IRSA token is a volume of its own): none mounts an API token.
        "defaults": {"automountServiceAccountToken": False},
        "sidecar": {"rules": {"enabled": False}},
        # Without the sidecar Loki needs no role: namespaced, the chart makes none (not even an empty ClusterRole).
        "rbac": {"namespaced": True},
        "gateway": {
            "enabled": True,
            "replicas": 2 if settings.is_prod else 1,
            # The chart renders no budget for it unless told one (its write, read and backend have
            # theirs); one replica gets none, so nodes can drain.
            **({"podDisruptionBudget": {"maxUnavailable": 1}, **_zone_spread("gateway")} if settings.is_prod else {}),
            "resources": small_resources("50m", "64Mi", "256Mi"),
            "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "initialDelaySeconds": 15, "timeoutSeconds": 1},
            "metrics": {"resources": small_resources("10m", "32Mi", "64Mi")},
        },
        **(_monolithic(settings, persistence, rules_config_map) if monolithic
           else _simple_scalable(settings, persistence, rules_config_map)),
        **_extras(settings),
        # Object storage is S3; the bundled MinIO is for demos.
        "minio": {"enabled": False},
        "monitoring": {
            "serviceMonitor": {"enabled": True, "labels": {"team": settings.team_label}},
        },
    }


# The ruler's credentials for Alertmanager's proxy, mounted where the ruler runs.
_RULER_SECRET = client_mount(ALERTMANAGER, "loki")
RULER_CREDENTIALS = client_file(ALERTMANAGER, "loki", BASIC_CREDENTIALS_KEY)


def ruler_mounts(rules_config_map: str) -> dict[str, Any]:
    """Where the ruler runs: its rule files (the ConfigMap, in the tenant's directory) and its
    credentials for Alertmanager's proxy."""
    return {
        "extraVolumes": [
            {"name": "ruler-rules", "configMap": {"name": rules_config_map}},
            {"name": "alertmanager-credentials", "secret": {"secretName": _RULER_SECRET["secretName"]}},
        ],
        "extraVolumeMounts": [
            {"name": "ruler-rules", "mountPath": f"{_RULES_DIRECTORY}/{_TENANT}", "readOnly": True},
            {"name": "alertmanager-credentials", "mountPath": _RULER_SECRET["mountPath"], "readOnly": True},
        ],
    }

# The chart runs SimpleScalable's read, write and backend with 3 replicas each unless told
# otherwise, and refuses them next to the single binary.
_NO_SCALABLE_TARGETS = {"read": {"replicas": 0}, "write": {"replicas": 0}, "backend": {"replicas": 0}}


def pod_resources(settings: Settings, target: str, pods: int) -> dict:
    """`logging.resources` when set, else requests from the daily volume (monitoring/capacity.py)."""
    if settings.logging.resources is not None:
        return container_resources(settings.logging.resources)
    return capacity.loki_requests(settings, target, pods).resources(limit_factor=4)


def _monolithic(settings: Settings, persistence: dict, rules_config_map: str) -> dict[str, Any]:
    """The single binary (it runs the ruler: with its rules and credentials); no SimpleScalable target."""
    replicas = settings.logging.replicas
    return {
        "singleBinary": {
            "replicas": replicas,
            **ruler_mounts(rules_config_map),
            "persistence": persistence,
            "resources": pod_resources(settings, "single-binary", replicas),
        },
        **_NO_SCALABLE_TARGETS,
    }


def read_and_backend_replicas(settings: Settings) -> int:
    """Reading and the backend's work (compactor, ruler, index) need two pods to stay up through a node's
    loss, and no more for the sized volume."""
    return min(settings.logging.replicas, 2)


def volumes(settings: Settings) -> int:
    """Loki's volumes: the single binary's, or the write path's and the backend's."""
    replicas = settings.logging.replicas
    return replicas if settings.logging.mode == "Monolithic" else replicas + read_and_backend_replicas(settings)


def _simple_scalable(settings: Settings, persistence: dict, rules_config_map: str) -> dict[str, Any]:
    """Read, write and backend (which runs the ruler: with its rules and credentials); the single
    binary stays at the chart's zero replicas.

    The chart deletes the backend's volumes with its StatefulSet or when it scales down; a protected
    stack keeps them, as the storage class keeps every volume.
    """
    replicas = settings.logging.replicas
    # The write path keeps `replicas` copies of every stream.
    others = read_and_backend_replicas(settings)
    kept = {"whenScaled": "Retain", "whenDeleted": "Retain"} if settings.protect else {}
    return {
        "write": {"replicas": replicas, "persistence": persistence, "resources": pod_resources(settings, "write", replicas),
                  **_zone_spread("write", hard=True)},
        "read": {"replicas": others, "resources": pod_resources(settings, "read", others), **_zone_spread("read")},
        "backend": {"replicas": others, "persistence": {**persistence, **kept},
                    "resources": pod_resources(settings, "backend", others),
                    **_zone_spread("backend", hard=True),
                    # The chart mounts one for the rules sidecar, which does not run.
                    "automountServiceAccountToken": False, **ruler_mounts(rules_config_map)},
    }


def _zone_spread(component: str, hard: bool = False) -> dict[str, Any]:
    """A component's replicas over the zones (the chart keeps them on different nodes already); hard for
    the components whose volumes bind them to their zones (monitoring/pods.py)."""
    return {"topologySpreadConstraints": [zone_spread({"app.kubernetes.io/name": "loki",  # the chart's name
                                                       "app.kubernetes.io/component": component}, hard=hard)]}


def _extras(settings: Settings) -> dict[str, Any]:
    """Caches and the canary in prod; dev runs neither (and so no Helm test, which needs the canary).

    Memcached: the chart defaults to 8 GiB of chunks cache; a small cache suits this volume. The
    canary checks the write and read path continuously (loki_canary_* metrics) from a single pod
    rather than one per node; Helm tests never run under Pulumi.
    """
    if not settings.is_prod:
        return {"chunksCache": {"enabled": False}, "resultsCache": {"enabled": False},
                "lokiCanary": {"enabled": False}, "test": {"enabled": False}}
    return {
        "chunksCache": {"enabled": True, "allocatedMemory": _CHUNKS_CACHE_MB},
        "resultsCache": {"enabled": True, "allocatedMemory": _RESULTS_CACHE_MB},
        "memcachedExporter": {"resources": small_resources("10m", "32Mi", "64Mi")},
        "lokiCanary": {"enabled": True, "kind": "Deployment", "replicas": 1,
                       "resources": small_resources("10m", "32Mi", "64Mi")},
    }
