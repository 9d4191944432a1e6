"""`make backtest STACK=<name> [BASE=<git rev>] [FROM=... TO=...] [INCIDENTS=file]`: how often the
stack's alerting rules would have fired and paged over a past range, and what a change does to that.

    python -m tools.backtest <stack> [--base REV] [--from T] [--to T] [--incidents FILE]
        [--url URL] [--tenant ID] [--match 'cluster="prod"'] [--align-to-source]
        [--format text|markdown|json] [--output FILE]

The stack is rendered as `make render` does (the working tree), and with `--base` also at another
revision of this repository, with that revision's own code (a temporary `git worktree`). Every
alerting rule is evaluated over the range against a Prometheus-compatible query API (Prometheus,
the stack's Mimir, VictoriaMetrics) with Prometheus' semantics:

- each group's evaluation interval; `for` (pending) and `keep_firing_for`; an alert is its label
  set after the rule's labels are applied (annotations do not count);
- the recording rules an alert reads are those of the candidate rule set, not the series the
  deployed rules wrote (backtest-rules, tools/backtest_rules/: the deployed Prometheus' own PromQL
  parser, engine and TSDB). A recorded series the alerts read is computed once over the range on
  its group's evaluation times and held: by the source from raw series when its rule reads raw
  series (its recording inputs inlined into it), by the local engine from held series otherwise,
  with the stale markers the rule manager writes. An alert that reads held series (and raw series
  by instant selectors, copied) is evaluated by the local engine; any other at the source, every
  recorded series it reads replaced by its recording expression, read as Prometheus would read it
  at the alert's evaluation (the previous evaluation of a rule later in the same group, the
  latest of another group's). What is too large to hold (per-endpoint series) stays inlined. So a
  changed recording rule is backtested honestly, and the history read reaches as far back as the
  longest window plus the `offset`s need (3 days for the slowest SLO alert, 2 weeks for the
  anomaly baseline). An alert whose history does not reach that far is reported as not judged;
- evaluation starts `for` + `keep_firing_for` before FROM, so an alert pending at FROM fires when
  it would have; queries are split so that none asks for more than Prometheus' 11,000 points per
  series, and split further when the server refuses a query as too large.

The firing alerts then go through the rendered Alertmanager configuration as Alertmanager 0.34
would send them: the stack's external labels added, routing (the one route walker of
tools/verify.py), grouping (group_by, group_wait, group_interval, repeat_interval), inhibition,
mute and active time intervals, each integration's send_resolved: the report counts
notifications per receiver, not alert rows. With `--incidents` (a YAML list of `{name, start,
end}`) it gives the time from each incident's start to the first notification of an alert that
began firing in it. With `--base` it lists the alerts gained, lost, firing earlier and later.

The query API: `--url` or BACKTEST_URL (a Prometheus, `http://mimir-gateway/prometheus` for Mimir);
a bearer token from BACKTEST_TOKEN or `--token-file`, or basic auth from BACKTEST_USER and
BACKTEST_PASSWORD or `--password-file`; Mimir's tenant from `--tenant` or BACKTEST_TENANT. No
credential is printed: the API is named by its scheme, host and path only. `--match` adds a label
matcher to every raw series the rules read (`cluster="webhook-prod-use1"` to read one cluster out
of a long-term store that several write to). `--align-to-source` evaluates each group at the times
the source's own Prometheus does (from the rule files its /api/v1/rules names).

Exit status: 0 with a report; 2 with one line per problem: the API unreachable, credentials
refused, no data in the range, a rule that does not parse, a BASE that does not render.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import calendar
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import yaml

from config.types import duration_ms
from tools.go_tools import binary
from tools.program import CheckoutError, RenderError, render_stack
from tools.program import render_revision as rendered_at
from tools.rendered import RenderedStack
from tools.routing import MatchedRoute, matching_routes, route_matches, silent_receivers

# Prometheus refuses a range query of more points per series ("exceeded maximum resolution of
# 11,000 points per timeseries", web/api/v1/api.go); Mimir and VictoriaMetrics take at least as many.
MAX_POINTS = 11_000
# Prometheus' default --query.lookback-delta: how far back an instant selector finds a sample.
LOOKBACK_DELTA = "5m"
# What a refused query says when it is too large for the server, by errorType and message: split it.
TOO_LARGE = re.compile(r"too many samples|exceeded maximum resolution|query timed out|timeout|"
                       r"max(imum)? (number of )?(series|samples|chunks)|limit", re.IGNORECASE)
DEFAULT_RANGE = "7d"
ENVIRONMENT = {"url": "BACKTEST_URL", "token": "BACKTEST_TOKEN", "user": "BACKTEST_USER",
               "password": "BACKTEST_PASSWORD", "tenant": "BACKTEST_TENANT"}


class BacktestError(Exception):
    """What stops a backtest: one line per problem for the user."""


# ------------------------------------------------------------------------------ the query API


class QueryRefused(Exception):
    """The server answered a query with an error (PromQL's errorType and message)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.status, self.error_type, self.message = status, error_type, message

    @property
    def too_large(self) -> bool:
        """Refused for its size (samples, points, time taken): a shorter range may pass."""
        return bool(TOO_LARGE.search(self.message))


@dataclass
class QueryApi:
    """A Prometheus-compatible HTTP API (Prometheus, Mimir's /prometheus, VictoriaMetrics)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 300.0

    @classmethod
    def connect(cls, url: str, token: str = "", user: str = "", password: str = "", tenant: str = "") -> "QueryApi":
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BacktestError("the query API must be an http:// or https:// URL (--url or BACKTEST_URL)")
        headers = {}
        if parsed.username:  # credentials in the URL: used, and taken out of it
            user, password = urllib.parse.unquote(parsed.username), urllib.parse.unquote(parsed.password or "")
            netloc = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
            url = urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, parsed.query, ""))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        return cls(url.rstrip("/"), headers)

    @property
    def where(self) -> str:
        """The API as the report names it: scheme, host and path, never a credential or a query."""
        parsed = urllib.parse.urlsplit(self.url)
        netloc = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
        return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))

    def _call(self, path: str, params: Optional[dict[str, Any]] = None, post: bool = True) -> Any:
        data = urllib.parse.urlencode(params or {}, doseq=True)
        url = f"{self.url}{path}" + ("" if post or not data else f"?{data}")
        request = urllib.request.Request(url, data=data.encode() if post else None, headers={
            **self.headers, **({"Content-Type": "application/x-www-form-urlencoded"} if post else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            body = error.read()
            if error.code in (401, 403):
                raise BacktestError(f"the query API at {self.where} refused the credentials (HTTP {error.code}): "
                                    "set BACKTEST_TOKEN, or BACKTEST_USER and BACKTEST_PASSWORD") from None
            try:
                answer = json.loads(body)
            except ValueError:
                raise BacktestError(f"the query API at {self.where} answered {path} with HTTP {error.code}: "
                                    f"{body.decode(errors='replace').strip()[:200]}") from None
            raise QueryRefused(error.code, answer.get("errorType", ""), answer.get("error", "")) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise BacktestError(f"cannot reach the query API at {self.where}: {reason}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise BacktestError(f"the query API at {self.where} answered {path} with something not JSON "
                                "(is the URL the API's base, e.g. http://mimir-gateway/prometheus?)") from None
        if answer.get("status") != "success":
            raise QueryRefused(200, answer.get("errorType", ""), answer.get("error", ""))
        return answer["data"]

    def query(self, expr: str, at_ms: int) -> list[dict[str, Any]]:
        return self._call("/api/v1/query", {"query": expr, "time": _seconds(at_ms)})["result"]

    def query_range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> list[dict[str, Any]]:
        return self._call("/api/v1/query_range", {"query": expr, "start": _seconds(start_ms), "end": _seconds(end_ms),
                                                  "step": _seconds(step_ms)})["result"]

    def metric_names(self, names: Iterable[str], start_ms: int, end_ms: int) -> set[str]:
        """Which of these metrics have series in the range (from the index: coarse in time)."""
        selector = "{__name__=~\"" + "|".join(re.escape(n) for n in sorted(names)) + "\"}"
        return set(self._call("/api/v1/label/__name__/values", {"match[]": selector, "start": _seconds(start_ms),
                                                               "end": _seconds(end_ms)}, post=False))

    def rule_files(self) -> dict[str, str]:
        """The file of each rule group the source's own Prometheus evaluates, by group name ({} when it has none)."""
        try:
            groups = self._call("/api/v1/rules", post=False)["groups"]
        except QueryRefused:
            return {}
        return {g["name"]: g["file"] for g in groups}


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


# ------------------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class RuleSet:
    """What is backtested: the rule groups (as in a rule file), the Alertmanager configuration and
    the Prometheus settings that shape the alerts."""

    groups: tuple[dict[str, Any], ...]
    evaluation_interval: str
    alertmanager: dict[str, Any]
    external_labels: dict[str, str] = field(default_factory=dict)
    experimental_functions: bool = False
    resend_delay: str = "1m"
    """Prometheus' --rules.alert.resend-delay (the Operator leaves it at its default)."""

    @classmethod
    def from_rendered(cls, rendered: RenderedStack) -> "RuleSet":
        spec = rendered.prometheus_spec
        return cls(tuple(rendered.rule_groups), spec.get("evaluationInterval", "30s"), rendered.alertmanager,
                   dict(spec.get("externalLabels") or {}),
                   "promql-experimental-functions" in (spec.get("enableFeatures") or []))

    def interval_ms(self, group: dict[str, Any]) -> int:
        return duration_ms(group.get("interval") or self.evaluation_interval)


@dataclass(frozen=True)
class RuleQuery:
    """One rule as the backtest evaluates it."""

    group: str
    index: int
    """Of the rule in its group."""
    name: str
    alert: bool
    expr: str
    """The rule's expression over raw series: every recorded series replaced by its recording expression."""
    local: str
    """The rule's own expression, for the engine holding the recorded series it reads."""
    interval_ms: int
    phase_ms: int
    """The group's evaluation times are phase_ms + k * interval_ms."""
    query_offset_ms: int
    for_ms: int
    keep_firing_for_ms: int
    labels: dict[str, str]
    lookback_ms: int
    """How long before an evaluation `expr` reads samples."""
    metrics: tuple[str, ...]
    """The raw metrics `expr` reads."""
    reads: dict[str, int] = field(default_factory=dict)
    """The recorded series the rule reads, and how long before an evaluation."""
    raw_instant: tuple[str, ...] = ()
    """The raw series it reads by instant selectors, as selectors."""
    raw_range: bool = False
    """It reads raw series over a range (or a subquery, an offset)."""

    @property
    def key(self) -> str:
        """Names the rule in a report: its name, and which of several rules of that name."""
        return f"{self.name} [{self.group} #{self.index + 1}]"

    def warm_up_ms(self) -> int:
        return self.for_ms + self.keep_firing_for_ms

    def first_slot(self, start_ms: int) -> int:
        """The group's first evaluation time at or after `start_ms` less the warm-up."""
        first = start_ms - self.warm_up_ms()
        return first + (self.phase_ms - first) % self.interval_ms

    def slots(self, start_ms: int, end_ms: int) -> range:
        """The group's evaluation times from `start_ms` (less the warm-up) to `end_ms`."""
        return range(self.first_slot(start_ms), end_ms + 1, self.interval_ms)


_LABEL_TEMPLATE = re.compile(r"\{\{\s*(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_EXTERNAL_TEMPLATE = re.compile(r"\{\{\s*(?:\$externalLabels|\.ExternalLabels)\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def check_label_templates(ruleset: RuleSet) -> list[str]:
    """Rules whose labels use a template beyond `{{ $labels.x }}` and `{{ $externalLabels.x }}`: the
    alert's identity would depend on what the backtest cannot expand (its value, say)."""
    problems = []
    for group in ruleset.groups:
        for rule in group["rules"]:
            for name, value in (rule.get("labels") or {}).items():
                rest = _EXTERNAL_TEMPLATE.sub("", _LABEL_TEMPLATE.sub("", str(value)))
                if "{{" in rest:
                    problems.append(f"group {group['name']}, rule {rule.get('alert') or rule.get('record')}: label {name} "
                                    f"is a template the backtest cannot expand ({value!r}): only $labels.<name> and "
                                    "$externalLabels.<name> are")
    return problems


def inline_rules(ruleset: RuleSet, *, matchers: tuple[str, ...] = (), rule_files: Optional[dict[str, str]] = None,
                 phases_ms: Optional[dict[str, int]] = None, lookback_delta: str = LOOKBACK_DELTA) -> list[RuleQuery]:
    """Every rule of the set as a RuleQuery, in order; BacktestError with one line per rule that
    does not parse or cannot be inlined. Each group is evaluated at the phase of its file in
    `rule_files` (as the Prometheus that loaded it from there), else at its phase in `phases_ms`,
    else on the multiples of its interval."""
    problems = check_label_templates(ruleset)
    if problems:
        raise BacktestError("\n".join(problems))
    rule_files = rule_files or {}
    offsets = {g["name"]: duration_ms(g["query_offset"]) if g.get("query_offset") else 0 for g in ruleset.groups}
    request = {
        "groups": [{"name": g["name"], "interval_ms": ruleset.interval_ms(g), "file": rule_files.get(g["name"], ""),
                    "phase_ms": (phases_ms or {}).get(g["name"], 0), "query_offset_ms": offsets[g["name"]],
                    "rules": [{"record": r.get("record", ""), "alert": r.get("alert", ""), "expr": str(r["expr"]),
                               "labels": {k: str(v) for k, v in (r.get("labels") or {}).items()}} for r in g["rules"]]}
                   for g in ruleset.groups],
        "matchers": list(matchers), "lookback_delta_ms": duration_ms(lookback_delta),
        "experimental_functions": ruleset.experimental_functions,
    }
    answer = _backtest_rules("inline", request)
    if answer["errors"]:
        raise BacktestError("\n".join(f"does not parse: {e}" if "parse error" in e else e for e in answer["errors"]))
    by_name = {g["name"]: g for g in ruleset.groups}
    queries = []
    for found in answer["rules"]:
        group = by_name[found["group"]]
        rule = group["rules"][found["index"]]
        queries.append(RuleQuery(
            found["group"], found["index"], found["name"], found["alert"], found["inlined"], found["local"],
            ruleset.interval_ms(group), answer["phases_ms"][found["group"]], offsets[found["group"]],
            duration_ms(rule.get("for", "0s")), duration_ms(rule.get("keep_firing_for", "0s")),
            {k: str(v) for k, v in (rule.get("labels") or {}).items()}, found["lookback_ms"], tuple(found["metrics"]),
            found["reads"], tuple(found["raw_instant"]), found["raw_range"]))
    return queries


def _backtest_rules(command: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run `backtest-rules <command>` (tools/backtest_rules) on a request."""
    try:
        program = binary("backtest-rules")
    except FileNotFoundError as error:
        raise BacktestError(str(error)) from None
    done = subprocess.run([program, command], input=json.dumps(request), capture_output=True, text=True)
    if done.returncode != 0:
        raise BacktestError(done.stderr.strip() or f"backtest-rules {command} failed ({done.returncode})")
    return json.loads(done.stdout)


# ------------------------------------------------------------------------------ alerts (Prometheus)


Labels = tuple[tuple[str, str], ...]
"""A label set, sorted by name: an alert's identity."""


@dataclass(frozen=True)
class Firing:
    """One stretch of an alert firing: pending from `active_at`, firing from `fired_at` until
    `resolved_at` (the first evaluation without it; None: still firing at the end)."""

    labels: Labels
    active_at: int
    fired_at: int
    resolved_at: Optional[int]
    since_start: bool = False
    """Active at the first evaluation: it began before the evaluated range (its start is not known)."""
    interval_ms: int = 0
    """Its group's evaluation interval (when Prometheus can send it); 0: not known, taken as the resend delay."""

    @property
    def alertname(self) -> str:
        return dict(self.labels)["alertname"]

    def firing_at(self, t: int) -> bool:
        return self.fired_at <= t and (self.resolved_at is None or t < self.resolved_at)


def alert_labels(metric: dict[str, str], rule: RuleQuery, external_labels: dict[str, str]) -> Labels:
    """The alert's labels for one series of its expression, as Prometheus builds them: the series'
    labels without the metric name, the rule's labels (templated) over them, `alertname` last; a
    label left empty is no label."""
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    for name, value in rule.labels.items():
        value = _LABEL_TEMPLATE.sub(lambda m: metric.get(m[1], ""), value)
        labels[name] = _EXTERNAL_TEMPLATE.sub(lambda m: external_labels.get(m[1], ""), value)
    labels["alertname"] = rule.name
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def alert_states(slots: range, present: dict[Labels, list[int]], for_ms: int, keep_firing_for_ms: int) -> list[Firing]:
    """The firing stretches of an alerting rule (rules/alerting.go Eval), from the evaluation times
    at which its expression returned each label set. An alert is pending when its label set first
    appears, fires once it has been there `for`, keeps firing `keep_firing_for` after it is gone;
    a pending alert that is gone is forgotten."""
    found = []
    for labels, times in present.items():
        times = sorted(times)
        seen = set(times)
        last = times[-1]
        state, active_at, fired_at, keep_since = None, 0, 0, None
        for t in slots[bisect.bisect_left(slots, times[0]):]:
            if t in seen:
                if state is None:
                    state, active_at = "pending", t
                keep_since = None
            elif state is None:
                if t > last:
                    break
                continue
            else:
                if state == "firing" and keep_firing_for_ms > 0:
                    keep_since = t if keep_since is None else keep_since
                    keeping = t - keep_since < keep_firing_for_ms
                else:
                    keeping = False
                if not keeping:
                    if state == "firing":
                        found.append(Firing(labels, active_at, fired_at, t, active_at == slots[0], slots.step))
                    state, keep_since = None, None
                    if t > last:
                        break
                    continue
            if state == "pending" and t - active_at >= for_ms:
                state, fired_at = "firing", t
        if state == "firing":
            found.append(Firing(labels, active_at, fired_at, None, active_at == slots[0], slots.step))
    return sorted(found, key=lambda f: (f.fired_at, f.labels))


# ------------------------------------------------------------------------------ notifications (Alertmanager)


WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
MONTHS = [m.lower() for m in calendar.month_name]


def _ranges(items: list[str], names: Optional[list[str]] = None) -> list[tuple[int, int]]:
    def value(text: str) -> int:
        text = text.strip().lower()
        return names.index(text) if names and text in names else int(text)

    out = []
    for item in items:
        first, _, last = str(item).partition(":")
        out.append((value(first), value(last or first)))
    return out


def in_time_interval(interval: dict[str, Any], at: datetime.datetime) -> bool:
    """Alertmanager's time interval (timeinterval.TimeInterval.ContainsTime): every field given
    contains the time, in the interval's location (UTC by default)."""
    at = at.astimezone(zoneinfo.ZoneInfo(interval.get("location", "UTC")))
    if interval.get("times"):
        minute = at.hour * 60 + at.minute
        if not any(_minutes(t["start_time"]) <= minute < _minutes(t["end_time"]) for t in interval["times"]):
            return False
    if interval.get("weekdays"):
        weekday = (at.weekday() + 1) % 7  # Sunday 0, as Go's time.Weekday
        if not any(a <= weekday <= b for a, b in _ranges(interval["weekdays"], WEEKDAYS)):
            return False
    if interval.get("days_of_month"):
        days = calendar.monthrange(at.year, at.month)[1]
        if not any((a if a > 0 else days + a + 1) <= at.day <= (b if b > 0 else days + b + 1)
                   for a, b in _ranges(interval["days_of_month"])):
            return False
    if interval.get("months") and not any(a <= at.month <= b for a, b in _ranges(interval["months"], MONTHS)):
        return False
    if interval.get("years") and not any(a <= at.year <= b for a, b in _ranges(interval["years"])):
        return False
    return True


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def time_intervals(config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The configuration's named time intervals (`time_intervals`, and the older `mute_time_intervals`)."""
    return {named["name"]: named.get("time_intervals") or []
            for named in (config.get("time_intervals") or []) + (config.get("mute_time_intervals") or [])}


# The integrations that send no resolved notification unless `send_resolved` says so: Alertmanager
# 0.34's defaults (config/notifiers.go Default<Kind>Config VSendResolved; every other kind's is true).
NO_RESOLVED_BY_DEFAULT = frozenset({"email", "slack", "rocketchat", "wechat"})


def integrations(receiver: dict[str, Any]) -> list[tuple[str, bool]]:
    """(name, send_resolved) of each integration of a receiver, named `<kind>[<index>]`."""
    found = []
    for key, configs in receiver.items():
        if key.endswith("_configs"):
            kind = key.removesuffix("_configs")
            for index, config in enumerate(configs or []):
                found.append((f"{kind}[{index}]", bool(config.get("send_resolved", kind not in NO_RESOLVED_BY_DEFAULT))))
    return found


@dataclass(frozen=True)
class Notification:
    """One message an integration of a receiver sends for an alert group."""

    at: int
    receiver: str
    integration: str
    group: tuple[tuple[int, ...], Labels]
    """The route and the group labels."""
    firing: tuple[Labels, ...]
    resolved: tuple[Labels, ...]

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"


@dataclass
class _Group:
    route: MatchedRoute
    next_flush: int
    alerts: dict[Labels, Firing] = field(default_factory=dict)


# An alert firing when the evaluation begins has been firing for an unknown while: it reaches the
# model of Alertmanager this long before, so that its first notification falls before the range.
BEFORE_THE_RANGE_MS = 86_400_000


def sends(alert: Firing, resend_ms: int, until_ms: int) -> Iterator[tuple[int, int]]:
    """When Prometheus sends a firing alert to Alertmanager up to `until_ms`, and the end it gives it
    (rules/alerting.go sendAlerts, needsSending): at the evaluation it fires, then at the first
    evaluation more than the resend delay after the last send, each valid for 4 x max(resend delay,
    interval); once at the evaluation it resolves, ending then."""
    step = alert.interval_ms or resend_ms
    valid_ms = 4 * max(resend_ms, step)
    end = alert.resolved_at
    last = t = alert.fired_at
    while t <= until_ms and (end is None or t < end):
        if t == alert.fired_at or t > last + resend_ms:
            last = t
            yield t, t + valid_ms
        t += step
    if end is not None and end <= until_ms:
        yield end, end


def notifications(firings: list[Firing], config: dict[str, Any], external_labels: dict[str, str],
                  until_ms: int, resend_ms: int = 60_000, flush_first: bool = True) -> list[Notification]:
    """What the Alertmanager configuration sends for these alerts up to `until_ms` (Alertmanager
    0.34: dispatch/dispatch.go, notify/dedup_stage.go, inhibit/inhibit.go), the alerts reaching it
    as Prometheus sends them: when they fire, with the external labels added, resolved when they
    stop. One already firing at the first evaluation (`since_start`) arrives a day earlier: its
    first notification is not in the range.

    Inhibition is 0.34's: per rule and value of its `equal` labels, an index keeps one source alert,
    replaced only by one that arrives with a later end; a target is inhibited while that one has
    not ended. So when the indexed source resolves while another still fires, its targets are not
    inhibited until the other is sent again (up to the resend delay later).

    A group's flush and what Prometheus sends can fall on the same evaluation instant (group wait
    and interval are multiples of it): Alertmanager's timer and Prometheus' send then run
    milliseconds apart, in no order the model can know. `flush_first` decides: the flush before
    what arrives at its instant, or after."""
    alerts = sorted((Firing(tuple(sorted({**external_labels, **dict(f.labels)}.items())), f.active_at,
                            f.fired_at - BEFORE_THE_RANGE_MS if f.since_start else f.fired_at, f.resolved_at,
                            f.since_start, f.interval_ms) for f in firings), key=lambda f: f.fired_at)
    receivers = {r["name"]: integrations(r) for r in config.get("receivers", [])}
    intervals = time_intervals(config)
    inhibit = config.get("inhibit_rules") or []
    # The sends of every alert that is a source of an inhibit rule: (at, order, ends, alert).
    updates = sorted((at, n, ends, alert) for n, alert in enumerate(alerts)
                     if any(_all(rule, "source", dict(alert.labels)) for rule in inhibit)
                     for at, ends in sends(alert, resend_ms, until_ms))
    ends_of: dict[Labels, int] = {}  # each source's end, as last received
    index: dict[tuple[int, tuple[str, ...]], Labels] = {}  # (rule, its `equal` values) -> the source kept
    groups: dict[tuple[tuple[int, ...], Labels], _Group] = {}
    log: dict[tuple[Any, str], tuple[frozenset, frozenset, int]] = {}  # the notification log
    sent: list[Notification] = []

    def equal_key(i: int, labels: dict[str, str]) -> tuple[int, tuple[str, ...]]:
        return i, tuple(labels.get(k, "") for k in inhibit[i].get("equal", []))

    def receive(alert: Firing, ends: int) -> None:
        """inhibit.go processAlert and updateIndex."""
        ends_of[alert.labels] = ends
        labels = dict(alert.labels)
        for i, rule in enumerate(inhibit):
            if _all(rule, "source", labels):
                key = equal_key(i, labels)
                kept = index.get(key)
                if kept is None or (kept != alert.labels and ends_of[kept] <= ends):
                    index[key] = alert.labels

    def inhibited(alert: Firing, at: int) -> bool:
        """inhibit.go Mutes."""
        labels = dict(alert.labels)
        for i, rule in enumerate(inhibit):
            if not _all(rule, "target", labels):
                continue
            source = index.get(equal_key(i, labels))
            if source is None or ends_of[source] <= at:
                continue
            if _all(rule, "source", labels) and _all(rule, "target", dict(source)):
                continue
            return True
        return False

    def muted(route: MatchedRoute, at: int) -> bool:
        moment = datetime.datetime.fromtimestamp(at / 1000, datetime.timezone.utc)
        if any(in_time_interval(i, moment) for name in route.mute_time_intervals for i in intervals.get(name, [])):
            return True
        return bool(route.active_time_intervals) and not any(
            in_time_interval(i, moment) for name in route.active_time_intervals for i in intervals.get(name, []))

    def flush(key: tuple[tuple[int, ...], Labels], group: _Group, at: int) -> None:
        route = group.route
        members = list(group.alerts.values())
        visible = [a for a in members if not inhibited(a, at)]
        if visible and not muted(route, at):
            firing = frozenset(a.labels for a in visible if a.firing_at(at))
            resolved = frozenset(a.labels for a in visible if a.labels not in firing)
            for integration, send_resolved in receivers.get(route.receiver, []):
                entry = log.get((key, integration))
                if not _needs_update(entry, firing, resolved, send_resolved, duration_ms(route.repeat_interval), at):
                    continue
                log[(key, integration)] = (firing, resolved, at)
                if firing or send_resolved:
                    sent.append(Notification(at, route.receiver, integration, key, tuple(sorted(firing)),
                                             tuple(sorted(resolved)) if send_resolved else ()))
        for alert in members:  # resolved alerts leave the group once notified (or not to be)
            if not alert.firing_at(at):
                del group.alerts[alert.labels]
        if group.alerts:
            group.next_flush = at + duration_ms(route.group_interval)
        else:
            del groups[key]

    pending = list(alerts)
    position = update = 0
    while True:
        next_alert = pending[position].fired_at if position < len(pending) else None
        next_update = updates[update][0] if update < len(updates) else None
        next_event = min((t for t in (next_alert, next_update) if t is not None), default=None)
        next_flush = min(groups.items(), key=lambda item: item[1].next_flush, default=None)
        if next_flush is not None and (next_event is None or next_flush[1].next_flush < next_event
                                       or (flush_first and next_flush[1].next_flush == next_event)):
            key, group = next_flush
            if group.next_flush > until_ms:
                break
            flush(key, group, group.next_flush)
            continue
        if next_event is None or next_event > until_ms:
            break
        if next_update is not None and next_update == next_event:
            _, _, ends, source = updates[update]
            update += 1
            receive(source, ends)
            continue
        alert = pending[position]
        position += 1
        labels = dict(alert.labels)
        for route in matching_routes(config["route"], labels):
            group_labels = tuple(sorted(route.group_labels(labels).items()))
            key = (route.path, group_labels)
            if key not in groups:
                groups[key] = _Group(route, alert.fired_at + duration_ms(route.group_wait))
            groups[key].alerts[alert.labels] = alert
    return sent


def sent_in_range(firings: list[Firing], ruleset: RuleSet, start_ms: int, end_ms: int,
                  flush_first: bool = True) -> list[Notification]:
    """What the rule set's Alertmanager configuration sends from `start_ms` to `end_ms` for these firings."""
    return [n for n in notifications(firings, ruleset.alertmanager, ruleset.external_labels, end_ms,
                                     duration_ms(ruleset.resend_delay), flush_first) if n.at >= start_ms]


def _all(rule: dict[str, Any], side: str, labels: dict[str, str]) -> bool:
    """Whether labels match one side (`source`, `target`) of an inhibit rule."""
    return route_matches(rule, labels, f"{side}_")


def _needs_update(entry: Optional[tuple[frozenset, frozenset, int]], firing: frozenset, resolved: frozenset,
                  send_resolved: bool, repeat_ms: int, now: int) -> bool:
    """Alertmanager's DedupStage.needsUpdate against the last notification of the group."""
    if entry is None:
        return bool(firing)
    notified_firing, notified_resolved, notified_at = entry
    if not firing <= notified_firing:
        return True
    if not firing:
        return bool(notified_firing)
    if send_resolved and not resolved <= notified_resolved:
        return True
    return notified_at < now - repeat_ms


# ------------------------------------------------------------------------------ the backtest


@dataclass
class AlertResult:
    """One alerting rule over the range."""

    rule: RuleQuery
    firings: list[Firing]
    judged: bool = True
    note: str = ""
    """Why it is not judged, or what limits the judgement."""
    queries: int = 0
    seconds: float = 0.0
    """Spent querying for it."""


@dataclass
class Result:
    """What a rule set would have done over the range."""

    label: str
    """Which rules: `HEAD` (the working tree) or the BASE revision."""
    start: int
    end: int
    alerts: list[AlertResult]
    notifications: list[Notification]
    """Sent within the range."""
    receivers: dict[str, bool]
    """Every receiver, and whether it has integrations (a receiver without sends nothing)."""
    queries: int = 0
    seconds: float = 0.0
    spent: dict[str, float] = field(default_factory=dict)
    """Seconds taken, by part of the work (queries run two at a time: they add up to more)."""

    def pages(self, receiver: Optional[str] = None, alert: Optional[AlertResult] = None) -> list[Notification]:
        """Firing notifications (one per group flush and receiver, whatever its integrations), of
        one receiver, and about one rule's alerts."""
        mine = {f.labels for f in alert.firings} if alert else set()
        seen, found = set(), []
        for n in self.notifications:
            if not n.firing or (receiver and n.receiver != receiver):
                continue
            if alert and not any(_sent_as(labels, a) for labels in mine for a in n.firing):
                continue
            if (n.at, n.receiver, n.group) not in seen:
                seen.add((n.at, n.receiver, n.group))
                found.append(n)
        return found

    def resolves(self, receiver: str) -> int:
        return len({(n.at, n.group) for n in self.notifications if n.receiver == receiver and not n.firing})


class Progress:
    """A progress bar on stderr while the queries run (on a terminal only), by evaluations done."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.done, self.label, self.enabled = total, 0, label, enabled
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def advance(self, evaluations: int) -> None:
        with self.lock:
            self.done += evaluations
            if self.enabled:
                width = 30
                filled = width * min(self.done, self.total) // max(self.total, 1)
                sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                                 f"{100 * self.done // max(self.total, 1)}% of {self.total} evaluations, "
                                 f"{time.monotonic() - self.started:.0f}s")
                if self.done >= self.total:
                    sys.stderr.write("\n")
                sys.stderr.flush()


Sampled = dict[tuple[tuple[str, str], ...], list[tuple[int, str]]]
"""A query's result over evaluation times: (time, value as the API writes it) by series labels."""


def fetch(api: QueryApi, expr: str, slots: range, key: str, progress: Optional[Callable[[int], None]] = None,
          chunk: int = MAX_POINTS) -> tuple[Sampled, int]:
    """An expression at every evaluation time of `slots`, and the number of queries it took: split
    by the point limit (or `chunk` evaluations), and further while the server refuses a part as too large."""
    found: Sampled = {}
    queries, index = 0, 0
    while index < len(slots):
        part = slots[index:index + chunk]
        try:
            result = api.query_range(expr, part[0], part[-1], slots.step)
        except QueryRefused as refused:
            if refused.too_large and chunk > 1:
                chunk = max(1, chunk // 2)
                continue
            raise BacktestError(f"{key}: the query API at {api.where} refused its expression: {refused}") from None
        queries += 1
        for series in result:
            found.setdefault(tuple(sorted(series["metric"].items())), []).extend(
                (round(float(t) * 1000), v) for t, v in series["values"])
        index += len(part)
        if progress:
            progress(len(part))
    return found, queries


def firings_of(rule: RuleQuery, slots: range, present: Iterable[tuple[dict[str, str], list[int]]],
               external_labels: dict[str, str]) -> list[Firing]:
    """The firing stretches of an alerting rule from the times its expression returned each series."""
    by_alert: dict[Labels, list[int]] = {}
    for metric, times in present:
        by_alert.setdefault(alert_labels(metric, rule, external_labels), []).extend(times)
    return alert_states(slots, by_alert, rule.for_ms, rule.keep_firing_for_ms)


def evaluate(query: RuleQuery, api: QueryApi, start_ms: int, end_ms: int, external_labels: dict[str, str],
             progress: Optional[Callable[[int], None]] = None, chunk: int = MAX_POINTS) -> tuple[list[Firing], int]:
    """An alerting rule's firing stretches over the range, evaluated at the source over raw series."""
    slots = query.slots(start_ms, end_ms)
    found, queries = fetch(api, query.expr, slots, query.key, progress, chunk)
    present = [(dict(metric), [t for t, _ in samples]) for metric, samples in found.items()]
    return firings_of(query, slots, present, external_labels), queries


def grid_series(found: Sampled, grid: range, name: str = "", labels: Optional[dict[str, str]] = None) -> list[dict[str, Any]]:
    """A query's result as the series Prometheus would hold, sampled on `grid`: named and labelled as
    a recording rule names and labels its result, with a stale marker (null) at the first evaluation
    time a series is missing from, as the rule manager writes one."""
    out = []
    for metric, samples in found.items():
        series = dict(metric)
        if name:
            series = {**{k: v for k, v in series.items() if k != "__name__"}, "__name__": name}
        series = {k: v for k, v in {**series, **(labels or {})}.items() if v != ""}
        times, values = [], []
        for t, v in sorted(samples):
            if times and t - times[-1] > grid.step:
                times.append(times[-1] + grid.step)
                values.append(None)
            times.append(t)
            values.append(v)
        if times and times[-1] + grid.step <= grid.stop - 1:
            times.append(times[-1] + grid.step)
            values.append(None)
        out.append({"labels": series, "times": times, "values": values})
    return out


def judge(query: RuleQuery, api: QueryApi, start_ms: int, present_metrics: set[str], lookback_delta: str) -> tuple[bool, str]:
    """Whether the history reaches as far back as the rule reads from its first evaluation."""
    needed_from = query.first_slot(start_ms) - query.lookback_ms
    missing = [m for m in query.metrics if m not in present_metrics and not m.startswith("{")]
    if query.metrics and len(missing) == len(query.metrics):
        return True, f"no series of {', '.join(missing)} in the range"
    if not query.metrics:
        return True, ""
    delta = duration_ms(lookback_delta)
    selector = "{__name__=~\"" + "|".join(re.escape(m) for m in query.metrics if m not in missing) + "\"}"
    if api.query(f"count(last_over_time({selector}[{delta}ms]))", needed_from + delta):
        return True, ""
    return False, f"reads {_duration(query.lookback_ms)} of history: needs data from {_time(needed_from)}"


@dataclass
class Plan:
    """Where each rule is evaluated. A recorded series the alerts read is materialized once, on the
    evaluation times of its group, where its cardinality allows: computed by the source from raw
    series when it reads raw series (or a recorded series too large to hold), else by the local
    engine from materialized ones. An alert reading materialized series only (and raw series by
    instant selectors, copied on its evaluation times) is evaluated by the local engine; any other
    at the source, every recorded series it reads inlined."""

    local_alerts: list[RuleQuery]
    source_alerts: list[RuleQuery]
    at_source: list[RuleQuery]
    """Recording rules whose series the source computes."""
    local_records: list[RuleQuery]
    """Recording rules the local engine evaluates, in an order that has every input before its reader."""
    starts: dict[str, int]
    """By recorded series: from when it is needed."""
    raw_grid: Optional[range] = None
    """The evaluation times on which the raw series of the local alerts are copied."""


# A recorded series is held by the backtest when it has at most this many samples over the range
# (series x evaluations): per-endpoint series of a large service are left to the source.
MATERIALIZED_SAMPLES = 4_000_000


def plan(rules: list[RuleQuery], api: QueryApi, start_ms: int, end_ms: int) -> Plan:
    records: dict[str, list[RuleQuery]] = {}
    for rule in rules:
        if not rule.alert:
            records.setdefault(rule.name, []).append(rule)
    alerts = [r for r in rules if r.alert]
    longest = max((r.lookback_ms + r.warm_up_ms() for r in rules), default=0)
    modes: dict[str, str] = {}

    def mode(name: str) -> str:
        """local, source, or inline (too large to hold)."""
        if name not in modes:
            modes[name] = "inline"  # while deciding: a cycle is refused by the inliner anyway
            writers = records[name]
            reads_raw = any(w.raw_instant or w.raw_range or w.query_offset_ms for w in writers)
            if not reads_raw and all(mode(n) != "inline" for w in writers for n in w.reads):
                modes[name] = "local"  # computed from what is held: its size is the engine's business
            else:
                # Counted at one evaluation: the expression at the source reads raw series (or a
                # recorded series too large to hold), over a window at most.
                series = sum(int(float(r["value"][1])) for w in writers for r in api.query(f"count({w.expr})", end_ms))
                evaluations = (end_ms - start_ms + longest) // min(w.interval_ms for w in writers) + 1
                modes[name] = "source" if series * evaluations <= MATERIALIZED_SAMPLES else "inline"
        return modes[name]

    local_alerts, source_alerts, grids = [], [], set()
    for alert in alerts:
        local = (alert.reads and not alert.raw_range and not alert.query_offset_ms
                 and all(mode(n) != "inline" for n in alert.reads)
                 and (not alert.raw_instant or not grids or grids == {(alert.phase_ms, alert.interval_ms)}))
        (local_alerts if local else source_alerts).append(alert)
        if local and alert.raw_instant:
            grids.add((alert.phase_ms, alert.interval_ms))
    # From when each materialized series is needed, readers before what they read.
    starts: dict[str, int] = {}
    order: list[str] = []

    def need(name: str, from_ms: int) -> None:
        starts[name] = min(starts.get(name, from_ms), from_ms)
        if name not in order:
            order.append(name)
        if mode(name) == "local":
            for writer in records[name]:
                first = starts[name] - (starts[name] - writer.phase_ms) % writer.interval_ms
                for read, back in writer.reads.items():
                    need(read, first - back)

    for alert in local_alerts:
        for read, back in alert.reads.items():
            need(read, alert.first_slot(start_ms) - back)
    local_names = [n for n in _dependency_order(order, records) if modes[n] == "local"]
    raw_grid = None
    if grids:
        (phase, interval), = grids
        first = min(a.first_slot(start_ms) for a in local_alerts if a.raw_instant)
        raw_grid = range(first, end_ms + 1, interval)
    return Plan(local_alerts, source_alerts, [w for n in order if modes[n] == "source" for w in records[n]],
                [w for n in local_names for w in records[n]], starts, raw_grid)


def _dependency_order(names: list[str], records: dict[str, list[RuleQuery]]) -> list[str]:
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for writer in records[name]:
            for read in writer.reads:
                if read in names:
                    visit(read)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def _grid(rule: RuleQuery, from_ms: int, end_ms: int) -> range:
    first = from_ms - (from_ms - rule.phase_ms) % rule.interval_ms
    return range(first, end_ms + 1, rule.interval_ms)


def run(ruleset: RuleSet, api: QueryApi, start_ms: int, end_ms: int, *, label: str = "HEAD",
        matchers: tuple[str, ...] = (), align_to_source: bool = False, parallel: int = 2,
        lookback_delta: str = LOOKBACK_DELTA, show_progress: bool = False) -> Result:
    """Backtest a rule set over [start_ms, end_ms] against the API."""
    started = time.monotonic()
    if end_ms <= start_ms:
        raise BacktestError(f"the range is empty: FROM {_time(start_ms)} is not before TO {_time(end_ms)}")
    rule_files = api.rule_files() if align_to_source else {}
    rules = inline_rules(ruleset, matchers=matchers, rule_files=rule_files, lookback_delta=lookback_delta)
    alerts = [r for r in rules if r.alert]
    read = {m for q in alerts for m in q.metrics if not m.startswith("{")}
    earliest = min((q.first_slot(start_ms) - q.lookback_ms for q in alerts), default=start_ms)
    present = api.metric_names(read, earliest, end_ms) if read else set()
    if read and not (api.metric_names(read, start_ms, end_ms) if present else set()):
        raise BacktestError(f"no data between {_time(start_ms)} and {_time(end_ms)} at {api.where}: none of the "
                            f"{len(read)} metrics the alerting rules read has a series there ({', '.join(sorted(read)[:4])}, ...)")
    work = plan(rules, api, start_ms, end_ms)
    grids = {id(w): _grid(w, work.starts[w.name], end_ms) for w in work.at_source + work.local_records}
    progress = Progress(sum(len(q.slots(start_ms, end_ms)) for q in work.source_alerts)
                        + sum(len(grids[id(w)]) for w in work.at_source)
                        + (len(work.raw_grid) * len({s for a in work.local_alerts for s in a.raw_instant})
                           if work.raw_grid else 0), f"backtest {label}", show_progress)
    results: dict[int, AlertResult] = {}
    held: list[dict[str, Any]] = []
    queries = 0
    lock = threading.Lock()

    spent: dict[str, float] = {}

    def at_source(i: int, query: RuleQuery) -> None:
        began = time.monotonic()
        judged, note = judge(query, api, start_ms, present, lookback_delta)
        firings, n = evaluate(query, api, start_ms, end_ms, ruleset.external_labels, progress.advance,
                              first_chunk(api, query.metrics, end_ms))
        results[i] = AlertResult(query, firings, judged, note, n, time.monotonic() - began)
        spent[f"alert {query.key} at the source"] = results[i].seconds

    def materialize(rule: RuleQuery) -> int:
        began = time.monotonic()
        found, n = fetch(api, rule.expr, grids[id(rule)], rule.key, progress.advance,
                         first_chunk(api, rule.metrics, end_ms))
        with lock:
            held.extend(grid_series(found, grids[id(rule)], rule.name, rule.labels))
        spent[f"recording {rule.key} from raw series"] = time.monotonic() - began
        return n

    def copy(selector: str) -> int:
        began = time.monotonic()
        found, n = fetch(api, selector, work.raw_grid, selector, progress.advance)
        with lock:
            held.extend(grid_series(found, work.raw_grid))
        spent[f"raw series {selector}"] = time.monotonic() - began
        return n

    index = {id(a): i for i, a in enumerate(alerts)}
    jobs: list[Callable[[], Any]] = [lambda a=a: at_source(index[id(a)], a) for a in work.source_alerts]
    jobs += [lambda w=w: materialize(w) for w in work.at_source]
    jobs += [lambda s=s: copy(s) for s in sorted({s for a in work.local_alerts for s in a.raw_instant})]
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        queries += sum(n for n in pool.map(lambda job: job(), jobs) if isinstance(n, int))
    queries += sum(r.queries for r in results.values())
    if work.local_alerts:
        began = time.monotonic()
        judged = {id(a): judge(a, api, start_ms, present, lookback_delta) for a in work.local_alerts}
        steps = [{"id": -1, "record": w.name, "labels": w.labels, "expr": w.local, "start_ms": grids[id(w)].start,
                  "end_ms": grids[id(w)][-1], "step_ms": w.interval_ms} for w in work.local_records]
        steps += [{"id": index[id(a)], "record": "", "labels": {}, "expr": a.local,
                   "start_ms": a.first_slot(start_ms), "end_ms": a.slots(start_ms, end_ms)[-1], "step_ms": a.interval_ms}
                  for a in work.local_alerts]
        answer = _backtest_rules("evaluate", {"lookback_delta_ms": duration_ms(lookback_delta), "max_samples": LOCAL_MAX_SAMPLES,
                                              "experimental_functions": ruleset.experimental_functions,
                                              "series": held, "steps": steps})
        if answer["errors"]:
            raise BacktestError("\n".join(f"evaluating the held series: {e}" for e in answer["errors"]))
        spent["the held series, by the local engine"] = time.monotonic() - began
        seconds = spent["the held series, by the local engine"] / len(work.local_alerts)
        for alert in work.local_alerts:
            i = index[id(alert)]
            present_times = [(p["labels"], p["times"]) for p in answer["alerts"].get(str(i), [])]
            results[i] = AlertResult(alert, firings_of(alert, alert.slots(start_ms, end_ms), present_times,
                                                       ruleset.external_labels), *judged[id(alert)], 0, seconds)
    for i, result in results.items():
        result.firings = [f for f in result.firings
                          if f.fired_at <= end_ms and (f.resolved_at is None or f.resolved_at > start_ms)]
    sent = sent_in_range([f for i in sorted(results) for f in results[i].firings], ruleset, start_ms, end_ms)
    silent = silent_receivers(ruleset.alertmanager)
    return Result(label, start_ms, end_ms, [results[i] for i in sorted(results)], sent,
                  {r["name"]: r["name"] not in silent for r in ruleset.alertmanager.get("receivers", [])},
                  queries, time.monotonic() - started, spent)


# A query loads about as many samples as the raw series it reads times its evaluations (the matrix of
# their rates, say): Prometheus and Mimir refuse one past 50 million (--query.max-samples,
# -querier.max-samples). The first split keeps under this, so that a query is not refused halfway.
QUERY_SAMPLES = 40_000_000


def first_chunk(api: QueryApi, metrics: Iterable[str], at_ms: int) -> int:
    """Evaluations per query for an expression reading these metrics (all their series counted)."""
    names = sorted(m for m in metrics if not m.startswith("{"))
    if not names:
        return MAX_POINTS
    result = api.query("count({__name__=~\"" + "|".join(re.escape(n) for n in names) + "\"})", at_ms)
    series = int(float(result[0]["value"][1])) if result else 0
    return max(1, min(MAX_POINTS, QUERY_SAMPLES // max(series, 1)))


# The local engine holds a few series per service: Prometheus' default limit would only stop it on
# a rule set far larger than this one.
LOCAL_MAX_SAMPLES = 500_000_000


# ------------------------------------------------------------------------------ incidents and the difference


@dataclass(frozen=True)
class Incident:
    name: str
    start: int
    end: int


def load_incidents(path: Path, now_ms: int) -> list[Incident]:
    """A YAML list of {name, start, end} (times as FROM and TO take them)."""
    try:
        entries = yaml.safe_load(path.read_text())
    except OSError as error:
        raise BacktestError(f"{path}: cannot be read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise BacktestError(f"{path}: not YAML: {' '.join(str(error).split())}") from None
    if not isinstance(entries, list):
        raise BacktestError(f"{path}: expected a list of incidents, each {{name, start, end}}")
    incidents = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or set(entry) != {"name", "start", "end"}:
            raise BacktestError(f"{path}: incident {number}: expected exactly the keys name, start and end")
        incident = Incident(str(entry["name"]), parse_time(str(entry["start"]), now_ms), parse_time(str(entry["end"]), now_ms))
        if incident.end <= incident.start:
            raise BacktestError(f"{path}: incident {incident.name}: its end is not after its start")
        incidents.append(incident)
    return incidents


@dataclass(frozen=True)
class Detection:
    incident: Incident
    page: Optional[Notification]
    """The first notification in the incident of an alert that began firing in it; None: missed."""

    @property
    def delay_ms(self) -> Optional[int]:
        return None if self.page is None else self.page.at - self.incident.start


def detections(result: Result, incidents: list[Incident]) -> list[Detection]:
    began = {f.labels: f.fired_at for a in result.alerts for f in a.firings if not f.since_start}
    found = []
    for incident in incidents:
        pages = [n for n in result.pages() if incident.start <= n.at <= incident.end and result.receivers.get(n.receiver)
                 and any(_began_in(began, labels, incident) for labels in n.firing)]
        found.append(Detection(incident, min(pages, key=lambda n: n.at, default=None)))
    return found


def _began_in(began: dict[Labels, int], labels: Labels, incident: Incident) -> bool:
    """Whether the alert Alertmanager got with these labels began firing in the incident."""
    return any(incident.start <= at and _sent_as(alert, labels) for alert, at in began.items())


def _sent_as(alert: Labels, sent: Labels) -> bool:
    """Whether Alertmanager's alert `sent` is the alert `alert` (its labels, the external labels added)."""
    return set(alert) <= set(sent)


@dataclass(frozen=True)
class Change:
    """An alert that the head fires and BASE does not (gained), BASE fires and the head does not
    (lost), or both fire, the head earlier or later."""

    kind: str
    labels: Labels
    base: Optional[Firing]
    head: Optional[Firing]

    @property
    def shift_ms(self) -> int:
        return 0 if self.base is None or self.head is None else self.head.fired_at - self.base.fired_at


def compare(base: Result, head: Result, tolerance_ms: int) -> list[Change]:
    """Each firing stretch of either side paired with the overlapping stretch of the same alert on
    the other; a start moved by more than `tolerance_ms` is earlier or later."""

    def stretches(result: Result) -> dict[Labels, list[Firing]]:
        by_labels: dict[Labels, list[Firing]] = {}
        for alert in result.alerts:
            for firing in alert.firings:
                by_labels.setdefault(firing.labels, []).append(firing)
        return by_labels

    def overlap(a: Firing, b: Firing) -> bool:
        return (a.resolved_at is None or b.fired_at < a.resolved_at) and (b.resolved_at is None or a.fired_at < b.resolved_at)

    before, after = stretches(base), stretches(head)
    changes = []
    for labels in sorted(set(before) | set(after)):
        old, new = before.get(labels, []), after.get(labels, [])
        for firing in new:
            match = next((b for b in old if overlap(b, firing)), None)
            if match is None:
                changes.append(Change("gained", labels, None, firing))
            elif firing.fired_at < match.fired_at - tolerance_ms:
                changes.append(Change("earlier", labels, match, firing))
            elif firing.fired_at > match.fired_at + tolerance_ms:
                changes.append(Change("later", labels, match, firing))
        for firing in old:
            if not any(overlap(firing, f) for f in new):
                changes.append(Change("lost", labels, firing, None))
    return sorted(changes, key=lambda c: ((c.head or c.base).fired_at, c.labels))


# ------------------------------------------------------------------------------ times


def parse_time(text: str, now_ms: int) -> int:
    """`now`, `now-7d`, an RFC 3339 time or date (UTC when no zone is given), or Unix seconds."""
    text = text.strip()
    relative = re.fullmatch(r"now(?:\s*-\s*(\S+))?", text)
    try:
        if relative:
            return now_ms - (duration_ms(relative[1]) if relative[1] else 0)
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return round(float(text) * 1000)
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BacktestError(f"not a time: {text!r}: expected now, now-<duration> (now-7d), an RFC 3339 time "
                            "(2026-05-01T12:00:00Z), a date or Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return round(moment.timestamp() * 1000)


def _time(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{ms % 1000:03d}" if ms % 1000 else "") + "Z"


def _duration(ms: int) -> str:
    """1d2h, 15m, 1m30s, 1.5s."""
    if ms < 60_000 and ms % 1000:
        return f"{ms / 1000:g}s"
    parts, rest = [], ms // 1000
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= seconds:
            parts.append(f"{rest // seconds}{unit}")
            rest %= seconds
    return "".join(parts[:2]) or "0s"


def _labels_text(labels: Labels, skip: Iterable[str] = ("alertname",)) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels if k not in skip) + "}"


# ------------------------------------------------------------------------------ reports


@dataclass
class Report:
    stack: str
    source: str
    head: Result
    base: Optional[Result] = None
    incidents: list[Incident] = field(default_factory=list)
    tolerance_ms: int = 0

    def changes(self) -> list[Change]:
        return [] if self.base is None else compare(self.base, self.head, self.tolerance_ms)

    # -------------------------------------------------------------------------- JSON

    def as_json(self) -> dict[str, Any]:
        def result(r: Result) -> dict[str, Any]:
            return {
                "rules": r.label, "from": _time(r.start), "to": _time(r.end), "queries": r.queries,
                "seconds": round(r.seconds, 3),
                "alerts": [{"alert": a.rule.name, "group": a.rule.group, "index": a.rule.index, "judged": a.judged,
                            "note": a.note, "lookback": _duration(a.rule.lookback_ms),
                            "firing": [firing_json(f) for f in a.firings],
                            "pages": {rec: len(r.pages(rec, a)) for rec, live in r.receivers.items() if live}}
                           for a in r.alerts],
                "receivers": {rec: {"pages": len(r.pages(rec)), "resolved": r.resolves(rec)}
                              for rec, live in r.receivers.items() if live},
                "notifications": [{"at": _time(n.at), "receiver": n.receiver, "integration": n.integration,
                                   "status": n.status, "firing": [dict(a) for a in n.firing],
                                   "resolved": [dict(a) for a in n.resolved]} for n in r.notifications],
                "incidents": [{"incident": d.incident.name, "start": _time(d.incident.start),
                               "first_page": None if d.page is None else _time(d.page.at),
                               "delay_seconds": None if d.delay_ms is None else d.delay_ms / 1000,
                               "receiver": None if d.page is None else d.page.receiver}
                              for d in detections(r, self.incidents)],
            }

        def firing_json(f: Optional[Firing]) -> Optional[dict[str, Any]]:
            return None if f is None else {"labels": dict(f.labels), "pending_since": _time(f.active_at),
                                           "start": _time(f.fired_at), "began_before": f.since_start,
                                           "end": None if f.resolved_at is None else _time(f.resolved_at)}

        out = {"stack": self.stack, "source": self.source, "head": result(self.head)}
        if self.base is not None:
            out["base"] = result(self.base)
            out["changes"] = [{"change": c.kind, "labels": dict(c.labels), "base": firing_json(c.base),
                               "head": firing_json(c.head)} for c in self.changes()]
        return out

    # -------------------------------------------------------------------------- text and markdown

    def lines(self, markdown: bool) -> list[str]:
        head = self.head
        span = f"{_time(head.start)} to {_time(head.end)} ({_duration(head.end - head.start)})"
        title = f"Backtest of stack {self.stack}: {span}, against {self.source}"
        out = [f"### {title}" if markdown else title, ""]
        out.append(f"Rules at {head.label}" + (f", compared with {self.base.label}" if self.base else "")
                   + f": {len(head.alerts)} alerting rules, {head.queries} queries in {head.seconds:.1f} s.")
        out.append("")
        out += self._alert_table(head, markdown)
        out.append("")
        live = [rec for rec, has in head.receivers.items() if has]
        pages = ", ".join(f"{rec} {len(head.pages(rec))} ({head.resolves(rec)} resolved)" for rec in live)
        out.append(f"{'**Notifications**' if markdown else 'Notifications'} per receiver (firing, and resolved): {pages or 'none'}")
        silent = [rec for rec, has in head.receivers.items() if not has]
        if silent:
            out.append(f"Receivers without integrations (nothing sent): {', '.join(silent)}.")
        unjudged = [a for a in head.alerts if not a.judged]
        if unjudged:
            out.append("")
            out.append("**Not judged** (the range is too short for them):" if markdown else "Not judged (the range is too short for them):")
            out += [f"- {a.rule.key}: {a.note}" for a in unjudged]
        if self.incidents:
            out.append("")
            out.append("**Incidents**" if markdown else "Incidents:")
            base = {d.incident.name: d for d in detections(self.base, self.incidents)} if self.base else {}
            for d in detections(head, self.incidents):
                was = base.get(d.incident.name)
                out.append(f"- {d.incident.name} ({_time(d.incident.start)}): {_detected(d)}"
                           + (f"; at {self.base.label}: {_detected(was)}" if was else ""))
        if self.base is not None:
            out.append("")
            out += self._difference(markdown)
        return out

    def _alert_table(self, result: Result, markdown: bool) -> list[str]:
        live = [rec for rec, has in result.receivers.items() if has]
        rows = []
        for alert in result.alerts:
            pages = ", ".join(f"{rec} {n}" for rec in live if (n := len(result.pages(rec, alert)))) or "-"
            rows.append((alert.rule.key, str(len(alert.firings)) + ("" if alert.judged else " (not judged)"), pages))
        lines = []
        if markdown:
            lines += ["| Alert | Firing | Notifications |", "|---|---|---|"]
            lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        else:
            widths = [max(len(r[i]) for r in rows + [("Alert", "Firing", "Notifications")]) for i in range(2)]
            lines += [f"{'Alert':<{widths[0]}}  {'Firing':<{widths[1]}}  Notifications"]
            lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
        stretches = [(a, f) for a in result.alerts for f in a.firings]
        if stretches:
            lines.append("")
            lines.append("**Firing**" if markdown else "Firing:")
            for alert, firing in sorted(stretches, key=lambda item: item[1].fired_at):
                end = "still firing" if firing.resolved_at is None else _time(firing.resolved_at)
                length = "" if firing.resolved_at is None else f" ({_duration(firing.resolved_at - firing.fired_at)})"
                before = " (already firing before)" if firing.since_start else ""
                lines.append(f"- {alert.rule.name} {_labels_text(firing.labels)}: {_time(firing.fired_at)}{before} "
                             f"to {end}{length}")
        return lines

    def _difference(self, markdown: bool) -> list[str]:
        changes = self.changes()
        out = ["**Difference from BASE**" if markdown else "Difference from BASE:"]
        counts = {kind: sum(1 for c in changes if c.kind == kind) for kind in ("gained", "lost", "earlier", "later")}
        out.append(", ".join(f"{n} {kind}" for kind, n in counts.items()) + ".")
        for change in changes:
            firing = change.head or change.base
            name = firing.alertname
            if change.kind in ("earlier", "later"):
                detail = f"fires {_duration(abs(change.shift_ms))} {change.kind} ({_time(change.head.fired_at)})"
            else:
                detail = f"{change.kind}: fires {_time(firing.fired_at)}"
            out.append(f"- {name} {_labels_text(change.labels)}: {detail}")
        live = sorted({rec for r in (self.base, self.head) for rec, has in r.receivers.items() if has})
        moved = [(rec, len(self.base.pages(rec)), len(self.head.pages(rec))) for rec in live]
        moved = [m for m in moved if m[1] != m[2]]
        out.append("Notifications per receiver: " + (", ".join(f"{rec} {a} -> {b}" for rec, a, b in moved) or "unchanged") + ".")
        return out

    def text(self) -> str:
        return "\n".join(self.lines(markdown=False)) + "\n"

    def markdown(self) -> str:
        return "\n".join(self.lines(markdown=True)) + "\n"


def _detected(detection: Detection) -> str:
    if detection.page is None:
        return "missed (no notification of an alert that began in it)"
    alerts = sorted({dict(a)["alertname"] for a in detection.page.firing})
    return f"first notification after {_duration(detection.delay_ms)} ({detection.page.receiver}: {', '.join(alerts)})"


# ------------------------------------------------------------------------------ the command


def render_revision(stack: str, revision: str) -> RenderedStack:
    """The stack as the revision's own code renders it."""
    with tempfile.TemporaryDirectory(prefix="backtest-base-") as workdir:
        try:
            rendered = rendered_at(stack, revision, Path(workdir))
        except CheckoutError as error:
            raise BacktestError(f"BASE {revision}: cannot be checked out: {error}") from None
        except RenderError as error:
            raise BacktestError(f"BASE {revision}: stack {stack} does not render: {error.lines[-1]}") from None
    if rendered is None:
        raise BacktestError(f"BASE {revision}: has no stack file Pulumi.{stack}.yaml")
    return rendered


def _secret(args: argparse.Namespace, name: str, file_flag: str) -> str:
    path = getattr(args, file_flag)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise BacktestError(f"--{file_flag.replace('_', '-')}: cannot be read: {error.strerror}") from None
    return os.environ.get(ENVIRONMENT[name], "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.backtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--base", help="a git revision whose rules to compare with (rendered with its own code)")
    parser.add_argument("--from", dest="start", default=f"now-{DEFAULT_RANGE}", help="start (default: now-7d)")
    parser.add_argument("--to", dest="end", default="now", help="end (default: now)")
    parser.add_argument("--incidents", type=Path, help="YAML list of {name, start, end}")
    parser.add_argument("--url", help=f"the query API (default: ${ENVIRONMENT['url']})")
    parser.add_argument("--tenant", help=f"Mimir's tenant, sent as X-Scope-OrgID (default: ${ENVIRONMENT['tenant']})")
    parser.add_argument("--token-file", help=f"a bearer token (default: ${ENVIRONMENT['token']})")
    parser.add_argument("--password-file", help=f"the basic-auth password of ${ENVIRONMENT['user']} "
                                                f"(default: ${ENVIRONMENT['password']})")
    parser.add_argument("--match", action="append", default=[], help="a label matcher added to every raw series read")
    parser.add_argument("--align-to-source", action="store_true",
                        help="evaluate each group when the source's own Prometheus does")
    parser.add_argument("--lookback-delta", default=LOOKBACK_DELTA, help="the source's query lookback (default 5m)")
    parser.add_argument("--parallel", type=int, default=2, help="queries at a time (default 2)")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--output", type=Path, help="write the report here (default: standard output)")
    args = parser.parse_args(argv)
    try:
        url = args.url or os.environ.get(ENVIRONMENT["url"], "")
        if not url:
            raise BacktestError(f"no query API: give --url or set {ENVIRONMENT['url']} (a Prometheus, or Mimir's "
                                ".../prometheus)")
        api = QueryApi.connect(url, token=_secret(args, "token", "token_file"), user=os.environ.get(ENVIRONMENT["user"], ""),
                               password=_secret(args, "password", "password_file"),
                               tenant=args.tenant or os.environ.get(ENVIRONMENT["tenant"], ""))
        now = round(time.time() * 1000)
        start, end = parse_time(args.start, now), parse_time(args.end, now)
        incidents = load_incidents(args.incidents, now) if args.incidents else []
        try:
            _, rendered = render_stack(args.stack)
        except RenderError as error:
            raise BacktestError("\n".join(error.lines)) from None
        head = RuleSet.from_rendered(rendered)
        base = RuleSet.from_rendered(render_revision(args.stack, args.base)) if args.base else None
        options = dict(matchers=tuple(args.match), align_to_source=args.align_to_source, parallel=args.parallel,
                       lookback_delta=args.lookback_delta, show_progress=sys.stderr.isatty())
        head_result = run(head, api, start, end, label="HEAD (working tree)", **options)
        base_result = run(base, api, start, end, label=f"BASE {args.base}", **options) if base else None
    except BacktestError as error:
        print(error, file=sys.stderr)
        return 2
    report = Report(args.stack, api.where, head_result, base_result, incidents,
                    tolerance_ms=duration_ms(head.evaluation_interval))
    text = {"text": report.text, "markdown": report.markdown,
            "json": lambda: json.dumps(report.as_json(), indent=2) + "\n"}[args.format]()
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
