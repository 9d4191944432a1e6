"""LogQL queries over the labels and fields the log pipeline produces, and the log-based alerts.

Queries are shared by the Logs dashboard and the Loki ruler's alert rules, so a panel shows
exactly what an alert evaluates. Stream labels: namespace, pod, container, app, level; structured
metadata: correlation_id, trace_id; JSON fields of delivery lines: endpoint, status.
"""

from __future__ import annotations

import re
from typing import Any

from config import Settings
from monitoring.logging.pipeline import CORRELATION_ID_FIELD, ENDPOINT_FIELD, LEVEL_FIELD, STATUS_FIELD

# Levels that count as errors, whatever case the service logs them in.
ERROR_LEVELS = "(?i)(error|fatal|critical|panic)"
# A Go runtime panic prints this (not JSON) to stderr before the process dies.
GO_PANIC_MARKER = "panic: "
# Grafana dashboard variable holding the correlation ID to look up.
CORRELATION_ID_VARIABLE = "$correlation_id"
# Static service label for alerts that aggregate over no service.
DEFAULT_SERVICE = "webhook-delivery"
SERVICE_FROM_APP = '{{ or $labels.app "' + DEFAULT_SERVICE + '" }}'


def _quote(value: str) -> str:
    """A LogQL double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service_namespaces(settings: Settings) -> tuple[str, ...]:
    """Namespaces of the webhook delivery services, sorted, each once."""
    return tuple(sorted({service.namespace for service in settings.metrics.scraped_services}))


def service_selector(settings: Settings, *extra_matchers: str) -> str:
    """Stream selector of every log line of the webhook delivery services."""
    # Kubernetes names hold no regex metacharacters that matter outside a character class.
    namespaces = "|".join(service_namespaces(settings))
    matchers = [f"namespace=~{_quote(namespaces)}", *extra_matchers]
    return "{" + ", ".join(matchers) + "}"


def error_burst(settings: Settings, window: str = "5m") -> str:
    """Error-level log lines per service (namespace, app) over `window`."""
    selector = service_selector(settings, f"{LEVEL_FIELD}=~{_quote(ERROR_LEVELS)}")
    return f"sum by (namespace, app) (count_over_time({selector} [{window}]))"


def panics(settings: Settings, window: str = "5m") -> str:
    """Go runtime panics per service (namespace, app) over `window`."""
    selector = service_selector(settings)
    return f"sum by (namespace, app) (count_over_time({selector} |= {_quote(GO_PANIC_MARKER)} [{window}]))"


def delivery_failures_by_endpoint(settings: Settings, window: str = "5m") -> str:
    """Failed deliveries logged per service and endpoint over `window` (status in the failure list)."""
    statuses = "|".join(re.escape(s) for s in settings.metrics.failure_statuses)
    return (
        "sum by (namespace, app, endpoint) (count_over_time("
        f'{service_selector(settings)} | json {ENDPOINT_FIELD}="{ENDPOINT_FIELD}", {STATUS_FIELD}="{STATUS_FIELD}"'
        ' | __error__=""'
        f" | {STATUS_FIELD}=~{_quote(f'^({statuses})$')} [{window}]))"
    )


def correlation_id_lookup(correlation_id: str = CORRELATION_ID_VARIABLE) -> str:
    """Every log line of every namespace carrying this correlation ID (structured metadata).

    Lines without one never match: an empty search box finds nothing instead of every such line.
    """
    return f'{{namespace=~".+"}} | {CORRELATION_ID_FIELD}!="" | {CORRELATION_ID_FIELD}={_quote(correlation_id)}'


def loki_rule_groups(settings: Settings) -> list[dict[str, Any]]:
    """Log-based alert rule groups for the Loki ruler (Prometheus rule-file structure, LogQL exprs)."""
    team = settings.team_label
    error_burst_lines = settings.logging.error_burst_lines
    runbooks = settings.alerting.runbook_base_url

    def rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            # `service` is the aggregated `app` label; pods without one count as the default.
            "labels": {"severity": severity, "team": team, "service": SERVICE_FROM_APP},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": f"{runbooks}{alert}.md",
            },
        }

    rules = [
        rule(
            "WebhookLogErrorBurst",
            f"{error_burst(settings)} > {error_burst_lines}",
            "5m",
            "warning",
            "Burst of error logs from {{ $labels.namespace }}/{{ $labels.app }}",
            "{{ $value }} error-level log lines in 5 minutes (threshold " + str(error_burst_lines) + ").",
        ),
        rule(
            "WebhookServicePanicked",
            f"{panics(settings)} > 0",
            "0s",
            "warning",
            "{{ $labels.namespace }}/{{ $labels.app }} panicked",
            "{{ $value }} Go runtime panics logged in the last 5 minutes.",
        ),
    ]
    return [{"name": "webhook-logs", "interval": "1m", "rules": rules}]
