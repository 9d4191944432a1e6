"""Grafana data sources as provisioning entries, with the stable UIDs the dashboards reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import Settings
from monitoring.logging.logql import correlation_id_lookup
from monitoring.web_auth import ALERTMANAGER, PASSWORD_KEY, PROMETHEUS, ProtectedServer, client_file

PROMETHEUS_UID = "prometheus"
MIMIR_UID = "mimir"
LOKI_UID = "loki"
ALERTMANAGER_UID = "alertmanager"

PROMETHEUS_NAME = "Prometheus"
MIMIR_NAME = "Mimir"

# uid -> plugin type: what a dashboard may reference.
DATASOURCES = {
    PROMETHEUS_UID: "prometheus",
    MIMIR_UID: "prometheus",
    LOKI_UID: "loki",
    ALERTMANAGER_UID: "alertmanager",
}


@dataclass(frozen=True)
class DatasourceUrls:
    """Where Grafana reaches each backend (in-cluster service URLs, wired by the caller)."""

    prometheus: str
    """Prometheus HTTP API base, e.g. http://<release>-prometheus.monitoring.svc:9090."""
    mimir: str
    """Mimir's Prometheus-compatible query path, e.g. http://mimir-distributed-gateway.monitoring.svc.cluster.local:80/prometheus
    (multi-tenancy is off: no tenant header)."""
    loki: str
    """Loki HTTP API base, e.g. http://loki-gateway.monitoring.svc."""
    alertmanager: str
    """Alertmanager base, e.g. http://<release>-alertmanager.monitoring.svc:9093."""


# The correlation ID as a JSON field of a log line: `"correlation_id": "<id>"`.
CORRELATION_ID_JSON_FIELD = r'"correlation_id"\s*:\s*"([^"]+)"'


def _literal(value: Any) -> Any:
    """`value` with every `$` doubled in its strings.

    Grafana expands environment variables in provisioning files (`${__value.raw}` would become
    an empty string); `$$` is its escape for a literal `$`.
    """
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item) for item in value]
    return value


def _basic_auth(server: ProtectedServer) -> dict:
    """Grafana's own credentials for an authenticating proxy: the password read from the mounted
    Secret (`$__file{}`, left unescaped: Grafana must expand it)."""
    return {
        "basicAuth": True,
        "basicAuthUser": "grafana",
        "secureJsonData": {"basicAuthPassword": f"$__file{{{client_file(server, 'grafana', PASSWORD_KEY)}}}"},
    }


def datasources(settings: Settings, urls: DatasourceUrls) -> list[dict]:
    """Provisioning entries (Grafana `datasources:` list items) in a stable order, `$` escaped
    but in the file references of the proxies' credentials."""
    entries = _datasources(settings, urls)
    for entry in entries:
        server = {PROMETHEUS_UID: PROMETHEUS, ALERTMANAGER_UID: ALERTMANAGER}.get(entry["uid"])
        if server is not None:
            entry.update(_basic_auth(server))
    return entries


def _datasources(settings: Settings, urls: DatasourceUrls) -> list[dict]:
    scrape_interval = settings.prometheus.scrape_interval.text
    mimir_json: dict = {"httpMethod": "POST", "prometheusType": "Mimir", "timeInterval": scrape_interval}
    mimir: dict = {
        "name": MIMIR_NAME,
        "type": DATASOURCES[MIMIR_UID],
        "uid": MIMIR_UID,
        "url": urls.mimir,
        "access": "proxy",
        "isDefault": False,
        "editable": False,
        "jsonData": mimir_json,
    }
    return _literal([
        {
            "name": PROMETHEUS_NAME,
            "type": DATASOURCES[PROMETHEUS_UID],
            "uid": PROMETHEUS_UID,
            "url": urls.prometheus,
            "access": "proxy",
            "isDefault": True,
            "editable": False,
            "jsonData": {"httpMethod": "POST", "prometheusType": "Prometheus", "timeInterval": scrape_interval},
        },
        mimir,
        {
            "name": "Loki",
            "type": DATASOURCES[LOKI_UID],
            "uid": LOKI_UID,
            "url": urls.loki,
            "access": "proxy",
            "isDefault": False,
            "editable": False,
            "jsonData": {
                "maxLines": 1000,
                "derivedFields": [
                    {
                        "name": "correlation_id",
                        "matcherRegex": CORRELATION_ID_JSON_FIELD,
                        # The same lookup as the Logs dashboard's: the ID as structured metadata, in every namespace.
                        "url": correlation_id_lookup("${__value.raw}"),
                        "datasourceUid": LOKI_UID,
                        "urlDisplayLabel": "All logs with this correlation ID",
                    }
                ],
            },
        },
        {
            "name": "Alertmanager",
            "type": DATASOURCES[ALERTMANAGER_UID],
            "uid": ALERTMANAGER_UID,
            "url": urls.alertmanager,
            "access": "proxy",
            "isDefault": False,
            "editable": False,
            "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
        },
    ])
