"""The time compression the live harness applies to rendered rules and Alertmanager config."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from monitoring.rules import rule_groups
from tests.e2e.harness import FACTOR
from tests.e2e.timescale import (
    scale_alertmanager,
    scale_duration,
    scale_promql,
    scale_rule_groups,
)
from tests.support import stack_settings
from tools.go_tools import binary


@pytest.mark.parametrize("text, factor, scaled", [
    ("5m", 20, "15s"), ("2m", 20, "6s"), ("30s", 20, "1500ms"), ("10m", 20, "30s"), ("1h", 20, "3m"),
    ("1d", 20, "72m"), ("3d", 20, "216m"), ("1w", 20, "504m"), ("12h", 20, "36m"), ("0s", 20, "0s"),
    ("10s", 20, "500ms"), ("1w", 1, "7d"),
])
def test_scale_duration(text, factor, scaled):
    assert scale_duration(text, factor) == scaled


def test_scale_duration_refuses_what_does_not_divide_into_milliseconds():
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        scale_duration("10s", 30_000)


def test_scale_promql_scales_windows_subqueries_and_offsets_but_not_numbers_or_strings():
    expr = ('sum_over_time(errors[1h]) / sum_over_time(total[1h]) > 0.05 and rate5m * 300 >= 20 '
            'and x offset 1w and max_over_time(deriv(q[10m])[1d:5m]) and y[2h:] '
            'and up{job=~"a[5m]", path="offset 1w"} and z offset -2m')
    assert scale_promql(expr, 20) == (
        'sum_over_time(errors[3m]) / sum_over_time(total[3m]) > 0.05 and rate5m * 300 >= 20 '
        'and x offset 504m and max_over_time(deriv(q[30s])[72m:15s]) and y[6m:] '
        'and up{job=~"a[5m]", path="offset 1w"} and z offset -6s')


def test_scale_promql_scales_the_horizon_of_predict_linear():
    expr = ('predict_linear(q{a="b"}[30m], 3600) > 10000 and max by (p) (predict_linear(v[6h], 345600)) < 0 '
            'and predict_linear(max_over_time(w[1d:1h]), 604800)')
    assert scale_promql(expr, 20) == (
        'predict_linear(q{a="b"}[90s], 180) > 10000 and max by (p) (predict_linear(v[18m], 17280)) < 0 '
        'and predict_linear(max_over_time(w[72m:3m]), 30240)')
    # The charts' rules write the horizon as a product (KubePersistentVolumeFillingUp: 4 days).
    assert scale_promql("predict_linear(v[6h], 4 * 24 * 3600) < 0", 20) == "predict_linear(v[18m], 17280) < 0"
    with pytest.raises(ValueError, match="horizon"):
        scale_promql("predict_linear(q[1h], 3601)", 20)
    with pytest.raises(ValueError, match="horizon"):
        scale_promql("predict_linear(q[1h], 3600 / 2)", 20)


def test_scale_rule_groups_scales_for_interval_and_expr_and_leaves_the_input_alone():
    groups = [{"name": "g", "interval": "1m", "rules": [
        {"alert": "A", "expr": "rate(x[5m]) > 1", "for": "2m", "keep_firing_for": "5m", "labels": {"severity": "critical"}},
        {"record": "r", "expr": "sum(rate(x[5m]))"},
    ]}]
    assert scale_rule_groups(groups, 20) == [{"name": "g", "interval": "3s", "rules": [
        {"alert": "A", "expr": "rate(x[15s]) > 1", "for": "6s", "keep_firing_for": "15s", "labels": {"severity": "critical"}},
        {"record": "r", "expr": "sum(rate(x[15s]))"},
    ]}]
    assert groups[0]["rules"][0]["for"] == "2m"


def test_scale_alertmanager_scales_every_route_and_resolve_timeout():
    config = {"global": {"resolve_timeout": "5m"},
              "route": {"receiver": "a", "group_wait": "30s", "group_interval": "5m", "repeat_interval": "12h",
                        "routes": [{"receiver": "b", "group_wait": "0s", "group_interval": "1m", "repeat_interval": "5m"},
                                   {"receiver": "c", "matchers": ['severity="critical"']}]}}
    scaled = scale_alertmanager(config, 20)
    assert scaled["global"] == {"resolve_timeout": "15s"}
    assert [scaled["route"][k] for k in ("group_wait", "group_interval", "repeat_interval")] == ["1500ms", "15s", "36m"]
    assert scaled["route"]["routes"] == [
        {"receiver": "b", "group_wait": "0s", "group_interval": "3s", "repeat_interval": "15s"},
        {"receiver": "c", "matchers": ['severity="critical"']},
    ]
    assert config["route"]["group_wait"] == "30s"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_stack_rule_scales_and_stays_valid_for_promtool(tmp_path, stack):
    """No rule of a stack is left out of the live harness: every duration divides by FACTOR."""
    groups = rule_groups(stack_settings(stack))
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": scale_rule_groups(groups, FACTOR)}))
    result = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in result.stdout
