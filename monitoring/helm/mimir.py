"""Values of mimir-distributed 5.7.0: the 90-day long-term metrics store on S3.

Classic architecture (distributors, ingesters, store-gateways, compactor, queriers): no Kafka
ingest storage (that arrives with chart 6) and no bundled MinIO. Blocks go to the metrics bucket
through the IRSA role bound to `MIMIR_SERVICE_ACCOUNT`. One tenant: Prometheus and Grafana send
no tenant header, so multi-tenancy is off.
"""

from __future__ import annotations

from typing import Optional

from config.settings import Settings
from monitoring import ha_tracker
from monitoring.helm import deep_merge
from monitoring.pods import kubernetes_quantity, one_per_node, zone_spread
from monitoring.scrape import team_labels
from monitoring.versions import MIMIR

# The one service account every Mimir pod runs as; the bucket's IRSA role trusts exactly it.
MIMIR_SERVICE_ACCOUNT = "mimir"
GATEWAY_PORT = 80

# Mimir's defaults (10k samples/s, 150k series) would reject a single cluster's
# kube-prometheus-stack series; these fit a cluster of a few hundred pods with room to grow.
INGESTION_LIMITS = {
    "ingestion_rate": 200000,
    "ingestion_burst_size": 2000000,
    "max_global_series_per_user": 3000000,
}

# (cpu request, memory request, memory limit) per component; dev is sized to run, prod to carry.
_SIZES = {
    "dev": {
        "distributor": ("100m", "256Mi", "1Gi"),
        "ingester": ("200m", "1Gi", "2Gi"),
        "querier": ("100m", "256Mi", "1Gi"),
        "query_frontend": ("50m", "128Mi", "512Mi"),
        "query_scheduler": ("50m", "64Mi", "256Mi"),
        "store_gateway": ("100m", "256Mi", "1Gi"),
        "compactor": ("100m", "256Mi", "1Gi"),
        "gateway": ("50m", "64Mi", "256Mi"),
    },
    "prod": {
        "distributor": ("500m", "1Gi", "2Gi"),
        "ingester": ("1", "4Gi", "8Gi"),
        "querier": ("500m", "1Gi", "4Gi"),
        "query_frontend": ("200m", "256Mi", "1Gi"),
        "query_scheduler": ("100m", "128Mi", "512Mi"),
        "store_gateway": ("500m", "1Gi", "4Gi"),
        "compactor": ("500m", "1Gi", "4Gi"),
        "gateway": ("200m", "128Mi", "512Mi"),
    },
}


def fullname(release_name: str) -> str:
    """The chart's `mimir.fullname`: the release name when it contains `mimir`, else `<release>-mimir`."""
    return release_name if "mimir" in release_name else f"{release_name}-mimir"


def mimir_urls(release_name: str, namespace: str) -> tuple[str, str]:
    """(remote-write push URL, Prometheus-compatible query URL) of the gateway inside the cluster."""
    base = f"http://{fullname(release_name)}-gateway.{namespace}.svc.cluster.local:{GATEWAY_PORT}"
    return f"{base}/api/v1/push", f"{base}/prometheus"


def replication_factor(settings: Settings) -> int:
    """3 (one copy per zone) with at least 3 ingesters; 1 below that, where 3 copies cannot exist.

    Mimir defaults to 3: with one ingester (dev) every write would fail its quorum.
    """
    return 3 if settings.long_term_storage.replicas >= 3 else 1


def _resources(settings: Settings, component: str) -> dict:
    cpu, memory, memory_limit = _SIZES["prod" if settings.is_prod else "dev"][component]
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def mimir_values(
    settings: Settings,
    *,
    bucket_name: str,
    region: str,
    role_arn: str,
    storage_class: str,
    service_account: str = MIMIR_SERVICE_ACCOUNT,
    ha_tracker_client_certificate: Optional[str] = None,
) -> dict:
    """Values of mimir-distributed 5.7.0 for this stack. `ha_tracker_client_certificate`: the
    distributors' certificate for the HA tracker's etcd (its PEM), when the tracker runs."""
    lts = settings.long_term_storage
    if ha_tracker.enabled(settings) and ha_tracker_client_certificate is None:
        raise ValueError("the HA tracker runs: the distributors need their client certificate")
    rf = replication_factor(settings)
    # Zone-aware StatefulSets (one per zone, rolled by the rollout-operator) only make sense with a copy per zone.
    zone_aware = rf == 3

    def component(name: str, **extra) -> dict:
        return {"replicas": lts.replicas, "resources": _resources(settings, name), **extra}

    def stateless(name: str, **extra) -> dict:
        """A Deployment's replicas on different nodes, spread over the zones (the chart's default is a
        soft spread over nodes only)."""
        labels = {"app.kubernetes.io/name": "mimir", "app.kubernetes.io/instance": MIMIR.name,
                  "app.kubernetes.io/component": name.replace("_", "-")}
        spread = {"affinity": one_per_node(labels), "topologySpreadConstraints": [zone_spread(labels)]}
        return component(name, **(spread if lts.replicas > 1 else {}), **extra)

    def volume(size) -> dict:
        return {"persistentVolume": {"size": kubernetes_quantity(size), "storageClass": storage_class}}

    structured = {
        "multitenancy_enabled": False,
        "blocks_storage": {
            "backend": "s3",
            "s3": {
                "bucket_name": bucket_name,
                "endpoint": f"s3.{region}.amazonaws.com",
                "region": region,
            },
        },
        "limits": {
            "compactor_blocks_retention_period": lts.retention.hours,
            **INGESTION_LIMITS,
        },
        "ingester": {"ring": {"replication_factor": rf}},
        "store_gateway": {"sharding_ring": {"replication_factor": rf}},
    }
    if ha_tracker.enabled(settings):
        # Every Prometheus replica writes; the distributors keep one replica's samples.
        structured = deep_merge(structured, ha_tracker.mimir_config(settings))
    return {
        "serviceAccount": {
            "create": True,
            "name": service_account,
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
        "mimir": {"structuredConfig": structured},
        "distributor": stateless("distributor", **(ha_tracker.client_mounts(ha_tracker_client_certificate)
                                                    if ha_tracker.enabled(settings) else {})),
        "ingester": component("ingester", zoneAwareReplication={"enabled": zone_aware}, **volume(lts.ingester_volume_size)),
        "store_gateway": component(
            "store_gateway", zoneAwareReplication={"enabled": zone_aware}, **volume(lts.store_gateway_volume_size)
        ),
        "compactor": {"replicas": 1, "resources": _resources(settings, "compactor"), **volume(lts.compactor_volume_size)},
        "querier": stateless("querier"),
        "query_frontend": stateless("query_frontend"),
        "query_scheduler": stateless("query_scheduler"),
        # The gateway (an nginx in front of every path) replaces the deprecated `nginx` section;
        # the chart refuses both at once.
        "gateway": stateless("gateway", enabledNonEnterprise=True),
        "nginx": {"enabled": False},
        "rollout_operator": {"enabled": zone_aware},
        "minio": {"enabled": False},
        # Rules and alerts are Prometheus' job here; Mimir only stores.
        "ruler": {"enabled": False},
        "alertmanager": {"enabled": False},
        "overrides_exporter": {"enabled": False},
        # Mimir's own ServiceMonitors, selected by the team label like every other monitor; their
        # `cluster` label is this cluster's name rather than the chart's default (the release name).
        "metaMonitoring": {
            "serviceMonitor": {"enabled": True, "labels": team_labels(settings), "clusterLabel": settings.cluster.name}
        },
    }
