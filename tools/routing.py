"""Alertmanager's routing, walked in Python: the routes (and so the receivers and timings) an alert with
given labels reaches, and what Alertmanager refuses in a routing tree. `make verify`, `make render`,
`make backtest` and the live harness read it; it runs without amtool.

The refusals are Alertmanager 0.34's, at load (config/config.go): the root route names a receiver and has
no matchers or time intervals, every receiver a route names is defined, and so is every time interval,
and no two receivers share a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*')


def parse_matcher(matcher: str) -> tuple[str, str, str]:
    found = _MATCHER.fullmatch(matcher)
    if found is None:
        raise ValueError(f"cannot read the matcher {matcher!r} of the rendered routing")
    name, operator, quoted, bare = found.groups()
    return name, operator, bytes(quoted, "utf-8").decode("unicode_escape") if quoted is not None else bare


def matches(matcher: str, labels: dict[str, str]) -> bool:
    """Alertmanager's matching: a missing label is the empty string; regexes are anchored."""
    name, operator, value = parse_matcher(matcher)
    actual = labels.get(name, "")
    if operator in ("=", "!="):
        return (actual == value) == (operator == "=")
    return (re.fullmatch(value, actual) is not None) == (operator == "=~")


def route_matches(route: dict[str, Any], labels: dict[str, str], prefix: str = "") -> bool:
    """Whether labels match a route's matchers (and the older match/match_re), or with `prefix`
    (`source_`, `target_`) one side of an inhibit rule's; a missing label is the empty value."""
    return (all(matches(m, labels) for m in route.get(f"{prefix}matchers") or [])
            and all(labels.get(k, "") == v for k, v in (route.get(f"{prefix}match") or {}).items())
            and all(re.fullmatch(v, labels.get(k, "")) for k, v in (route.get(f"{prefix}match_re") or {}).items()))


# What a route inherits from its parent when it does not set it; the root's defaults are
# Alertmanager's own (dispatch.DefaultRouteOpts). Time intervals are not inherited.
ROUTE_DEFAULTS = {"receiver": "", "group_by": (), "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


@dataclass(frozen=True)
class MatchedRoute:
    """A route an alert ends in, with the options it takes from its ancestors."""

    path: tuple[int, ...]
    """Child indexes from the root: the route's identity (part of each alert group's key)."""
    receiver: str
    group_by: tuple[str, ...]
    """`("...",)`: every label."""
    group_wait: str
    group_interval: str
    repeat_interval: str
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        """The labels that name an alert's group on this route."""
        if "..." in self.group_by:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if labels.get(k)}


def _inherit(route: dict[str, Any], parent: Optional[MatchedRoute], path: tuple[int, ...]) -> MatchedRoute:
    inherited = vars(parent) if parent else ROUTE_DEFAULTS
    return MatchedRoute(
        path, route.get("receiver") or inherited["receiver"], tuple(route.get("group_by", inherited["group_by"])),
        *(route.get(key, inherited[key]) for key in ("group_wait", "group_interval", "repeat_interval")),
        tuple(route.get("mute_time_intervals", ())), tuple(route.get("active_time_intervals", ())))


def matching_routes(route: dict[str, Any], labels: dict[str, str], parent: Optional[MatchedRoute] = None,
                    path: tuple[int, ...] = ()) -> list[MatchedRoute]:
    """Every route an alert with `labels` ends in, as Alertmanager walks the tree: children first,
    in order, on past a match only with `continue`; the route itself when no child matches."""
    here = _inherit(route, parent, path)
    found: list[MatchedRoute] = []
    for index, child in enumerate(route.get("routes", [])):
        if route_matches(child, labels):
            found += matching_routes(child, labels, here, (*path, index))
            if not child.get("continue", False):
                break
    return found or [here]


def receivers_for(route: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Every receiver an alert with `labels` is sent to."""
    return [matched.receiver for matched in matching_routes(route, labels)]


def silent_receivers(config: dict[str, Any]) -> set[str]:
    """Receivers without a single integration: whatever reaches them is sent nowhere."""
    return {r["name"] for r in config.get("receivers", [])
            if not any(key.endswith("_configs") and value for key, value in r.items())}


def _routes(route: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield where, route
    for i, child in enumerate(route.get("routes") or []):
        yield from _routes(child, f"{where}.routes[{i}]")


def routing_problems(config: dict[str, Any]) -> list[str]:
    """What Alertmanager refuses to load in the configuration's routing, one line each naming the route."""
    root = config.get("route")
    if not root:
        return ["route: missing, expected the root route"]
    names = [r.get("name") for r in config.get("receivers") or []]
    intervals = {t.get("name") for key in ("time_intervals", "mute_time_intervals") for t in config.get(key) or []}
    problems = [f"receivers: {name!r} is defined {names.count(name)} times, expected once"
                for name in sorted(set(names), key=str) if names.count(name) > 1]
    if not root.get("receiver"):
        problems.append("route: no receiver, expected the default receiver every alert falls back to")
    if any(root.get(key) for key in ("matchers", "match", "match_re", "mute_time_intervals", "active_time_intervals")):
        problems.append("route: matchers or time intervals, expected none on the root route (every alert's fallback)")
    defined = ", ".join(str(n) for n in names)
    for where, route in _routes(root, "route"):
        if "receiver" in route and route["receiver"] not in names:
            problems.append(f"{where}.receiver: {route['receiver']!r} is not defined, expected one of the receivers "
                            f"({defined})")
        for key in ("mute_time_intervals", "active_time_intervals"):
            problems += [f"{where}.{key}: {name!r} is not defined, expected a time interval of the configuration"
                         for name in route.get(key) or [] if name not in intervals]
    return problems
