"""A good tenant, through the real charts: the stack installed beside a platform's kube-prometheus-stack
(at its defaults in `monitoring`, with a `gp3` class), stacks of a fleet beside each other, and the
names no two stacks share (testkit/coexistence.py is the oracle; docs/tenancy.md the user's side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from monitoring import versions
from testkit import chart_check, coexistence, k8s
from testkit.chart_intent import CHECKS
from tools import charts
from tools.program import stack_file
from tools.rendered import RenderedStack
from tools.templating import StackOutput, template_stack

pytestmark = pytest.mark.charts

ROOT = Path(__file__).resolve().parent.parent
NEW_CLUSTER = ROOT / "docs" / "examples" / "Pulumi.new-cluster.yaml"
CLUSTER_KEY = "webhook-monitoring:cluster"


def stack_variant(tmp: Path, stack: str, base: Path, changes: dict[str, Any]) -> Path:
    """A copy of the stack file `base` as Pulumi.<stack>.yaml with top-level keys replaced (None: removed)."""
    document = yaml.safe_load(base.read_text())
    for key, value in changes.items():
        full = key if ":" in key else f"webhook-monitoring:{key}"
        if value is None:
            document["config"].pop(full, None)
        else:
            document["config"][full] = value
    path = tmp / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def templated(tmp: Path, stack: str, base: Path, changes: Optional[dict[str, Any]] = None) -> StackOutput:
    output = template_stack(stack, stack_variant(tmp, stack, base, changes or {}))
    if output.unavailable():
        pytest.skip(output.unavailable())
    return output


@pytest.fixture(scope="module")
def platform() -> coexistence.Side:
    side = coexistence.reference_platform()
    if side is None:
        pytest.skip(charts.unavailable_reason(versions.KUBE_PROMETHEUS_STACK))
    return side


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stacks")


def test_joining_a_platform_nothing_clashes(platform, tmp):
    """The stack a team writes for a shared cluster (docs/examples/Pulumi.new-cluster.yaml) beside the
    platform's kube-prometheus-stack: no object of the same name, no host port, no second controller
    on a resource, no webhook reaching another team, no monitor or rule loaded by the other side."""
    ours = templated(tmp, "prod-euw1", NEW_CLUSTER)
    assert ours.settings.tenancy.mode == "join"
    assert coexistence.clashes(coexistence.stack_side(ours), platform) == []
    # What the platform's Operator will serve, and what the stack's Prometheus loads from the platform.
    kinds = {o["kind"] for o in ours.objects()}
    assert {"Prometheus", "Alertmanager"} <= kinds
    assert not kinds & {"CustomResourceDefinition", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
    assert [d["metadata"]["name"] for d in ours.objects(kind="DaemonSet")] == ["alloy"]
    assert not coexistence.operators(coexistence.stack_side(ours))


def test_owning_the_cluster_beside_a_platform_clashes_only_where_owning_means_it(platform, tmp):
    """Derived names and a scoped Operator leave what own mode cannot share: the CRDs, node-exporter's
    host port, and the platform's unscoped Operator reaching for our Prometheus and Alertmanager. What
    docs/tenancy.md says: own mode is for a cluster with no other monitoring stack."""
    ours = templated(tmp, "prod-own", NEW_CLUSTER, {"tenancy": {"mode": "own"}})
    found = coexistence.clashes(coexistence.stack_side(ours), platform)
    crds = [f"CustomResourceDefinition {c['metadata']['name']}: both make it" for c in ours.crds()]
    instance = ours.settings.tenancy.instance
    assert sorted(found) == sorted(crds + [
        f"host port 9100/TCP: DaemonSet {ours.settings.agents_namespace}/{instance}-prometheus-node-exporter and "
        "DaemonSet monitoring/kube-prometheus-stack-prometheus-node-exporter",
        *(f"platform's Operator (Deployment monitoring/kube-prometheus-stack-operator) reconciles prod-own's {kind} "
          f"{ours.settings.namespace}/{instance}-{kind.lower()} beside prod-own's own" for kind in ("Alertmanager", "Prometheus")),
    ])
    assert len(crds) == 10


def test_the_oracle_finds_the_clashes_of_a_stack_installed_as_the_deployed_ones_are(platform):
    """prod keeps the names it was deployed with (it owns its cluster): beside a platform everything
    the issue lists clashes, which the oracle finds (its negative case)."""
    output = template_stack("prod")
    if output.unavailable():
        pytest.skip(output.unavailable())
    found = coexistence.clashes(coexistence.stack_side(output), platform)
    for expected in ("ClusterRole kube-prometheus-stack-operator: both make it",
                     "ValidatingWebhookConfiguration kube-prometheus-stack-admission: both make it",
                     "StorageClass gp3: both make it", "Namespace monitoring: both make it",
                     "both Operators write the kubelet Service kube-system/kube-prometheus-stack-kubelet"):
        assert expected in found
    assert any(f.startswith("host port 9100/TCP") for f in found)
    assert any(f.startswith("platform's Prometheus kube-prometheus-stack-prometheus loads prod's ServiceMonitor") for f in found)
    # Its own Operator is scoped now: it reaches for no other namespace's resources and webhook calls.
    assert not [f for f in found if "reconciles any" in f or "webhook" in f]


def test_an_unscoped_operator_and_webhook_are_found(platform, tmp):
    """The oracle's other negative case: the stack's Operator and webhook as the chart leaves them."""
    ours = templated(tmp, "prod-own", NEW_CLUSTER, {"tenancy": {"mode": "own"}})
    side = coexistence.stack_side(ours)
    unscoped = []
    for namespace, obj in side.objects:
        if obj["kind"] == "Deployment" and coexistence.operators(coexistence.Side("x", ((namespace, obj),), frozenset())):
            obj = yaml.safe_load(yaml.safe_dump(obj))
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["args"] = [a for a in container["args"] if "instance" not in a]
        elif obj["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            obj = {**obj, "webhooks": [{**hook, "namespaceSelector": {}} for hook in obj["webhooks"]]}
        unscoped.append((namespace, obj))
    found = coexistence.clashes(coexistence.Side(side.name, tuple(unscoped), side.namespaces), platform)
    assert f"prod-own's Operator (Deployment {ours.settings.namespace}/{ours.settings.tenancy.instance}-operator) " \
           "reconciles any Prometheus of payments" in found
    assert any("reconciles platform's Prometheus monitoring/kube-prometheus-stack-prometheus" in f for f in found)
    assert any(f.startswith("ValidatingWebhookConfiguration") and "default, kube-system, monitoring, payments" in f
               for f in found)


def test_stacks_of_one_cluster_share_no_name_nor_anything_else(tmp):
    """Two stacks of one cluster (prod and staging beside each other, both joining its platform)."""
    prod = templated(tmp, "prod-euw1", NEW_CLUSTER)
    staging = templated(tmp, "staging-euw1", NEW_CLUSTER, {"environment": "staging"})
    assert prod.settings.cluster == staging.settings.cluster
    assert coexistence.clashes(coexistence.stack_side(prod), coexistence.stack_side(staging)) == []


def global_names(rendered: RenderedStack) -> dict[str, set[str]]:
    """The names whose scope is wider than a cluster, as the program registers them: PagerDuty's
    (one account), S3 bucket names (the world: a prefix, S3 adds a suffix), IAM role names (one
    account: likewise), Grafana's host (DNS)."""
    inputs = rendered.inputs
    return {
        "PagerDuty service": {i["name"] for i in inputs("pagerduty:index/service:Service")},
        "PagerDuty escalation policy": {i["name"] for i in inputs("pagerduty:index/escalationPolicy:EscalationPolicy")},
        "S3 bucket": {i.get("bucketPrefix") or i.get("bucket") or "<auto-name>" for i in inputs("aws:s3/bucket:Bucket")},
        "IAM role": {i.get("namePrefix") or i.get("name") or "<auto-name>" for i in inputs("aws:iam/role:Role")},
        "Grafana host": {h for i in inputs("kubernetes:helm.sh/v3:Release") for h in
                         ((i.get("values") or {}).get("grafana", {}).get("ingress", {}).get("hosts") or [])},
    }


def test_a_stack_per_cluster_by_copying_a_stack_file_and_changing_its_cluster_block(tmp):
    """The fleet as docs/tenancy.md says: the example stack file copied for a second prod cluster,
    only its cluster block changed: no global name in common, and in each cluster the names of
    its own (so that a third stack may join either)."""
    first = templated(tmp, "prod-use1", NEW_CLUSTER, {"cluster": {
        "name": "webhook-prod-use1", "region": "us-east-1", "infraStack": "acme/webhook-infra/prod-use1",
        "availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}})
    second = templated(tmp, "prod-euw1", NEW_CLUSTER)
    names = global_names(first.rendered), global_names(second.rendered)
    for kind in names[0]:
        assert names[0][kind] and names[1][kind], kind
        assert not names[0][kind] & names[1][kind], f"{kind}: {names[0][kind] & names[1][kind]}"
        assert "<auto-name>" not in names[0][kind] | names[1][kind]
    assert names[1]["PagerDuty service"] == {"Webhook Delivery (webhook-prod-euw1, prod)"}
    assert names[1]["S3 bucket"] == {"webhook-prod-euw1-prod-metrics-", "webhook-prod-euw1-prod-logs-"}
    # Cluster-scoped names differ too, and the release names they derive from: a stack may move.
    scoped = [{(o["kind"], o["metadata"]["name"]) for ns, o in coexistence.stack_side(out).objects if not ns}
              | {("Release", r.name) for r in out.releases.values() if r.chart.name == "kube-prometheus-stack"}
              for out in (first, second)]
    assert scoped[0] and not scoped[0] & scoped[1], scoped[0] & scoped[1]


def test_the_deployed_stack_files_pin_what_the_example_derives():
    """The legacy pin is what a copy of prod for a new cluster must leave out (docs/tenancy.md)."""
    for stack in ("dev", "prod"):
        tenancy = yaml.safe_load(stack_file(stack).read_text())["config"]["webhook-monitoring:tenancy"]
        assert tenancy == {"mode": "own", "naming": "legacy"}
    assert "webhook-monitoring:tenancy" not in yaml.safe_load(NEW_CLUSTER.read_text())["config"]


def test_the_tested_operator_version_is_the_charts():
    chart = charts.chart_dir(versions.KUBE_PROMETHEUS_STACK)
    if chart is None:
        pytest.skip(charts.unavailable_reason(versions.KUBE_PROMETHEUS_STACK))
    app_version = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    assert tuple(int(p) for p in app_version.lstrip("v").split(".")[:2]) == versions.PROMETHEUS_OPERATOR_MINOR


def test_a_joining_stack_is_valid_against_the_platforms_crds_and_as_intended(platform, tmp):
    """The chart check of a stack that joins: its objects against the CRDs the platform serves (the
    pinned chart's), the program's intent on what the charts make of its values, and no values key of
    its kube-prometheus-stack release that no template reads."""
    output = templated(tmp, "prod-euw1", NEW_CLUSTER)
    validators = k8s.crd_validators([o for _, o in platform.of_kind("CustomResourceDefinition")])
    assert list(k8s.validation_problems(output.objects(), validators)) == []
    for check in CHECKS:
        if check.skip_reason(output) is None:
            check.run(output)
    release = output.releases[versions.KUBE_PROMETHEUS_STACK.name]
    assert chart_check.ignored_keys(output, release) == []
