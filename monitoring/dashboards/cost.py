"""Cost: resources reserved by webhook delivery and by the monitoring stack, priced by config."""

from __future__ import annotations

from config import Settings
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


def cost(settings: Settings) -> Dashboard:
    prices = settings.grafana.unit_costs
    pricing = (f"Priced at {prices.cpu_core_hour} USD per core-hour, {prices.memory_gib_hour} USD per "
               f"GiB-hour and {prices.storage_gib_month} USD per GiB-month of gp3 (grafana.unitCosts).")
    service = hourly_cost(settings, SCOPE)
    monitoring = hourly_cost(settings, f'{CLUSTER}, namespace="{settings.namespace}"')
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
             f"What the monitoring stack in namespace {settings.namespace} reserves × {HOURS_PER_MONTH} "
             f"hours (S3 and PagerDuty not included). {pricing}",
             [promql(f"sum({monitoring}) * {HOURS_PER_MONTH}", "USD per month")],
             USD, decimals=0),
        timeseries("Monitoring hourly cost by resource",
                   f"USD per hour the monitoring stack reserves. {pricing}",
                   [promql(f"sum by (resource) ({monitoring})", "{{resource}}")],
                   USD, stacked=True, width=18),
    ))
    return build(
        UID, "Webhook Cost", "business",
        "What webhook delivery and its monitoring cost in cluster resources, from requests priced by config.",
        metric_variables(settings),
        [service_row, monitoring_row],
        time_from="now-7d", tags=["business", "cost"],
    )
