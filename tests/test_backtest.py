"""tools/backtest.py offline: Prometheus' alert states, Alertmanager's grouping, inhibition and
timing, the inlining of recording rules, the comparison with BASE, and the one-line errors.

What the real engine does with the same rules and data is the live differential test
(tests/e2e/test_backtest.py); these pin each piece of the model to the code it follows.
"""

from __future__ import annotations

import datetime
import http.server
import json
import urllib.parse
from typing import Any, Iterator

import pytest

from tests.support import rendered_stack
from testkit import live
from testkit.live import free_port
from monitoring.versions import PROMETHEUS_VERSION
from tools import backtest, go_tools
from tools.backtest import BacktestError, Firing, Incident, Notification, QueryApi, RuleSet

S = 1000  # ms
MIN = 60 * S


def labels(**pairs: str) -> backtest.Labels:
    return tuple(sorted(pairs.items()))


A = labels(alertname="A", service="x")
B = labels(alertname="A", service="y")


# ------------------------------------------------------------------------------ Prometheus' alert states


def test_an_alert_fires_after_for_and_resolves_at_the_first_evaluation_without_it():
    slots = range(0, 20 * 30 * S, 30 * S)
    present = {A: [t for t in slots if 3 * 30 * S <= t <= 9 * 30 * S]}
    (firing,) = backtest.alert_states(slots, present, for_ms=2 * MIN, keep_firing_for_ms=0)
    assert (firing.active_at, firing.fired_at, firing.resolved_at) == (90 * S, 210 * S, 300 * S)
    assert not firing.since_start


def test_an_alert_gone_while_pending_is_forgotten_and_starts_pending_again():
    slots = range(0, 20 * 30 * S, 30 * S)
    # Present for 3 evaluations (1m: short of its `for` of 2m), gone once, back for 6.
    present = {A: [30 * S, 60 * S, 90 * S] + [t for t in slots if 150 * S <= t <= 300 * S]}
    (firing,) = backtest.alert_states(slots, present, for_ms=2 * MIN, keep_firing_for_ms=0)
    assert (firing.active_at, firing.fired_at) == (150 * S, 270 * S)
    assert backtest.alert_states(slots, {A: [30 * S, 60 * S, 90 * S]}, 2 * MIN, 0) == []


def test_keep_firing_for_holds_a_firing_alert_and_restarts_when_it_returns():
    slots = range(0, 40 * 30 * S, 30 * S)
    present = {A: [0, 30 * S, 60 * S, 150 * S, 180 * S]}
    (firing,) = backtest.alert_states(slots, present, for_ms=0, keep_firing_for_ms=2 * MIN)
    # Fires at once (no `for`), missing from 90s: kept until 2m after the first evaluation without it,
    # back at 150s (kept again afresh), missing from 210s: resolved at 210s + 2m.
    assert (firing.fired_at, firing.resolved_at) == (0, 330 * S)
    assert firing.since_start


def test_each_label_set_is_an_alert_of_its_own():
    slots = range(0, 10 * 30 * S, 30 * S)
    firings = backtest.alert_states(slots, {A: list(slots[:4]), B: list(slots[2:])}, for_ms=30 * S, keep_firing_for_ms=0)
    assert [(f.labels, f.fired_at, f.resolved_at) for f in firings] == [(A, 30 * S, 120 * S), (B, 90 * S, None)]


def test_alert_labels_are_the_series_labels_with_the_rule_labels_over_them():
    rule = backtest.RuleQuery("g", 0, "HighLatency", True, "x", "x", 30 * S, 0, 0, 0, 0,
                              {"severity": "warning", "quantile": "", "where": "{{ $labels.namespace }}/{{ $externalLabels.cluster }}"},
                              0, ())
    got = backtest.alert_labels({"__name__": "m", "namespace": "ns", "quantile": "0.95", "severity": "info"}, rule,
                                {"cluster": "c1"})
    # A label templated to nothing is no label; the metric name goes; alertname is the rule's.
    assert dict(got) == {"alertname": "HighLatency", "namespace": "ns", "severity": "warning", "where": "ns/c1"}


def test_a_label_template_the_backtest_cannot_expand_is_refused():
    groups = ({"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "labels": {"level": "{{ $value }}"}}]},)
    problems = backtest.check_label_templates(RuleSet(groups, "30s", {}))
    assert problems == ["group g, rule A: label level is a template the backtest cannot expand ('{{ $value }}'): "
                        "only $labels.<name> and $externalLabels.<name> are"]


# ------------------------------------------------------------------------------ inlining (backtest-rules inline)


def inlined(groups: list[dict[str, Any]], **options: Any) -> dict[str, backtest.RuleQuery]:
    return {q.name: q for q in backtest.inline_rules(RuleSet(tuple(groups), "30s", {}), **options) if q.alert}


RECORDING = {"name": "recording", "rules": [
    {"record": "job:errors:rate5m", "expr": "sum by (job, status) (rate(errors_total[5m]))"},
    {"record": "job:quantile", "expr": "histogram_quantile(0.5, sum by (job, le) (rate(d_bucket[5m])))", "labels": {"q": "0.5"}},
    {"record": "job:quantile", "expr": "histogram_quantile(0.9, sum by (job, le) (rate(d_bucket[5m])))", "labels": {"q": "0.9"}},
]}


def test_a_recorded_series_is_replaced_by_its_expression_with_the_matchers_pushed_to_its_raw_series():
    alerts = inlined([{"name": "alerts", "rules": [
        {"alert": "Errors", "expr": 'job:errors:rate5m{status="error", cluster=""} > 1'},
        {"alert": "Slow", "expr": 'job:quantile{q="0.9"} > 0.5'},
    ]}, RECORDING])
    # status is kept by the aggregation: it filters the raw series; cluster is aggregated away:
    # `cluster=""` holds for every series and is dropped.
    assert alerts["Errors"].expr == ('(label_replace(sum by (job, status) (rate(errors_total{status="error"}[5m])), '
                                     '"__name__", "job:errors:rate5m", "", "")) > 1')
    # Of the two rules recording job:quantile, the one whose label matches.
    assert alerts["Slow"].expr == ('(label_replace(label_replace(histogram_quantile(0.9, sum by (job, le) '
                                   '(rate(d_bucket[5m]))), "q", "0.9", "", ""), "__name__", "job:quantile", "", "")) > 0.5')
    assert alerts["Errors"].metrics == ("errors_total",)
    assert alerts["Errors"].lookback_ms == 5 * MIN


def test_offsets_and_ranges_of_a_recorded_series_move_into_its_expression():
    alerts = inlined([{"name": "alerts", "rules": [
        {"alert": "WeekAgo", "expr": "job:errors:rate5m offset 1w > 1"},
        {"alert": "Window", "expr": "avg_over_time(job:errors:rate5m[1h] offset 1d) > 1"},
    ]}, RECORDING])
    assert "rate(errors_total[5m] offset 1w)" in alerts["WeekAgo"].expr
    assert alerts["WeekAgo"].lookback_ms == 7 * 24 * 60 * MIN + 5 * MIN
    # A range over a recorded series: a subquery at the recording group's interval.
    assert alerts["Window"].expr.startswith("avg_over_time((label_replace(sum by (job, status) (rate(errors_total[5m]))")
    assert alerts["Window"].expr.endswith(")[1h:30s] offset 1d) > 1")
    assert alerts["Window"].lookback_ms == (24 * 60 + 60 + 5) * MIN


def test_an_alert_reads_another_groups_recording_as_of_its_last_evaluation():
    groups = [{"name": "alerts", "rules": [{"alert": "Errors", "expr": "job:errors:rate5m > 1"}]}, RECORDING]
    phases = {"alerts": 10 * S, "recording": 25 * S}
    request = [dict(g, interval="30s") for g in groups]
    query = next(q for q in backtest.inline_rules(RuleSet(tuple(request), "30s", {}), phases_ms=phases) if q.alert)
    # The alert evaluates at 10s past each 30s, the recording group wrote last at 25s past the previous.
    assert "rate(errors_total[5m] offset 15s)" in query.expr
    assert query.phase_ms == 10 * S


def test_a_rule_before_the_recording_rule_in_its_group_reads_the_previous_evaluation():
    group = {"name": "g", "rules": [{"alert": "Early", "expr": "r > 1"}, {"record": "r", "expr": "sum(x)"},
                                    {"alert": "Late", "expr": "r > 1"}]}
    alerts = inlined([group])
    assert alerts["Early"].expr == '(label_replace(sum(x offset 30s), "__name__", "r", "", "")) > 1'
    assert alerts["Late"].expr == '(label_replace(sum(x), "__name__", "r", "", "")) > 1'


def test_extra_matchers_go_to_raw_series_as_regexes_so_absent_keeps_its_labels():
    alerts = inlined([{"name": "g", "rules": [{"alert": "Gone", "expr": 'absent(up{job="api"})'}]}],
                     matchers=('cluster="prod-1"',))
    assert alerts["Gone"].expr == 'absent(up{cluster=~"prod-1",job="api"})'


def test_a_rule_that_does_not_parse_is_one_line_naming_it():
    with pytest.raises(BacktestError) as error:
        inlined([{"name": "g", "rules": [{"alert": "Broken", "expr": "sum(rate(x[5m])"}, {"alert": "Fine", "expr": "up"}]}])
    (line,) = str(error.value).splitlines()
    assert line.startswith("does not parse: group g, rule 1 (Broken): ")


def test_recording_rules_reading_each_other_in_a_cycle_are_refused():
    with pytest.raises(BacktestError, match=r"cycle: a -> b -> a"):
        inlined([{"name": "g", "rules": [{"record": "a", "expr": "b + 1"}, {"record": "b", "expr": "a + 1"},
                                         {"alert": "A", "expr": "a > 1"}]}])


def test_a_matcher_that_cannot_reach_the_raw_series_is_refused():
    with pytest.raises(BacktestError, match=r"x\{job=\"a\"\}: cannot apply the matcher"):
        inlined([{"name": "g", "rules": [{"record": "x", "expr": "absent(up)"}, {"alert": "A", "expr": 'x{job="a"}'}]}])


def test_every_rendered_alerting_rule_inlines():
    rendered = rendered_stack("prod")
    queries = [q for q in backtest.inline_rules(RuleSet.from_rendered(rendered)) if q.alert]
    alerting = [r for g in rendered.rule_groups for r in g["rules"] if "alert" in r]
    assert len(queries) == len(alerting)
    assert not any(":" in m for q in queries for m in q.metrics)  # no recorded series left
    slowest = max(queries, key=lambda q: q.lookback_ms)
    assert (slowest.name, slowest.lookback_ms) == ("WebhookTrafficAnomaly", (14 * 24 * 60 + 60 + 5) * MIN)


# ------------------------------------------------------------------------------ what the backtest holds (backtest-rules evaluate)


def test_a_held_series_ends_with_a_stale_marker_as_the_rule_manager_writes_one():
    grid = range(0, 10 * 30 * S, 30 * S)
    found = {(("__name__", "x"), ("job", "a")): [(0, "1"), (30 * S, "2"), (120 * S, "3")]}
    (series,) = backtest.grid_series(found, grid, "job:x:sum", {"team": "t", "job": ""})
    # Renamed, labelled (an empty label removed); missing at 60s and after 150s: a marker each.
    assert series == {"labels": {"__name__": "job:x:sum", "team": "t"},
                      "times": [0, 30 * S, 60 * S, 120 * S, 150 * S], "values": ["1", "2", None, "3", None]}


def local_run(series: list[dict[str, Any]], steps: list[dict[str, Any]]) -> dict[str, Any]:
    return backtest._backtest_rules("evaluate", {"lookback_delta_ms": 5 * MIN, "max_samples": 10**6,
                                                 "experimental_functions": False, "series": series, "steps": steps})


def test_the_engine_reads_a_recording_it_wrote_as_prometheus_reads_the_rule_managers():
    """A recorded series written by the engine ends at the first evaluation without it (a stale
    marker), not a lookback delta later; an alert reads it at its own evaluation times."""
    grid = range(0, 20 * 30 * S, 30 * S)
    held = backtest.grid_series({(("__name__", "x"), ("job", "a")): [(t, "5") for t in grid if t <= 8 * 30 * S]}, grid)
    steps = [{"id": -1, "record": "job:x:sum", "labels": {"team": "t"}, "expr": "sum by (job) (x)",
              "start_ms": 0, "end_ms": grid[-1], "step_ms": 30 * S},
             {"id": 7, "record": "", "labels": {}, "expr": "job:x:sum > 1", "start_ms": 15 * S, "end_ms": grid[-1] + 15 * S,
              "step_ms": 30 * S}]
    answer = local_run(held, steps)
    assert answer["errors"] == []
    (found,) = answer["alerts"]["7"]
    assert found["labels"] == {"__name__": "job:x:sum", "job": "a", "team": "t"}
    assert found["times"] == [t + 15 * S for t in grid if t <= 8 * 30 * S]


def test_a_rule_the_engine_cannot_evaluate_is_one_line():
    answer = local_run([], [{"id": 1, "record": "", "labels": {}, "expr": "sum(", "start_ms": 0, "end_ms": MIN,
                             "step_ms": 30 * S}])
    (line,) = answer["errors"]
    assert line.startswith("sum(: ")


def test_the_plan_holds_small_recorded_series_and_leaves_large_ones_to_the_source(stub):
    """Per-endpoint series over the budget stay inlined: what reads them directly is computed at
    the source; the service level above is held, and the alert reading it evaluated locally."""
    def answer(path: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        series = 5000 if form["query"][0].startswith("count(sum by (service, endpoint)") else 2
        return 200, {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [0, str(series)]}]}}

    stub["answer"] = answer
    groups = ({"name": "rec", "rules": [
        {"record": "service_endpoint:x:rate5m", "expr": "sum by (service, endpoint) (rate(x_total[5m]))"},
        {"record": "service:x:rate5m", "expr": "sum by (service) (service_endpoint:x:rate5m)"},
        {"record": "service:x:rate1h", "expr": "avg_over_time(service:x:rate5m[1h])"}]},
              {"name": "alerts", "rules": [
                  {"alert": "Low", "expr": "service:x:rate1h < 1", "for": "5m"},
                  {"alert": "Hot", "expr": "service_endpoint:x:rate5m > 100"},
                  {"alert": "Down", "expr": "up == 0"}]})
    rules = backtest.inline_rules(RuleSet(groups, "30s", {}))
    work = backtest.plan(rules, QueryApi.connect(stub["url"]), MONDAY - 7 * 24 * 60 * MIN, MONDAY)
    assert [a.name for a in work.local_alerts] == ["Low"]
    assert [a.name for a in work.source_alerts] == ["Hot", "Down"]
    assert [w.name for w in work.at_source] == ["service:x:rate5m"]
    assert [w.name for w in work.local_records] == ["service:x:rate1h"]
    # Held from the first evaluation of Low (its `for`, 5m, before FROM), less the lookback of its
    # instant read of the 1h rate (5m), less the hour that rate reads.
    assert work.starts["service:x:rate1h"] == MONDAY - 7 * 24 * 60 * MIN - 10 * MIN
    assert work.starts["service:x:rate5m"] == MONDAY - 7 * 24 * 60 * MIN - 70 * MIN


# ------------------------------------------------------------------------------ Alertmanager


CONFIG = {
    "route": {"receiver": "default", "group_by": ["alertname"], "group_wait": "30s", "group_interval": "5m",
              "repeat_interval": "4h", "routes": [
                  {"matchers": ['severity="critical"'], "receiver": "pager"},
                  {"matchers": ['severity="warning"'], "receiver": "chat", "mute_time_intervals": ["weekend"]},
                  {"matchers": ['severity="info"'], "receiver": "nowhere"}]},
    "inhibit_rules": [{"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
                       "equal": ["service"]}],
    "receivers": [{"name": "default"}, {"name": "nowhere"},
                  {"name": "pager", "pagerduty_configs": [{"routing_key": "k"}]},
                  {"name": "chat", "slack_configs": [{"channel": "#c", "send_resolved": False}]}],
    "time_intervals": [{"name": "weekend", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}],
}
MONDAY = round(datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.timezone.utc).timestamp() * 1000)


def alert(name: str, severity: str, service: str, fired: int, resolved: int | None) -> Firing:
    return Firing(labels(alertname=name, severity=severity, service=service), fired, fired, resolved)


def sent(firings: list[Firing], until: int, config: dict[str, Any] = CONFIG) -> list[tuple[int, str, str, int, int]]:
    return [((n.at - MONDAY) // S, n.receiver, n.status, len(n.firing), len(n.resolved))
            for n in backtest.notifications(firings, config, {"cluster": "c"}, until)]


def test_group_wait_then_group_interval_batches_and_resolves():
    firings = [alert("Down", "critical", "a", MONDAY, MONDAY + 20 * MIN),
               alert("Down", "critical", "b", MONDAY + 2 * MIN, MONDAY + 8 * MIN)]
    # First after group_wait (30s) with one alert; the second joins at the next group_interval
    # (5m30s); b resolved by 10m30s; a resolved by 20m30s: every group_interval, a resolve (PagerDuty sends them).
    assert sent(firings, MONDAY + 60 * MIN) == [(30, "pager", "firing", 1, 0), (330, "pager", "firing", 2, 0),
                                               (630, "pager", "firing", 1, 1), (1230, "pager", "resolved", 0, 1)]


def test_repeat_interval_renotifies_a_group_still_firing():
    firings = [alert("Down", "critical", "a", MONDAY, None)]
    times = [at for at, *_ in sent(firings, MONDAY + 9 * 60 * MIN)]
    # 4h after the first, on the next group_interval tick: 30s, 4h0m30s... Alertmanager's needsUpdate
    # wants the last notification strictly before now - repeat_interval: the tick 4h later is not.
    assert times == [30, 30 + 4 * 3600 + 300, 30 + 2 * (4 * 3600 + 300)]


def test_an_inhibited_warning_is_not_sent_and_is_once_its_critical_resolves():
    firings = [alert("Errors", "critical", "a", MONDAY, MONDAY + 10 * MIN),
               alert("Slow", "warning", "a", MONDAY + MIN, MONDAY + 30 * MIN),
               alert("Slow", "warning", "b", MONDAY + MIN, MONDAY + 30 * MIN)]
    got = sent(firings, MONDAY + 60 * MIN)
    # The warning of service a is muted while its critical fires: the first chat message has b only;
    # a joins it at the first flush after the critical resolved.
    chat = [(at, n) for at, receiver, status, n, _ in got if receiver == "chat" and status == "firing"]
    assert chat == [(90, 1), (690, 2)]


def test_a_warning_is_sent_when_the_source_alertmanager_kept_resolves_before_another_is_resent():
    """Alertmanager 0.34 keeps one source alert per inhibit rule and `equal` values: the one last sent
    with the latest end (inhibit.go updateIndex). Two criticals of service a, evaluated every 30s and
    re-sent by Prometheus every 90s (more than the 1m resend delay after the last send): Burn, sent at
    30s + k x 90s, is the one kept at 9m30s. When Burn resolves at 10m, the warning is not inhibited
    until Errors is sent again at 10m30s, and the flush at 10m10s sends it (what the live differential
    test saw the real Alertmanager do). When Errors resolves instead, Burn, still kept, inhibits."""
    def critical(name: str, fired: int, resolved: int | None) -> Firing:
        return Firing(labels(alertname=name, severity="critical", service="a"), fired, fired, resolved, False, 30 * S)

    warning = alert("Slow", "warning", "a", MONDAY + 280 * S, None)
    def chat(got: list[tuple[int, str, str, int, int]]) -> list[tuple[int, int]]:
        return [(at, n) for at, receiver, status, n, _ in got if receiver == "chat"]

    burn_resolves = [critical("Errors", MONDAY, None), critical("Burn", MONDAY + 30 * S, MONDAY + 600 * S), warning]
    assert chat(sent(burn_resolves, MONDAY + 700 * S)) == [(610, 1)]
    errors_resolves = [critical("Errors", MONDAY, MONDAY + 600 * S), critical("Burn", MONDAY + 30 * S, None), warning]
    assert chat(sent(errors_resolves, MONDAY + 700 * S)) == []


def test_a_flush_at_the_instant_the_kept_source_resolves_sends_or_not_by_the_order_chosen():
    """Group wait and interval are multiples of the evaluation interval, so a group's flush can fall
    on the evaluation a critical resolves at; live, Alertmanager's timer and Prometheus' send are
    then milliseconds apart in either order. Errors (sent at k x 90s) is the source kept at 9m30s,
    Burn (sent at 60s + k x 90s) next arrives at 10m; the warning's group flushes at 4m30s and 9m30s.
    Flushed first, the warning is still inhibited; after the resolve, it goes out."""
    def critical(name: str, fired: int, resolved: int | None) -> Firing:
        return Firing(labels(alertname=name, severity="critical", service="a"), fired, fired, resolved, False, 30 * S)

    firings = [critical("Errors", MONDAY, MONDAY + 570 * S), critical("Burn", MONDAY + 60 * S, None),
               alert("Slow", "warning", "a", MONDAY + 240 * S, None)]
    chat = {flush_first: [(n.at - MONDAY) // S for n in backtest.notifications(
                firings, CONFIG, {"cluster": "c"}, MONDAY + 1000 * S, 60_000, flush_first) if n.receiver == "chat"]
            for flush_first in (True, False)}
    assert chat == {True: [], False: [570]}


def test_prometheus_sends_a_firing_alert_again_after_the_resend_delay_and_once_resolved():
    firing = Firing(labels(alertname="Errors"), MONDAY, MONDAY, MONDAY + 300 * S, False, 30 * S)
    assert [((at - MONDAY) // S, (ends - MONDAY) // S) for at, ends in backtest.sends(firing, 60_000, MONDAY + 3600 * S)] == [
        (0, 240), (90, 330), (180, 420), (270, 510), (300, 300)]


def test_send_resolved_defaults_to_alertmanagers_per_integration():
    """Alertmanager 0.34 config/notifiers.go: email, Slack, Rocket.Chat and WeChat send no resolve unless
    told to; PagerDuty, webhooks and the rest do."""
    receiver = {"name": "r", "slack_configs": [{}, {"send_resolved": True}], "email_configs": [{}],
                "pagerduty_configs": [{}], "webhook_configs": [{"send_resolved": False}, {}]}
    assert backtest.integrations(receiver) == [("slack[0]", False), ("slack[1]", True), ("email[0]", False),
                                               ("pagerduty[0]", True), ("webhook[0]", False), ("webhook[1]", True)]


def test_a_receiver_without_integrations_sends_nothing_and_send_resolved_false_no_resolve():
    firings = [alert("Info", "info", "a", MONDAY, MONDAY + MIN), alert("Slow", "warning", "b", MONDAY, MONDAY + MIN)]
    assert sent(firings, MONDAY + 60 * MIN) == [(30, "chat", "firing", 1, 0)]


def test_a_mute_time_interval_holds_back_notifications():
    saturday = MONDAY + 5 * 24 * 60 * MIN - 9 * 60 * MIN  # 00:00
    firings = [alert("Slow", "warning", "b", saturday, None)]
    assert sent(firings, saturday + 60 * MIN) == []
    assert [at for at, *_ in sent([alert("Slow", "warning", "b", saturday - 2 * MIN, None)], saturday + 60 * MIN)] == [
        (saturday - 2 * MIN + 30 * S - MONDAY) // S]


def test_time_intervals_follow_alertmanager():
    at = datetime.datetime(2026, 6, 30, 22, 30, tzinfo=datetime.timezone.utc)  # a Tuesday, the month's last day
    assert backtest.in_time_interval({"weekdays": ["monday:friday"], "times": [{"start_time": "22:00", "end_time": "23:00"}]}, at)
    assert not backtest.in_time_interval({"times": [{"start_time": "08:00", "end_time": "22:30"}]}, at)  # end excluded
    assert backtest.in_time_interval({"days_of_month": ["-1"], "months": ["june"], "years": ["2026"]}, at)
    # In Berlin it is already July the 1st, a Wednesday.
    assert backtest.in_time_interval({"days_of_month": ["1"], "weekdays": ["wednesday"], "location": "Europe/Berlin"}, at)


def test_continue_sends_an_alert_to_every_matching_route():
    config = {**CONFIG, "route": {**CONFIG["route"], "routes": [
        {"matchers": ['severity="critical"'], "receiver": "chat", "continue": True, "group_wait": "0s"},
        {"matchers": ['severity="critical"'], "receiver": "pager"}]}}
    got = sent([alert("Down", "critical", "a", MONDAY, None)], MONDAY + MIN, config)
    assert got == [(0, "chat", "firing", 1, 0), (30, "pager", "firing", 1, 0)]


# ------------------------------------------------------------------------------ results, BASE and reports


def result(firings: list[Firing], notified: list[Notification], label: str = "HEAD") -> backtest.Result:
    rule = backtest.RuleQuery("g", 0, "A", True, "x", "x", 30 * S, 0, 0, 0, 0, {}, 5 * MIN, ("x",))
    return backtest.Result(label, MONDAY - 60 * MIN, MONDAY + 60 * MIN, [backtest.AlertResult(rule, firings)],
                           notified, {"pager": True, "nowhere": False})


def test_the_difference_from_base_lists_gained_lost_earlier_and_later():
    c = labels(alertname="A", service="z")
    d = labels(alertname="A", service="w")
    base = result([Firing(A, 0, MONDAY, MONDAY + 10 * MIN), Firing(B, 0, MONDAY, MONDAY + 10 * MIN),
                   Firing(c, 0, MONDAY, None)], [])
    head = result([Firing(A, 0, MONDAY - 2 * MIN, MONDAY + 10 * MIN), Firing(B, 0, MONDAY + 30 * S, MONDAY + 10 * MIN),
                   Firing(d, 0, MONDAY, None)], [])
    changes = {(c.kind, dict(c.labels)["service"], c.shift_ms) for c in backtest.compare(base, head, tolerance_ms=30 * S)}
    # B moved by one evaluation interval: within the tolerance, unchanged.
    assert changes == {("earlier", "x", -2 * MIN), ("lost", "z", 0), ("gained", "w", 0)}


def test_an_incident_is_detected_by_the_first_page_of_an_alert_that_began_in_it():
    old = Firing(B, 0, MONDAY - 30 * MIN, None)  # firing before: its repeat is not the incident's page
    new = Firing(A, 0, MONDAY + 2 * MIN, None)
    pages = [Notification(MONDAY + MIN, "pager", "pagerduty[0]", ((0,), ()), (B + (("cluster", "c"),),), ()),
             Notification(MONDAY + 3 * MIN, "nowhere", "x", ((1,), ()), (A,), ()),
             Notification(MONDAY + 4 * MIN, "pager", "pagerduty[0]", ((0,), ()), (tuple(sorted(A + (("cluster", "c"),))),), ())]
    (found,) = backtest.detections(result([old, new], pages), [Incident("outage", MONDAY, MONDAY + 30 * MIN)])
    assert found.delay_ms == 4 * MIN and found.page.receiver == "pager"
    (missed,) = backtest.detections(result([old], pages[:1]), [Incident("outage", MONDAY, MONDAY + 30 * MIN)])
    assert missed.page is None


def test_the_report_in_text_markdown_and_json():
    page = Notification(MONDAY + MIN, "pager", "pagerduty[0]", ((0,), ()), (A,), ())
    head = result([Firing(A, MONDAY, MONDAY + 30 * S, MONDAY + 10 * MIN)], [page])
    report = backtest.Report("prod", "http://mimir/prometheus", head, result([], [], "BASE main"), [], 30 * S)
    text = report.text()
    assert "A [g #1]  1       pager 1" in text
    assert '- A {service="x"}: 2026-06-01 09:00:30Z to 2026-06-01 09:10:00Z (9m30s)' in text
    assert "Receivers without integrations (nothing sent): nowhere." in text
    assert "1 gained, 0 lost, 0 earlier, 0 later." in text
    assert "Notifications per receiver: pager 0 -> 1." in text
    assert "| A [g #1] | 1 | pager 1 |" in report.markdown()
    data = report.as_json()
    assert data["head"]["receivers"] == {"pager": {"pages": 1, "resolved": 0}}
    assert data["changes"][0]["change"] == "gained"
    assert data["head"]["alerts"][0]["firing"][0]["start"] == "2026-06-01 09:00:30Z"


def test_times_are_now_relative_rfc3339_dates_or_unix_seconds():
    now = MONDAY
    assert backtest.parse_time("now-7d", now) == now - 7 * 24 * 60 * MIN
    assert backtest.parse_time("2026-06-01T09:00:00Z", now) == MONDAY
    assert backtest.parse_time("2026-06-01", now) == MONDAY - 9 * 60 * MIN
    assert backtest.parse_time(str(MONDAY / 1000), now) == MONDAY
    with pytest.raises(BacktestError, match="not a time: 'yesterday'"):
        backtest.parse_time("yesterday", now)


# ------------------------------------------------------------------------------ errors: one line each


@pytest.fixture
def stub() -> Iterator[dict[str, Any]]:
    """A query API answering what the test sets: {"status": code, "body": {...}}, or {"answer": a function
    of the request's path and form giving (code, body)}; records each request's path, headers and form."""
    state: dict[str, Any] = {"status": 200, "body": {"status": "success", "data": []}, "requests": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, form: dict[str, list[str]]) -> None:
            state["requests"].append((self.path, {k.lower(): v for k, v in self.headers.items()}, form))
            status, body = state["answer"](self.path, form) if "answer" in state else (state["status"], state["body"])
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.answer({})

        def do_POST(self) -> None:
            self.answer(urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()))

        def log_message(self, *args: Any) -> None:
            pass

    server = live.serve(Handler)
    state["url"] = f"http://user:s3cret@127.0.0.1:{server.server_address[1]}/prometheus"
    yield state
    live.stop(server)


def test_a_long_range_is_split_by_the_point_limit_and_again_when_refused_as_too_large(stub):
    """A week at 30s is 20,160 evaluations: two queries by Prometheus' 11,000 points per series; a
    server refusing more than 4,000 points' worth of samples makes the backtest halve them until it
    passes, and every evaluation is still asked for exactly once."""
    def answer(path: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        start, end, step = (float(form[k][0]) for k in ("start", "end", "step"))
        if (end - start) / step + 1 > 4000:
            return 422, {"status": "error", "errorType": "execution",
                         "error": "query processing would load too many samples into memory in query execution"}
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"service": "x"}, "values": [[start, "1"]]}]}}

    stub["answer"] = answer
    query = backtest.RuleQuery("g", 0, "A", True, "up == 0", "up == 0", 30 * S, 0, 0, 0, 0, {}, 5 * MIN, ("up",))
    week = 7 * 24 * 60 * MIN
    firings, queries = backtest.evaluate(query, QueryApi.connect(stub["url"]), MONDAY - week, MONDAY - 30 * S, {})
    asked = [(float(f["start"][0]), float(f["end"][0])) for path, _, f in stub["requests"]]
    points = [round((end - start) / 30) + 1 for start, end in asked]
    assert points[0] == backtest.MAX_POINTS
    answered = [p for p in points if p <= 4000]
    assert sum(answered) == 20_160 and queries == len(answered) == 8  # 11,000 -> 5,500 -> 2,750 a query
    assert len(firings) == 8  # one present evaluation per answered query: each a firing of its own
def run(api: QueryApi) -> backtest.Result:
    return backtest.run(RuleSet.from_rendered(rendered_stack("prod")), api, MONDAY - 60 * MIN, MONDAY)


def test_refused_credentials_are_one_line_without_the_credentials(stub):
    stub["status"], stub["body"] = 401, {"status": "error", "errorType": "unauthorized", "error": "no"}
    api = QueryApi.connect(stub["url"])
    with pytest.raises(BacktestError) as error:
        run(api)
    assert str(error.value) == (f"the query API at {api.where} refused the credentials (HTTP 401): set BACKTEST_TOKEN, "
                                "or BACKTEST_USER and BACKTEST_PASSWORD")
    assert "s3cret" not in str(error.value) and "user" not in api.where
    assert stub["requests"][0][1]["authorization"] == "Basic dXNlcjpzM2NyZXQ="


def test_an_unreachable_api_is_one_line():
    api = QueryApi.connect(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BacktestError, match=r"^cannot reach the query API at http://127\.0\.0\.1:\d+: .*refused"):
        run(api)


def test_a_range_without_data_is_one_line(stub):
    api = QueryApi.connect(stub["url"], tenant="team-a")
    with pytest.raises(BacktestError) as error:
        run(api)
    assert str(error.value).startswith("no data between 2026-06-01 08:00:00Z and 2026-06-01 09:00:00Z at "
                                       f"{api.where}: none of the ")
    assert stub["requests"][0][1]["x-scope-orgid"] == "team-a"


def test_a_base_that_does_not_check_out_is_one_line():
    with pytest.raises(BacktestError, match=r"^BASE no-such-revision: cannot be checked out: "):
        backtest.render_revision("prod", "no-such-revision")


def test_the_command_wants_a_query_api(monkeypatch, capsys):
    monkeypatch.delenv("BACKTEST_URL", raising=False)
    assert backtest.main(["prod"]) == 2
    assert capsys.readouterr().err == ("no query API: give --url or set BACKTEST_URL (a Prometheus, or Mimir's "
                                       ".../prometheus)\n")


def test_our_go_programs_build_on_the_deployed_prometheus_module():
    """backtest-rules and tsdbgen parse, evaluate and write with the Prometheus of PROMETHEUS_VERSION:
    their go.mod must require that module version (Renovate moves versions.py, not these)."""
    ours = [tool for tool in go_tools.TOOLS if tool.source]
    assert {tool.name for tool in ours} == {"backtest-rules", "tsdbgen"}
    wanted = f"github.com/prometheus/prometheus {go_tools.prometheus_module_version(PROMETHEUS_VERSION)}"
    for tool in ours:
        requires = [line.strip() for line in (go_tools.ROOT / tool.source / "go.mod").read_text().splitlines()]
        assert f"require {wanted}" in requires, tool.source
