"""Grafana dashboards and data sources as content: plain data built from settings.

`dashboards(settings)` gives every dashboard (stable UID, folder key, JSON) in a stable order;
`FOLDERS` names the folders they go in; `datasources(settings, urls)` gives the provisioning
entries of the data sources the dashboards reference by UID.
"""

from __future__ import annotations

import sys

from config import Settings
from monitoring.dashboards.ab import ab
from monitoring.dashboards.business import business
from monitoring.dashboards.capacity import capacity
from monitoring.dashboards.cost import cost
from monitoring.dashboards.datasources import DATASOURCES, DatasourceUrls, datasources
from monitoring.dashboards.defaults import Dashboard, Row, promql, timeseries
from monitoring.dashboards.defaults import build as build_dashboard
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
# Each builder's module names its dashboard's UID.
UIDS = tuple(sys.modules[b.__module__].UID for b in _BUILDERS)


EXTRA_ROW = "Added by the stack"


def dashboards(settings: Settings) -> list[Dashboard]:
    """Every dashboard, in a stable order (grouped by folder), with the stack's own panels
    (`grafana.extraPanels`) in a last row of the dashboards they name."""
    return [with_extra_panels(settings, build(settings)) for build in _BUILDERS]


def with_extra_panels(settings: Settings, board: Dashboard) -> Dashboard:
    """`board` and, below its panels, a row of the extra panels that name it (numbered on from its own)."""
    extra = [p for p in settings.grafana.extra_panels if p.dashboard == board.uid]
    if not extra:
        return board
    row = build_dashboard(board.uid, board.title, board.folder, "", [], [Row(EXTRA_ROW, tuple(
        timeseries(p.title, p.description or "", [promql(p.expr, p.legend or "")], p.unit) for p in extra))])
    panels = board.json.get("panels") or []
    bottom = max((q["gridPos"]["y"] + q["gridPos"]["h"] for q in panels), default=0)
    added = []
    for offset, panel in enumerate(row.json["panels"], start=len(panels) + 1):
        added.append({**panel, "id": offset, "gridPos": {**panel["gridPos"], "y": panel["gridPos"]["y"] + bottom}})
    return Dashboard(board.uid, board.title, board.folder, {**board.json, "panels": panels + added})


__all__ = ["DATASOURCES", "FOLDERS", "UIDS", "Dashboard", "DatasourceUrls", "dashboards", "datasources"]
