"""What only a render of the whole program can check (each test renders a stack variant: the serial phase
runs them): the receivers' secrets kept secret end to end, a routing edited in code to a receiver that does
not exist refused, the stack's own Helm values merged into the release, listed, and refused for a chart
the stack does not install, and the requests the summary prints (`make footprint`'s, for the very values
rendered)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from monitoring import alertmanager
from tests.support import ROOT, SECRET_VALUES, render_in, rendered_stack, run_stack
from tests.test_program import strings
from tools.footprint import known_footprint, stack_footprint
from tools.mock_runtime import plain
from tools.rendered import RenderedStack
from tools.summary import requests_lines
from tools.templating import template_stack

pytestmark = pytest.mark.variants

NS = "webhook-monitoring"
CANARIES = {"payments-oncall": "https://hooks.slack.com/services/T1/B2/payments-receiver-canary",
            "payments-pager": "payments-routing-key-canary"}
RECEIVERS = {"alerting": {
    "receivers": [{"name": "payments-oncall", "slackChannel": "#payments-alerts"},
                  {"name": "payments-pager", "pagerduty": True}],
    "routes": [{"alerts": ["WebhookQueueGrowing"], "receiver": "payments-oncall"},
               {"alerts": ["WebhookQueueBacklog"], "receiver": "payments-pager"}]}}


def rendered_in(folder: Path, stack: str, edit: dict) -> tuple[int, str, str]:
    """`make render` of Pulumi.dev.yaml with `edit` (whole keys), alone in `folder`, as `stack`."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"].update({f"{NS}:{key}": value for key, value in edit.items()})
    (folder / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    return render_in(folder, stack)


def test_a_receivers_secret_reaches_its_receiver_only_as_a_secret():
    run = run_stack("prod", RECEIVERS, {**SECRET_VALUES, "receiverSecrets": json.dumps(CANARIES)})
    assert run.error is None, run.error
    leaks = [(r.type, r.name) for r in run.resources for text, secret in strings(plain(r.inputs))
             if not secret and any(c in text for c in CANARIES.values())]
    assert leaks == []
    config = RenderedStack.from_run("prod", run).alertmanager
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["payments-oncall"]["slack_configs"][0]["api_url"] == CANARIES["payments-oncall"]
    assert receivers["payments-pager"]["pagerduty_configs"][0]["routing_key"] == CANARIES["payments-pager"]


def test_a_route_edited_in_code_to_a_receiver_that_does_not_exist_fails_the_render(tmp_path, monkeypatch):
    team_routes = alertmanager.alertmanager_config

    def misspelled(settings, receivers):
        config = team_routes(settings, receivers)
        config["route"]["routes"][3]["routes"][-1]["receiver"] = "nul"  # a hand edit, as the issue found it
        return config

    monkeypatch.setattr("components.alerting.alertmanager_config", misspelled)
    code, out, err = rendered_in(tmp_path, "dev", {})
    assert code == 2 and out == ""
    assert err.splitlines() == ["alertmanager.yaml: route.routes[3].routes[3].receiver: 'nul' is not defined, expected "
                                "one of the receivers (null, platform, slack)"]
    assert not (tmp_path / "build" / "dev").exists(), "nothing is written for a routing Alertmanager refuses"


def test_the_stacks_own_helm_values_are_merged_and_listed(tmp_path):
    code, out, err = rendered_in(tmp_path, "dev", {"helmValues": {
        "kube-prometheus-stack": {"grafana": {"replicas": 2, "podDisruptionBudget": {"minAvailable": 1}}}}})
    assert code == 0, err
    values = yaml.safe_load((tmp_path / "build" / "dev" / "helm" / "kube-prometheus-stack.yaml").read_text())
    assert values["grafana"]["replicas"] == 2 and values["grafana"]["podDisruptionBudget"] == {"minAvailable": 1}
    assert values["grafana"]["persistence"]["enabled"] is True  # the program's own values stay
    assert ("Helm value overrides (helmValues, merged over the program's):\n"
            "  kube-prometheus-stack: grafana.podDisruptionBudget.minAvailable = 1\n"
            "  kube-prometheus-stack: grafana.replicas = 2\n") in out


def test_helm_values_for_a_chart_the_stack_does_not_install_are_refused(tmp_path):
    code, _, err = rendered_in(tmp_path, "dev", {"helmValues": {"promtail": {"resources": {}}}})
    assert code == 2
    assert err.splitlines() == [f"{NS}:helmValues.promtail: got values for promtail, expected a chart the stack "
                                "installs (prometheus-operator-crds, kube-prometheus-stack, alloy, loki, mimir-distributed)"]


@pytest.mark.charts
def test_the_render_sums_the_footprint_make_footprint_found_for_its_very_releases(tmp_path):
    output = template_stack("dev")
    if output.unavailable():
        pytest.skip(output.unavailable())
    found = stack_footprint(output, tmp_path)
    known, missing = known_footprint(output.rendered, tmp_path)
    assert missing == [] and known is not None
    assert (known.cpu, known.memory, known.storage, known.cpu_per_node) == \
           (found.cpu, found.memory, found.storage, found.cpu_per_node) and found.cpu > 0
    assert requests_lines("dev", known, missing) == [
        f"Requests (make footprint): {found.cpu:.2f} cores, {found.memory / 2**30:.2f} GiB memory, "
        f"{found.storage / 2**30:.0f} GiB of volumes; and on each node, its agents: {found.cpu_per_node:.2f} cores, "
        f"{found.memory_per_node / 2**30:.2f} GiB"]
    # Values that changed since: no sum of workloads templated from other values.
    changed = rendered_stack("dev", {"prometheus": {"retention": "20d"}})
    assert known_footprint(changed, tmp_path) == (None, ["kube-prometheus-stack"])
    assert requests_lines("dev", None, ["kube-prometheus-stack"]) == [
        "Requests: not known for these values: `make footprint STACK=dev` templates the charts (kube-prometheus-stack "
        "not templated with them yet)"]
