"""Recording and alert rules: promtool checks and unit tests, and the rules' contracts as data.

The promtool unit tests live in tests/rules/*.yaml and name `prometheus-rules.yaml` as their rule
file: each run writes rendered rule groups under that name into a temporary directory, next to
copies of the test files. The copies also get `group_eval_order` (the deployed order: recording
before alerts), since promtool otherwise evaluates groups in a random order and an alert could read
the previous evaluation's recorded series, making `for` timings flaky.

They run once, on prod's rules (with the probe every optional rule is there); a cheap check proves
dev's rules are prod's minus the probe alert, so a stack-specific rule cannot go untested.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from config import ConfigError, Duration
from monitoring.catalog import render as render_catalog
from monitoring.rules.alerts import CHART_GUARD_ALERTS, STORE_GROUP
from monitoring.rules import (
    alert_groups,
    baseline_mean_series,
    baseline_stddev_series,
    federation_match,
    recorded_series,
    recording_groups,
    rule_groups,
)
from tests.support import stack_settings, stack_values, write_rules
from tools.go_tools import binary
from tools.stacks import stacks

ROOT = Path(__file__).resolve().parent.parent
UNIT_TESTS = sorted((ROOT / "tests" / "rules").glob("*.yaml"))
RUNBOOKS = ROOT / "docs" / "runbooks"
# The default anomaly baseline (tests/rules/anomaly.yaml).
RECORDED_SERIES = recorded_series(2)
RECORDED_NAMES = {s.record for s in RECORDED_SERIES}
# A level:metric:operations name in PromQL, with its label matchers if any.
SERIES_REF = re.compile(r"([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)(\{[^}]*\})?")

CONTRACT_SERIES = {
    "service:webhook_deliveries:rate5m",
    "service:webhook_deliveries:rate1h",
    "service_status:webhook_deliveries:rate5m",
    "service_endpoint:webhook_deliveries:rate5m",
    "service_endpoint:webhook_delivery_errors:rate5m",
    *(f"service:webhook_delivery_errors:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")),
    "service:webhook_delivery_success:ratio_rate5m",
    "service:webhook_delivery_success:ratio_rate1d",
    "service:webhook_delivery_duration_seconds:histogram_quantile5m",
    "service:webhook_delivery_duration_seconds:mean5m",
    "service_attempt:webhook_retries:rate5m",
    "service:webhook_queue_depth:sum",
}
CONTRACT_ALERTS = {
    "WebhookHighErrorRate", "WebhookQueueBacklog", "HighLatency", "WebhookErrorBudgetBurn", "Watchdog",
    "WebhookTargetDown", "WebhookProbeFailed", "LongTermStoreRemoteWriteFailing",
    "LongTermStoreRemoteWriteBehind", "WebhookTrafficAnomaly",
}


def promtool_test(groups: list[dict], directory: Path, tests: list[Path]) -> dict[str, subprocess.CompletedProcess]:
    """promtool's result per test file. One promtool per file, as many at once as there are CPUs:
    promtool evaluates on one core, and anomaly.yaml alone (weeks of evaluations) takes seconds."""
    _, order = write_rules(groups, directory)
    for test in tests:
        spec = yaml.safe_load(test.read_text())
        spec["group_eval_order"] = order
        (directory / test.name).write_text(yaml.safe_dump(spec, sort_keys=False))

    def run(test: Path) -> subprocess.CompletedProcess:
        return subprocess.run([binary("promtool"), "test", "rules", test.name],
                              cwd=directory, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        return dict(zip((t.name for t in tests), pool.map(run, tests)))


def alerts_of(settings) -> list[dict]:
    return [rule for group in alert_groups(settings) for rule in group["rules"]]


# ---------------------------------------------------------------------------- promtool


@pytest.mark.parametrize("stack", stacks())
def test_promtool_checks_the_rendered_rules(stack, tmp_path):
    settings = stack_settings(stack)
    path, _ = write_rules(rule_groups(settings), tmp_path)
    result = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in rule_groups(settings))
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_unit_tests_pass(tmp_path):
    assert len(UNIT_TESTS) >= 7, UNIT_TESTS
    results = promtool_test(rule_groups(stack_settings("prod")), tmp_path, UNIT_TESTS)
    assert sorted(results) == [t.name for t in UNIT_TESTS]
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stdout + result.stderr)
        assert result.stdout.count("SUCCESS") == 1, (name, result.stdout)


def _rule_set(settings) -> set[tuple[str, str]]:
    return {(g["name"], yaml.safe_dump(r)) for g in rule_groups(settings) for r in g["rules"]}


def test_dev_rules_are_prods_without_the_probe_alerts():
    """What the promtool unit tests (run on prod's rules) prove holds for dev: for the same services,
    dev deploys the same rules, minus the probe alerts (failing, certificate expiring) it has no probe for. A rule that differs fails
    here, not in dev. Only the absence alerts name the services, and they follow each stack's own;
    the head series alert follows each stack's sizing."""
    prod_services = stack_values("prod")["metrics"]["services"]
    prod_sizing = stack_settings("prod").prometheus.expected_series
    dev = _rule_set(stack_settings("dev", {"metrics": {"services": prod_services},
                                           "prometheus": {"expectedSeries": prod_sizing}}))
    prod = _rule_set(stack_settings("prod"))
    assert dev <= prod
    assert {yaml.safe_load(rule)["alert"] for _, rule in prod - dev} == {"WebhookProbeFailed",
                                                                         "WebhookProbeCertificateExpiring"}
    dev_services = {(str(s.namespace), str(s.name)) for s in stack_settings("dev").metrics.services}
    missing = [a for a in alerts_of(stack_settings("dev")) if a["alert"] == "WebhookTargetsMissing"]
    assert {(a["labels"]["service"], a["expr"]) for a in missing} == {
        (name, f'absent(up{{namespace="{namespace}", monitor="{name}"}})') for namespace, name in dev_services}


@pytest.mark.slow
def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path):
    """The unit tests test the rendered thresholds: at a 15% threshold, 10% errors must not fire."""
    settings = stack_settings("prod", {"alerting": {"thresholds": {"errorRatio": 0.15}}})
    result, = promtool_test(rule_groups(settings), tmp_path, [ROOT / "tests" / "rules" / "service_alerts.yaml"]).values()
    assert result.returncode != 0
    assert "alertname: WebhookHighErrorRate, time: 30m" in result.stdout + result.stderr


@pytest.mark.slow
def test_lag_unit_test_fails_when_lag_is_read_against_the_storage_wide_timestamp(tmp_path):
    """The lag test has teeth: measured from the storage-wide highest timestamp (the Prometheus 2
    habit), the replica that writes nothing by design is "behind" and the test fails on it."""
    groups = rule_groups(stack_settings("prod"))
    (rule,) = [r for g in groups for r in g["rules"] if r.get("alert") == "LongTermStoreRemoteWriteBehind"]
    assert "prometheus_remote_storage_queue_highest_timestamp_seconds" in rule["expr"]
    rule["expr"] = rule["expr"].replace(
        "max by (namespace, pod, remote_name, url) (max_over_time(prometheus_remote_storage_queue_highest_timestamp_seconds[5m]))\n-",
        "max by (namespace, pod) (max_over_time(prometheus_remote_storage_highest_timestamp_in_seconds[5m]))\n"
        "- on (namespace, pod) group_right")
    result, = promtool_test(groups, tmp_path, [ROOT / "tests" / "rules" / "pipeline_alerts.yaml"]).values()
    assert result.returncode != 0
    assert 'pod="prometheus-kube-prometheus-stack-prometheus-1"' in result.stdout + result.stderr


def test_shapes_unit_test_fails_when_the_error_confirmation_does_not_bridge_missed_scrapes(tmp_path):
    """The scrape-gap case has teeth: read the short error rate as it is (no last value within 2m)
    and the timed-out scrapes of "gaps" restart its pending alert, which then misses its page."""
    groups = rule_groups(stack_settings("prod"))
    (rule,) = [r for g in groups for r in g["rules"] if r.get("alert") == "WebhookHighErrorRate"]
    bridged = 'last_over_time(service:webhook_delivery_errors:rate_short{cluster=""}[2m])'
    assert bridged in rule["expr"]
    rule["expr"] = rule["expr"].replace(bridged, 'service:webhook_delivery_errors:rate_short{cluster=""}')
    spec = yaml.safe_load((ROOT / "tests" / "rules" / "service_shapes.yaml").read_text())
    spec["tests"] = spec["tests"][:1]  # the error-rate block alone
    (tmp_path / "source").mkdir()
    shapes = tmp_path / "source" / "service_shapes.yaml"
    shapes.write_text(yaml.safe_dump(spec, sort_keys=False))
    result, = promtool_test(groups, tmp_path, [shapes]).values()
    assert result.returncode != 0
    block = (result.stdout + result.stderr).split("alertname: WebhookHighErrorRate, time: 24m")[1].split("alertname:")[0]
    expected, got = block.split("got:")
    assert 'service="gaps"' in expected and 'service="gaps"' not in got and 'service="fresh"' in got


# What tests/rules/federation.yaml reports when the rules read every cluster's recorded series.
_FEDERATION_FAILURES = {
    # Recorded from the federated series, under their names and labels: they collide.
    "recording": ["rule: service:webhook_delivery_errors:rate5m, time: 0s, err: duplicate sample for timestamp",
                  "rule: service:webhook_delivery_success:ratio_rate5m, time: 0s, err: duplicate sample for timestamp"],
    # The other cluster's failures page here.
    "alerts": [*(f"alertname: {name}, time: 45m" for name in (
        "WebhookHighErrorRate", "WebhookQueueBacklog", "HighLatency", "WebhookErrorBudgetBurn", "WebhookTrafficAnomaly")),
        'Labels:{alertname="WebhookHighErrorRate", cluster="webhook-prod-euw1"'],
}


@pytest.mark.parametrize("rules", sorted(_FEDERATION_FAILURES))
def test_federation_unit_test_fails_when_rules_read_every_cluster(rules, tmp_path):
    """The federation unit test has teeth: drop the `cluster=""` matcher from the recording rules
    or from the alerts, and it fails for the reason it is there."""
    groups = rule_groups(stack_settings("prod"))
    for group in groups:
        if (group["name"] == "webhook-delivery.recording") == (rules == "recording"):
            for rule in group["rules"]:
                rule["expr"] = rule["expr"].replace('{cluster=""}', "").replace('cluster="", ', "")
    result, = promtool_test(groups, tmp_path, [ROOT / "tests" / "rules" / "federation.yaml"]).values()
    assert result.returncode != 0
    for failure in _FEDERATION_FAILURES[rules]:
        assert failure in result.stdout + result.stderr, failure


def _alert_cases() -> dict[str, list[list[tuple[float, bool]]]]:
    """Per alert, per unit test block: (eval time in seconds, expects it firing) of each case."""
    cases: dict[str, list[list[tuple[float, bool]]]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            block: dict[str, list[tuple[float, bool]]] = {}
            for case in test.get("alert_rule_test", []):
                block.setdefault(case["alertname"], []).append(
                    (Duration(case["eval_time"]).seconds, bool(case.get("exp_alerts"))))
            for name, times in block.items():
                cases.setdefault(name, []).append(times)
    return cases


def _resolves(block: list[tuple[float, bool]]) -> bool:
    """Quiet again, in the same test block, at a later time than it fired."""
    return any(not firing and any(fired and t0 < t for t0, fired in block) for t, firing in block)


def test_unit_tests_cover_every_alert_firing_quiet_and_resolving():
    cases = _alert_cases()
    names = {a["alert"] for a in alerts_of(stack_settings("prod"))}
    firing = {n for n, blocks in cases.items() if any(f for block in blocks for _, f in block)}
    quiet = {n for n, blocks in cases.items() if any(not f for block in blocks for _, f in block)}
    resolving = {n for n, blocks in cases.items() if any(_resolves(block) for block in blocks)}
    assert firing == names
    assert quiet == names - {"Watchdog"}
    # Watchdog never resolves: it always fires.
    assert resolving == names - {"Watchdog"}


def test_a_quiet_case_before_the_firing_one_is_no_resolve():
    assert _resolves([(600.0, True), (1200.0, False)])
    assert not _resolves([(600.0, False), (1200.0, True)])
    assert not _resolves([(600.0, True), (1200.0, True)])


# ---------------------------------------------------------------------------- recording rules


def test_recorded_series_follow_level_metric_operations():
    for series in RECORDED_SERIES:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*:[a-z0-9_]+:[a-z0-9_]+", series.record), series.record
        level = series.record.split(":")[0].split("_")
        # The level names the labels the series keeps: service = (namespace, service), plus the rest.
        assert level[0] == "service" and series.labels[:2] == ("namespace", "service"), series.record
        assert set(series.labels[2:]) <= {"status", "endpoint", "attempt_number", "quantile", "le", "pod"}
        # One level word per label kept beyond the service (the quantile is a static label).
        assert len(level) - 1 == len([label for label in series.labels[2:] if label != "quantile"]), series.record


def test_contract_series_are_recorded_with_their_labels():
    rules = recording_groups(stack_settings("dev"))[0]["rules"]
    recorded = {r["record"] for r in rules}
    assert CONTRACT_SERIES <= recorded
    quantiles = sorted(r["labels"]["quantile"] for r in rules if r["record"].endswith("histogram_quantile5m"))
    assert quantiles == ["0.5", "0.95", "0.99"]


def test_recording_rules_read_only_series_recorded_before_them():
    rules = recording_groups(stack_settings("dev"))[0]["rules"]
    seen: set[str] = set()
    for rule in rules:
        for name in re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["expr"]):
            assert name in seen, (rule["record"], name)
        seen.add(rule["record"])


def test_long_windows_never_read_raw_per_endpoint_counters():
    raw = [rule for rule in recording_groups(stack_settings("dev"))[0]["rules"] if "webhook_deliveries_total" in rule["expr"]]
    # The one pass over every counter (5m), and the error page's short confirmation over the failed ones.
    assert [re.findall(r"\[(\w+)\]", rule["expr"]) for rule in raw] == [["5m"], ["1m"]]
    assert 'status=~"error"' in raw[1]["expr"]


def test_failure_statuses_come_from_settings():
    settings = stack_settings("dev", {"metrics": {"failureStatuses": ["error", "timeout", "http.5xx"]}})
    exprs = {r["record"]: r["expr"] for r in recording_groups(settings)[0]["rules"]}
    assert 'status=~"error|timeout|http\\\\.5xx"' in exprs["service_endpoint:webhook_delivery_errors:rate5m"]
    default = {r["record"]: r["expr"] for r in recording_groups(stack_settings("dev"))[0]["rules"]}
    assert 'status=~"error"' in default["service_endpoint:webhook_delivery_errors:rate5m"]


def test_federation_pulls_only_aggregated_series():
    match = federation_match(stack_settings("prod"))
    names = {re.fullmatch(r'\{__name__="([^"]+)"\}', m).group(1) for m in match}
    assert names == {s.record for s in RECORDED_SERIES if "endpoint" not in s.labels and "pod" not in s.labels}
    assert "service_pod:kube_pod_owner:relabel" not in names
    assert not any(n.startswith("service_endpoint") for n in names)
    assert "service:webhook_delivery_errors:ratio_rate5m" in names
    assert match == sorted(match)


def test_rules_read_only_this_clusters_recorded_series():
    """Federated series of other clusters carry `cluster`; ours do not (tests/rules/federation.yaml)."""
    references = 0
    for group in rule_groups(stack_settings("prod")):
        for rule in group["rules"]:
            for name, matchers in SERIES_REF.findall(rule["expr"]):
                assert name in RECORDED_NAMES, (group["name"], name)
                assert matchers.startswith('{cluster=""'), (rule.get("record") or rule["alert"], name)
                references += 1
    assert references >= 40


def test_anomaly_baseline_spans_the_configured_weeks():
    default = stack_settings("prod")
    assert baseline_mean_series(default) == "service:webhook_deliveries:rate1h_mean_same_hour_2w"
    assert baseline_stddev_series(default) == "service:webhook_deliveries:rate1h_stddev_same_hour_2w"
    three = stack_settings("prod", {"prometheus": {"retention": "30d"},
                                    "alerting": {"thresholds": {"anomalyBaselineWeeks": 3}}})
    mean, stddev = baseline_mean_series(three), baseline_stddev_series(three)
    assert (mean, stddev) == ("service:webhook_deliveries:rate1h_mean_same_hour_3w",
                              "service:webhook_deliveries:rate1h_stddev_same_hour_3w")
    exprs = {r["record"]: r["expr"] for r in recording_groups(three)[0]["rules"]}
    rate = 'service:webhook_deliveries:rate1h{cluster=""}'
    assert exprs[mean] == f"({rate} offset 1w + {rate} offset 2w + {rate} offset 3w) / 3"
    assert exprs[stddev] == "sqrt((" + " + ".join(
        f'({rate} offset {w}w - {mean}{{cluster=""}}) ^ 2' for w in (1, 2, 3)) + ") / 3)"
    assert not any("_2w" in name for name in exprs)
    anomaly, = _rules(three, "WebhookTrafficAnomaly")
    assert f'/ {stddev}{{cluster=""}}) > 3\n' in anomaly["expr"] and anomaly["expr"].count(mean) == 3
    assert "the same hour of the previous 3 weeks" in anomaly["annotations"]["description"]
    assert {f'{{__name__="{mean}"}}', f'{{__name__="{stddev}"}}'} <= set(federation_match(three))


def test_a_baseline_longer_than_the_retention_is_refused():
    with pytest.raises(ConfigError, match="anomalyBaselineWeeks"):
        stack_settings("prod", {"alerting": {"thresholds": {"anomalyBaselineWeeks": 3}}})


# ---------------------------------------------------------------------------- alert rules


def test_alert_names_and_groups():
    names = {a["alert"] for a in alerts_of(stack_settings("prod"))}
    assert CONTRACT_ALERTS <= names
    log_pipeline = {n for n in names if n.startswith("LogPipeline")}
    assert log_pipeline == {"LogPipelineEntriesDropped", "LogPipelineLokiPushErrors"}
    groups = [g["name"] for g in rule_groups(stack_settings("prod"))]
    assert len(groups) == len(set(groups))
    assert groups[0] == "webhook-delivery.recording"
    assert all(set(g) == {"name", "rules"} for g in rule_groups(stack_settings("prod")))


def test_every_alert_has_labels_annotations_and_runbook():
    groups = {g["name"]: g["rules"] for g in alert_groups(stack_settings("prod"))}
    # The stores' internals are the platform's (it runs them); everything else is the team's.
    assert {r["labels"]["team"] for r in groups.pop(STORE_GROUP)} == {"platform"}
    for rule in (r for rules in groups.values() for r in rules):
        name, labels, annotations = rule["alert"], rule["labels"], rule["annotations"]
        assert labels["team"] == "webhook-delivery", name
    for rule in alerts_of(stack_settings("prod")):
        name, labels, annotations = rule["alert"], rule["labels"], rule["annotations"]
        assert labels["severity"] in {"critical", "warning", "info"}, name
        # The service label comes from the aggregation or is set statically, never both.
        aggregated = (re.search(r"by \([^)]*\bservice\b", rule["expr"]) or "service:" in rule["expr"]
                      or re.search(r'label_replace\(.*"service"', rule["expr"], re.S))
        assert bool(aggregated) != ("service" in labels), name
        assert set(annotations) == {"summary", "description", "runbook_url", "value"}, name
        assert annotations["value"] == '{{ printf "%.6g" $value }}', name
        # Where the value is a measure, the description says it; absence alerts fire on a constant.
        if name not in {"Watchdog", "WebhookTargetsMissing", "WebhookDeliveryMetricsMissing", "LogRulerNotEvaluating"}:
            assert "$value" in annotations["description"], name
        assert annotations["runbook_url"] == (
            f"https://git.example.com/sre/webhook-monitoring/blob/main/docs/runbooks/{name}.md"
        )


def test_every_alert_has_a_runbook_file():
    # Ours, and the charts' alerts that guard the pipeline (testkit/chart_intent.py proves the charts
    # render them with these links).
    names = {a["alert"] for a in alerts_of(stack_settings("prod"))} | set(CHART_GUARD_ALERTS)
    urls = {a["annotations"]["runbook_url"] for a in alerts_of(stack_settings("prod"))}
    for name in names:
        text = (RUNBOOKS / f"{name}.md").read_text()
        assert text.startswith(f"# {name}\n"), name
        for section in ("## What it means", "## What to check", "## What to do", "## Escalation"):
            assert section in text, (name, section)
    for url in urls:
        assert (RUNBOOKS / url.rsplit("/", 1)[1]).is_file(), url


def test_runbook_url_base_comes_from_settings():
    settings = stack_settings("dev", {"alerting": {"runbookBaseUrl": "https://wiki.example.com/runbooks"}})
    urls = {a["alert"]: a["annotations"]["runbook_url"] for a in alerts_of(settings)}
    assert urls["Watchdog"] == "https://wiki.example.com/runbooks/Watchdog.md"


def _rules(settings, name: str) -> list[dict]:
    return [a for a in alerts_of(settings) if a["alert"] == name]


def test_thresholds_and_durations_come_from_settings():
    default = stack_settings("dev")
    changed = stack_settings("dev", {"alerting": {"thresholds": {
        "errorRatio": 0.02, "errorRatioFor": "7m", "queueDepth": 2500, "queueDepthFor": "9m",
        "latencyP95": 1.5, "latencyP95For": "20m", "sloTarget": 0.995, "anomalyZScore": 4.5,
        "keepFiringFor": "3m", "workloadFor": "25m", "stallQueueDepth": 40, "queueGrowthHorizon": "2h",
    }}, "metrics": {"latencyBuckets": [0.5, 1.5], "kubeStateMetricsJob": "platform-ksm"}})
    confirmation = 'last_over_time(service:webhook_delivery_errors:rate_short{cluster=""}[2m])'
    error, = _rules(default, "WebhookHighErrorRate")
    assert error["expr"] == (
        'service:webhook_delivery_errors:ratio_rate5m{cluster=""} > 0.05\n'
        f'and on (namespace, service)\n{confirmation} > 0.05 * service:webhook_deliveries:rate5m{{cluster=""}}\n'
        'and on (namespace, service)\nservice:webhook_deliveries:rate5m{cluster=""} * 300 >= 20'
    )
    assert (error["for"], error["keep_firing_for"]) == ("2m", "5m")
    error, = _rules(changed, "WebhookHighErrorRate")
    # The low-traffic guard follows the threshold: one failure in 50 deliveries is 2%.
    assert error["expr"] == (
        'service:webhook_delivery_errors:ratio_rate5m{cluster=""} > 0.02\n'
        f'and on (namespace, service)\n{confirmation} > 0.02 * service:webhook_deliveries:rate5m{{cluster=""}}\n'
        'and on (namespace, service)\nservice:webhook_deliveries:rate5m{cluster=""} * 300 >= 50'
    )
    assert (error["for"], error["keep_firing_for"]) == ("7m", "3m")
    backlog, = _rules(changed, "WebhookQueueBacklog")
    # Above 2500 for 9 of the last 18 minutes, and within the last 2.
    queue = 'service:webhook_queue_depth:sum{cluster=""}'
    assert backlog["expr"] == (f"max_over_time({queue}[2m]) > 2500\nand on (namespace, service)\n"
                               f"count_over_time(({queue} > 2500)[18m:1m]) >= 9") and "for" not in backlog
    growing, = _rules(changed, "WebhookQueueGrowing")
    assert growing["expr"] == f"predict_linear({queue}[30m], 7200) > 2500\nand on (namespace, service)\nderiv({queue}[10m]) > 0"
    stalled, = _rules(changed, "WebhookDeliveriesStalled")
    assert stalled["expr"].startswith(f"min_over_time({queue}[5m]) >= 40\n")
    latency, = _rules(changed, "HighLatency")
    assert '{cluster="", quantile="0.95"} > 1.5\n' in latency["expr"] and latency["for"] == "20m"
    assert "(threshold 1.5s)" in latency["annotations"]["description"]
    fast = _rules(changed, "WebhookErrorBudgetBurn")[0]
    assert 'ratio_rate1h{cluster=""} > (14.4 * 0.005)' in fast["expr"]
    assert 'ratio_rate5m{cluster=""} > (14.4 * 0.005)' in fast["expr"]
    assert "budget of 0.5% (SLO 99.5%)" in fast["annotations"]["description"]
    anomaly, = _rules(changed, "WebhookTrafficAnomaly")
    assert ") > 4.5\n" in anomaly["expr"]
    # The workload alerts read kube-state-metrics of the configured job, for the configured time.
    for name in ("WorkloadCrashLooping", "WorkloadContainerWaiting", "WorkloadPodsPending", "WorkloadReplicasUnavailable"):
        workload, = _rules(changed, name)
        assert workload["for"] == "25m" and workload["keep_firing_for"] == "3m", name
        assert 'job="platform-ksm"' in workload["expr"] and 'job="kube-state-metrics"' not in workload["expr"], name
    owner = [r for r in recording_groups(changed)[0]["rules"] if r["record"] == "service_pod:kube_pod_owner:relabel"]
    assert owner and owner[0]["expr"].count('job="platform-ksm"') == 3


def test_burn_rate_alerts_follow_the_workbook():
    burns = _rules(stack_settings("prod"), "WebhookErrorBudgetBurn")
    shape = [
        (b["labels"]["severity"], b["labels"]["slo_window"], b["for"],
         re.findall(r'ratio_rate(\w+)\{cluster=""\} > \(([\d.]+) \* 0.001\)', b["expr"]))
        for b in burns
    ]
    assert shape == [
        ("critical", "1h", "2m", [("1h", "14.4"), ("5m", "14.4")]),
        ("critical", "6h", "15m", [("6h", "6"), ("30m", "6")]),
        ("warning", "1d", "1h", [("1d", "3"), ("2h", "3")]),
        ("warning", "3d", "3h", [("3d", "1"), ("6h", "1")]),
    ]
    # Only pages carry the low-traffic guard: enough deliveries in the long window that one failure
    # stays under the burn threshold (1 / 1.44% = 70 in 1h, 1 / 0.6% = 167 in 6h).
    guards = [re.findall(r'avg_over_time\(service:webhook_deliveries:rate5m\{cluster=""\}\[(\w+)\]\) \* (\d+) >= (\d+)',
                         b["expr"])
              for b in burns]
    assert guards == [[("1h", "3600", "70")], [("6h", "21600", "167")], [], []]


def test_service_alerts_compare_aggregated_series():
    """Ratios of sums and quantiles of summed buckets, never per-series ratios of raw counters."""
    for rule in alerts_of(stack_settings("prod")):
        assert "webhook_deliveries_total" not in rule["expr"], rule["alert"]
        assert "webhook_delivery_duration_seconds_bucket" not in rule["expr"], rule["alert"]
        assert not re.search(r"(?<![:\w])webhook_queue_depth(?![:\w])", rule["expr"]), rule["alert"]


def test_probe_alert_only_with_probes():
    dev = stack_settings("dev", {"metrics": {"probes": []}})
    assert _rules(dev, "WebhookProbeFailed") == []
    probe, = _rules(stack_settings("prod"), "WebhookProbeFailed")
    assert 'instance=~"https://webhooks\\\\.example\\\\.com/healthz"' in probe["expr"]


def test_log_pipeline_alert_follows_the_log_agent():
    alloy, = _rules(stack_settings("dev"), "LogPipelineEntriesDropped")
    promtail, = _rules(stack_settings("dev", {"logging": {"agent": "promtail"}}), "LogPipelineEntriesDropped")
    assert "rate(loki_write_dropped_entries_total[5m])" in alloy["expr"]
    assert "rate(promtail_dropped_entries_total[5m])" in promtail["expr"]
    assert "promtail" not in alloy["expr"]


def test_target_down_selects_the_configured_namespaces():
    settings = stack_settings("prod", {"metrics": {"services": [
        {"name": "api", "namespace": "webhooks-b", "selector": {"app": "api"}},
        {"name": "worker", "namespace": "webhooks-a", "selector": {"app": "worker"}},
    ]}})
    down, = _rules(settings, "WebhookTargetDown")
    assert down["expr"].count('up{namespace=~"webhooks-a|webhooks-b"}') == 2


def test_rules_are_deterministic():
    first = yaml.safe_dump(rule_groups(stack_settings("prod")))
    assert first == yaml.safe_dump(rule_groups(stack_settings("prod")))


# ---------------------------------------------------------------------------- metric catalog


def test_metric_catalog_is_current():
    assert (ROOT / "docs" / "metrics.md").read_text() == render_catalog(), (
        "docs/metrics.md is stale: run `python -m monitoring.catalog > docs/metrics.md`"
    )


def test_metric_catalog_lists_every_metric_and_series():
    text = render_catalog()
    for name in ["webhook_deliveries_total", "webhook_delivery_duration_seconds", "webhook_queue_depth",
                 "webhook_retries_total", *(s.record for s in RECORDED_SERIES)]:
        assert f"| `{name}` |" in text, name
    assert "## Cardinality of the `endpoint` label" in text
    assert "sampleLimit" in text and "50000" in text


def test_each_service_is_compared_with_its_own_sample_limit():
    services = [{"name": name, "namespace": "webhook-delivery", "selector": {"app": name}, **limit}
                for name, limit in (("api", {}), ("worker", {"sampleLimit": 70000}), ("relay", {}))]
    (alert,) = [a for a in alerts_of(stack_settings("prod", {"metrics": {"services": services}}))
                if a["alert"] == "WebhookScrapeNearSampleLimit"]
    selected = 'scrape_samples_post_metric_relabeling{namespace=~"webhook-delivery", monitor=~"%s"}'
    assert alert["expr"] == (f"max by (namespace, service) (\n  {selected % 'api|relay'} / 50000\n  or\n"
                             f"  {selected % 'worker'} / 70000\n) > 0.8")
