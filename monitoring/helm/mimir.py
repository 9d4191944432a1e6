"""Values of mimir-distributed 5.7.0: the 90-day long-term metrics store on S3.

Classic architecture (distributors, ingesters, store-gateways, compactor, queriers): no Kafka
ingest storage (that arrives with chart 6) and no bundled MinIO. Blocks go to the metrics bucket
through the IRSA role bound to `MIMIR_SERVICE_ACCOUNT`. One tenant: Prometheus and Grafana send
no tenant header, so multi-tenancy is off.
"""

from __future__ import annotations

from typing import Optional

from config.settings import Settings
from monitoring import capacity, ha_tracker
from monitoring.helm import deep_merge
from monitoring.pods import ZONE, kubernetes_quantity, one_per_node, small_resources, zone_spread
from monitoring.scrape import team_labels
from monitoring.versions import MIMIR

# The one service account every Mimir pod runs as; the bucket's IRSA role trusts exactly it.
MIMIR_SERVICE_ACCOUNT = "mimir"
GATEWAY_PORT = 80
# The chart's replication zones: the names of the zone-aware StatefulSets (`<component>-zone-a`).
ZONE_NAMES = ("zone-a", "zone-b", "zone-c")

# Mimir's defaults (10k samples/s, 150k series) would reject a single cluster's
# kube-prometheus-stack series; these fit a cluster of a few hundred pods with room to grow.
INGESTION_LIMITS = {
    "ingestion_rate": 200000,
    "ingestion_burst_size": 2000000,
    "max_global_series_per_user": 3000000,
}

def fullname(release_name: str) -> str:
    """The chart's `mimir.fullname`: the release name when it contains `mimir`, else `<release>-mimir`."""
    return release_name if "mimir" in release_name else f"{release_name}-mimir"


def mimir_urls(release_name: str, namespace: str) -> tuple[str, str]:
    """(remote-write push URL, Prometheus-compatible query URL) of the gateway inside the cluster."""
    base = f"http://{fullname(release_name)}-gateway.{namespace}.svc.cluster.local:{GATEWAY_PORT}"
    return f"{base}/api/v1/push", f"{base}/prometheus"


def stateless_replicas(settings: Settings) -> int:
    """Replicas of the stateless components: two keep each path up through a node's loss; more only
    add what Mimir's capacity documentation asks for the configured load, which one pod carries."""
    return min(settings.long_term_storage.replicas, 2)


def _sized(settings: Settings, component: str, rf: int) -> dict:
    """The `resources` of each of the stateless component's pods (monitoring/capacity.py)."""
    return {"resources": capacity.mimir_requests(settings, component, stateless_replicas(settings), rf).resources()}


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
    rf = capacity.mimir_replication_factor(settings)
    # Zone-aware StatefulSets (one per zone, rolled by the rollout-operator) only make sense with a copy per zone.
    zone_aware = rf == 3

    def component(name: str, replicas: int = lts.replicas, **extra) -> dict:
        """Requests from Mimir's documented requirements for the configured load (monitoring/capacity.py)."""
        resources = capacity.mimir_requests(settings, name, replicas, rf).resources()
        return {"replicas": replicas, "resources": resources, **extra}

    def stateless(name: str, **extra) -> dict:
        """A Deployment's replicas on different nodes, spread over the zones (the chart's default is a
        soft spread over nodes only)."""
        labels = {"app.kubernetes.io/name": "mimir", "app.kubernetes.io/instance": MIMIR.name,
                  "app.kubernetes.io/component": name.replace("_", "-")}
        replicas = stateless_replicas(settings)
        spread = {"affinity": one_per_node(labels), "topologySpreadConstraints": [zone_spread(labels)]}
        return {"replicas": replicas, **(spread if replicas > 1 else {}), **extra}

    def zones() -> dict:
        """Zone-aware StatefulSets, one per replication zone, each zone pinned to one of the cluster's
        availability zones: an AZ outage takes one copy of every series, never two. (The zones keep the
        chart's names: they name the StatefulSets and their volumes.)"""
        if not zone_aware:
            return {"zoneAwareReplication": {"enabled": False}}
        return {"zoneAwareReplication": {"enabled": True, "zones": [
            {"name": name, "nodeSelector": {ZONE: str(az)}}
            for name, az in zip(ZONE_NAMES, settings.cluster.availability_zones)]}}

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
        "distributor": stateless("distributor", **_sized(settings, "distributor", rf),
                                 **(ha_tracker.client_mounts(ha_tracker_client_certificate)
                                    if ha_tracker.enabled(settings) else {})),
        "ingester": component("ingester", **zones(), **volume(lts.ingester_volume_size)),
        "store_gateway": component("store_gateway", **zones(), **volume(lts.store_gateway_volume_size)),
        "compactor": component("compactor", replicas=1, **volume(lts.compactor_volume_size)),
        "querier": stateless("querier", **_sized(settings, "querier", rf)),
        "query_frontend": stateless("query_frontend", **_sized(settings, "query_frontend", rf)),
        # Optional (Mimir's capacity documentation): with two query-frontends the queriers pull from them.
        "query_scheduler": {"enabled": False},
        # The gateway (an nginx in front of every path) replaces the deprecated `nginx` section;
        # the chart refuses both at once. nginx proxying a few requests a second: no documented figure.
        "gateway": stateless("gateway", enabledNonEnterprise=True, resources=small_resources("50m", "64Mi", "256Mi")),
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
