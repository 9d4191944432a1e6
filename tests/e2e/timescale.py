"""Compress time in rendered Prometheus rules and Alertmanager config by one factor.

Every duration is divided by the same factor: rule group intervals, `for`, range windows and
subquery steps (`[5m]`, `[1d:1h]`), `offset`s, and Alertmanager's group_wait / group_interval /
repeat_interval / resolve_timeout. A duration that does not divide into whole milliseconds is
refused rather than rounded, so the scaled pipeline keeps every ratio between its timings.

Not scaled, on purpose: numeric seconds inside expressions (`rate5m * 300 >= 20`) convert
per-second rates to counts; they are plain numbers to PromQL, and the rates they multiply are per
real second whatever the window. The horizon of `predict_linear` (its second argument, a number of
seconds) is scaled: it is a span of the scenario's time, and a slope measured in compressed time
over the real horizon would forecast twenty times too far (a queue growing for a minute would be
"full within the hour" at once). `keep_firing_for` is a duration like `for`, scaled alike.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from config.types import duration_ms
from policy.duration import DURATION_UNITS_MS

_DURATION = r"(?:\d+(?:ms|[ywdhms]))+"
_RANGE = re.compile(rf"\[\s*({_DURATION})\s*(?::\s*({_DURATION})?\s*)?\]")
_OFFSET = re.compile(rf"\boffset\s+(-?)({_DURATION})\b")
# PromQL string literals: durations are never rewritten inside them (label regexes, for one).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def format_ms(ms: int) -> str:
    """A duration in the largest single unit that divides it (d at most: a "1w" reads as "7d")."""
    if ms == 0:
        return "0s"
    for unit in ("d", "h", "m", "s", "ms"):
        if ms % DURATION_UNITS_MS[unit] == 0:
            return f"{ms // DURATION_UNITS_MS[unit]}{unit}"
    raise AssertionError("unreachable: every integer is whole milliseconds")


def scale_duration(text: str, factor: int) -> str:
    ms = duration_ms(text)
    if ms % factor:
        raise ValueError(f"{text} / {factor} is not a whole number of milliseconds")
    return format_ms(ms // factor)


_PREDICT_LINEAR = "predict_linear("


def _scale_horizons(code: str, factor: int) -> str:
    """`code` with the horizon (a literal number of seconds or a product of them, the last argument) of every
    `predict_linear(...)` divided by `factor`."""
    out, start = [], 0
    while (at := code.find(_PREDICT_LINEAR, start)) >= 0:
        depth, comma, end = 0, -1, at + len(_PREDICT_LINEAR)
        for end in range(at + len(_PREDICT_LINEAR), len(code)):
            ch = code[end]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                comma = end
        horizon = code[comma + 1:end].strip()
        # A number of seconds, or a product of numbers (the charts' `4 * 24 * 3600`).
        seconds = math.prod(int(n) for n in horizon.split("*")) if re.fullmatch(r"\d+(\s*\*\s*\d+)*", horizon) else None
        if comma < 0 or seconds is None or seconds % factor:
            raise ValueError(f"predict_linear horizon {horizon!r} is not whole seconds divisible by {factor}")
        out.append(code[start:comma + 1] + f" {seconds // factor}")
        start = end
    return "".join(out) + code[start:]


def scale_promql(expr: str, factor: int) -> str:
    """`expr` with every range window, subquery step, offset and `predict_linear` horizon divided by `factor`."""

    def scale_range(match: re.Match) -> str:
        window, step = match.group(1), match.group(2)
        if ":" not in match.group(0):
            return f"[{scale_duration(window, factor)}]"
        return f"[{scale_duration(window, factor)}:{scale_duration(step, factor) if step else ''}]"

    def scale_offset(match: re.Match) -> str:
        return f"offset {match.group(1)}{scale_duration(match.group(2), factor)}"

    pieces, last = [], 0
    for literal in _STRING.finditer(expr):
        code = expr[last:literal.start()]
        pieces.append(_OFFSET.sub(scale_offset, _RANGE.sub(scale_range, code)))
        pieces.append(literal.group(0))
        last = literal.end()
    pieces.append(_OFFSET.sub(scale_offset, _RANGE.sub(scale_range, expr[last:])))
    # A predict_linear's arguments hold no string literal in our rules and dashboards: its horizon
    # is found in the whole expression, after the windows are scaled.
    return _scale_horizons("".join(pieces), factor)


def scale_rule_groups(groups: list[dict[str, Any]], factor: int) -> list[dict[str, Any]]:
    """Rule groups (as in a rule file) with interval, `for`, `keep_firing_for` and every expression scaled."""
    scaled = copy.deepcopy(groups)
    for group in scaled:
        if "interval" in group:
            group["interval"] = scale_duration(group["interval"], factor)
        for rule in group["rules"]:
            rule["expr"] = scale_promql(rule["expr"], factor)
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = scale_duration(rule[key], factor)
    return scaled


ROUTE_TIMINGS = ("group_wait", "group_interval", "repeat_interval")


def scale_alertmanager(config: dict[str, Any], factor: int) -> dict[str, Any]:
    """An Alertmanager config with resolve_timeout and every route's group timings scaled."""
    scaled = copy.deepcopy(config)
    if "resolve_timeout" in scaled.get("global", {}):
        scaled["global"]["resolve_timeout"] = scale_duration(scaled["global"]["resolve_timeout"], factor)

    def scale_route(route: dict[str, Any]) -> None:
        for key in ROUTE_TIMINGS:
            if key in route:
                route[key] = scale_duration(route[key], factor)
        for child in route.get("routes", []):
            scale_route(child)

    scale_route(scaled["route"])
    return scaled
