"""Logs (Loki): error volume by service and lookup of one request by its correlation ID."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard as dashboard_models

from config import Settings
from monitoring.dashboards.defaults import (
    COUNT,
    LOGS,
    Dashboard,
    Row,
    build,
    logql,
    logs as logs_panel,
    timeseries,
)
from monitoring.logging.logql import ERROR_LEVELS, correlation_id_lookup, error_burst, panics

UID = "webhook-logs"

STREAMS = '{namespace=~"$namespace"}'
ERROR_STREAMS = f'{{namespace=~"$namespace", level=~"{ERROR_LEVELS}"}}'


def log_namespace_variable() -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable("namespace")
        .label("Namespace")
        .datasource(LOGS)
        .query("label_values(namespace)")
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(dashboard_models.VariableOption(selected=True, text="All", value="$__all"))
    )


def correlation_id_variable() -> dashboard_builders.TextBoxVariable:
    return dashboard_builders.TextBoxVariable("correlation_id").label("Correlation ID").default_value("")


def logs(settings: Settings) -> Dashboard:
    errors_row = Row("Errors", (
        timeseries("Error volume by service",
                   "Error-level log lines per interval by service (namespace/app) of the webhook delivery "
                   "namespaces: the query the WebhookLogErrorBurst alert evaluates.",
                   [logql(error_burst(settings, "$__auto"), "{{namespace}}/{{app}}")],
                   COUNT, bars=True, stacked=True, width=8),
        timeseries("Panics by service",
                   "Go runtime panics per interval by service: the query WebhookServicePanicked evaluates.",
                   [logql(panics(settings, "$__auto"), "{{namespace}}/{{app}}")],
                   COUNT, bars=True, width=8),
        timeseries("Log volume by level",
                   "Log lines per interval of the selected namespaces, by level.",
                   [logql(f"sum by (level) (count_over_time({STREAMS} [$__auto]))", "{{level}}")],
                   COUNT, bars=True, stacked=True, width=8),
        logs_panel("Error logs", "Error-level log lines of the selected namespaces.", [logql(ERROR_STREAMS)]),
    ))
    correlation_row = Row("Request trace", (
        logs_panel("Logs for correlation ID",
                   "Every log line in the cluster whose correlation_id is the one entered above. From any "
                   "log line, the correlation_id field's link runs the same search.",
                   [logql(correlation_id_lookup())]),
    ))
    return build(
        UID, "Webhook Logs", "webhook-delivery",
        "Errors by service and one request followed across services by its correlation ID.",
        [log_namespace_variable(), correlation_id_variable()],
        [errors_row, correlation_row],
        time_from="now-1h", tags=["logs"],
    )
