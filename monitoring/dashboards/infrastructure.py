"""Infrastructure behind webhook delivery: pods, nodes' disks, the database and the queue."""

from __future__ import annotations

from config import Settings
from monitoring.dashboards.defaults import (
    BYTES,
    BYTES_PER_SECOND,
    CLUSTER,
    CORES,
    COUNT,
    IOPS,
    PER_SECOND,
    RATIO,
    SCOPE,
    SECONDS,
    Dashboard,
    Row,
    at_most,
    build,
    metric_variables,
    promql,
    timeseries,
    usage,
)
from monitoring.rules.config import rule_config

UID = "webhook-infrastructure"

CONTAINERS = f'{SCOPE}, container!=""'
NODES = f'{CLUSTER}, job="node-exporter"'
# node-exporter's `instance` is host:port; node_uname_info carries the node's name.
NODE_NAME = f"* on (cluster, instance) group_left (nodename) node_uname_info{{{NODES}}}"
# postgres_exporter series: empty unless a postgres_exporter is scraped in this cluster.
POSTGRES = CLUSTER


def pods_row() -> Row:
    def per_pod(kind: str, resource: str) -> str:
        return f'sum by (pod) (kube_pod_container_resource_{kind}{{{SCOPE}, resource="{resource}"}})'

    return Row("Pods", (
        timeseries("CPU by pod",
                   "CPU cores used per pod against its requests and limits.",
                   [promql(f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{CONTAINERS}}}[$__rate_interval]))",
                           "{{pod}} used"),
                    promql(per_pod("requests", "cpu"), "{{pod}} requested"),
                    promql(per_pod("limits", "cpu"), "{{pod}} limit")],
                   CORES),
        timeseries("Memory by pod",
                   "Working-set memory per pod against its requests and limits.",
                   [promql(f"sum by (pod) (container_memory_working_set_bytes{{{CONTAINERS}}})", "{{pod}} used"),
                    promql(per_pod("requests", "memory"), "{{pod}} requested"),
                    promql(per_pod("limits", "memory"), "{{pod}} limit")],
                   BYTES),
        timeseries("CPU throttling by pod",
                   "Share of CFS periods in which the pod's containers were throttled: latency from a tight CPU limit.",
                   [promql(f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{CONTAINERS}}}[$__rate_interval])) "
                           f"/ sum by (pod) (rate(container_cpu_cfs_periods_total{{{CONTAINERS}}}[$__rate_interval]))",
                           "{{pod}}")],
                   RATIO, thresholds=at_most(0.25)),
        timeseries("Network by pod",
                   "Bytes received (positive) and transmitted (negative) per second, and dropped packets.",
                   [promql(f"sum by (pod) (rate(container_network_receive_bytes_total{{{SCOPE}}}[$__rate_interval]))",
                           "{{pod}} received"),
                    promql(f"-sum by (pod) (rate(container_network_transmit_bytes_total{{{SCOPE}}}[$__rate_interval]))",
                           "{{pod}} transmitted")],
                   BYTES_PER_SECOND),
    ))


def disks_row() -> Row:
    filesystems = f'{NODES}, mountpoint="/"'
    return Row("Disks", (
        timeseries("Volume usage",
                   "Used share of each persistent volume claim in the selected namespaces (kubelet volume stats).",
                   [promql(f"max by (persistentvolumeclaim) (kubelet_volume_stats_used_bytes{{{SCOPE}}} "
                           f"/ kubelet_volume_stats_capacity_bytes{{{SCOPE}}})", "{{persistentvolumeclaim}}")],
                   RATIO, thresholds=usage()),
        timeseries("Node root filesystem usage",
                   "Used share of each node's root filesystem (node-exporter).",
                   [promql(f"(1 - node_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}}) "
                           f"{NODE_NAME}", "{{nodename}}")],
                   RATIO, thresholds=usage()),
        timeseries("Disk IOPS by node",
                   "Reads (positive) and writes (negative) completed per second, per node and device.",
                   [promql(f"sum by (nodename, device) (rate(node_disk_reads_completed_total{{{NODES}}}[$__rate_interval]) "
                           f"{NODE_NAME})", "{{nodename}} {{device}} reads"),
                    promql(f"-sum by (nodename, device) (rate(node_disk_writes_completed_total{{{NODES}}}[$__rate_interval]) "
                           f"{NODE_NAME})", "{{nodename}} {{device}} writes")],
                   IOPS),
        timeseries("Disk throughput by node",
                   "Bytes read (positive) and written (negative) per second, per node and device.",
                   [promql(f"sum by (nodename, device) (rate(node_disk_read_bytes_total{{{NODES}}}[$__rate_interval]) "
                           f"{NODE_NAME})", "{{nodename}} {{device}} read"),
                    promql(f"-sum by (nodename, device) (rate(node_disk_written_bytes_total{{{NODES}}}[$__rate_interval]) "
                           f"{NODE_NAME})", "{{nodename}} {{device}} written")],
                   BYTES_PER_SECOND),
    ))


def database_row() -> Row:
    requires = "Needs a postgres_exporter scraped in this cluster; empty without one."
    return Row("Database", (
        timeseries("Connections by state",
                   f"Client connections by database and state (pg_stat_activity_count). {requires}",
                   [promql(f"sum by (datname, state) (pg_stat_activity_count{{{POSTGRES}}})", "{{datname}} {{state}}")],
                   COUNT, stacked=True, width=8),
        timeseries("Connection utilisation",
                   f"Connections over max_connections per server. {requires}",
                   [promql(f"sum by (instance) (pg_stat_activity_count{{{POSTGRES}}}) "
                           f"/ max by (instance) (pg_settings_max_connections{{{POSTGRES}}})", "{{instance}}")],
                   RATIO, thresholds=usage(), width=8),
        timeseries("Transactions",
                   f"Commits (positive) and rollbacks (negative) per second by database. {requires}",
                   [promql(f"sum by (datname) (rate(pg_stat_database_xact_commit{{{POSTGRES}}}[$__rate_interval]))",
                           "{{datname}} commits"),
                    promql(f"-sum by (datname) (rate(pg_stat_database_xact_rollback{{{POSTGRES}}}[$__rate_interval]))",
                           "{{datname}} rollbacks")],
                   PER_SECOND, width=8),
        timeseries("Mean statement time",
                   f"Mean execution time of statements by database (pg_stat_statements). {requires} It also needs "
                   f"the exporter's --collector.stat_statements and the pg_stat_statements extension.",
                   [promql(f"sum by (datname) (rate(pg_stat_statements_seconds_total{{{POSTGRES}}}[$__rate_interval])) "
                           f"/ sum by (datname) (rate(pg_stat_statements_calls_total{{{POSTGRES}}}[$__rate_interval]))",
                           "{{datname}}")],
                   SECONDS, width=12),
        timeseries("Deadlocks and conflicts",
                   f"Deadlocks and recovery conflicts per second by database. {requires}",
                   [promql(f"sum by (datname) (rate(pg_stat_database_deadlocks{{{POSTGRES}}}[$__rate_interval]))",
                           "{{datname}} deadlocks"),
                    promql(f"sum by (datname) (rate(pg_stat_database_conflicts{{{POSTGRES}}}[$__rate_interval]))",
                           "{{datname}} conflicts")],
                   PER_SECOND, width=12),
    ))


def queue_row(settings: Settings) -> Row:
    return Row("Queue", (
        timeseries("Queue depth by replica",
                   "Webhooks waiting in each replica's queue. An uneven spread means one replica is stuck.",
                   [promql(f"sum by (pod) (webhook_queue_depth{{{SCOPE}}})", "{{pod}}")],
                   COUNT),
        timeseries("Queue message rates",
                   "Messages leaving the queue (delivery attempts and retries per second) and the queue's net "
                   "growth (positive: filling faster than it drains).",
                   [promql(f"sum by (service) (service:webhook_deliveries:rate5m{{{SCOPE}}})", "{{service}} attempts"),
                    promql(f"sum by (service) (service_attempt:webhook_retries:rate5m{{{SCOPE}}})", "{{service}} retries"),
                    promql(f"sum by (service) (deriv(service:webhook_queue_depth:sum{{{SCOPE}}}[10m]))",
                           "{{service}} net growth")],
                   PER_SECOND),
        timeseries("Queue depth",
                   "Webhooks waiting, summed across replicas. Dashed line: the WebhookQueueBacklog threshold.",
                   [promql(f"service:webhook_queue_depth:sum{{{SCOPE}}}", "{{service}}")],
                   COUNT, thresholds=at_most(rule_config(settings).thresholds.queue_depth), width=24),
    ))


def infrastructure(settings: Settings) -> Dashboard:
    return build(
        UID, "Webhook Infrastructure", "infrastructure",
        "Resources behind webhook delivery: pods, disks, the database and the queue.",
        metric_variables(settings),
        [pods_row(), disks_row(), database_row(), queue_row(settings)],
        tags=["infrastructure"],
    )
