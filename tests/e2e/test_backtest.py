"""Issue 28: the backtest against the real engine.

The real Prometheus 3.14 evaluates the rendered prod rules, time scaled as in the live pipeline
(tests/e2e/timescale.py), over scripted faults of synthetic webhook services, and notifies the real
Alertmanager 0.34 with the rendered configuration, whose receivers post to a capture server. Then
tools/backtest.py evaluates the same scaled rules over the same period against that Prometheus'
own query API (its raw series: the recording rules are the candidate set's, inlined), and sends
what fires through its model of the same Alertmanager configuration. Every firing interval must be
what Prometheus itself recorded (ALERTS, ALERTS_FOR_STATE), and every notification what the capture
server got, within one evaluation interval.

The fixture is its own small pipeline (synthetic services, one Prometheus with static targets
labelled as the Operator labels them, one Alertmanager, VictoriaMetrics receiving the remote
write), so that it depends on the rendered rules only.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
import io
import json
import contextlib
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import yaml

from config.types import duration_ms
from tests.e2e.harness import (ENDPOINTS, ERROR_SPIKE, FACTOR, HEALTHY, HEARTBEAT, PAGERDUTY, PLATFORM, QUEUE_BACKLOG,
                               QUEUE_BEFORE, REMOTE_WRITE_RECEIVER, RESEND_DELAY, SLACK, SLOW, SLOW_AND_FAILING,
                               alertmanager_for_test)
from tests.e2e.synthetic import NAMESPACE, ClusterSeries, LoadGenerator, Service
from tests.e2e.timescale import scale_duration, scale_rule_groups
from tests.support import rendered_stack
from testkit.live import CaptureServer, Process, free_port, http_json, responds, wait_until
from tools import backtest
from tools.go_tools import binary

pytestmark = pytest.mark.live

FAULTS = {
    "errors": ERROR_SPIKE,
    "latency": SLOW,
    # A critical and a warning of one service: the warning is inhibited.
    "inhibit": SLOW_AND_FAILING,
    "queue": QUEUE_BACKLOG,  # 12000 in all, over the 10000 threshold
    "smallqueue": QUEUE_BEFORE,  # 3000: under it (a lower threshold's page)
    "steady": HEALTHY,  # the negative case: nothing about it fires
}
REPLICAS = {"queue": 3, "smallqueue": 3}
# Scaled seconds: history before the range (a rate window and the longest `for` of the alerts
# that fire, and their lookback), the faults, and the recovery (a rate window, a group interval).
WARM_UP, FAULT, RECOVERY = 50.0, 60.0, 45.0
# Alertmanager learns of an alert's change a little after the evaluation (Prometheus sends when the
# group's evaluation is done: tens of milliseconds on a loaded machine). A change that close to a
# flush of another group it inhibits or joins goes either way, for Alertmanager as for the model:
# the rule file is named so that the groups raising alerts evaluate at least this far apart.
PHASE_SEPARATION_MS = 300
# The groups whose alerts the scenarios raise (the service's alerts and its SLO burn, and Watchdog): the
# others read series this pipeline does not produce (kube-state-metrics, Mimir's and Loki's), and six
# groups cannot all lie 300 ms apart in a 1.5 s interval.
SCENARIO_GROUPS = ("webhook-delivery.alerts", "webhook-delivery.slo", "webhook-delivery.monitoring-pipeline")
# Scraped through static targets, not EndpointSlices (which refuse loopback): loopback will do.
LOOPBACK = "127.0.0.1"


@dataclass
class Pipeline:
    workdir: Path
    ruleset: backtest.RuleSet
    prometheus: str
    victoria: str
    capture: CaptureServer
    start_ms: int = 0
    end_ms: int = 0
    wall_minus_monotonic: float = field(default_factory=lambda: time.time() - time.monotonic())

    @property
    def interval_ms(self) -> int:
        return duration_ms(self.ruleset.evaluation_interval)


def separated_rule_file(workdir: Path, ruleset: backtest.RuleSet) -> Path:
    """A rule file path whose scenario groups evaluate PHASE_SEPARATION_MS apart or more (Prometheus places
    a group's evaluations by the hash of its name and file)."""
    interval = duration_ms(ruleset.evaluation_interval)
    alerting = [g["name"] for g in ruleset.groups if g["name"] in SCENARIO_GROUPS]
    assert sorted(alerting) == sorted(SCENARIO_GROUPS), alerting
    for attempt in range(500):
        path = workdir / f"rules-{attempt}.yaml"
        phases = {r.group: r.phase_ms for r in backtest.inline_rules(ruleset, rule_files={g: str(path) for g in alerting})}
        spread = sorted(phases[g] for g in alerting)
        gaps = [b - a for a, b in zip(spread, spread[1:])] + [spread[0] + interval - spread[-1]]
        if min(gaps) >= PHASE_SEPARATION_MS:
            return path
    raise AssertionError(f"no rule file name in 500 puts the groups {PHASE_SEPARATION_MS} ms apart")


def prometheus_config(rendered, rule_file: Path, services: dict[str, Service], cluster: ClusterSeries,
                      alertmanager: str, victoria: str) -> dict[str, Any]:
    """What the Operator would write for the first configured ServiceMonitor selecting the services:
    static targets with the labels its Kubernetes discovery gives, the monitor's endpoint settings."""
    spec = rendered.prometheus_spec
    name, monitor = next(iter(rendered.service_monitors.items()))
    endpoint = monitor["spec"]["endpoints"][0]

    def snake(relabel: dict[str, Any]) -> dict[str, Any]:
        return {re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), k): v for k, v in relabel.items()}

    return {
        "global": {"scrape_interval": scale_duration(spec["scrapeInterval"], FACTOR),
                   "evaluation_interval": scale_duration(spec["evaluationInterval"], FACTOR),
                   "external_labels": spec["externalLabels"]},
        "alerting": {"alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": [alertmanager]}]}]},
        "rule_files": [str(rule_file)],
        "scrape_configs": [
            {"job_name": f"serviceMonitor/{monitor['metadata']['namespace']}/{name}/0",
             "honor_labels": endpoint.get("honorLabels", False),
             "scrape_interval": scale_duration(endpoint["interval"], FACTOR),
             "static_configs": [{"targets": [f"{replica.address}:{replica.port}"], "labels": {
                                     "namespace": NAMESPACE, "service": service.name, "pod": replica.pod,
                                     "container": "webhook-delivery", "endpoint": endpoint["port"]}}
                                for service in services.values() for replica in service.replicas],
             "relabel_configs": [{"source_labels": ["service"], "target_label": "job"},
                                 *(snake(r) for r in endpoint.get("relabelings", []))],
             "metric_relabel_configs": [snake(r) for r in endpoint.get("metricRelabelings", [])]},
            {"job_name": "kube-state-metrics", "honor_labels": True, "static_configs": [{"targets": [f"{LOOPBACK}:{cluster.port}"]}]},
        ],
        "remote_write": [{"url": f"{victoria}/api/v1/write"}],
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[Pipeline]:
    receiver = shutil.which(REMOTE_WRITE_RECEIVER)
    if receiver is None:
        pytest.skip(f"{REMOTE_WRITE_RECEIVER} is not installed (Debian package; make test installs it as root)")
    workdir = tmp_path_factory.mktemp("backtest")
    rendered = rendered_stack("prod")
    capture = CaptureServer()
    services = {name: Service(name, REPLICAS.get(name, 2), ENDPOINTS, HEALTHY, LOOPBACK) for name in FAULTS}
    cluster = ClusterSeries(list(services.values()), LOOPBACK)
    load = LoadGenerator(list(services.values()), cluster)
    ruleset = backtest.RuleSet(
        tuple(scale_rule_groups(rendered.rule_groups, FACTOR)),
        scale_duration(rendered.prometheus_spec["evaluationInterval"], FACTOR),
        alertmanager_for_test(rendered.alertmanager, capture.url, FACTOR),
        dict(rendered.prometheus_spec["externalLabels"]), resend_delay=scale_duration(RESEND_DELAY, FACTOR))
    rule_file = separated_rule_file(workdir, ruleset)
    rule_file.write_text(yaml.safe_dump({"groups": list(ruleset.groups)}, sort_keys=False))
    (workdir / "alertmanager.yaml").write_text(yaml.safe_dump(ruleset.alertmanager, sort_keys=False))
    alertmanager, prometheus, victoria = (f"127.0.0.1:{free_port()}" for _ in range(3))
    (workdir / "prometheus.yaml").write_text(yaml.safe_dump(prometheus_config(
        rendered, rule_file, services, cluster, alertmanager, f"http://{victoria}"), sort_keys=False))
    processes = []
    try:
        load.start()
        processes.append(Process([receiver, f"-httpListenAddr={victoria}", f"-storageDataPath={workdir / 'vm'}",
                                  "-search.latencyOffset=0s"], workdir / "victoria-metrics.log"))
        processes.append(Process([binary("alertmanager"), f"--config.file={workdir / 'alertmanager.yaml'}",
                                  f"--storage.path={workdir / 'am'}", f"--web.listen-address={alertmanager}",
                                  "--cluster.listen-address="], workdir / "alertmanager.log"))
        processes.append(Process([binary("prometheus"), f"--config.file={workdir / 'prometheus.yaml'}",
                                  f"--storage.tsdb.path={workdir / 'prometheus'}", f"--web.listen-address={prometheus}",
                                  f"--rules.alert.resend-delay={ruleset.resend_delay}",
                                  *(f"--enable-feature={f}" for f in rendered.prometheus_spec.get("enableFeatures", []))],
                                 workdir / "prometheus.log"))
        for url in (f"http://{prometheus}/-/ready", f"http://{alertmanager}/-/ready", f"http://{victoria}/health"):
            wait_until(lambda: responds(url), timeout=30, what=url)
        run = Pipeline(workdir, ruleset, f"http://{prometheus}", f"http://{victoria}", capture)
        time.sleep(WARM_UP)
        run.start_ms = round(time.time() * 1000)
        for name, phase in FAULTS.items():
            services[name].set_phase(phase)
        time.sleep(FAULT)
        for service in services.values():
            service.set_phase(HEALTHY)
        time.sleep(RECOVERY)
        # Every evaluation up to the end has been written, and every notification of it sent.
        run.end_ms = round(time.time() * 1000) - 2 * run.interval_ms
        time.sleep(2 * run.interval_ms / 1000)
        yield run
    finally:
        load.stop()
        for process in reversed(processes):
            process.stop()
        for service in services.values():
            for replica in service.replicas:
                replica.close()
        cluster.close()
        capture.shutdown()


@pytest.fixture(scope="module")
def result(pipeline) -> backtest.Result:
    api = backtest.QueryApi.connect(pipeline.prometheus)
    return backtest.run(pipeline.ruleset, api, pipeline.start_ms, pipeline.end_ms, align_to_source=True)


# ------------------------------------------------------------------------------ what Prometheus recorded


Stretch = tuple[int, Optional[int]]


def recorded_firing(pipeline: Pipeline) -> dict[backtest.Labels, list[Stretch]]:
    """Prometheus' own firing stretches, by alert: runs of ALERTS{alertstate="firing"} samples (one per
    evaluation), from the first to the evaluation after the last (None: firing at the end)."""
    api = backtest.QueryApi.connect(pipeline.prometheus)
    seconds = (pipeline.end_ms - pipeline.start_ms) // 1000 + 120
    found: dict[backtest.Labels, list[Stretch]] = {}
    interval = pipeline.interval_ms
    for series in api.query(f'ALERTS{{alertstate="firing"}}[{seconds}s]', pipeline.end_ms):
        labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k not in ("__name__", "alertstate")))
        stamps = [round(float(t) * 1000) for t, _ in series["values"]]
        runs, first = [], stamps[0]
        for before, after in zip(stamps, stamps[1:]):
            if after - before > 1.5 * interval:
                runs.append((first, before + interval))
                first = after
        runs.append((first, None if stamps[-1] > pipeline.end_ms - interval else stamps[-1] + interval))
        found[labels] = [(s, e) for s, e in runs if e is None or e > pipeline.start_ms]
    return found


def recorded_active_since(pipeline: Pipeline) -> dict[backtest.Labels, set[int]]:
    """ALERTS_FOR_STATE: when each alert Prometheus held became active (its value), by alert."""
    api = backtest.QueryApi.connect(pipeline.prometheus)
    seconds = (pipeline.end_ms - pipeline.start_ms) // 1000 + 120
    return {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")):
            {round(float(v) * 1000) for _, v in s["values"]}
            for s in api.query(f"ALERTS_FOR_STATE[{seconds}s]", pipeline.end_ms)}


def test_every_firing_interval_is_what_prometheus_recorded(pipeline, result):
    recorded = recorded_firing(pipeline)
    active_since = recorded_active_since(pipeline)
    interval = pipeline.interval_ms
    backtested: dict[backtest.Labels, list[backtest.Firing]] = {}
    for alert in result.alerts:
        for firing in alert.firings:
            backtested.setdefault(firing.labels, []).append(firing)
    assert set(backtested) == set(recorded), (
        f"only backtested: {set(backtested) - set(recorded)}; only recorded: {set(recorded) - set(backtested)}")
    compared = 0
    for labels, firings in backtested.items():
        stretches = recorded[labels]
        assert len(firings) == len(stretches), (labels, firings, stretches)
        for firing, (start, end) in zip(sorted(firings, key=lambda f: f.fired_at), stretches):
            if firing.since_start:  # firing before the range: Prometheus' stretch began before it too
                assert start <= pipeline.start_ms + interval, (labels, firing, start)
            else:
                assert abs(firing.fired_at - start) <= interval, (labels, firing, start)
                # ALERTS_FOR_STATE holds whole seconds: its value may be a second less.
                assert any(abs(firing.active_at - since) <= interval + 1000 for since in active_since[labels]), (
                    labels, firing.active_at, active_since[labels])
            if end is None or firing.resolved_at is None:
                assert (end or pipeline.end_ms) >= pipeline.end_ms - interval, (labels, firing, end)
                assert (firing.resolved_at or pipeline.end_ms) >= pipeline.end_ms - interval, (labels, firing, end)
            else:
                assert abs(firing.resolved_at - end) <= interval, (labels, firing, end)
            compared += 1
    # The scenarios did fire what they are for, and the steady service nothing.
    fired = {(dict(labels)["alertname"], dict(labels).get("service")) for labels in backtested}
    assert {("WebhookHighErrorRate", "errors"), ("HighLatency", "latency"), ("WebhookQueueBacklog", "queue"),
            ("WebhookHighErrorRate", "inhibit"), ("HighLatency", "inhibit"), ("Watchdog", "webhook-delivery")} <= fired
    assert not any(service in ("steady", "smallqueue") for _, service in fired), [f for f in fired if f[1] in ("steady", "smallqueue")]
    assert compared >= 6


# ------------------------------------------------------------------------------ what was sent


def integration_path(receiver: str, integration: str) -> str:
    """Where alertmanager_for_test points each integration of the rendered receivers."""
    kind = integration.split("[")[0]
    return {"pagerduty": PAGERDUTY, "webhook": HEARTBEAT}.get(kind, PLATFORM if receiver == "platform" else SLACK)


def common(labels_list: list[dict[str, str]], name: str) -> str:
    values = {labels.get(name, "") for labels in labels_list}
    return values.pop() if len(values) == 1 else ""


def backtested_sent(result: backtest.Result) -> list[tuple[tuple[str, str, str, str], int]]:
    """((path, status, alertname, service), time) of every notification the backtest sends."""
    return keyed(result.notifications)


def keyed(notifications: list[backtest.Notification]) -> list[tuple[tuple[str, str, str, str], int]]:
    sent = []
    for n in notifications:
        alerts = [dict(a) for a in n.firing + n.resolved]
        sent.append(((integration_path(n.receiver, n.integration), n.status, common(alerts, "alertname"),
                      common(alerts, "service")), n.at))
    return sent


def captured_sent(pipeline: Pipeline) -> list[tuple[tuple[str, str, str, str], int]]:
    """The same of every POST the capture server got during the range."""
    sent = []
    for path, body, arrived in pipeline.capture.posts:
        at = round((arrived + pipeline.wall_minus_monotonic) * 1000)
        if path == PAGERDUTY:
            key = (path, "firing" if body["event_action"] == "trigger" else "resolved", body["payload"]["class"],
                   body["payload"]["component"])
        elif path == HEARTBEAT:
            key = (path, body["status"], body["commonLabels"].get("alertname", ""), body["commonLabels"].get("service", ""))
        else:
            (attachment,) = body["attachments"]
            alert = next(f["value"] for f in attachment["fields"] if f["title"] == "Alert")
            service = re.search(r"\] ([^]:]*): ", attachment["title"])[1]
            key = (path, "resolved" if attachment["title"].startswith("[RESOLVED") else "firing", alert, service)
        sent.append((key, at))
    return sent


def undecided(pipeline: Pipeline, result: backtest.Result, inside) -> Counter:
    """The notifications that an order of simultaneous events decides: the backtest again with each
    group's flush after, not before, what Prometheus sends at the same evaluation instant (the
    group's wait and interval are multiples of the evaluation interval, so they meet); what one
    order sends and the other does not. Seen live twice: the inhibit service's warning group
    flushing at the very evaluation its error-rate page resolved. Flushed first, the warning stays
    inhibited; after, Alertmanager 0.34 lets it out until Prometheus re-sends the burn-rate page that
    still fires (its inhibitor index keeps one source: tools/backtest.py)."""
    firings = [f for a in result.alerts for f in a.firings]
    runs = [Counter(key for key, at in keyed(backtest.sent_in_range(firings, pipeline.ruleset, result.start, result.end,
                                                                    flush_first)) if inside(key, at))
            for flush_first in (True, False)]
    return (runs[0] - runs[1]) + (runs[1] - runs[0])


def test_every_notification_is_what_the_receivers_got(pipeline, result):
    interval = pipeline.interval_ms
    # What falls within an interval of either end may be on one side only. The heartbeat apart:
    # below.
    inside = lambda key, at: key[0] != HEARTBEAT and pipeline.start_ms + interval < at < pipeline.end_ms - interval  # noqa: E731
    expected = [(key, at) for key, at in backtested_sent(result) if inside(key, at)]
    got = [(key, at) for key, at in captured_sent(pipeline) if inside(key, at)]
    missing, extra = Counter(k for k, _ in expected), Counter(k for k, _ in got)
    missing.subtract(k for k, _ in got)
    extra.subtract(k for k, _ in expected)
    # Either side may have what an ordering within the tolerance decides; nothing else may differ.
    either = undecided(pipeline, result, inside)
    missing, extra = +missing - either, +extra - either
    firings = sorted(((f.fired_at, f.resolved_at, dict(f.labels)) for a in result.alerts for f in a.firings), key=str)
    sent = [(n.at, n.receiver, n.integration, [dict(a) for a in n.firing], [dict(a) for a in n.resolved])
            for n in result.notifications]
    assert +missing == +extra, (f"backtested, not sent: {dict(+missing)}; sent, not backtested: {dict(+extra)}; "
                                f"backtested: {sorted(expected, key=lambda s: s[1])}; sent: {sorted(got, key=lambda s: s[1])}; "
                                f"firing: {firings}; notifications: {sent}; posts: {pipeline.capture.posts}")
    for key in {k for k, _ in expected}:
        mine = sorted(at for k, at in expected if k == key)
        theirs = sorted(at for k, at in got if k == key)
        assert all(abs(a - b) <= interval for a, b in zip(mine, theirs)), (key, mine, theirs)
    pages = [key for key, _ in expected if key[0] == PAGERDUTY and key[1] == "firing"]
    assert ("/pagerduty", "firing", "WebhookHighErrorRate", "errors") in pages
    assert len(expected) >= 8


def test_the_heartbeat_repeats_every_repeat_interval_or_one_group_interval_later(pipeline, result):
    """Watchdog's group re-notifies when its last notification is more than repeat_interval old, checked
    on its flushes every group_interval. With repeat_interval a multiple of group_interval that is a
    race inside Alertmanager (its flush timer against the time its notification log records, after
    the send): the real one repeats after 5 or 6 ticks; the backtest counts 6, always."""
    route = next(r for r in pipeline.ruleset.alertmanager["route"]["routes"] if r.get("receiver") == "heartbeat")
    repeat, tick = duration_ms(route["repeat_interval"]), duration_ms(route["group_interval"])
    beats = sorted(at for key, at in captured_sent(pipeline) if key[0] == HEARTBEAT)
    counted = sorted(at for key, at in backtested_sent(result) if key[0] == HEARTBEAT)
    assert len(beats) >= 4 and len(counted) >= 4
    assert all(min(abs(b - a - repeat), abs(b - a - repeat - tick)) < 200 for a, b in zip(beats, beats[1:])), beats
    assert {b - a for a, b in zip(counted, counted[1:])} == {repeat + tick}


def test_an_inhibited_alert_is_not_sent_while_its_critical_fires(pipeline, result):
    """The inhibit service's HighLatency fires (a warning) while its critical error-rate alert pages:
    neither the backtest nor Slack has a message about it while the error rate fires. (Once it
    resolves, a burn-rate critical may still hold it back, or not, for Alertmanager as for the
    model: the test above compares what each sent.)"""
    latency = [f for a in result.alerts for f in a.firings
               if f.alertname == "HighLatency" and dict(f.labels)["service"] == "inhibit"]
    assert latency, "the warning must fire for the inhibition to be tested"
    (critical,) = [f for a in result.alerts for f in a.firings
                   if f.alertname == "WebhookHighErrorRate" and dict(f.labels)["service"] == "inhibit"]
    interval = pipeline.interval_ms
    while_critical = lambda at: critical.fired_at + interval < at < (critical.resolved_at or pipeline.end_ms)  # noqa: E731
    high_latency = next(a for a in result.alerts if a.rule.name == "HighLatency")
    assert [n.at for n in result.pages(alert=high_latency)
            if any(dict(a)["service"] == "inhibit" for a in n.firing) and while_critical(n.at)] == []
    assert [n for n in result.pages(alert=high_latency) if any(dict(a)["service"] == "latency" for a in n.firing)] != []
    assert [at for key, at in captured_sent(pipeline)
            if key[2:] == ("HighLatency", "inhibit") and key[1] == "firing" and while_critical(at)] == []


# ------------------------------------------------------------------------------ a change, against BASE


def with_threshold(ruleset: backtest.RuleSet, alert: str, old: str, new: str) -> backtest.RuleSet:
    groups = copy.deepcopy(list(ruleset.groups))
    (rule,) = [r for g in groups for r in g["rules"] if r.get("alert") == alert]
    assert old in rule["expr"]
    rule["expr"] = rule["expr"].replace(old, new)
    return dataclasses.replace(ruleset, groups=tuple(groups))


def test_a_changed_threshold_gains_one_page_and_loses_another(pipeline, result):
    """Against the rendered rules as BASE: the error-rate threshold raised over the spike's 50 % loses
    its page; the queue threshold lowered under the small backlog's 3000 gains one."""
    head = with_threshold(with_threshold(pipeline.ruleset, "WebhookHighErrorRate", "> 0.05", "> 0.6"),
                          "WebhookQueueBacklog", "> 10000", "> 2000")
    api = backtest.QueryApi.connect(pipeline.prometheus)
    changed = backtest.run(head, api, pipeline.start_ms, pipeline.end_ms, align_to_source=True)
    report = backtest.Report("prod", api.where, changed, result, tolerance_ms=pipeline.interval_ms)
    changes = report.changes()
    lost = {(c.base.alertname, dict(c.labels)["service"]) for c in changes if c.kind == "lost"}
    gained = {(c.head.alertname, dict(c.labels)["service"]) for c in changes if c.kind == "gained"}
    assert lost == {("WebhookHighErrorRate", "errors"), ("WebhookHighErrorRate", "inhibit")}
    assert gained == {("WebhookQueueBacklog", "smallqueue")}

    def pages(run: backtest.Result, alert: str, service: str) -> int:
        rule = next(a for a in run.alerts if a.rule.name == alert)
        return sum(1 for n in run.pages("pagerduty", rule) if any(dict(a)["service"] == service for a in n.firing))

    assert (pages(result, "WebhookHighErrorRate", "errors"), pages(changed, "WebhookHighErrorRate", "errors")) == (1, 0)
    assert (pages(result, "WebhookQueueBacklog", "smallqueue"), pages(changed, "WebhookQueueBacklog", "smallqueue")) == (0, 1)
    markdown = report.markdown()
    assert "**Difference from BASE**" in markdown and "lost: fires" in markdown and "gained: fires" in markdown


# ------------------------------------------------------------------------------ the command, and VictoriaMetrics


def test_make_backtest_reports_against_a_prometheus(pipeline, tmp_path):
    """The command as `make backtest` runs it: the stack rendered at the head (unscaled rules, over a
    range of scaled history: the command's path, not its verdicts), markdown and JSON."""
    incidents = tmp_path / "incidents.yaml"
    incidents.write_text(yaml.safe_dump([{"name": "error spike", "start": pipeline.start_ms / 1000,
                                          "end": pipeline.end_ms / 1000}]))
    common_args = ["prod", "--url", pipeline.prometheus, "--from", str(pipeline.start_ms / 1000),
                   "--to", str(pipeline.end_ms / 1000), "--incidents", str(incidents)]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert backtest.main([*common_args, "--format", "markdown"]) == 0
    assert out.getvalue().startswith("### Backtest of stack prod:")
    assert "| WebhookHighErrorRate [webhook-delivery.alerts #1] |" in out.getvalue()
    assert "- error spike (" in out.getvalue()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert backtest.main([*common_args, "--format", "json"]) == 0
    report = json.loads(out.getvalue())
    assert report["source"] == pipeline.prometheus
    assert {a["alert"] for a in report["head"]["alerts"]} >= {"WebhookHighErrorRate", "WebhookTrafficAnomaly"}
    anomaly = next(a for a in report["head"]["alerts"] if a["alert"] == "WebhookTrafficAnomaly")
    assert not anomaly["judged"] and "needs data from" in anomaly["note"]


def test_the_backtest_runs_against_victoria_metrics(pipeline):
    """VictoriaMetrics stands in for Mimir (the remote-write store, its series with the external
    labels): a smoke test, its lookback semantics differ from Prometheus'."""
    api = backtest.QueryApi.connect(pipeline.victoria)
    cluster = pipeline.ruleset.external_labels["cluster"]
    wait_until(lambda: http_json(f"{pipeline.victoria}/api/v1/query?query=count(up)")["data"]["result"], timeout=30,
               what="remote-written series at VictoriaMetrics")
    found = backtest.run(pipeline.ruleset, api, pipeline.start_ms, pipeline.end_ms, matchers=(f'cluster="{cluster}"',))
    fired = {(f.alertname, dict(f.labels).get("service")) for a in found.alerts for f in a.firings}
    assert ("WebhookHighErrorRate", "errors") in fired and ("HighLatency", "latency") in fired
    assert not any(service == "steady" for _, service in fired)
    assert found.pages("pagerduty")
