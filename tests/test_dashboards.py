"""Dashboards and data sources: queries parse (promtool), references resolve, output is stable.

PromQL is checked by the real promtool: every expression, with the dashboard variables
substituted, becomes a recording rule of a generated rule file that `promtool check rules`
must accept. The derived expressions (mean time to resolution, the range SLA) are also
evaluated by `promtool test rules` on synthetic series. No Loki binary exists here: LogQL is
checked structurally (non-empty, a stream selector, the Loki data source).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.support import minimal_settings
from monitoring.dashboards import DATASOURCES, FOLDERS, DatasourceUrls, dashboards, datasources
from monitoring.dashboards.datasources import CORRELATION_ID_JSON_FIELD
from monitoring.rules import rule_groups
from tools.go_tools import binary

NS = "webhook-monitoring:"
SLACK = NS + "slackWebhookUrl"
PAGERDUTY_TOKEN = NS + "pagerdutyToken"
CLUSTER = "webhook-test-use1"
URLS = DatasourceUrls(
    prometheus="http://prometheus.monitoring.svc:9090",
    mimir="http://mimir-query-frontend.monitoring.svc:8080/prometheus",
    loki="http://loki-gateway.monitoring.svc",
    alertmanager="http://alertmanager.monitoring.svc:9093",
)
EXPECTED_UIDS = [
    "webhook-overview",
    "webhook-logs",
    "webhook-ab",
    "webhook-business",
    "webhook-cost",
    "webhook-infrastructure",
    "webhook-capacity",
    "webhook-mimir",
    "webhook-loki",
]
# Values a query variable takes in Grafana, for checking the queries outside Grafana.
SUBSTITUTIONS = {
    "${__value.raw}": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1d",
    "$__auto": "1m",
    "$cluster": f"|{CLUSTER}",
    "$namespace": "(webhook-delivery|payments)",
    "$service": ".*",
    "$endpoint": ".*",
    "$correlation_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__auto", "__value"}
RECORDED_NAME = re.compile(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+")


@pytest.fixture(scope="module")
def settings():
    return minimal_settings()


@pytest.fixture(scope="module")
def built(settings):
    return dashboards(settings)


# ---------------------------------------------------------------------------- walking the JSON


def panels(doc: dict) -> Iterator[dict]:
    """Every panel that shows data (rows are containers, skipped; their nested panels included)."""
    for panel in doc["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def targets(doc: dict, ds_type: str) -> Iterator[tuple[dict, dict]]:
    for panel in panels(doc):
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == ds_type:
                yield panel, target


def variables(doc: dict) -> list[dict]:
    return doc["templating"]["list"]


def promql_of(doc: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every Prometheus target and Prometheus query variable of a dashboard."""
    found = [(f"{doc['uid']} / {panel['title']} / {target['refId']}", target["expr"])
             for panel, target in targets(doc, "prometheus")]
    for variable in variables(doc):
        if variable["type"] == "query" and variable["datasource"]["type"] == "prometheus":
            # label_values(<series selector>, <label>): the selector is PromQL.
            selector = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert selector, variable["query"]
            found.append((f"{doc['uid']} / variable {variable['name']}", selector[1]))
    return found


def substitute(expr: str) -> str:
    for variable in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(variable, SUBSTITUTIONS[variable])
    return expr


def panel_by_title(doc: dict, title: str) -> dict:
    matches = [p for p in panels(doc) if p["title"] == title]
    assert len(matches) == 1, title
    return matches[0]


def by_uid(built, uid: str) -> dict:
    return next(d.json for d in built if d.uid == uid)


# ---------------------------------------------------------------------------- identity and stability


def test_uids_are_the_stable_list_and_unique(built):
    assert [d.uid for d in built] == EXPECTED_UIDS
    assert [d.json["uid"] for d in built] == EXPECTED_UIDS
    assert [d.title for d in built] == [d.json["title"] for d in built]


def test_json_is_byte_identical_across_builds(settings):
    first = [d.to_json() for d in dashboards(settings)]
    second = [d.to_json() for d in dashboards(minimal_settings())]
    assert first == second
    assert all(text.endswith("}\n") for text in first)
    # Sorted keys: the text is what json.dumps(sort_keys=True) gives back from it.
    assert all(text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n" for text in first)


def test_every_dashboard_is_in_a_known_folder_and_no_folder_is_empty(built):
    assert {d.folder for d in built} == set(FOLDERS)
    assert {d.uid: d.folder for d in built} == {
        "webhook-overview": "webhook-delivery",
        "webhook-logs": "webhook-delivery",
        "webhook-ab": "webhook-delivery",
        "webhook-business": "business",
        "webhook-cost": "business",
        "webhook-infrastructure": "infrastructure",
        "webhook-capacity": "infrastructure",
        "webhook-mimir": "infrastructure",
        "webhook-loki": "infrastructure",
    }


def test_overview_has_the_task_documents_four_rows(built):
    overview = by_uid(built, "webhook-overview")
    rows = [p["title"] for p in overview["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Performance", "Infrastructure", "Alerts"]
    titles = {p["title"] for p in panels(overview)}
    assert {"Webhooks queued", "Delivery success rate (24h)", "Average delivery time", "Active endpoints",
            "Delivery latency P50 / P95 / P99", "Throughput by status", "Error rate", "Queue depth",
            "CPU by pod", "Memory by pod", "Replicas", "Pod restarts", "Network I/O by pod",
            "Active alerts", "Alert history", "Mean time to resolution", "Escalation status"} <= titles


# ---------------------------------------------------------------------------- panels and queries


def test_every_panel_has_a_query_with_an_expression(built):
    for dashboard in built:
        shown = list(panels(dashboard.json))
        assert len(shown) >= 5, dashboard.uid
        for panel in shown:
            assert panel["targets"], f"{dashboard.uid} / {panel['title']}: no query"
            for target in panel["targets"]:
                assert target["expr"].strip(), f"{dashboard.uid} / {panel['title']}: empty expression"
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert ref_ids == list("ABCDEFGHIJ"[: len(ref_ids)]), f"{dashboard.uid} / {panel['title']}"
            assert panel["description"], f"{dashboard.uid} / {panel['title']}: no description"


def test_panel_ids_are_unique_and_panels_do_not_overlap(built):
    for dashboard in built:
        ids = [p["id"] for p in dashboard.json["panels"]]
        assert ids == list(range(1, len(ids) + 1)), dashboard.uid
        cells: dict[tuple[int, int], str] = {}
        for panel in dashboard.json["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{dashboard.uid} / {panel['title']} wider than the grid"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{dashboard.uid}: {panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]


def test_every_variable_a_query_uses_is_defined(built):
    for dashboard in built:
        defined = {v["name"] for v in variables(dashboard.json)}
        texts = [t["expr"] for p in panels(dashboard.json) for t in p["targets"]]
        texts += [v["query"] for v in variables(dashboard.json) if v["type"] == "query"]
        texts += [p["datasource"]["uid"] for p in panels(dashboard.json)]
        used = {m for text in texts for m in re.findall(r"\$\{?(\w+)", text)}
        assert used - GRAFANA_BUILTINS <= defined, f"{dashboard.uid}: undefined {used - GRAFANA_BUILTINS - defined}"


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def check_as_rules(expressions: list[tuple[str, str]], tmp_path: Path) -> subprocess.CompletedProcess:
    rules = [{"record": f"dashboard:expression:{i}", "expr": substitute(expr)}
             for i, (_, expr) in enumerate(expressions)]
    path = tmp_path / "dashboard-expressions.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    return promtool("check", "rules", path.name, cwd=tmp_path)


def test_every_promql_expression_parses(built, tmp_path):
    expressions = [e for d in built for e in promql_of(d.json)]
    assert len(expressions) > 100
    for where, expr in expressions:
        assert "$" not in substitute(expr), f"{where}: unknown variable in {expr}"
    result = check_as_rules(expressions, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


def test_the_promtool_check_rejects_a_broken_expression(tmp_path):
    result = check_as_rules([("broken", 'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace=~"$namespace"}[5m])')],
                            tmp_path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_logql_queries_use_loki_and_a_stream_selector(built):
    logs = by_uid(built, "webhook-logs")
    queries = list(targets(logs, "loki"))
    assert len(queries) == 5
    for panel, target in queries:
        assert target["datasource"] == {"type": "loki", "uid": "loki"}
        assert panel["datasource"] == {"type": "loki", "uid": "loki"}
        assert re.search(r'\{namespace=~"[^"]+"', target["expr"]), target["expr"]
        assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    assert [t["expr"] for _, t in targets(logs, "prometheus")] == []
    lookup = panel_by_title(logs, "Logs for correlation ID")["targets"][0]["expr"]
    assert lookup == '{namespace=~".+"} | correlation_id!="" | correlation_id="$correlation_id"'


def test_recorded_series_in_dashboards_are_produced_by_the_rules(settings, built):
    recorded = {rule["record"] for group in rule_groups(settings) for rule in group["rules"] if "record" in rule}
    used = {name for d in built for _, expr in promql_of(d.json) for name in RECORDED_NAME.findall(expr)}
    assert used - recorded == set()
    assert {"service:webhook_deliveries:rate5m", "service:webhook_delivery_success:ratio_rate1d",
            "service:webhook_delivery_duration_seconds:histogram_quantile5m", "service:webhook_queue_depth:sum",
            "service_endpoint:webhook_delivery_errors:rate5m"} <= used


# ---------------------------------------------------------------------------- data sources


def test_datasources_have_stable_uids_and_one_default(settings):
    entries = datasources(settings, URLS)
    assert [(e["uid"], e["type"]) for e in entries] == list(DATASOURCES.items()) == [
        ("prometheus", "prometheus"), ("mimir", "prometheus"), ("loki", "loki"), ("alertmanager", "alertmanager")]
    assert [e["uid"] for e in entries if e["isDefault"]] == ["prometheus"]
    assert [e["url"] for e in entries] == [URLS.prometheus, URLS.mimir, URLS.loki, URLS.alertmanager]
    alertmanager = entries[3]
    assert alertmanager["jsonData"]["implementation"] == "prometheus"
    assert entries[0]["jsonData"]["timeInterval"] == settings.prometheus.scrape_interval.text


def test_mimir_needs_no_tenant_header(settings):
    mimir = datasources(settings, URLS)[1]
    assert "secureJsonData" not in mimir and "httpHeaderName1" not in mimir["jsonData"]


def test_loki_derived_field_turns_a_correlation_id_into_a_search(settings):
    (field,) = datasources(settings, URLS)[2]["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == "loki" and field["matcherRegex"] == CORRELATION_ID_JSON_FIELD
    line = '{"level":"info","correlation_id": "0f8fad5b-d9cb","msg":"delivered"}'
    assert re.search(field["matcherRegex"], line)[1] == "0f8fad5b-d9cb"
    assert re.search(field["matcherRegex"], '{"level":"info","msg":"no id here"}') is None
    assert field["url"] == '{namespace=~".+"} | correlation_id!="" | correlation_id="$${__value.raw}"'
    # What Grafana makes of it: it splits on `$$`, expands environment variables (unset here,
    # so empty, as Go's os.ExpandEnv does), and joins with `$`.
    def grafana_provisioning(text: str) -> str:
        return "$".join(re.sub(r"\$\{[^}]*\}|\$\w+", "", part) for part in text.split("$$"))

    assert grafana_provisioning(field["url"]) == '{namespace=~".+"} | correlation_id!="" | correlation_id="${__value.raw}"'
    # Unescaped, the placeholder would be lost before Grafana ever used it.
    assert grafana_provisioning('correlation_id="${__value.raw}"') == 'correlation_id=""'


def test_every_datasource_reference_resolves_to_a_provisioned_uid(settings, built):
    provisioned = {e["uid"]: e for e in datasources(settings, URLS)}
    for dashboard in built:
        doc = dashboard.json
        datasource_variables = {v["name"]: v for v in variables(doc) if v["type"] == "datasource"}
        refs = [p["datasource"] for p in panels(doc)]
        refs += [t["datasource"] for p in panels(doc) for t in p["targets"]]
        refs += [v["datasource"] for v in variables(doc) if "datasource" in v]
        assert refs
        for ref in refs:
            variable = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
            if variable:
                chosen = datasource_variables[variable[1]]
                assert chosen["query"] == ref["type"]
                pattern = re.compile(chosen["regex"].strip("/"))
                offered = sorted(uid for uid, e in provisioned.items()
                                 if e["type"] == ref["type"] and pattern.fullmatch(e["name"]))
                assert offered == ["mimir", "prometheus"]
                # The business dashboard's 30-day SLA needs more history than Prometheus keeps.
                expected = "mimir" if dashboard.uid == "webhook-business" else "prometheus"
                assert chosen["current"]["value"] == expected
            else:
                assert ref["uid"] in provisioned, f"{dashboard.uid}: {ref}"
                assert provisioned[ref["uid"]]["type"] == ref["type"]
        (builtin,) = doc["annotations"]["list"]
        assert builtin["builtIn"] == 1 and builtin["datasource"]["type"] == "grafana"


# ---------------------------------------------------------------------------- settings reach the panels


def test_cluster_variable_matches_local_series_and_federated_clusters():
    alone = minimal_settings()
    (cluster,) = [v for v in variables(dashboards(alone)[0].json) if v["name"] == "cluster"]
    assert [(o["text"], o["value"]) for o in cluster["options"]] == [(CLUSTER, f"|{CLUSTER}")]
    federated = minimal_settings(metrics={"federation": [{"cluster": "webhook-prod-euw1", "url": "https://p.euw1.example.com"}]})
    (cluster,) = [v for v in variables(dashboards(federated)[0].json) if v["name"] == "cluster"]
    assert [(o["text"], o["value"]) for o in cluster["options"]] == [
        (CLUSTER, f"|{CLUSTER}"), ("webhook-prod-euw1", "webhook-prod-euw1"), ("all", ".*")]
    assert cluster["current"]["value"] == f"|{CLUSTER}"
    # The local option matches series without the label (local Prometheus) and with it (Mimir).
    assert re.fullmatch(f"|{CLUSTER}", "") and re.fullmatch(f"|{CLUSTER}", CLUSTER)
    assert not re.fullmatch(f"|{CLUSTER}", "webhook-prod-euw1")


def test_business_dashboard_prices_failures_and_holds_the_sla_target():
    default = by_uid(dashboards(minimal_settings()), "webhook-business")
    custom = by_uid(dashboards(minimal_settings(
        grafana={"revenuePerDelivery": 0.25},
        alerting={"thresholds": {"sloTarget": 0.995}},
        metrics={"failureStatuses": ["error", "timeout"]},
    )), "webhook-business")
    revenue = panel_by_title(default, "Revenue at risk (range)")["targets"][0]["expr"]
    assert revenue.endswith("[$__range])) * 0.002")
    assert 'status=~"error"' in revenue
    revenue = panel_by_title(custom, "Revenue at risk (range)")["targets"][0]["expr"]
    assert revenue.endswith("[$__range])) * 0.25")
    assert 'status=~"error|timeout"' in revenue
    for doc, target in ((default, 0.999), (custom, 0.995)):
        gauge = panel_by_title(doc, "SLA success rate (range)")
        steps = gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps == [{"color": "red", "value": None}, {"color": "green", "value": target}]
        assert gauge["fieldConfig"]["defaults"]["min"] == pytest.approx(1 - 10 * (1 - target))
        budget = panel_by_title(doc, "Error budget remaining (range)")["targets"][0]["expr"]
        assert budget.endswith(f"/ {round(1 - target, 10)!r}")


def test_ab_dashboard_groups_by_the_configured_track_label():
    doc = by_uid(dashboards(minimal_settings(metrics={"trackLabel": "app.kubernetes.io/track"})), "webhook-ab")
    exprs = [t["expr"] for p in panels(doc) for t in p["targets"]]
    assert all("sum by (app_kubernetes_io_track" in e or "count by (app_kubernetes_io_track)" in e for e in exprs)
    assert not any(re.search(r"\btrack\b", e.replace("app_kubernetes_io_track", "")) for e in exprs)


def test_cost_dashboard_uses_the_configured_unit_costs():
    doc = by_uid(dashboards(minimal_settings(grafana={"unitCosts": {"cpuCoreHour": 0.05, "memoryGibHour": 0.007,
                                                                  "storageGibMonth": 0.1}})), "webhook-cost")
    expr = panel_by_title(doc, "Hourly cost by resource")["targets"][0]["expr"]
    assert '"cpu"}' in expr and "* 0.05" in expr and "* 0.007" in expr and "* 0.1 / 730" in expr
    monitoring = panel_by_title(doc, "Monitoring hourly cost by resource")["targets"][0]["expr"]
    # Both namespaces of the stack: the per-node agents' too.
    assert 'namespace=~"monitoring|monitoring-agents"' in monitoring and "$namespace" not in monitoring


def test_the_monitoring_cost_counts_requests_s3_transfer_and_provisioned_volumes(tmp_path):
    """The stack's cost, evaluated by promtool on synthetic series: prod's prices and its Prometheus volumes
    of 6,000 IOPS and 250 MiB/s (3,000 and 125 above the included baseline)."""
    settings = minimal_settings("prod", storage={"profiles": [{"name": "fast", "iops": 6000, "throughput": 250}]},
                                prometheus={"volumeProfile": "fast"})
    doc = by_uid(dashboards(settings), "webhook-cost")
    expr = substitute(panel_by_title(doc, "Monitoring hourly cost by resource")["targets"][0]["expr"])
    own = f'cluster="{CLUSTER}", namespace="monitoring"'
    series = [
        # Requests of one running pod in each namespace: a core and 1 GiB in all.
        {"series": f'kube_pod_container_resource_requests{{{own}, pod="p", resource="cpu"}}', "values": "0.5x60"},
        {"series": f'kube_pod_container_resource_requests{{cluster="{CLUSTER}", namespace="monitoring-agents", pod="a", '
                   'resource="cpu"}', "values": "0.5x60"},
        {"series": f'kube_pod_status_phase{{{own}, pod="p", phase="Running"}}', "values": "1x60"},
        {"series": f'kube_pod_status_phase{{cluster="{CLUSTER}", namespace="monitoring-agents", pod="a", '
                   'phase="Running"}', "values": "1x60"},
        # 100 samples a second into Mimir, 1,000 bytes a second remote-written, 6 uploads a minute.
        {"series": f"cortex_distributor_received_samples_total{{{own}}}", "values": "0+6000x60"},
        {"series": f"prometheus_remote_storage_bytes_total{{{own}}}", "values": "0+60000x60"},
        {"series": f'thanos_objstore_bucket_operations_total{{{own}, operation="upload"}}', "values": "0+6x60"},
    ]
    gib_month = 100 * 90 * 86400 * 2 / 2**30
    expected = {
        "cpu": 1 * 0.0416,
        "s3 storage": gib_month * 0.023 / 730,
        "s3 requests": 0.1 * 3600 / 1000 * 0.005,
        # Remote write and Mimir's three copies, two thirds of it across zones.
        "cross-zone transfer": 1000 * 4 * (2 / 3) * 3600 / 2**30 * 0.02,
        # The two Prometheus replicas' volumes of the profile.
        "provisioned iops and throughput": 2 * (3000 * 0.005 + 125 * 0.04) / 730,
    }
    samples = [{"labels": f'{{resource="{name}"}}', "value": value} for name, value in expected.items()]
    result = run_promtool_test(tmp_path, series, f"sum by (resource) ({expr})", "60m", samples)
    assert result.returncode == 0, result.stdout + result.stderr
    # Negative: the agents' namespace left out would be half the CPU.
    samples[0]["value"] = 0.5 * 0.0416
    assert run_promtool_test(tmp_path, series, f"sum by (resource) ({expr})", "60m", samples).returncode != 0


def test_escalation_delay_is_marked_only_when_this_stack_escalates():
    def value_colours(settings):
        table = panel_by_title(by_uid(dashboards(settings), "webhook-overview"), "Escalation status")
        return table["fieldConfig"]["defaults"].get("thresholds"), table["fieldConfig"]["overrides"]

    thresholds, overrides = value_colours(minimal_settings(alerting={"pagerduty": {
        "enabled": True, "escalationUsers": ["oncall@example.com"], "escalationDelay": "15m"}}))
    assert thresholds["steps"] == [{"color": "transparent", "value": None}, {"color": "orange", "value": 900.0}]
    assert overrides == [{"matcher": {"id": "byName", "options": "Value"},
                          "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]
    # PagerDuty off (the dev default) or an existing policy: nothing escalates on a known delay.
    assert value_colours(minimal_settings()) == (None, [])
    assert value_colours(minimal_settings(alerting={"pagerduty": {"enabled": True, "escalationPolicyId": "P123"}})) == (None, [])


# ---------------------------------------------------------------------------- derived expressions, evaluated


def run_promtool_test(tmp_path: Path, input_series: list[dict], expr: str, eval_time: str,
                      samples: list[dict]) -> subprocess.CompletedProcess:
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    test = {
        "rule_files": ["empty.yaml"],
        "tests": [{"interval": "1m", "input_series": input_series,
                   "promql_expr_test": [{"expr": expr, "eval_time": eval_time, "exp_samples": samples}]}],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    return promtool("test", "rules", "test.yaml", cwd=tmp_path)


def test_mean_time_to_resolution_averages_firing_episodes(built, tmp_path):
    expr = panel_by_title(by_uid(built, "webhook-overview"), "Mean time to resolution")["targets"][0]["expr"]
    expr = substitute(expr).replace("[1d:1m]", "[1h:1m]")
    alert = 'ALERTS{alertname="WebhookQueueBacklog", alertstate="firing", severity="critical", team="webhook-delivery"}'
    other_team = 'ALERTS{alertname="Other", alertstate="firing", severity="critical", team="payments"}'
    watchdog = 'ALERTS{alertname="Watchdog", alertstate="firing", severity="none", team="webhook-delivery"}'
    series = [
        # Two episodes, 10 and 20 minutes: the mean is 15 minutes. Resolution marks the series stale.
        {"series": alert, "values": "_x5 1x9 stale _x9 1x19 stale _x20"},
        {"series": other_team, "values": "1x60"},
        {"series": watchdog, "values": "1x60"},
    ]
    result = run_promtool_test(tmp_path, series, expr, "60m",
                               [{"labels": '{alertname="WebhookQueueBacklog"}', "value": 900}])
    assert result.returncode == 0, result.stdout + result.stderr
    # Negative: one 30-minute episode is not a 15-minute mean.
    series[0]["values"] = "_x5 1x29 stale _x20"
    result = run_promtool_test(tmp_path, series, expr, "60m",
                               [{"labels": '{alertname="WebhookQueueBacklog"}', "value": 900}])
    assert result.returncode != 0


def test_range_sla_weighs_windows_by_traffic(built, tmp_path):
    gauge = panel_by_title(by_uid(built, "webhook-business"), "SLA success rate (range)")
    expr = substitute(gauge["targets"][0]["expr"]).replace("[1d]", "[1h]")
    labels = '{namespace="webhook-delivery", service="webhook-delivery"}'
    series = [
        # 30 minutes at 3/s without failures, then 30 minutes at 1/s all failing: 30 of 120
        # weighted, so 75% success (an average of the two windows' ratios would say 50%).
        {"series": f"service:webhook_deliveries:rate5m{labels}", "values": "_ 3x29 1x29"},
        {"series": f"service:webhook_delivery_errors:rate5m{labels}", "values": "_ 0x29 1x29"},
    ]
    result = run_promtool_test(tmp_path, series, expr, "60m", [{"labels": labels, "value": 0.75}])
    assert result.returncode == 0, result.stdout + result.stderr


def test_store_dashboards_read_the_stack_namespaces_and_its_log_agent():
    settings = minimal_settings(namespace="observability", agentsNamespace="node-agents", logging={"agent": "promtail"})
    built = {d.uid: d.json for d in dashboards(settings)}
    for uid, prefix in (("webhook-mimir", "cortex_"), ("webhook-loki", "loki_")):
        exprs = [t["expr"] for p in panels(built[uid]) for t in p["targets"]]
        store = [e for e in exprs if prefix in e]
        assert len(store) >= 5, uid
        assert all('namespace="observability"' in e for e in store), uid
    agents = panel_by_title(built["webhook-loki"], "Agents: lines dropped, pushes refused")
    assert [t["expr"].split("{")[0].split("(")[-1] for t in agents["targets"]] == [
        "promtail_dropped_entries_total", "promtail_request_duration_seconds_count"]
    assert all('namespace="node-agents"' in t["expr"] for t in agents["targets"])
