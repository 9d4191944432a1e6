"""Mimir, the 90-day store: what it accepts and refuses, its ingesters, compactor and retention,
store-gateways and object storage (the platform's alerts, monitoring/rules/alerts.py `store_alerts`,
read the same metrics). Mimir 2.16 metric names (mimir-distributed 5.7.0)."""

from __future__ import annotations

from config import Settings
from monitoring.dashboards.defaults import (
    COUNT,
    PER_SECOND,
    RATIO,
    SECONDS,
    Dashboard,
    Row,
    at_most,
    build,
    cluster_variable,
    datasource_variable,
    in_namespace,
    promql,
    timeseries,
)
from monitoring.rules.config import rule_config

UID = "webhook-mimir"


def received(scope: str):
    return timeseries("Samples received",
                      "Samples per second the distributors accepted (after the HA tracker kept one "
                      "Prometheus replica's).",
                      [promql(f"sum(rate(cortex_distributor_received_samples_total{{{scope}}}[$__rate_interval]))", "accepted")],
                      PER_SECOND)


def discarded(scope: str):
    return timeseries("Samples refused, by reason",
                      "Samples per second Mimir discarded: rate_limited (the ingestion limit, answered "
                      "429), series limits, out of order. Any of them is a gap in the 90-day history "
                      "(MimirIngestionRefused).",
                      [promql(f"sum by (reason) (rate(cortex_discarded_samples_total{{{scope}}}[$__rate_interval]))", "{{reason}}")],
                      PER_SECOND, thresholds=at_most(0.001))


def pushes(scope: str):
    return timeseries("Remote-write requests, by status",
                      "Pushes from Prometheus per second, by HTTP status: 2xx stored (202: a non-elected "
                      "replica's, dropped on purpose), 4xx refused, 5xx failed.",
                      [promql(f'sum by (status_code) (rate(cortex_request_duration_seconds_count{{{scope}, route="api_v1_push"}}'
                              f"[$__rate_interval]))", "{{status_code}}")],
                      PER_SECOND)


def elections(scope: str):
    return timeseries("HA tracker: elected replica changes",
                      "How often the HA tracker switched the Prometheus replica whose samples it keeps: "
                      "one or two in a rolling update, more is a replica stalling (MimirHATrackerFlapping).",
                      [promql(f"sum by (user) (increase(cortex_ha_tracker_elected_replica_changes_total{{{scope}}}"
                              f"[$__rate_interval]))", "{{user}}")],
                      COUNT)


def ingester_series(scope: str):
    return timeseries("In-memory series per ingester",
                      "Series each ingester holds (what its memory and its write-ahead-log replay grow with).",
                      [promql(f"sum by (pod) (cortex_ingester_memory_series{{{scope}}})", "{{pod}}")],
                      COUNT)


def wal(scope: str):
    return timeseries("Write-ahead log problems",
                      "Corrupt segments found replaying the write-ahead log, and failed writes to it "
                      "(MimirIngesterWALFailing): both lose samples on a restart.",
                      [promql(f"sum by (pod) (increase(cortex_ingester_tsdb_wal_corruptions_total{{{scope}}}[$__rate_interval]))",
                              "{{pod}} corruptions"),
                       promql(f"sum by (pod) (rate(cortex_ingester_tsdb_wal_writes_failed_total{{{scope}}}[$__rate_interval]))",
                              "{{pod}} failed writes/s")],
                      COUNT, thresholds=at_most(0.001))


def compactor_age(scope: str, settings: Settings):
    config = rule_config(settings)
    return timeseries("Since the compactor's last success",
                      "Time since the last completed compaction (hourly) and blocks-cleaner run (every "
                      "15 minutes, it applies the retention). Dashed: the compaction alert's limit.",
                      [promql(f"time() - max(cortex_compactor_last_successful_run_timestamp_seconds{{{scope}}} > 0)", "compaction"),
                       promql(f"time() - max(cortex_compactor_block_cleanup_last_successful_run_timestamp_seconds{{{scope}}} > 0)",
                              "blocks cleaner (retention)")],
                      SECONDS, thresholds=at_most(config.mimir_compaction_max_age_seconds))


def deletions(scope: str):
    return timeseries("Blocks marked for deletion, by reason",
                      "retention: blocks past longTermStorage.retention (none until the store is that "
                      "old); compaction: sources of a compacted block.",
                      [promql(f"sum by (reason) (increase(cortex_compactor_blocks_marked_for_deletion_total{{{scope}}}"
                              f"[$__rate_interval]))", "{{reason}}")],
                      COUNT)


def bucket_sync(scope: str, settings: Settings):
    return timeseries("Since each store-gateway's last bucket sync",
                      "Store-gateways sync the bucket every 15 minutes; one behind misses the newest "
                      "blocks of queries beyond Prometheus' retention (MimirStoreGatewayNotSyncing).",
                      [promql(f"time() - max by (pod) (cortex_bucket_stores_blocks_last_successful_sync_timestamp_seconds"
                              f'{{{scope}, component="store-gateway"}} > 0)', "{{pod}}")],
                      SECONDS, thresholds=at_most(rule_config(settings).mimir_sync_max_age_seconds))


def object_store(scope: str, settings: Settings):
    operations = "thanos_objstore_bucket_operations_total"
    failures = "thanos_objstore_bucket_operation_failures_total"
    return timeseries("S3 operations failing, by component",
                      "Share of each component's operations on the metrics bucket that fail "
                      "(MimirObjectStoreErrors).",
                      [promql(f"sum by (component) (rate({failures}{{{scope}}}[$__rate_interval]))\n"
                              f"/ sum by (component) (rate({operations}{{{scope}}}[$__rate_interval]))", "{{component}}")],
                      RATIO, thresholds=at_most(rule_config(settings).object_store_error_ratio))


def mimir(settings: Settings) -> Dashboard:
    scope = in_namespace(str(settings.namespace))
    return build(
        UID, "Mimir (long-term metrics)", "infrastructure",
        "Mimir, the 90-day metrics store in the monitoring namespace: writes and refusals, ingesters, "
        "compaction and retention, store-gateways and S3. Its alerts go to the platform.",
        [datasource_variable(False), cluster_variable(settings)],
        [Row("Writes", (received(scope), discarded(scope), pushes(scope), elections(scope))),
         Row("Ingesters", (ingester_series(scope), wal(scope))),
         Row("Compactor and retention", (compactor_age(scope, settings), deletions(scope))),
         Row("Store-gateways and object storage", (bucket_sync(scope, settings), object_store(scope, settings)))],
        tags=["infrastructure", "mimir"],
    )
