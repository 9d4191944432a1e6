"""`make upgrade-check` (testkit/upgrade_check.py): a chart bump, templated at the previous and the new
version with the same values, refused on dropped CRD fields, immutable-field changes, data-bearing
objects replaced and values keys no longer read; a previous version that cannot be had is skipped
with the reason."""

from __future__ import annotations

import copy
import shutil

import pytest

from monitoring.versions import Chart
from testkit import upgrade_check
from testkit.upgrade_check import Outcome, dropped_crd_fields, report
from tools import charts
from tools.program import render_stack
from tools.templating import template_rendered, template_stack


def crd(*versions: tuple[str, dict]) -> dict:
    return {"kind": "CustomResourceDefinition", "metadata": {"name": "probes.monitoring.coreos.com"},
            "spec": {"versions": [{"name": name, "served": True, "schema": {"openAPIV3Schema": schema}}
                                  for name, schema in versions]}}


SPEC = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "interval": {"type": "string"},
    "targets": {"type": "object", "properties": {"staticConfig": {"type": "object", "properties": {
        "static": {"type": "array", "items": {"type": "string"}}, "labels": {"type": "object"}}}}},
    "endpoints": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "string"}}}},
}}}}


def without(schema: dict, *path: str) -> dict:
    schema = copy.deepcopy(schema)
    node = schema
    for name in path[:-1]:
        node = node["properties"][name] if "properties" in node and name in node["properties"] else node["items"]
    del node["properties"][path[-1]]
    return schema


def test_a_field_or_version_the_new_crds_drop_is_found_and_an_added_one_is_not():
    assert dropped_crd_fields([crd(("v1", SPEC))], [crd(("v1", SPEC))]) == []
    grown = copy.deepcopy(SPEC)
    grown["properties"]["spec"]["properties"]["scrapeTimeout"] = {"type": "string"}
    assert dropped_crd_fields([crd(("v1", SPEC))], [crd(("v1", grown))]) == []
    # A dropped object is reported once, not with every field under it.
    assert dropped_crd_fields([crd(("v1", SPEC))], [crd(("v1", without(SPEC, "spec", "targets")))]) == [
        "CRD probes.monitoring.coreos.com v1: field spec.targets dropped"]
    assert dropped_crd_fields([crd(("v1", SPEC))], [crd(("v1", without(SPEC, "spec", "endpoints", "[]", "port")))]) == [
        "CRD probes.monitoring.coreos.com v1: field spec.endpoints[].port dropped"]
    assert dropped_crd_fields([crd(("v1alpha1", SPEC), ("v1", SPEC))], [crd(("v1", SPEC))]) == [
        "CRD probes.monitoring.coreos.com: version v1alpha1 no longer served"]


def test_the_report_says_what_was_checked_and_fails_only_on_problems():
    outcomes = [Outcome("alloy", "1.11.1", "1.11.1"), Outcome("loki", "18.10.1", "18.11.0", stacks=["dev", "prod"]),
                Outcome("mimir-distributed", "5.6.0", "5.7.0", skipped="mimir-distributed 5.6.0 is not available: x"),
                Outcome("kube-prometheus-stack", "88.4.0", "88.5.3", ["dev: values key a.b is read by ..."], stacks=["dev"])]
    code, text = report(outcomes)
    assert code == 1
    assert text.splitlines() == [
        "alloy 1.11.1: unchanged, nothing to check",
        "loki 18.10.1 -> 18.11.0: ok (dev, prod)",
        "mimir-distributed 5.6.0 -> 5.7.0: SKIPPED: mimir-distributed 5.6.0 is not available: x",
        "kube-prometheus-stack 88.4.0 -> 88.5.3: FAILED (dev)",
        "  dev: values key a.b is read by ...",
        "bumps checked: loki 18.10.1 -> 18.11.0, kube-prometheus-stack 88.4.0 -> 88.5.3",
    ]
    assert report(outcomes[:3])[0] == 0


def test_the_previous_pins_are_read_from_the_revision():
    pins = upgrade_check.pins_at("HEAD")
    assert set(pins) == set(upgrade_check.PINNED)
    assert all(version[0].isdigit() for version in pins.values())


def test_an_unknown_chart_is_refused(capsys):
    assert upgrade_check.main(["--previous", "lokki=1.0.0"]) == 2
    assert "--previous names no chart the program installs: lokki" in capsys.readouterr().err


def available_or_skip(chart: str, version: str) -> None:
    previous = Chart(chart, version, upgrade_check.PINNED[chart].repo)
    if charts.ensure(previous).startswith("unavailable"):
        pytest.skip(f"{chart} {version} is not available: {charts.unavailable_reason(previous)}")


@pytest.mark.charts
def test_a_chart_bump_that_keeps_everything_passes():
    """Loki 18.10.1 -> 18.11.0, the bump the pinned version was: every check, the values keys included."""
    available_or_skip("loki", "18.10.1")
    output = template_stack("dev")
    if output.releases["loki"].skipped:
        pytest.skip(output.releases["loki"].skipped)
    assert upgrade_check.check_release(output, "loki", "18.10.1") == []


@pytest.mark.charts
def test_a_values_key_the_new_chart_no_longer_reads_fails_the_bump(tmp_path, monkeypatch):
    """The negative case through the whole check: the pinned blackbox exporter chart made to stop reading
    `resources` (as a chart renaming a key does), upgraded to from an unchanged copy of itself."""
    pinned = upgrade_check.PINNED["prometheus-blackbox-exporter"]
    for chart in charts.CHARTS:
        if charts.chart_dir(chart) is None:
            pytest.skip(charts.unavailable_reason(chart))
        (tmp_path / f"{chart.name}-{chart.version}").symlink_to(charts.chart_dir(chart))
    source = charts.chart_dir(pinned)
    previous = tmp_path / f"{pinned.name}-11.17.1"
    shutil.copytree(source, previous, symlinks=True)
    meta = previous / "Chart.yaml"
    meta.write_text(meta.read_text().replace(f"version: {pinned.version}", "version: 11.17.1"))
    new = tmp_path / f"{pinned.name}-{pinned.version}"
    new.unlink()
    shutil.copytree(source, new, symlinks=True)
    helpers = new / "templates" / "_helpers.tpl"
    assert "{{- with .Values.resources }}" in helpers.read_text()
    helpers.write_text(helpers.read_text().replace("{{- with .Values.resources }}", "{{- with .Values.resourcez }}"))
    monkeypatch.setenv("CHART_SOURCES", str(tmp_path))
    settings, rendered = render_stack("prod")
    output = template_rendered(rendered, settings)
    problems = upgrade_check.check_release(output, pinned.name, "11.17.1")
    assert problems and all(p.startswith("prod: values key resources.") for p in problems), problems
    assert f"prod: values key resources.limits.memory is read by {pinned.name} 11.17.1, not by {pinned.version}" in problems
