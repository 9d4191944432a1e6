"""Every Prometheus replica writes to the long-term store; Mimir keeps one replica's samples.

With one writing replica, the 90-day history has a gap whenever that pod is down (a rollout, a node
drain, a crash). So each replica remote-writes, labelled with `cluster` and its own `__replica__`,
and Mimir's HA tracker accepts the samples of one elected replica per cluster, drops the others'
(answering 202, so they are not retried) and strips the replica label. When the elected replica
sends nothing for the failover timeout (30s, Mimir's default), the next sample of another replica
makes that one the elected: the gap is at most that timeout plus one remote-write flush.

The tracker keeps its elections in a key-value store; memberlist gossip, which Mimir's rings use,
is too slow for it and Mimir 2.16 refuses it there. One etcd member holds them, in memory only: an
election is a few bytes rewritten every 15s, and a restarted etcd is empty and refilled by the
next samples; meanwhile the distributors keep their cached elections and accept samples as before.
Only Mimir's distributors reach it (monitoring/network.py).

With a single Prometheus replica (dev) there is nothing to deduplicate: no tracker, no etcd, and
the replica label is dropped before writing.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from monitoring import versions
from monitoring.pods import RESTRICTED_CONTAINER, restricted_pod, small_resources
from monitoring import PART_OF

# Mimir's default labels: the replica label is removed once a sample is accepted.
REPLICA_LABEL = "__replica__"
CLUSTER_LABEL = "cluster"
NAME = "mimir-ha-tracker-etcd"
CLIENT_PORT = 2379
METRICS_PORT = 2381
DATA_DIRECTORY = "/var/run/etcd"


def enabled(settings: Settings) -> bool:
    """Deduplication is needed when more than one replica writes."""
    return settings.prometheus.replicas > 1


def endpoint(settings: Settings) -> str:
    return f"{NAME}.{settings.namespace}.svc.cluster.local:{CLIENT_PORT}"


def mimir_config(settings: Settings) -> dict[str, Any]:
    """`mimir.structuredConfig` keys: the tracker on, its store, the labels it reads."""
    return {
        "distributor": {"ha_tracker": {
            "enable_ha_tracker": True,
            "kvstore": {"store": "etcd", "etcd": {"endpoints": [endpoint(settings)]}},
        }},
        "limits": {"accept_ha_samples": True, "ha_cluster_label": CLUSTER_LABEL, "ha_replica_label": REPLICA_LABEL},
    }


def _labels(settings: Settings) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, **PART_OF,
            "team": settings.team_label}


def deployment(settings: Settings) -> dict[str, Any]:
    container = {
        "name": "etcd",
        "image": versions.ETCD_IMAGE,
        "command": ["etcd"],
        "args": [
            f"--name={NAME}",
            f"--data-dir={DATA_DIRECTORY}/data",
            f"--listen-client-urls=http://0.0.0.0:{CLIENT_PORT}",
            f"--advertise-client-urls=http://{endpoint(settings)}",
            # One member: the peer port only listens on the pod itself.
            "--listen-peer-urls=http://127.0.0.1:2380",
            f"--listen-metrics-urls=http://0.0.0.0:{METRICS_PORT}",
            # The elections are rewritten every few seconds: keep an hour of revisions, 64 MiB at most.
            "--auto-compaction-mode=periodic",
            "--auto-compaction-retention=1h",
            f"--quota-backend-bytes={64 * 2**20}",
        ],
        "ports": [{"name": "client", "containerPort": CLIENT_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "metrics"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "metrics"}, "periodSeconds": 20,
                          "failureThreshold": 5},
        "resources": small_resources("50m", "64Mi", "256Mi"),
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIRECTORY}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": str(settings.namespace), "labels": _labels(settings)},
        "spec": {
            "replicas": 1,
            # One member on an in-memory volume: never two at once.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "template": {
                "metadata": {"labels": _labels(settings)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod(65534),
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "128Mi"}}],
                },
            },
        },
    }


def service(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": str(settings.namespace), "labels": _labels(settings)},
        "spec": {
            "selector": {"app.kubernetes.io/name": NAME},
            "ports": [{"name": "client", "port": CLIENT_PORT, "targetPort": "client", "protocol": "TCP"},
                      {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def service_monitor(settings: Settings) -> dict[str, Any]:
    """Its metrics, so MonitoringTargetDown sees it down."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": NAME, "namespace": str(settings.namespace), "labels": _labels(settings)},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "60s"}],
            "sampleLimit": 5000,
        },
    }


def manifests(settings: Settings) -> list[dict[str, Any]]:
    """The etcd of the tracker, when more than one replica writes; nothing otherwise."""
    if not enabled(settings):
        return []
    return [deployment(settings), service(settings), service_monitor(settings)]
