"""What the settings ask of the content, checked before anything is created: the alerts that routes and
overrides name exist, the receivers routes send to exist, extra panels name a dashboard of the stack, Helm
values name a pinned chart. One line per
problem, naming the full key, like config/checks.py (which cannot know alert names or the program's
receivers: they are content)."""

from __future__ import annotations

import difflib
from typing import Iterable

from config import Settings
from config.schema import NAMESPACE
from monitoring import versions
from monitoring.alertmanager import NULL, PAGERDUTY, PLATFORM, PROGRAM_RECEIVERS, SLACK, WATCHDOG
from monitoring.dashboards import UIDS
from monitoring.logging.logql import loki_rule_groups
from monitoring.rules.alerts import CHART_GUARD_ALERTS, all_alerts
from monitoring.rules.config import FOR_KEYS, THRESHOLD_KEYS, TUNABLE_THRESHOLDS, rule_config

PINNED_CHARTS = tuple(sorted(c.name for c in vars(versions).values() if isinstance(c, versions.Chart)))


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _within(value: float, tunable) -> bool:
    """Whole numbers within the bounds, or a share strictly between them."""
    if tunable.whole:
        return tunable.low <= value <= tunable.high and value.is_integer()
    return tunable.low < value < tunable.high


def content_problems(settings: Settings) -> list[str]:
    """Every problem of `alerting.routes`, `alerting.receivers`, `alerting.alertOverrides` and `helmValues`
    that needs the content to see."""
    ns = NAMESPACE + ":"
    alerting = settings.alerting
    rules = [a for alerts in all_alerts(rule_config(settings)).values() for a in alerts]
    rule_names = {a.name for a in rules}
    log_alerts = {r["alert"] for g in loki_rule_groups(settings) for r in g["rules"] if "alert" in r}
    disabled = {o.alert: i for i, o in enumerate(alerting.alert_overrides) if not o.enabled}
    routable = (rule_names | log_alerts | set(CHART_GUARD_ALERTS)) - {WATCHDOG}
    problems = []

    own_receivers = [str(r.name) for r in alerting.receivers]
    for i, name in enumerate(own_receivers):
        if name in PROGRAM_RECEIVERS:
            problems.append(f"{ns}alerting.receivers[{i}].name: got {name!r}, expected a name other than the "
                            f"program's receivers' ({', '.join(PROGRAM_RECEIVERS)})")
    program = [SLACK, *([PAGERDUTY] if alerting.pagerduty.enabled else []), PLATFORM, NULL]
    for i, route in enumerate(alerting.routes):
        receiver = str(route.receiver)
        if receiver not in own_receivers + program:
            problems.append(f"{ns}alerting.routes[{i}].receiver: got {receiver!r}, expected a receiver of "
                            f"alerting.receivers ({', '.join(own_receivers) or 'none is set'}) or of the program's "
                            f"({', '.join(program)}){_hint(receiver, own_receivers + program)}")
        for j, alert in enumerate(route.alerts):
            key = f"{ns}alerting.routes[{i}].alerts[{j}]"
            if alert == WATCHDOG:
                problems.append(f"{key}: got {alert!r}, expected an alert other than Watchdog, the dead man's switch "
                                "that only the heartbeat receiver takes")
            elif alert not in routable:
                problems.append(f"{key}: got {alert!r}, expected an alert of the stack (docs/alerting.md)"
                                f"{_hint(alert, routable)}")
            elif alert in disabled:
                problems.append(f"{key}: got {alert!r}, expected an alert that is deployed "
                                f"(alerting.alertOverrides[{disabled[alert]}] turns it off)")

    for i, override in enumerate(alerting.alert_overrides):
        key = f"{ns}alerting.alertOverrides[{i}]"
        name = override.alert
        if name == WATCHDOG:
            problems.append(f"{key}.alert: got {name!r}, expected an alert other than Watchdog, the dead man's switch "
                            "(the heartbeat service pages when it stops)")
            continue
        if name not in rule_names:
            hint = (" (a log alert: logging.errorBurstLines sets its threshold)" if name in log_alerts
                    else _hint(name, rule_names))
            problems.append(f"{key}.alert: got {name!r}, expected one of the stack's alert rules{hint}")
            continue
        own = [a for a in rules if a.name == name]
        if (override.severity or override.for_) and len({(a.severity, a.for_) for a in own}) > 1:
            problems.append(f"{key}: got {name!r}, expected an alert whose rules share one severity and `for`: its "
                            f"{len(own)} rules differ, so one override cannot say which it means")
        if override.for_ is not None and name in FOR_KEYS:
            problems.append(f"{key}.for: got {override.for_.text!r}, expected no `for` here: set {FOR_KEYS[name]}")
        if override.threshold is not None:
            tunable = TUNABLE_THRESHOLDS.get(name)
            if name in THRESHOLD_KEYS:
                problems.append(f"{key}.threshold: got {override.threshold:g}, expected no threshold here: set "
                                f"{THRESHOLD_KEYS[name]}")
            elif tunable is None:
                problems.append(f"{key}.threshold: got {override.threshold:g}, expected a threshold only for an alert "
                                f"that compares one number no setting holds ({', '.join(sorted(TUNABLE_THRESHOLDS))})")
            elif not _within(override.threshold, tunable):
                problems.append(f"{key}.threshold: got {override.threshold:g}, expected {tunable.expected}")

    for i, panel in enumerate(settings.grafana.extra_panels):
        if panel.dashboard not in UIDS:
            problems.append(f"{ns}grafana.extraPanels[{i}].dashboard: got {panel.dashboard!r}, expected the UID of one of "
                            f"the stack's dashboards ({', '.join(UIDS)}){_hint(panel.dashboard, UIDS)}")

    for chart in settings.helm_values:
        if chart not in PINNED_CHARTS:
            problems.append(f"{ns}helmValues.{chart}: unknown chart{_hint(chart, PINNED_CHARTS)} (the program's "
                            f"charts: {', '.join(PINNED_CHARTS)})")
    return problems
