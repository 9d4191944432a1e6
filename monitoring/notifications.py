"""What a page and a Slack message say: notifications a person can act on.

Alertmanager templates (Go text/template) over one alert group (alertname, cluster, service):
where it broke (`[prod/webhook-prod-use1] webhook-api`), what (the summary, every alert's
description and value), how bad (severity, how many alerts fire) and where to look next: the
runbook, the overview dashboard with the service selected, the service's logs in Grafana's Explore,
and the alert group in Grafana's Alertmanager view (Alertmanager itself is not exposed).
"""

from __future__ import annotations

import copy
import json
from typing import Any, Optional

from config import Settings
from monitoring.dashboards.datasources import LOKI_UID
from monitoring.dashboards.overview import UID as OVERVIEW_UID

# The alert's service: the `service` label, else the scrape job (the charts' alerts have one or the other).
SERVICE = "{{ with .CommonLabels.service }}{{ . }}{{ else }}{{ .CommonLabels.job }}{{ end }}"
WHERE = "[{{ .CommonLabels.environment }}/{{ .CommonLabels.cluster }}] " + SERVICE
SUMMARY = "{{ (index .Alerts 0).Annotations.summary }}"
MORE = "{{ if gt (len .Alerts) 1 }} ({{ len .Alerts }} alerts){{ end }}"
RUNBOOK = "{{ (index .Alerts 0).Annotations.runbook_url }}"
SEVERITY = ('{{ if eq .CommonLabels.severity "critical" }}critical{{ else if eq .CommonLabels.severity "warning" }}'
            "warning{{ else }}info{{ end }}")
FIRING = "{{ .Alerts.Firing | len }}"


def _json_list(item: str) -> str:
    """A JSON list of `item` (a template over `$alert`) for every alert of the group."""
    return f"[{{{{ range $i, $alert := .Alerts }}}}{{{{ if $i }}}}, {{{{ end }}}}{item}{{{{ end }}}}]"


def grafana_url(settings: Settings) -> str:
    return f"https://{settings.grafana.host}"


def alertmanager_external_url(settings: Settings) -> str:
    """Where a person opens an alert group: Grafana's view of this Alertmanager (data source `alertmanager`)."""
    return f"{grafana_url(settings)}/alerting/groups?alertmanager=alertmanager"


def dashboard_link(settings: Settings) -> str:
    """The overview dashboard with the alert's namespace and service selected."""
    return (f"{grafana_url(settings)}/d/{OVERVIEW_UID}?var-namespace={{{{ .CommonLabels.namespace | urlquery }}}}"
            f"&var-service={{{{ .CommonLabels.service | urlquery }}}}")


def logs_query_template() -> str:
    """The Explore pane (JSON) of the service's logs, as a Go template; `app` is the log stream's label
    for the service (its pods' `app.kubernetes.io/name`)."""
    placeholder_ns, placeholder_app = "NAMESPACE_PLACEHOLDER", "APP_PLACEHOLDER"
    pane = {"logs": {
        "datasource": LOKI_UID,
        "queries": [{"refId": "A", "datasource": {"type": "loki", "uid": LOKI_UID},
                     "expr": f'{{namespace="{placeholder_ns}", app="{placeholder_app}"}}'}],
        "range": {"from": "now-1h", "to": "now"},
    }}
    text = json.dumps(pane, separators=(",", ":"), sort_keys=True)
    # Go string literal of the JSON, with %s where the labels go.
    go_literal = json.dumps(text.replace("%", "%%").replace(placeholder_ns, "%s").replace(placeholder_app, "%s"))
    return f"{{{{ printf {go_literal} .CommonLabels.namespace .CommonLabels.service | urlquery }}}}"


def logs_link(settings: Settings) -> str:
    return f"{grafana_url(settings)}/explore?schemaVersion=1&orgId=1&panes={logs_query_template()}"


def pagerduty_config(settings: Settings, routing_key: str, service_links: bool = True) -> dict[str, Any]:
    """Events API v2: one incident per alert group (Alertmanager's dedup key is the group's), resolved
    with it; the summary says where and what, the details and links the rest. Without `service_links`
    (the cluster's alerts, about no webhook service), no dashboard or logs link."""
    links = {"runbook_url": ("Runbook", RUNBOOK)}
    if service_links:
        links.update(dashboard_url=("Dashboard", dashboard_link(settings)), logs_url=("Logs", logs_link(settings)))
    return {
        "routing_key": routing_key,
        "description": f"{WHERE}: {SUMMARY}{MORE}",
        "severity": SEVERITY,
        "class": "{{ .CommonLabels.alertname }}",
        "group": "{{ .CommonLabels.cluster }}",
        "component": SERVICE,
        "client": "Alertmanager",
        "client_url": "{{ .ExternalURL }}",
        # Beside Alertmanager's own details (firing and resolved: every alert with its labels and
        # annotations; num_firing, num_resolved). Alertmanager reads a rendered detail as YAML, so a
        # description with a colon would turn into a mapping: the lists are rendered as JSON.
        "details": {
            "cluster": "{{ .CommonLabels.cluster }}",
            "environment": "{{ .CommonLabels.environment }}",
            "namespace": "{{ .CommonLabels.namespace }}",
            "service": SERVICE,
            "labels": "{{ .CommonLabels | toJson }}",
            "descriptions": _json_list("{{ $alert.Annotations.description | toJson }}"),
            "values": _json_list("{{ $alert.Annotations.value | toJson }}"),
            **{key: href for key, (_, href) in links.items()},
        },
        "links": [{"href": href, "text": text} for text, href in links.values()],
        "send_resolved": True,
    }


def slack_config(settings: Settings, api_url: str, channel: str, service_links: bool = True,
                 title_prefix: str = "") -> dict[str, Any]:
    """One message per group flush: status and how many fire, where and what in the title; the alert
    and its severity as fields; each alert's description; the same links as a page; green once resolved.
    Without `service_links` (the cluster's alerts, about no webhook service), no dashboard or logs link.
    `channel` is the channel `api_url` posts to: a Slack app's webhook ignores the field, a legacy one
    honours it; `title_prefix` comes first in the title."""
    links = [f"<{RUNBOOK}|Runbook>", "<{{ .ExternalURL }}|Alertmanager>"]
    if service_links:
        links[1:1] = [f"<{dashboard_link(settings)}|Dashboard>", f"<{logs_link(settings)}|Logs>"]
    title = (f'{title_prefix}[{{{{ .Status | toUpper }}}}{{{{ if eq .Status "firing" }}}}:{FIRING}{{{{ end }}}}] '
             f'{WHERE}: {SUMMARY}')
    return {
        "api_url": api_url,
        "channel": channel,
        "title": title,
        # What push notifications show; Alertmanager's default appends a path to the external URL.
        "fallback": title,
        "title_link": dashboard_link(settings) if service_links else "{{ .ExternalURL }}",
        "color": ('{{ if eq .Status "resolved" }}good{{ else if eq .CommonLabels.severity "critical" }}danger'
                  "{{ else }}warning{{ end }}"),
        "fields": [
            {"title": "Alert", "value": "{{ .CommonLabels.alertname }}", "short": True},
            {"title": "Severity", "value": "{{ .CommonLabels.severity }}", "short": True},
        ],
        "text": ('{{ range .Alerts }}{{ if eq .Status "resolved" }}Resolved: {{ end }}'
                 "{{ with .Annotations.description }}{{ . }}{{ else }}{{ .Annotations.summary }}{{ end }}\n{{ end }}"
                 + " | ".join(links)),
        "send_resolved": True,
    }


def heartbeat_config(url: str) -> dict[str, Any]:
    return {"url": url, "send_resolved": False}


def receiver(name: str, *, pagerduty: Optional[dict] = None, slack: Optional[dict] = None,
             webhook: Optional[dict] = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    for key, config in (("pagerduty_configs", pagerduty), ("slack_configs", slack), ("webhook_configs", webhook)):
        if config:
            # A copy: a configuration shared by two receivers would be dumped as a YAML alias.
            out[key] = [copy.deepcopy(config)]
    return out
