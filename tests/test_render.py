"""`make render`: the files a reviewer diffs, and the refusal of bad config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.support import ROOT, SECRET_VALUES, run_stack
from tools.mock_runtime import plain
from tools import render
from tools.rendered import RELEASE
from tools.go_tools import binary, reported_version
from tools.stacks import stacks


@pytest.fixture(scope="module", params=stacks())
def rendered(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    assert render.render(request.param, out_root=out) == 0
    return request.param, out / request.param


def test_resources_json_lists_every_registered_resource(rendered):
    stack, out = rendered
    resources = json.loads((out / "resources.json").read_text())
    assert len(resources) == len(run_stack(stack).resources) > 20
    for entry in resources:
        assert set(entry) <= {"type", "name", "parent", "inputs", "options", "aliases", "read"}
        # What the resource was called before (its own or its provider's renames): the same resource to a diff.
        assert all(len(alias.split(" ")) == 2 for alias in entry.get("aliases", []))
        assert entry["parent"] is None or entry["parent"].startswith(f"urn:pulumi:{stack}::webhook-monitoring::")
    buckets = [r for r in resources if r["type"] == "aws:s3/bucket:Bucket"]
    assert sorted(b["name"] for b in buckets) == ["logs-bucket", "metrics-bucket"]


def test_render_is_deterministic(rendered, tmp_path):
    stack, out = rendered
    assert render.render(stack, out_root=tmp_path) == 0
    for first in sorted(p for p in out.rglob("*") if p.is_file()):
        second = tmp_path / stack / first.relative_to(out)
        assert second.read_bytes() == first.read_bytes(), first.name


def test_secrets_in_resources_json_are_marked_and_placeholders(rendered):
    stack, out = rendered
    text = (out / "resources.json").read_text()
    for value in SECRET_VALUES.values():
        assert value not in text
    if stack == "prod":
        provider = next(r for r in json.loads(text) if r["type"] == "pulumi:providers:kubernetes")
        assert provider["inputs"]["kubeconfig"] == {"__secret__": "<kubeconfig of the infrastructure stack>"}


def test_bad_config_exits_non_zero_with_every_problem(tmp_path, capsys):
    stack_file = tmp_path / "Pulumi.broken.yaml"
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config["config"]["webhook-monitoring:prometheus"] = {"retention": "two weeks", "replicaz": 2}
    stack_file.write_text(yaml.safe_dump(config))
    assert render.render("broken", path=stack_file, out_root=tmp_path) == 2
    err = capsys.readouterr().err
    assert "webhook-monitoring:prometheus.retention: got 'two weeks', expected a duration" in err
    assert "webhook-monitoring:prometheus.replicaz: unknown key; did you mean 'replicas'?" in err
    assert not (tmp_path / "broken").exists(), "nothing is written for a bad config"


def test_render_command_line_refuses_an_unknown_stack():
    result = subprocess.run([sys.executable, "-m", "tools.render", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert {"dev", "prod"} <= set(stacks())  # and any other stack file the checkout holds
    assert f"no stack file Pulumi.nope.yaml: stacks are {', '.join(stacks())}" in result.stderr


def test_render_writes_every_file_of_the_contract(rendered):
    stack, out = rendered
    assert sorted(p.name for p in (out / "helm").iterdir()) == sorted(
        ["alloy.yaml", "kube-prometheus-stack.yaml", "loki.yaml", "mimir-distributed.yaml", "prometheus-operator-crds.yaml"]
        + (["prometheus-blackbox-exporter.yaml"] if stack == "prod" else [])
    )
    rules = yaml.safe_load((out / "prometheus-rules.yaml").read_text())
    assert {g["name"] for g in rules["groups"]} >= {"webhook-delivery.recording", "webhook-delivery.alerts"}
    alertmanager = yaml.safe_load((out / "alertmanager.yaml").read_text())
    assert alertmanager["route"]["receiver"] == "platform"  # what is not the team's
    assert len(list((out / "dashboards").glob("*.json"))) == 9
    assert (out / "logging" / "config.alloy").read_text().startswith("// Rendered by monitoring/logging/alloy.py")
    loki_rules = yaml.safe_load((out / "logging" / "loki-rules.yaml").read_text())
    assert {r["alert"] for g in loki_rules["groups"] for r in g["rules"]} == {"WebhookLogErrorBurst", "WebhookServicePanicked"}


def test_render_writes_the_promtail_config_when_promtail_is_the_agent(tmp_path):
    stack_file = tmp_path / "Pulumi.promtail.yaml"
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config["config"]["webhook-monitoring:logging"] = {"agent": "promtail"}
    stack_file.write_text(yaml.safe_dump(config))
    assert render.render("promtail", path=stack_file, out_root=tmp_path) == 0
    files = sorted(p.name for p in (tmp_path / "promtail" / "logging").iterdir())
    assert files == ["loki-rules.yaml", "promtail.yaml"]
    promtail = yaml.safe_load((tmp_path / "promtail" / "logging" / "promtail.yaml").read_text())
    assert promtail["clients"][0]["url"].endswith("/loki/api/v1/push")


def test_rendered_rules_and_alertmanager_config_pass_the_real_checkers(rendered):
    stack, out = rendered
    rules = subprocess.run([binary("promtool"), "check", "rules", str(out / "prometheus-rules.yaml")], capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = subprocess.run([binary("amtool"), "check-config", str(out / "alertmanager.yaml")], capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr
    receivers = sorted(r["name"] for r in yaml.safe_load((out / "alertmanager.yaml").read_text())["receivers"])
    # Dev sets no heartbeat URL (optional there): its Watchdog goes to `null`, which info alerts use too.
    assert receivers == (["heartbeat", "null", "pagerduty", "platform", "slack"] if stack == "prod"
                         else ["null", "platform", "slack"])
    assert f" - {len(receivers)} receivers" in config.stdout


def test_helm_files_hold_exactly_the_release_values_with_readable_multi_line_strings(rendered):
    stack, out = rendered
    releases = [r for r in run_stack(stack).resources if r.type == RELEASE]
    assert len(releases) >= 4
    for release in releases:
        text = (out / "helm" / f"{release.inputs['chart']}.yaml").read_text()
        assert yaml.safe_load(text) == plain(release.inputs["values"], reveal_secrets=True), release.inputs["chart"]
    # Embedded configuration reads (and diffs) line by line, not as one escaped string.
    assert "    content: |\n      // Rendered by monitoring/logging/alloy.py" in (out / "helm" / "alloy.yaml").read_text()


def test_rendered_image_tags_are_the_versions_the_tests_run(rendered):
    """What is tested is what is deployed: the image tags in the Helm values are those of the
    binaries every rule test, routing test and live scenario runs (built by `make tools`)."""
    stack, out = rendered
    kube_prometheus_stack = yaml.safe_load((out / "helm" / "kube-prometheus-stack.yaml").read_text())
    tags = {
        "prometheus": kube_prometheus_stack["prometheus"]["prometheusSpec"]["image"]["tag"],
        "alertmanager": kube_prometheus_stack["alertmanager"]["alertmanagerSpec"]["image"]["tag"],
    }
    if stack == "prod":  # the probes run the blackbox exporter
        tags["blackbox_exporter"] = yaml.safe_load((out / "helm" / "prometheus-blackbox-exporter.yaml").read_text())["image"]["tag"]
    for command, tag in tags.items():
        # `v3.14.0-distroless` is Prometheus 3.14.0 on a distroless base.
        assert tag.removeprefix("v").removesuffix("-distroless") == reported_version(command), command
    for command in ("promtool", "amtool"):
        assert reported_version(command) == reported_version({"promtool": "prometheus", "amtool": "alertmanager"}[command])

