"""Cost: resources reserved by webhook delivery and by the monitoring stack, priced by config.

The stack's own cost counts all it runs (both its namespaces: the per-node agents too), what its stores
keep and ask of S3, the traffic its writes send across availability zones, and the volumes' provisioned
gp3 performance above the included baseline. S3 and transfer are estimated from the stores' own
counters: what S3 bills cannot be read from inside the cluster.
"""

from __future__ import annotations

from config import Settings
from monitoring import capacity
from config.settings import VolumeProfile
from policy.ebs import GP3
from monitoring.logging import loki
from monitoring.dashboards.defaults import (
    CLUSTER,
    SCOPE,
    USD,
    Dashboard,
    Row,
    build,
    metric_variables,
    number,
    promql,
    stat,
    timeseries,
)

UID = "webhook-cost"

GIB = 1024 ** 3
HOURS_PER_MONTH = 730


def _running(scope: str) -> str:
    # kube-state-metrics keeps series of finished pods; only running pods hold their requests.
    return (f'* on (cluster, namespace, pod) group_left () '
            f'max by (cluster, namespace, pod) (kube_pod_status_phase{{{scope}, phase="Running"}} == 1)')


def hourly_cost(settings: Settings, scope: str) -> str:
    """PromQL of USD per hour by namespace and `resource` (cpu, memory, storage).

    Capacity is bought by requests (the scheduler reserves them), so requests are priced, not
    usage. Each part gets its own `resource` label so that `or` keeps all three and a namespace
    without volumes still adds up.
    """
    prices = settings.grafana.unit_costs
    parts = {
        "cpu": (f'sum by (namespace) (kube_pod_container_resource_requests{{{scope}, resource="cpu"}} '
                f'{_running(scope)}) * {number(prices.cpu_core_hour)}'),
        "memory": (f'sum by (namespace) (kube_pod_container_resource_requests{{{scope}, resource="memory"}} '
                   f'{_running(scope)}) / {GIB} * {number(prices.memory_gib_hour)}'),
        "storage": (f"sum by (namespace) (kube_persistentvolumeclaim_resource_requests_storage_bytes{{{scope}}}) "
                    f"/ {GIB} * {number(prices.storage_gib_month)} / {HOURS_PER_MONTH}"),
    }
    return " or ".join(f'label_replace({expr}, "resource", "{name}", "", "")' for name, expr in parts.items())


# With the zones of a region equally used, this share of what crosses between pods crosses zones.
ZONES = 3
CROSS_ZONE_SHARE = (ZONES - 1) / ZONES
HOUR = 3600
# Object-store operations S3 bills at the PUT, COPY, POST and LIST price (Mimir's Thanos client names
# them upload and iter; Loki's AWS client S3.PutObject, S3.ListObjectsV2...); the rest at the GET price
# (deletes are free).
MIMIR_WRITES, MIMIR_READS = "upload|iter", "get|get_range|exists|attributes"
LOKI_WRITES, LOKI_READS = "S3.(Put|List|Copy|Post|CreateMultipart|UploadPart|CompleteMultipart).*", "S3.(Get|Head).*"


def _usd(name: str, expr: str) -> str:
    return f'label_replace({expr}, "resource", "{name}", "", "")'


def provisioned_volumes(settings: Settings) -> list[tuple[int, VolumeProfile]]:
    """(volumes, their profile) of every workload whose volumes name a performance profile."""
    profiles = {str(p.name): p for p in settings.storage.profiles}
    named = ((settings.prometheus.replicas, settings.prometheus.volume_profile),
             (settings.alerting.alertmanager.replicas, settings.alerting.alertmanager.volume_profile),
             (loki.volumes(settings), settings.logging.volume_profile))
    return [(count, profiles[str(name)]) for count, name in named if name]


def store_costs(settings: Settings, scope: str) -> str:
    """PromQL of USD per hour, by `resource`, of the stack's stores and volumes beyond requests: S3
    storage (what the long-term stores keep for their retention: Mimir's samples at their documented
    bytes per sample, Loki's stored chunks, one copy of each), S3 requests, data sent across zones (remote
    write and log pushes, and each store's replication), and provisioned gp3 IOPS and throughput."""
    prices = settings.grafana.unit_costs
    mimir_rf, loki_rf = capacity.mimir_replication_factor(settings), capacity.loki_replication_factor(settings)
    metrics_seconds = settings.long_term_storage.retention.seconds
    logs_seconds = settings.logging.retention.seconds
    stored_gib = (
        f"(sum(rate(cortex_distributor_received_samples_total{{{scope}}}[1h])) * {metrics_seconds:g} "
        f"* {capacity.MIMIR_BYTES_PER_SAMPLE} or vector(0))"
        f" + (sum(rate(loki_ingester_chunk_stored_bytes_total{{{scope}}}[1h])) * {logs_seconds:g} / {loki_rf} or vector(0))")
    requests = (
        f'(sum(rate(thanos_objstore_bucket_operations_total{{{scope}, operation=~"{MIMIR_WRITES}"}}[1h])) or vector(0))'
        f' + (sum(rate(loki_s3_request_duration_seconds_count{{{scope}, operation=~"{LOKI_WRITES}"}}[1h])) or vector(0))',
        f'(sum(rate(thanos_objstore_bucket_operations_total{{{scope}, operation=~"{MIMIR_READS}"}}[1h])) or vector(0))'
        f' + (sum(rate(loki_s3_request_duration_seconds_count{{{scope}, operation=~"{LOKI_READS}"}}[1h])) or vector(0))')
    crossing = (
        f"(sum(rate(prometheus_remote_storage_bytes_total{{{scope}}}[1h])) * {1 + mimir_rf} or vector(0))"
        f" + (sum(rate(loki_distributor_bytes_received_total{{{scope}}}[1h])) * {1 + loki_rf} or vector(0))")
    provisioned_month = sum(count * (
        # What a volume pays above gp3's included performance (a profile never asks for less: config refuses it).
        ((profile.iops or GP3.baseline_iops) - GP3.baseline_iops) * prices.iops_month
        + ((profile.throughput or GP3.baseline_throughput) - GP3.baseline_throughput) * prices.throughput_mibps_month)
        for count, profile in provisioned_volumes(settings))
    parts = {
        "s3 storage": f"({stored_gib}) / {GIB} * {number(prices.s3_gib_month)} / {HOURS_PER_MONTH}",
        "s3 requests": f"(({requests[0]}) * {number(prices.s3_write_requests_per_1000)} + ({requests[1]}) * "
                       f"{number(prices.s3_read_requests_per_1000)}) * {HOUR} / 1000",
        "cross-zone transfer": f"({crossing}) * {number(CROSS_ZONE_SHARE)} * {HOUR} / {GIB} * {number(prices.cross_zone_gib)}",
        # What the configuration provisions: the volume profiles the stack's volumes name.
        "provisioned iops and throughput": f"vector({number(provisioned_month)} / {HOURS_PER_MONTH})",
    }
    return " or ".join(_usd(name, expr) for name, expr in parts.items())


def cost(settings: Settings) -> Dashboard:
    prices = settings.grafana.unit_costs
    pricing = (f"Priced at {prices.cpu_core_hour} USD per core-hour, {prices.memory_gib_hour} USD per "
               f"GiB-hour and {prices.storage_gib_month} USD per GiB-month of gp3 (grafana.unitCosts).")
    stores = (f"S3 at {prices.s3_gib_month} USD per GiB-month, {prices.s3_write_requests_per_1000} and "
              f"{prices.s3_read_requests_per_1000} USD per thousand write and read requests, {prices.cross_zone_gib} "
              f"USD per GiB across zones, {prices.iops_month} USD per IOPS-month and {prices.throughput_mibps_month} "
              "USD per MiB/s-month of gp3 above its baseline (grafana.unitCosts).")
    service = hourly_cost(settings, SCOPE)
    own = f'{CLUSTER}, namespace=~"{settings.namespace}|{settings.agents_namespace}"'
    monitoring = f"{hourly_cost(settings, own)} or {store_costs(settings, own)}"
    deliveries_per_hour = f"sum(service:webhook_deliveries:rate5m{{{SCOPE}}}) * 3600"
    service_row = Row("Webhook delivery", (
        stat("Projected monthly cost",
             f"Current hourly cost of the selected namespaces × {HOURS_PER_MONTH} hours. {pricing}",
             [promql(f"sum({service}) * {HOURS_PER_MONTH}", "USD per month")],
             USD, decimals=0),
        stat("Cost per 1000 deliveries",
             f"Hourly cost divided by thousands of delivery attempts per hour. {pricing}",
             [promql(f"sum({service}) / ({deliveries_per_hour} / 1000)", "USD")],
             USD, decimals=4),
        timeseries("Hourly cost by resource",
                   f"USD per hour of CPU and memory requested by running pods and of claimed volumes. {pricing}",
                   [promql(f"sum by (resource) ({service})", "{{resource}}")],
                   USD, stacked=True),
        timeseries("Hourly cost by namespace",
                   f"USD per hour of each selected namespace, all resources. {pricing}",
                   [promql(f"sum by (namespace) ({service})", "{{namespace}}")],
                   USD, stacked=True),
    ))
    monitoring_row = Row("Monitoring stack", (
        stat("Monitoring projected monthly cost",
             f"What the monitoring stack (namespaces {settings.namespace} and {settings.agents_namespace}, the "
             f"agents on every node included) reserves, stores and sends × {HOURS_PER_MONTH} hours (PagerDuty "
             f"not included). {pricing} {stores}",
             [promql(f"sum({monitoring}) * {HOURS_PER_MONTH}", "USD per month")],
             USD, decimals=0),
        timeseries("Monitoring hourly cost by resource",
                   f"USD per hour the monitoring stack reserves (cpu, memory, storage), keeps in and asks of S3 "
                   f"(estimated from the stores' counters: Mimir's samples at {capacity.MIMIR_BYTES_PER_SAMPLE} "
                   f"bytes each for their retention, Loki's stored chunks), sends across zones (remote write, log "
                   f"pushes and the stores' replication), and pays for provisioned gp3 performance. {pricing} {stores}",
                   [promql(f"sum by (resource) ({monitoring})", "{{resource}}")],
                   USD, stacked=True, width=18),
    ))
    return build(
        UID, "Webhook Cost", "business",
        "What webhook delivery and its monitoring cost in cluster resources, storage and traffic, priced by config.",
        metric_variables(settings),
        [service_row, monitoring_row],
        time_from="now-7d", tags=["business", "cost"],
    )
