"""Loki, the log store: what it receives and refuses (and what the agents drop), its compactor and
retention, the ingesters' write-ahead log and object storage (the platform's alerts,
monitoring/rules/alerts.py `store_alerts`, read the same metrics). Loki 3.7 metric names."""

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
from monitoring.rules.alerts import DROPPED_ENTRIES_METRIC, LOKI_PUSH_ROUTES, PUSH_REQUESTS_METRIC
from monitoring.rules.config import rule_config

UID = "webhook-loki"


def lines_received(scope: str):
    return timeseries("Lines received",
                      "Log lines per second the distributors received, before limits.",
                      [promql(f"sum(rate(loki_distributor_lines_received_total{{{scope}}}[$__rate_interval]))", "received")],
                      PER_SECOND)


def lines_discarded(scope: str):
    return timeseries("Lines refused, by reason",
                      "Lines per second Loki discarded: rate_limited, stream_limit and "
                      "per_stream_rate_limit are its limits (answered 429), the rest bad input "
                      "(LokiIngestionRefused).",
                      [promql(f"sum by (reason) (rate(loki_discarded_samples_total{{{scope}}}[$__rate_interval]))", "{{reason}}")],
                      PER_SECOND, thresholds=at_most(0.001))


def pushes(scope: str):
    return timeseries("Push requests, by status",
                      "Pushes per second on Loki's push routes by HTTP status: 204 stored, 429 refused "
                      "as rate-limited, 5xx failed.",
                      [promql(f'sum by (status_code) (rate(loki_request_duration_seconds_count{{{scope}, route=~"{LOKI_PUSH_ROUTES}"}}'
                              f"[$__rate_interval]))", "{{status_code}}")],
                      PER_SECOND)


def agent_side(settings: Settings):
    agents = in_namespace(str(settings.agents_namespace))
    dropped, requests = DROPPED_ENTRIES_METRIC[settings.logging.agent], PUSH_REQUESTS_METRIC[settings.logging.agent]
    return timeseries("Agents: lines dropped, pushes refused",
                      f"What the {settings.logging.agent} agents on the nodes lose (entries dropped, by reason) and "
                      "the pushes Loki answers with 429, which they retry for minutes before dropping "
                      "(LogPipelineEntriesDropped).",
                      [promql(f"sum by (reason) (rate({dropped}{{{agents}}}[$__rate_interval]))", "dropped: {{reason}}"),
                       promql(f'sum(rate({requests}{{{agents}, status_code="429"}}[$__rate_interval]))', "refused (429)")],
                      PER_SECOND, thresholds=at_most(0.001))


def compactor_age(scope: str, settings: Settings):
    config = rule_config(settings)
    return timeseries("Since the compactor's last success",
                      "Time since the last completed compaction (every 10 minutes) and retention run "
                      "(every 15). Dashed: the alerts' limit.",
                      [promql(f"time() - max(loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds"
                              f"{{{scope}}} > 0)", "compaction"),
                       promql(f"time() - max(loki_compactor_apply_retention_last_successful_run_timestamp_seconds{{{scope}}} > 0)",
                              "retention")],
                      SECONDS, thresholds=at_most(config.loki_compaction_max_age_seconds))


def wal(scope: str):
    return timeseries("Write-ahead log problems",
                      "Corrupt segments or checkpoints found replaying it, and writes failed on a full "
                      "disk (LokiIngesterWALFailing).",
                      [promql(f"sum by (pod) (increase(loki_ingester_wal_corruptions_total{{{scope}}}[$__rate_interval]))",
                              "{{pod}} corruptions"),
                       promql(f"sum by (pod) (increase(loki_ingester_wal_disk_full_failures_total{{{scope}}}[$__rate_interval]))",
                              "{{pod}} disk full")],
                      COUNT, thresholds=at_most(0.001))


def object_store(scope: str, settings: Settings):
    requests = f"loki_s3_request_duration_seconds_count{{{scope}"
    return timeseries("S3 requests failing, by operation",
                      "Share of Loki's requests to the logs bucket that fail with 5xx or are cancelled "
                      "(LokiObjectStoreErrors).",
                      [promql(f'sum by (operation) (rate({requests}, status_code=~"5..|cancel"}}[$__rate_interval]))\n'
                              f"/ sum by (operation) (rate({requests}}}[$__rate_interval]))", "{{operation}}")],
                      RATIO, thresholds=at_most(rule_config(settings).object_store_error_ratio))


def loki(settings: Settings) -> Dashboard:
    scope = in_namespace(str(settings.namespace))
    return build(
        UID, "Loki (log store)", "infrastructure",
        "Loki in the monitoring namespace and the agents that feed it: ingestion and refusals, "
        "compaction and retention, the write-ahead log and S3. Its alerts go to the platform; the "
        "agents' drops to the team.",
        [datasource_variable(False), cluster_variable(settings)],
        [Row("Ingestion", (lines_received(scope), lines_discarded(scope), pushes(scope), agent_side(settings))),
         Row("Compactor and retention", (compactor_age(scope, settings), wal(scope))),
         Row("Object storage", (object_store(scope, settings),))],
        tags=["infrastructure", "loki"],
    )
