"""graphite_exporter: the service's Graphite metrics as the Prometheus metrics of its metrics contract.

The service (each replica) sends Graphite plaintext lines `<path> <value> <timestamp>` to
port 9109 with cumulative values (counts since the replica started), its replica name as the
second path segment so replicas do not overwrite each other:

    webhook.<replica>.delivery.<endpoint>.<status>                 webhook_deliveries_total
    webhook.<replica>.delivery_duration.<endpoint>.bucket.le_<b>   webhook_delivery_duration_seconds_bucket
    webhook.<replica>.delivery_duration.<endpoint>.sum|count       webhook_delivery_duration_seconds_sum|_count
    webhook.<replica>.queue_depth                                  webhook_queue_depth
    webhook.<replica>.retries.<attempt_number>                     webhook_retries_total

graphite_exporter exports every sample as a gauge (the mapper's `observer_type` only applies to
StatsD timers, which it does not receive), so the histogram arrives as its parts: cumulative
bucket counts per upper bound. A Graphite path segment cannot hold a dot, so a bound is written
`le_0_005` (0.005), `le_1` (1) or `le_inf` (+Inf); the mapping turns it back into `le`.
Unmatched paths are dropped (`--graphite.mapping-strict-match`): no stray series.
"""

from __future__ import annotations

import hashlib
import math

import yaml

from config.types import Duration
from config.settings import ScrapeTarget, Settings
from monitoring import versions
from monitoring.scrape import service_monitor
from monitoring import PART_OF

NAME = "graphite-exporter"
GRAPHITE_PORT = 9109
METRICS_PORT = 9108
MAPPING_FILE = "mapping.yaml"
CONFIG_DIR = "/etc/graphite-exporter"
# prometheus.DefBuckets: the bounds of the service's histogram (client_golang's defaults).
DEF_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_SEGMENT = r"([^.]+)"
_PREFIX = rf"^webhook\.{_SEGMENT}\."
_DURATION = rf"{_PREFIX}delivery_duration\.{_SEGMENT}\."


def _mapping(pattern: str, name: str, **labels: str) -> dict:
    return {"match": pattern, "match_type": "regex", "name": name, "labels": {"replica": "$1", **labels}}


def graphite_mapping(settings: Settings) -> dict:
    """The graphite_exporter mapping config (statsd_exporter mapper format), as data."""
    bucket = "webhook_delivery_duration_seconds_bucket"
    return {
        "mappings": [
            _mapping(rf"{_PREFIX}delivery\.{_SEGMENT}\.{_SEGMENT}$", "webhook_deliveries_total", endpoint="$2", status="$3"),
            _mapping(rf"{_DURATION}bucket\.le_([0-9]+)_([0-9]+)$", bucket, endpoint="$2", le="$3.$4"),
            _mapping(rf"{_DURATION}bucket\.le_([0-9]+)$", bucket, endpoint="$2", le="$3"),
            _mapping(rf"{_DURATION}bucket\.le_inf$", bucket, endpoint="$2", le="+Inf"),
            _mapping(rf"{_DURATION}sum$", "webhook_delivery_duration_seconds_sum", endpoint="$2"),
            _mapping(rf"{_DURATION}count$", "webhook_delivery_duration_seconds_count", endpoint="$2"),
            _mapping(rf"{_PREFIX}queue_depth$", "webhook_queue_depth"),
            _mapping(rf"{_PREFIX}retries\.{_SEGMENT}$", "webhook_retries_total", attempt_number="$2"),
        ]
    }


def bucket_segment(bound: float) -> str:
    """The Graphite path segment the service writes for a histogram upper bound: 0.005 -> `le_0_005`."""
    if math.isinf(bound):
        return "le_inf"
    return "le_" + format(bound, "g").replace(".", "_")


def mapping_yaml(settings: Settings) -> str:
    return yaml.safe_dump(graphite_mapping(settings), sort_keys=True)


def _labels(settings: Settings) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, **PART_OF, "team": settings.team_label}


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME}


def config_map(settings: Settings) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": str(settings.namespace), "labels": _labels(settings)},
        "data": {MAPPING_FILE: mapping_yaml(settings)},
    }


def deployment(settings: Settings) -> dict:
    """The exporter, non-root with a read-only root filesystem; restarted when the mapping changes."""
    checksum = hashlib.sha256(mapping_yaml(settings).encode()).hexdigest()
    container = {
        "name": NAME,
        "image": versions.GRAPHITE_EXPORTER_IMAGE,
        "args": [
            f"--graphite.mapping-config={CONFIG_DIR}/{MAPPING_FILE}",
            "--graphite.mapping-strict-match",
            f"--graphite.listen-address=:{GRAPHITE_PORT}",
            f"--web.listen-address=:{METRICS_PORT}",
        ],
        "ports": [
            {"name": "graphite-tcp", "containerPort": GRAPHITE_PORT, "protocol": "TCP"},
            {"name": "graphite-udp", "containerPort": GRAPHITE_PORT, "protocol": "UDP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 20},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "mapping", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": str(settings.namespace), "labels": _labels(settings)},
        "spec": {
            "replicas": settings.metrics.graphite_exporter.replicas,
            "selector": {"matchLabels": _selector()},
            "template": {
                "metadata": {"labels": _labels(settings), "annotations": {"checksum/mapping": checksum}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "runAsGroup": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "mapping", "configMap": {"name": NAME}}],
                },
            },
        },
    }


def service(settings: Settings) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": str(settings.namespace), "labels": _labels(settings)},
        "spec": {
            "selector": _selector(),
            "ports": [
                {"name": "graphite-tcp", "port": GRAPHITE_PORT, "targetPort": "graphite-tcp", "protocol": "TCP"},
                {"name": "graphite-udp", "port": GRAPHITE_PORT, "targetPort": "graphite-udp", "protocol": "UDP"},
                {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }


def graphite_service_monitor(settings: Settings) -> dict:
    """The exporter's ServiceMonitor, with the same guards as the services' own.

    The series are the webhook service's, relayed: the target's `namespace` and `service` labels
    name that service, so its recording rules, alerts (WebhookTargetDown included) and dashboards
    see them, not a `graphite-exporter` in the monitoring namespace.
    """
    target = ScrapeTarget(
        name=NAME,
        namespace=str(settings.namespace),
        selector=_selector(),
        port="metrics",
        path="/metrics",
        interval=Duration("30s"),
        scrape_timeout=Duration("10s"),
        sample_limit=50000,
        label_limit=30,
    )
    monitor = service_monitor(settings, target)
    relayed = settings.metrics.graphite_exporter
    monitor["spec"]["endpoints"][0]["relabelings"] = [
        {"action": "replace", "targetLabel": "namespace", "replacement": str(relayed.namespace)},
        {"action": "replace", "targetLabel": "service", "replacement": str(relayed.service)},
    ]
    return monitor


def manifests(settings: Settings) -> list[dict]:
    """Every object of the exporter, in apply order."""
    return [config_map(settings), deployment(settings), service(settings), graphite_service_monitor(settings)]
