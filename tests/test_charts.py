"""The chart check (testkit/chart_check.py) in the suite: every release of every stack through the
pinned charts, validated, its intent asserted, and no values key left unread.

Without a chart's source (tools/charts.py says where they come from), the releases that need it
are skipped with the reason, never passed.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from monitoring import versions
from testkit import chart_check, k8s
from tools import charts
from tools.templating import ChartRelease, StackOutput, template_stack
from testkit.chart_intent import CHECKS
from tools.program import stack_file
from tools.stacks import stacks

pytestmark = pytest.mark.charts

STACKS = sorted(stacks())


def output_of(stack: str) -> StackOutput:
    return template_stack(stack)


def release_or_skip(output: StackOutput, chart: str) -> ChartRelease:
    release = output.releases.get(chart)
    if release is None:
        pytest.skip(f"stack {output.stack} installs no {chart}")
    if release.skipped:
        pytest.skip(release.skipped)
    return release


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_is_valid(stack):
    output = output_of(stack)
    if output.unavailable():
        pytest.skip(output.unavailable())
    assert chart_check.validation_problems(output) == []
    # Custom resources were checked against the stack's CRDs, not waved through.
    validators = k8s.crd_validators(output.crds())
    assert ("monitoring.coreos.com/v1", "ServiceMonitor") in validators or not output.crds()


def test_validation_refuses_an_unknown_field_and_a_wrong_type():
    output = output_of("prod")
    release_or_skip(output, "kube-prometheus-stack")
    monitor = copy.deepcopy(output.objects("kube-prometheus-stack", "ServiceMonitor")[0])
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    deployment = copy.deepcopy(output.objects("kube-prometheus-stack", "Deployment")[0])
    deployment["spec"]["replicas"] = "two"
    stranger = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    problems = list(k8s.validation_problems([monitor, deployment, stranger], k8s.crd_validators(output.crds())))
    assert len(problems) == 3, problems
    assert "'intervall' was unexpected" in problems[0]
    assert "spec.replicas: 'two' is not of type" in problems[1]
    assert "no schema for example.com/v1 Widget" in problems[2]


@pytest.mark.parametrize("stack, check", [(s, c) for s in STACKS for c in CHECKS], ids=lambda v: getattr(v, "name", v))
def test_intent(stack, check):
    output = output_of(stack)
    reason = check.skip_reason(output)
    if reason:
        pytest.skip(reason)
    check.run(output)


@pytest.mark.parametrize("stack", STACKS)
def test_no_values_key_is_ignored_by_the_chart(stack):
    output = output_of(stack)
    checked = 0
    for release in output.releases.values():
        if release.skipped:
            continue
        assert chart_check.ignored_keys(output, release) == [], release.name
        checked += 1
    if not checked:
        pytest.skip("no chart is available")


def test_an_ignored_key_is_found():
    output = output_of("prod")
    release = copy.deepcopy(release_or_skip(output, "prometheus-blackbox-exporter"))
    # Misspelled keys, as Helm takes them without a word.
    release.values["image"]["tagg"] = "v0.27.0"
    release.values["replicaz"] = 2
    assert chart_check.ignored_keys(output, release) == ["image.tagg", "replicaz"]


@pytest.mark.parametrize("stack, chart", [(s, c.name) for s in STACKS for c in charts.CHARTS])
def test_every_release_is_templated_or_skipped_with_the_reason(stack, chart):
    """A release whose chart source is not available (mimir-distributed where only the chart
    repositories' git clones are) is skipped with the reason, here and in every check needing it."""
    release = release_or_skip(output_of(stack), chart)
    assert release.objects, f"{chart} produced no object"


@pytest.fixture(scope="module")
def promtail_output(tmp_path_factory) -> StackOutput:
    """The dev stack with Promtail, the log agent teams can still choose, as the agent."""
    path = tmp_path_factory.mktemp("promtail") / "Pulumi.promtail.yaml"
    config = yaml.safe_load(stack_file("dev").read_text())
    config["config"]["webhook-monitoring:logging"] = {"agent": "promtail"}
    path.write_text(yaml.safe_dump(config))
    return template_stack("promtail", path)


def test_promtail_as_the_agent_is_valid_and_as_intended(promtail_output):
    release = release_or_skip(promtail_output, "promtail")
    if promtail_output.unavailable():
        pytest.skip(promtail_output.unavailable())
    assert "alloy" not in promtail_output.releases
    assert chart_check.validation_problems(promtail_output) == []
    (promtail_check,) = [c for c in CHECKS if c.chart == "promtail"]
    promtail_check.run(promtail_output)
    assert chart_check.ignored_keys(promtail_output, release) == []



def test_the_operator_built_for_the_tests_is_the_one_the_chart_deploys():
    """PROMETHEUS_OPERATOR_VERSION is kube-prometheus-stack's appVersion, the Operator image it runs."""
    chart_dir = charts.chart_dir(versions.KUBE_PROMETHEUS_STACK)
    if chart_dir is None:
        pytest.skip(charts.unavailable_reason(versions.KUBE_PROMETHEUS_STACK))
    app_version = yaml.safe_load((chart_dir / "Chart.yaml").read_text())["appVersion"]
    assert app_version == f"v{versions.PROMETHEUS_OPERATOR_VERSION}"
    operator = output_of("prod").one("kube-prometheus-stack", "Deployment", "kube-prometheus-stack-operator")
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{app_version}")


@pytest.fixture(scope="module")
def overridden_output(tmp_path_factory) -> StackOutput:
    """The dev stack with values of its own for kube-prometheus-stack (`helmValues`): one the chart reads,
    one it does not (a misspelled key)."""
    path = tmp_path_factory.mktemp("overrides") / "Pulumi.overrides.yaml"
    config = yaml.safe_load(stack_file("dev").read_text())
    config["config"]["webhook-monitoring:helmValues"] = {"kube-prometheus-stack": {
        "grafana": {"replicas": 2}, "prometheusOperator": {"logLevell": "debug"}}}
    path.write_text(yaml.safe_dump(config))
    return template_stack("overrides", path)


def test_the_stacks_own_helm_values_reach_the_chart_and_a_key_it_does_not_read_is_found(overridden_output):
    release = release_or_skip(overridden_output, "kube-prometheus-stack")
    assert release.values["grafana"]["replicas"] == 2
    assert release.values["grafana"]["persistence"]["enabled"] is True  # merged over the program's, not instead
    grafana = next(o for o in release.objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("grafana"))
    assert grafana["spec"]["replicas"] == 2
    assert chart_check.ignored_overrides(overridden_output, release) == ["prometheusOperator.logLevell"]
    # The shipped stacks set none.
    assert chart_check.ignored_overrides(output_of("dev"), release_or_skip(output_of("dev"), "kube-prometheus-stack")) == []
