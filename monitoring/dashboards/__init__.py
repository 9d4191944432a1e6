"""Grafana dashboards and data sources as content: plain data built from settings.

`dashboards(settings)` gives every dashboard (stable UID, folder key, JSON) in a stable order;
`FOLDERS` names the folders they go in; `datasources(settings, urls)` gives the provisioning
entries of the data sources the dashboards reference by UID.
"""

from __future__ import annotations

from config import Settings
from monitoring.dashboards.ab import ab
from monitoring.dashboards.business import business
from monitoring.dashboards.capacity import capacity
from monitoring.dashboards.cost import cost
from monitoring.dashboards.datasources import DATASOURCES, DatasourceUrls, datasources
from monitoring.dashboards.defaults import Dashboard
from monitoring.dashboards.infrastructure import infrastructure
from monitoring.dashboards.logs import logs
from monitoring.dashboards.loki import loki
from monitoring.dashboards.mimir import mimir
from monitoring.dashboards.overview import overview

# Folder key -> title. Grouped by who looks: the team running webhook delivery, the business
# side, and whoever runs the cluster and the stores. Alerts are a row of the overview, not a folder of their own.
FOLDERS = {
    "webhook-delivery": "Webhook Delivery",
    "business": "Business",
    "infrastructure": "Infrastructure",
}

_BUILDERS = (overview, logs, ab, business, cost, infrastructure, capacity, mimir, loki)


def dashboards(settings: Settings) -> list[Dashboard]:
    """Every dashboard, in a stable order (grouped by folder)."""
    return [build(settings) for build in _BUILDERS]


__all__ = ["DATASOURCES", "FOLDERS", "Dashboard", "DatasourceUrls", "dashboards", "datasources"]
