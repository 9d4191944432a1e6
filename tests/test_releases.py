"""Every Helm release fails safely and installs in an order the cluster can take.

Helm's own semantics (helm.sh/docs/helm/helm_upgrade): `--atomic` uninstalls a failed install and
rolls a failed upgrade back; `--cleanup-on-fail` deletes what a failed upgrade created;
`--history-max` bounds the revisions kept (each a Secret with the whole manifest), 0 keeping all,
which is what pulumi-kubernetes does unless told. A custom resource is judged by the Operator's
admission webhook, served by the Operator kube-prometheus-stack runs: it must wait for that release,
which Helm marks ready once the new Operator is. The CRDs come first, from their own release.
"""

from __future__ import annotations

import pytest

from components.helm_release import MAX_HISTORY, RELEASE_POLICIES
from monitoring.helm.prometheus_operator_crds import KEEP
from monitoring.versions import KUBE_PROMETHEUS_STACK, PROMETHEUS_OPERATOR_CRDS
from tests.support import run_stack
from tools import charts
from tools.mock_runtime import Run

RELEASE = "kubernetes:helm.sh/v3:Release"
CUSTOM_RESOURCE_PREFIX = "kubernetes:monitoring.coreos.com/"


def releases(run: Run) -> dict[str, object]:
    return {r.inputs["chart"]: r for r in run.of_type(RELEASE)}


def waits_for(run: Run, resource) -> set[str]:
    """Every URN `resource` waits for: its own and its ancestors' `depends_on`, a component standing
    for its children, followed through what those wait for."""
    by_urn = {r.urn: r for r in run.resources}
    children: dict[str, list] = {}
    for r in run.resources:
        children.setdefault(r.parent, []).append(r)

    def direct(r) -> set[str]:
        urns = set(r.depends_on)
        parent = by_urn.get(r.parent)
        return urns | (direct(parent) if parent else set())

    def expand(urn: str) -> set[str]:
        return {urn, *(u for child in children.get(urn, []) for u in expand(child.urn))}

    seen: set[str] = set()
    todo = [u for d in direct(resource) for u in expand(d)]
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo += [u for d in direct(by_urn[urn]) for u in expand(d)] if urn in by_urn else []
    return seen


def test_every_chart_has_a_release_policy():
    assert set(RELEASE_POLICIES) == {c.name for c in charts.CHARTS}
    assert all(p.timeout_seconds >= 60 for p in RELEASE_POLICIES.values())
    # Sized per release, not one number for all.
    assert len({p.timeout_seconds for p in RELEASE_POLICIES.values()}) > 2


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_release_is_atomic_keeps_bounded_history_and_waits_its_own_time(stack):
    found = releases(run_stack(stack))
    assert {KUBE_PROMETHEUS_STACK.name, PROMETHEUS_OPERATOR_CRDS.name} <= set(found)
    for chart, release in found.items():
        inputs, policy = release.inputs, RELEASE_POLICIES[chart]
        assert inputs["maxHistory"] == MAX_HISTORY == 10, chart
        assert inputs["timeout"] == policy.timeout_seconds, chart
        assert inputs.get("skipAwait") in (None, False), f"{chart}: Helm must wait for readiness"
        if chart == PROMETHEUS_OPERATOR_CRDS.name:
            # The documented exception: Helm's automatic rollback would downgrade the CRDs.
            assert (inputs["atomic"], inputs["cleanupOnFail"], inputs["takeOwnership"]) == (False, False, True)
        else:
            assert (inputs["atomic"], inputs["cleanupOnFail"], inputs["takeOwnership"]) == (True, True, False), chart


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_crds_come_first_from_their_own_release_and_are_kept(stack):
    run = run_stack(stack)
    found = releases(run)
    crds, kps = found[PROMETHEUS_OPERATOR_CRDS.name], found[KUBE_PROMETHEUS_STACK.name]
    assert crds.inputs["version"] == PROMETHEUS_OPERATOR_CRDS.version
    assert crds.inputs["values"] == {"crds": {"annotations": KEEP}} and KEEP == {"helm.sh/resource-policy": "keep"}
    assert kps.inputs["values"]["crds"] == {"enabled": False}
    assert crds.protect is (stack == "prod")
    assert crds.urn in kps.depends_on
    assert waits_for(run, crds) & {r.urn for r in found.values()} == set()
    for chart, release in found.items():
        if chart != PROMETHEUS_OPERATOR_CRDS.name:
            assert crds.urn in waits_for(run, release), f"{chart} installs before the CRDs exist"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_custom_resources_wait_for_the_operator_that_admits_them(stack):
    run = run_stack(stack)
    kps = releases(run)[KUBE_PROMETHEUS_STACK.name]
    custom = [r for r in run.resources if r.type.startswith(CUSTOM_RESOURCE_PREFIX)]
    assert {r.type.rsplit(":", 1)[1] for r in custom} >= {"PrometheusRule", "ServiceMonitor"}
    for resource in custom:
        assert kps.urn in waits_for(run, resource), resource.name
    # The charts that ship monitors and rules of their own too.
    for chart, release in releases(run).items():
        if chart not in (PROMETHEUS_OPERATOR_CRDS.name, KUBE_PROMETHEUS_STACK.name) and chart != "prometheus-blackbox-exporter":
            assert kps.urn in waits_for(run, release), chart


def test_the_dependency_walk_sees_a_missing_order():
    """The negative case of the walk the tests above use: kube-prometheus-stack does not wait for Loki."""
    run = run_stack("dev")
    found = releases(run)
    assert found["loki"].urn not in waits_for(run, found[KUBE_PROMETHEUS_STACK.name])
