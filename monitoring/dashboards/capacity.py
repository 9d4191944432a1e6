"""Capacity planning: linear forecasts of volume usage, queue depth and traffic, and Prometheus'
own load against what it is sized for (docs/operations/capacity.md)."""

from __future__ import annotations

from config import Settings
from monitoring.dashboards.defaults import (
    BYTES,
    CLUSTER,
    CORES,
    COUNT,
    GREEN,
    ORANGE,
    PER_SECOND,
    RATIO,
    RED,
    SCOPE,
    Dashboard,
    Row,
    at_most,
    build,
    in_namespace,
    metric_variables,
    promql,
    steps,
    table,
    timeseries,
)

from monitoring.rules.alerts import sample_limit_share
from monitoring.rules.config import rule_config

UID = "webhook-capacity"

DAY = 86400
WEEK = 7 * DAY


def volumes_row(settings: Settings) -> Row:
    # Every claim in the cluster: the volumes that fill up are mostly the monitoring stack's own
    # (Prometheus, Loki, Mimir), not the webhook namespaces'.
    used = f"kubelet_volume_stats_used_bytes{{{CLUSTER}}}"
    capacity = f"kubelet_volume_stats_capacity_bytes{{{CLUSTER}}}"
    full = steps(GREEN, (0.8, ORANGE), (1, RED))
    retention_size = settings.prometheus.retention_size
    return Row("Volumes", (
        timeseries("Volume usage in 7 days",
                   "Used share of each claim forecast 7 days ahead from the last 24 hours' trend "
                   "(predict_linear). At 1 the volume is full.",
                   [promql(f"max by (namespace, persistentvolumeclaim) (predict_linear({used}[1d], {WEEK}) / {capacity})",
                           "{{namespace}}/{{persistentvolumeclaim}}")],
                   RATIO, thresholds=full),
        table("Days until full",
              "Claims that are filling up and the days left at the last 24 hours' growth rate.",
              [promql(f"max by (namespace, persistentvolumeclaim) (({capacity} - {used}) / deriv({used}[1d]) / {DAY}) > 0",
                      instant=True, table=True)],
              hidden=("Time",), thresholds=steps(RED, (7, ORANGE), (30, GREEN))),
        timeseries("Prometheus TSDB size in 7 days",
                   f"Size of Prometheus's persisted blocks now and forecast 7 days ahead. Past the "
                   f"retention size ({retention_size.text}) the oldest blocks are deleted early: less "
                   f"than {settings.prometheus.retention.text} of history stays local.",
                   [promql(f'max by (pod) (prometheus_tsdb_storage_blocks_bytes{{{CLUSTER}}})', "{{pod}} now"),
                    promql(f'max by (pod) (predict_linear(prometheus_tsdb_storage_blocks_bytes{{{CLUSTER}}}[1d], {WEEK}))',
                           "{{pod}} in 7 days")],
                   BYTES, thresholds=at_most(retention_size.bytes), width=24),
    ))


def load_row(settings: Settings) -> Row:
    deliveries = f"sum by (service) (service:webhook_deliveries:rate1h{{{SCOPE}}})"
    return Row("Load", (
        timeseries("Queue depth in 4 hours",
                   "Queue depth now and forecast 4 hours ahead from the last hour's trend. Dashed line: "
                   "the WebhookQueueBacklog threshold.",
                   [promql(f"service:webhook_queue_depth:sum{{{SCOPE}}}", "{{service}} now"),
                    promql(f"predict_linear(service:webhook_queue_depth:sum{{{SCOPE}}}[1h], {4 * 3600})",
                           "{{service}} in 4 hours")],
                   COUNT, thresholds=at_most(rule_config(settings).thresholds.queue_depth)),
        timeseries("Traffic in 30 days",
                   "Delivery attempts per second (1h average) now and forecast 30 days ahead from the last "
                   "7 days' trend.",
                   [promql(deliveries, "{{service}} now"),
                    promql(f"sum by (service) (predict_linear(service:webhook_deliveries:rate1h{{{SCOPE}}}[7d], "
                           f"{30 * DAY}))", "{{service}} in 30 days")],
                   PER_SECOND),
        timeseries("Week-over-week traffic growth",
                   "Delivery attempts per second against the same hour a week earlier, minus one.",
                   [promql(f"{deliveries} / sum by (service) (service:webhook_deliveries:rate1h{{{SCOPE}}} offset 1w) - 1",
                           "{{service}}")],
                   RATIO),
        timeseries("CPU headroom",
                   "CPU used against CPU requested in the selected namespaces: above 1 pods run on "
                   "borrowed capacity and the next replica will not fit where they do.",
                   [promql(f'sum(rate(container_cpu_usage_seconds_total{{{SCOPE}, container!=""}}[$__rate_interval])) '
                           f'/ sum(kube_pod_container_resource_requests{{{SCOPE}, resource="cpu"}})', "used / requested")],
                   RATIO, thresholds=at_most(1)),
        timeseries("CPU cores forecast",
                   "Cores used now and forecast 30 days ahead from the last 7 days' trend.",
                   [promql(f'sum(rate(container_cpu_usage_seconds_total{{{SCOPE}, container!=""}}[5m]))', "now"),
                    promql(f'predict_linear(sum(rate(container_cpu_usage_seconds_total{{{SCOPE}, container!=""}}[5m]))[7d:1h], '
                           f'{30 * DAY})', "in 30 days")],
                   CORES, width=24),
    ))


def prometheus_row(settings: Settings) -> Row:
    """The sizing rule's inputs, each against its budget: what outgrows Prometheus before it fails."""
    rules = rule_config(settings)
    prometheus = in_namespace(str(settings.namespace))
    own = f'{prometheus}, job="{rules.prometheus_job}"'
    return Row("Prometheus", (
        timeseries("Head series against the sizing",
                   "Series each Prometheus replica holds in memory. Dashed line: prometheus.expectedSeries, "
                   "what its memory limit is sized for; PrometheusHeadSeriesAboveSizing warns past it.",
                   [promql(f"max by (pod) (prometheus_tsdb_head_series{{{own}}})", "{{pod}}")],
                   COUNT, thresholds=at_most(rules.expected_series)),
        timeseries("Memory against the limit",
                   "Working set of each Prometheus container over its memory limit. The sizing keeps it "
                   "under 0.7: head compaction and large queries need the rest, and 1 is an OOM kill.",
                   [promql(f'max by (pod) (container_memory_working_set_bytes{{{prometheus}, container="prometheus"}}) '
                           f'/ max by (pod) (kube_pod_container_resource_limits{{{prometheus}, container="prometheus", '
                           f'resource="memory"}})', "{{pod}}")],
                   RATIO, thresholds=at_most(0.7)),
        timeseries("Rule evaluation time against the interval",
                   "Each rule group's last evaluation time over its interval, the slowest replica. Past 1 "
                   "iterations are missed: gaps in the recorded series and late alerts. The load "
                   "benchmark's budget for the recording group is 0.25.",
                   [promql(f"max by (rule_group) (prometheus_rule_group_last_duration_seconds{{{own}}} "
                           f"/ prometheus_rule_group_interval_seconds{{{own}}})", "{{rule_group}}")],
                   RATIO, thresholds=at_most(0.25)),
        timeseries("Samples per scrape against the sample limit",
                   "Samples each webhook service's scrape keeps over its sample limit (metrics.services[].sampleLimit), "
                   "the fullest target. WebhookScrapeNearSampleLimit warns past the dashed line; at 1 every "
                   "scrape fails.",
                   [promql(f"max by (namespace, service) ({sample_limit_share(rules, SCOPE + ', ')})",
                           "{{namespace}}/{{service}}")],
                   RATIO, thresholds=at_most(rules.sample_limit_warning)),
    ))


def capacity(settings: Settings) -> Dashboard:
    return build(
        UID, "Webhook Capacity Planning", "infrastructure",
        "Where volumes, the queue, traffic and CPU are heading (linear forecasts from recent trends), "
        "and Prometheus' own load against its sizing.",
        metric_variables(settings),
        [volumes_row(settings), load_row(settings), prometheus_row(settings)],
        time_from="now-7d", tags=["infrastructure", "capacity"],
    )
