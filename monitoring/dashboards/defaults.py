"""What every dashboard shares: data source refs, label scopes, template variables, panel styles.

Each panel style is one small function taking a title, a description and queries, so the
dashboard modules read as a list of questions and the PromQL/LogQL that answers them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Sequence, Union

from grafana_foundation_sdk.builders import (
    common as common_builders,
    dashboard as dashboard_builders,
    gauge as gauge_builders,
    logs as logs_builders,
    loki as loki_builders,
    prometheus as prometheus_builders,
    stat as stat_builders,
    statetimeline as statetimeline_builders,
    table as table_builders,
    timeseries as timeseries_builders,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard as dashboard_models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from config import Settings
from config.schema import PROJECT
from monitoring.dashboards.datasources import LOKI_UID, MIMIR_NAME, MIMIR_UID, PROMETHEUS_NAME, PROMETHEUS_UID
from monitoring.rules.config import regex_alternation

# Panels query whichever Prometheus-type source the `datasource` variable picks: the hot
# Prometheus (15 days, default) or Mimir (90 days). Loki panels name Loki directly.
METRICS = dashboard_models.DataSourceRef(type_val="prometheus", uid="${datasource}")
LOGS = dashboard_models.DataSourceRef(type_val="loki", uid=LOKI_UID)
# Grafana's own built-in source (annotations), present in every Grafana, never provisioned.
GRAFANA = dashboard_models.DataSourceRef(type_val="grafana", uid="-- Grafana --")

# Label scopes. `cluster` is an external label: absent from local series, present on
# federated and remote-written ones; the cluster variable's values account for that.
CLUSTER = 'cluster=~"$cluster"'
SCOPE = CLUSTER + ', namespace=~"$namespace"'
ENDPOINT_SCOPE = SCOPE + ', endpoint=~"$endpoint"'
# The webhook series of the services picked by the `service` variable (dashboards that offer it;
# the Kubernetes series carry the `service` of their exporter, so they keep SCOPE).
SERVICE_SCOPE = SCOPE + ', service=~"$service"'
SERVICE_ENDPOINT_SCOPE = SERVICE_SCOPE + ', endpoint=~"$endpoint"'


def in_namespace(namespace: str) -> str:
    """The scope of a panel on one namespace (the monitoring stack's own) of the chosen clusters."""
    return f'{CLUSTER}, namespace="{namespace}"'


# Grafana unit ids.
SECONDS = "s"
RATIO = "percentunit"
PER_SECOND = "reqps"
COUNT = "short"
BYTES = "bytes"
BYTES_PER_SECOND = "Bps"
CORES = "cores"  # not a Grafana unit id: Grafana shows it as a suffix
IOPS = "iops"
USD = "currencyUSD"

GREEN, ORANGE, RED = "green", "orange", "red"

REF_IDS = "ABCDEFGHIJ"

Query = Union[prometheus_builders.Dataquery, loki_builders.Dataquery]


@dataclass(frozen=True)
class Dashboard:
    """One dashboard as Grafana JSON, with the folder (a key of `FOLDERS`) it belongs in."""

    uid: str
    title: str
    folder: str
    json: dict

    def to_json(self) -> str:
        """The dashboard JSON as deterministic text: sorted keys, two-space indent, final newline."""
        return json.dumps(self.json, sort_keys=True, indent=2) + "\n"


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple


def number(value: float) -> str:
    """A float as a PromQL literal, exact and stable (shortest round-trip form)."""
    return repr(float(value))


def failed_statuses(settings: Settings) -> str:
    """`status` regex of a failed delivery, for a PromQL double-quoted string (as the rules use it)."""
    return regex_alternation(settings.metrics.failure_statuses)


def prometheus_label(name: str) -> str:
    """A Kubernetes label name as the Prometheus label it becomes (podTargetLabels, kube-state-metrics)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


# ---------------------------------------------------------------------------- queries


def promql(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> prometheus_builders.Dataquery:
    query = prometheus_builders.Dataquery().expr(expr).datasource(METRICS)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant()
    else:
        query = query.range()
    if table:
        query = query.format(PromQueryFormat.TABLE)
    return query


def logql(expr: str, legend: str = "") -> loki_builders.Dataquery:
    query = loki_builders.Dataquery().expr(expr).datasource(LOGS)
    return query.legend_format(legend) if legend else query


# ---------------------------------------------------------------------------- thresholds


def steps(base: str, *levels: tuple[float, str]) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds: `base` colour below the first level, then each (value, colour) upwards."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=None, color=base)]
               + [dashboard_models.Threshold(value=float(v), color=c) for v, c in levels])
    )


def at_least(target: float) -> dashboard_builders.ThresholdsConfig:
    """Red below `target`, green at or above: for success ratios against an SLO."""
    return steps(RED, (target, GREEN))


def at_most(limit: float) -> dashboard_builders.ThresholdsConfig:
    """Green below `limit`, red at or above: for values an alert fires on."""
    return steps(GREEN, (limit, RED))


def usage() -> dashboard_builders.ThresholdsConfig:
    """For the used share of something finite (disk, connections): orange at 80%, red at 90%."""
    return steps(GREEN, (0.8, ORANGE), (0.9, RED))


# ---------------------------------------------------------------------------- panels


def _common(panel, title: str, description: str, queries: Sequence[Query], unit: str | None,
            width: int, height: int, thresholds):
    panel = panel.title(title).description(description).span(width).height(height)
    if not 1 <= len(queries) <= len(REF_IDS):
        raise ValueError(f"panel {title!r}: 1 to {len(REF_IDS)} queries, got {len(queries)}")
    panel = panel.datasource(queries[0].build().datasource)
    for ref_id, query in zip(REF_IDS, queries):
        panel = panel.with_target(query.ref_id(ref_id))
    if unit:
        panel = panel.unit(unit)
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    return panel


def timeseries(title: str, description: str, queries: Sequence[Query], unit: str, *,
               thresholds=None, stacked: bool = False, bars: bool = False, width: int = 12,
               height: int = 8) -> timeseries_builders.Panel:
    """A graph over time; `thresholds` are drawn as dashed lines (the alert's threshold)."""
    panel = _common(timeseries_builders.Panel(), title, description, queries, unit, width, height, thresholds)
    panel = panel.legend(
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "max", "lastNotNull"])
    ).tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    if thresholds is not None:
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL)).fill_opacity(40)
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    return panel


def stat(title: str, description: str, queries: Sequence[Query], unit: str, *, thresholds=None,
         decimals: int | None = None, width: int = 6, height: int = 5) -> stat_builders.Panel:
    """One big number per series (last value), coloured by thresholds."""
    panel = _common(stat_builders.Panel(), title, description, queries, unit, width, height, thresholds)
    panel = (
        panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(common.BigValueColorMode.BACKGROUND if thresholds is not None else common.BigValueColorMode.NONE)
        .graph_mode(common.BigValueGraphMode.AREA)
    )
    return panel.decimals(decimals) if decimals is not None else panel


def gauge(title: str, description: str, queries: Sequence[Query], unit: str, *, thresholds, minimum: float,
          maximum: float, decimals: int | None = None, width: int = 6, height: int = 5) -> gauge_builders.Panel:
    """A dial between `minimum` and `maximum` with threshold markers."""
    panel = _common(gauge_builders.Panel(), title, description, queries, unit, width, height, thresholds)
    panel = (
        panel.min(minimum).max(maximum).show_threshold_markers(True)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return panel.decimals(decimals) if decimals is not None else panel


def table(title: str, description: str, queries: Sequence[Query], *, unit: str | None = None,
          hidden: Iterable[str] = ("Time",), thresholds=None, width: int = 12,
          height: int = 8) -> table_builders.Panel:
    """Rows of an instant query (one per series), label columns; `hidden` columns dropped.

    With `thresholds`, the `Value` column's background takes the threshold colour.
    """
    panel = _common(table_builders.Panel(), title, description, queries, unit, width, height, thresholds)
    panel = panel.with_transformation(dashboard_models.DataTransformerConfig(
        id_val="organize", options={"excludeByName": {name: True for name in sorted(hidden)}}
    ))
    if len(queries) > 1:
        panel = panel.with_transformation(dashboard_models.DataTransformerConfig(id_val="merge", options={}))
    if thresholds is not None:
        # Colour the value column only; label columns stay plain.
        panel = panel.override_by_name("Value", [dashboard_models.DynamicConfigValue(
            id_val="custom.cellOptions", value={"type": "color-background"})])
    return panel


def state_timeline(title: str, description: str, queries: Sequence[Query], *, width: int = 12,
                   height: int = 8) -> statetimeline_builders.Panel:
    """When each series was present: for alert history."""
    panel = _common(statetimeline_builders.Panel(), title, description, queries, None, width, height,
                    steps(RED))
    return panel.show_value(common.VisibilityMode.NEVER).merge_values(True)


def logs(title: str, description: str, queries: Sequence[Query], *, width: int = 24,
         height: int = 12) -> logs_builders.Panel:
    """Log lines, newest first, with details and wrapping."""
    panel = _common(logs_builders.Panel(), title, description, queries, None, width, height, None)
    return (
        panel.show_time(True).wrap_log_message(True).enable_log_details(True).prettify_log_message(False)
        .sort_order(common.LogsSortOrder.DESCENDING).dedup_strategy(common.LogsDedupStrategy.NONE)
    )


# ---------------------------------------------------------------------------- variables


def datasource_variable(long_term: bool) -> dashboard_builders.DatasourceVariable:
    """Pick the hot Prometheus or Mimir; `long_term` makes Mimir (90 days) the default."""
    name, uid = (MIMIR_NAME, MIMIR_UID) if long_term else (PROMETHEUS_NAME, PROMETHEUS_UID)
    return (
        dashboard_builders.DatasourceVariable("datasource")
        .label("Metrics source")
        .type("prometheus")
        .regex(f"/^({re.escape(PROMETHEUS_NAME)}|{re.escape(MIMIR_NAME)})$/")
        .current(dashboard_models.VariableOption(selected=True, text=name, value=uid))
    )


def cluster_options(settings: Settings) -> list[tuple[str, str]]:
    """(text, value) of each cluster the dashboards can show.

    This cluster's own series carry no `cluster` label in its Prometheus (external labels are
    added only on federation and remote write) but do in Mimir: its value `|<name>` matches
    both. Federated clusters match by name; `all` appears when there is more than one.
    """
    own = settings.cluster.name
    options = [(own, f"|{own}")] + [(source.cluster, source.cluster) for source in settings.metrics.federation]
    return options + [("all", ".*")] if len(options) > 1 else options


def cluster_variable(settings: Settings) -> dashboard_builders.CustomVariable:
    options = cluster_options(settings)
    return (
        dashboard_builders.CustomVariable("cluster")
        .label("Cluster")
        .values(", ".join(f"{text} : {value}" for text, value in options))
        .options([dashboard_models.VariableOption(selected=i == 0, text=text, value=value)
                  for i, (text, value) in enumerate(options)])
        .current(dashboard_models.VariableOption(selected=True, text=options[0][0], value=options[0][1]))
    )


def _label_variable(name: str, label: str, series: str, all_value: str | None) -> dashboard_builders.QueryVariable:
    variable = (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(METRICS)
        .query(f"label_values({series}, {name})")
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(dashboard_models.VariableOption(selected=True, text="All", value="$__all"))
    )
    return variable.all_value(all_value) if all_value is not None else variable


def namespace_variable() -> dashboard_builders.QueryVariable:
    # "All" expands to the listed namespaces (no `.*`): infrastructure panels must stay
    # scoped to the namespaces the webhook services run in.
    return _label_variable("namespace", "Namespace", f"service:webhook_deliveries:rate5m{{{CLUSTER}}}", None)


def service_variable() -> dashboard_builders.QueryVariable:
    """The webhook delivery service(s); links from notifications select one (`var-service=`)."""
    return _label_variable("service", "Service", f"service:webhook_deliveries:rate5m{{{SCOPE}}}", ".*")


def endpoint_variable() -> dashboard_builders.QueryVariable:
    # Thousands of customer endpoints: the picker lists those that fail (the only ones recorded
    # per endpoint), and "All" is `.*` rather than a regex of every value.
    return _label_variable("endpoint", "Failing endpoint", f"service_endpoint:webhook_delivery_errors:rate5m{{{SCOPE}}}", ".*")


def metric_variables(settings: Settings, *, long_term: bool = False, by_service: bool = False) -> list:
    """The variables every metrics dashboard has, in display order (see `datasource_variable`);
    `by_service` adds the service picker (SERVICE_SCOPE)."""
    return [datasource_variable(long_term), cluster_variable(settings), namespace_variable(),
            *([service_variable()] if by_service else []), endpoint_variable()]


# ---------------------------------------------------------------------------- dashboard


def build(uid: str, title: str, folder: str, description: str, variables: list, rows: Sequence[Row], *,
          time_from: str = "now-6h", tags: Sequence[str] = ()) -> Dashboard:
    """Assemble rows of panels into a read-only dashboard with stable panel ids."""
    builder = (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([PROJECT, *tags])
        .readonly()
        .timezone("utc")
        .time(time_from, "now")
        .refresh("1m")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .annotation(
            # Grafana's built-in annotations (and alert state marks); Grafana adds this entry
            # itself on load, so without it every load would show the dashboard as modified.
            dashboard_builders.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(GRAFANA)
            .built_in(1)
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
        )
        .link(
            dashboard_builders.DashboardLink("Webhook monitoring")
            .type(dashboard_models.DashboardLinkType.DASHBOARDS)
            .tags([PROJECT])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .variables(variables)
    )
    for row in rows:
        builder = builder.with_row(dashboard_builders.Row(row.title))
        for panel in row.panels:
            builder = builder.with_panel(panel)
    model = builder.build()
    for panel_id, panel in enumerate(model.panels, start=1):
        panel.id_val = panel_id
    document = json.loads(json.dumps(model, cls=JSONEncoder, sort_keys=True))
    return Dashboard(uid=uid, title=title, folder=folder, json=document)
