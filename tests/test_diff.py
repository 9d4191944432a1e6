"""`make diff` (tools/diff.py): what an upgrade changes, per program object and per release, with the
fields the API server refuses to change and the data-bearing resources an upgrade would lose flagged.

The offline tests compare the cached mock render of a stack with edited copies of itself and with
chart objects written here; the chart tests template real chart versions (a threshold change, a chart
bump) and render a git revision in a worktree.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import tempfile

import pytest

from monitoring.versions import Chart
from policy.immutable import refusal
from tests.support import ROOT, rendered_stack
from tools import charts, diff
from tools.diff import MISSING, FieldChange, Revision, diff_stacks, field_changes, path_text
from tools.rendered import RenderedStack
from tools.templating import ChartRelease
from tools.stacks import stacks


def edited(rendered: RenderedStack, edit) -> RenderedStack:
    """A copy of the render whose resources `edit` changed in place."""
    resources = copy.deepcopy(list(rendered.resources))
    edit(resources)
    return dataclasses.replace(rendered, resources=tuple(resources))


def resource(resources: list[dict], type_token: str, name: str) -> dict:
    (found,) = [r for r in resources if r["type"] == type_token and r["name"] == name]
    return found


def diff_of(base: RenderedStack, head: RenderedStack, base_charts=None, head_charts=None) -> diff.StackDiff:
    return diff_stacks(Revision("base", base, base_charts or {}), Revision("head", head, head_charts or {}))


# ------------------------------------------------------------------------------ field changes


def test_items_of_lists_are_matched_by_name_so_an_insertion_is_one_change():
    before = {"groups": [{"name": "a", "rules": [{"alert": "X", "expr": "1"}, {"alert": "Y", "expr": "2"}]}]}
    after = {"groups": [{"name": "a", "rules": [{"alert": "W", "expr": "0"}, {"alert": "X", "expr": "1"},
                                                {"alert": "Y", "expr": "3"}]}]}
    changes = field_changes(before, after)
    assert [(path_text(c.path), c.before, c.after) for c in changes] == [
        ("groups[name=a].rules[alert=Y].expr", "2", "3"),
        ("groups[name=a].rules[alert=W]", MISSING, {"alert": "W", "expr": "0"}),
    ]


def test_a_multi_line_text_is_shown_as_a_unified_diff():
    change = FieldChange(("data", "config.yaml"), "a: 1\nb: 2\nc: 3\n", "a: 1\nb: 5\nc: 3\n")
    assert diff.field_lines(change, "") == ["~ data.config.yaml:", "    @@ -1,3 +1,3 @@", "     a: 1", "    -b: 2",
                                            "    +b: 5", "     c: 3"]


# ------------------------------------------------------------------------------ program objects


def test_an_unchanged_stack_has_no_change():
    rendered = rendered_stack("dev")
    result = diff_of(rendered, rendered)
    assert result.program == () and result.findings() == []
    assert all(r.values == () and r.objects == () and r.release is None for r in result.releases)


def test_a_threshold_change_shows_the_rule_and_the_dashboard_that_change():
    base, head = rendered_stack("dev"), rendered_stack("dev", {"alerting": {"thresholds": {"errorRatio": 0.02}}})
    result = diff_of(base, head)
    changed = {c.key: c for c in result.program}
    assert set(changed) == {"kubernetes:monitoring.coreos.com/v1:PrometheusRule metrics-rules-webhook-delivery-alerts",
                            "kubernetes:core/v1:ConfigMap dashboards-webhook-overview"}
    rule = changed["kubernetes:monitoring.coreos.com/v1:PrometheusRule metrics-rules-webhook-delivery-alerts"]
    expr = [f for f in rule.fields if f.where.endswith("rules[alert=WebhookHighErrorRate].expr")]
    assert expr and "> 0.05" in expr[0].before and "> 0.02" in expr[0].after
    text = result.text()
    assert "-service:webhook_delivery_errors:ratio_rate5m{cluster=\"\"} > 0.05" in text
    assert "+service:webhook_delivery_errors:ratio_rate5m{cluster=\"\"} > 0.02" in text
    assert result.findings() == [] and text.endswith("no immutable field changed, no data-bearing resource replaced")


def test_a_storage_class_parameter_change_is_flagged_immutable():
    base = rendered_stack("prod")

    def change_iops(resources):
        storage_class = resource(resources, "kubernetes:storage.k8s.io/v1:StorageClass", "gp3-storage-class")
        storage_class["inputs"]["parameters"]["iops"] = "3000"

    result = diff_of(base, edited(base, change_iops))
    (change,) = result.program
    assert change.key == "kubernetes:storage.k8s.io/v1:StorageClass gp3-storage-class"
    (field,) = change.fields
    assert field.immutable == "StorageClass parameters.iops: parameters: Forbidden: updates to parameters are forbidden."
    assert result.findings() == [(change.key, f"IMMUTABLE {change.key}: {field.immutable}")]


@pytest.mark.parametrize("what, edit, expected", [
    ("a bucket renamed", lambda rs: resource(rs, "aws:s3/bucket:Bucket", "metrics-bucket")["inputs"].update(
        bucket="webhook-metrics-renamed"), "changed (replaced: bucket changed), its objects lost"),
    ("PagerDuty's service gone", lambda rs: rs.remove(resource(rs, "pagerduty:index/service:Service", "alerting-pagerduty-service")),
     "removed, its incidents lost"),
])
def test_a_data_bearing_resource_replaced_or_removed_is_flagged(what, edit, expected):
    base = rendered_stack("prod")
    result = diff_of(base, edited(base, edit))
    (finding,) = result.findings()
    assert finding[1].startswith("DATA ") and finding[1].endswith(expected), what


def test_a_resource_renamed_under_an_alias_is_the_same_resource():
    base = rendered_stack("prod")

    def rename(resources):
        service = resource(resources, "pagerduty:index/service:Service", "alerting-pagerduty-service")
        service["name"] = "alerting-service-renamed"
        service["aliases"] = ["pagerduty:index/service:Service alerting-pagerduty-service"]

    result = diff_of(base, edited(base, rename))
    assert result.findings() == []
    assert [(c.key, c.change, c.replaced_by) for c in result.program] == [
        ("pagerduty:index/service:Service alerting-pagerduty-service", "removed", "moved under an alias"),
        ("pagerduty:index/service:Service alerting-service-renamed", "added", None)]


# ------------------------------------------------------------------------------ releases and their objects


def statefulset(name: str, storage: str, chart_version: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": "monitoring", "labels": {"helm.sh/chart": f"loki-{chart_version}"}},
            "spec": {"serviceName": name, "template": {"spec": {"containers": [{"name": "loki", "image": "loki:3"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "storage"},
                                               "spec": {"resources": {"requests": {"storage": storage}}}}]}}


def chart_release(version: str, *objects: dict) -> ChartRelease:
    return ChartRelease("loki", Chart("loki", version, "https://example.com"), "monitoring", {}, list(objects))


def test_chart_objects_immutable_changes_renames_and_version_labels():
    rendered = rendered_stack("dev")
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "loki", "labels": {"helm.sh/chart": "loki-1"}},
               "spec": {"ports": [{"port": 3100}]}}
    kept = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "x.example.com", "annotations": {"helm.sh/resource-policy": "keep"}}}
    base = {"loki": chart_release("1", statefulset("loki-write", "10Gi", "1"), statefulset("loki-backend", "10Gi", "1"),
                                  service, kept)}
    head = {"loki": chart_release("2", statefulset("loki-write", "20Gi", "2"), statefulset("loki-backend-v2", "10Gi", "2"),
                                  {**service, "metadata": {"name": "loki", "labels": {"helm.sh/chart": "loki-2"}}})}
    (release,) = [r for r in diff_of(rendered, rendered, base, head).releases if r.chart == "loki"]
    changes = {c.key: c for c in release.objects}
    assert release.relabelled == 1, "the Service changed only its chart label"
    write = changes["StatefulSet monitoring/loki-write"]
    assert [(f.where, f.immutable is not None) for f in write.fields] == [
        ("spec.volumeClaimTemplates[0].spec.resources.requests.storage", True)]
    assert changes["StatefulSet monitoring/loki-backend"].loss == "its volumes' claims"
    assert changes["StatefulSet monitoring/loki-backend-v2"].change == "added"
    assert changes["CustomResourceDefinition x.example.com"].loss is None, "Helm keeps what is annotated keep"


def test_an_object_moving_to_another_release_is_adopted_not_lost():
    rendered = rendered_stack("dev")
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "probes.monitoring.coreos.com"}}
    base = {"kube-prometheus-stack": ChartRelease("kube-prometheus-stack", Chart("kube-prometheus-stack", "1", "r"),
                                                  "monitoring", {}, [crd])}
    head = {"kube-prometheus-stack": ChartRelease("kube-prometheus-stack", Chart("kube-prometheus-stack", "1", "r"),
                                                  "monitoring", {}, []),
            "prometheus-operator-crds": ChartRelease("prometheus-operator-crds", Chart("prometheus-operator-crds", "1", "r"),
                                                     "monitoring", {}, [crd])}
    result = diff_of(rendered, rendered, base, head)
    (release,) = [r for r in result.releases if r.chart == "kube-prometheus-stack"]
    assert [(c.key, c.replaced_by, c.loss) for c in release.objects] == [
        ("CustomResourceDefinition probes.monitoring.coreos.com", "moved to release prometheus-operator-crds", None)]
    assert result.findings() == []


def test_a_release_removed_whose_chart_is_not_templated_is_taken_to_hold_data():
    base = rendered_stack("dev")
    head = edited(base, lambda rs: rs.remove(next(r for r in rs if r["type"] == diff.RELEASE and r["inputs"]["chart"] == "loki")))
    (finding,) = diff_of(base, head).findings()
    assert finding == ("kubernetes:helm.sh/v3:Release loki",
                       "DATA kubernetes:helm.sh/v3:Release loki: removed, its objects (its chart not templated: taken to "
                       "hold data) lost")


# ------------------------------------------------------------------------------ the table and the command


@pytest.mark.parametrize("api_version, kind, path, before, after, refused", [
    ("storage.k8s.io/v1", "StorageClass", ("reclaimPolicy",), "Delete", "Retain", True),
    ("storage.k8s.io/v1", "StorageClass", ("allowVolumeExpansion",), False, True, False),
    ("apps/v1", "StatefulSet", ("spec", "template", "spec"), 1, 2, False),
    ("apps/v1", "StatefulSet", ("spec", "serviceName"), "a", "b", True),
    ("v1", "PersistentVolumeClaim", ("spec", "resources", "requests", "storage"), "10Gi", "20Gi", False),
    ("v1", "PersistentVolumeClaim", ("spec", "resources", "requests", "storage"), "20Gi", "10Gi", True),
    ("v1", "PersistentVolumeClaim", ("spec", "storageClassName"), "gp3", "gp2", True),
    ("batch/v1", "Job", ("spec", "template"), 1, 2, True),
    ("v1", "ConfigMap", ("data", "x"), "1", "2", False),
])
def test_the_immutable_fields_are_the_api_servers(api_version, kind, path, before, after, refused):
    assert (refusal(kind, path, before, after) is not None) is refused


def test_accepting_a_finding_needs_its_runbook(capsys):
    assert diff.main(["dev", "--base", "HEAD", "--accept", "StorageClass gp3=no-such-runbook.md"]) == 2
    assert "--accept names no runbook: docs/operations/no-such-runbook.md" in capsys.readouterr().err


# ------------------------------------------------------------------------------ through the charts


def templated_or_skip(rendered: RenderedStack) -> dict[str, ChartRelease]:
    releases = diff.templated(rendered)
    skipped = [f"{name}: {r.skipped}" for name, r in releases.items() if r.skipped]
    if skipped:
        pytest.skip("; ".join(skipped))
    return releases


@pytest.mark.charts
def test_a_chart_bump_shows_the_objects_it_changes():
    """kube-prometheus-stack 88.4.0 -> 88.5.3 (the pinned one), with the same values, through the real charts:
    the images the bump brings, and the version labels folded."""
    head = rendered_stack("dev")
    previous = Chart("kube-prometheus-stack", "88.4.0", head.releases["kube-prometheus-stack"].repo)
    if charts.ensure(previous).startswith("unavailable"):
        pytest.skip(f"kube-prometheus-stack 88.4.0 is not available: {charts.unavailable_reason(previous)}")

    def older(resources):
        next(r for r in resources if r["type"] == diff.RELEASE
             and r["inputs"]["chart"] == "kube-prometheus-stack")["inputs"]["version"] = "88.4.0"

    base = edited(head, older)
    result = diff_of(base, head, templated_or_skip(base), templated_or_skip(head))
    (kps,) = [r for r in result.releases if r.chart == "kube-prometheus-stack"]
    assert (kps.before, kps.after, kps.values) == ("88.4.0", "88.5.3", ())
    changes = {c.key: c for c in kps.objects}
    (image,) = changes["Deployment monitoring/kube-prometheus-stack-kube-state-metrics"].fields
    assert image.where == "spec.template.spec.containers[name=kube-state-metrics].image"
    assert (image.before.rsplit(":", 1)[1], image.after.rsplit(":", 1)[1]) == ("v2.19.1", "v2.20.0")
    assert kps.relabelled > 50, "every object's chart label moved: folded, not listed"
    text = result.text()
    assert "release kube-prometheus-stack (88.4.0 -> 88.5.3): values 0 changed; objects 0 added, 0 removed, 3 changed" in text
    # Hooks are recreated by Helm at every upgrade: an image change of theirs is no immutable field.
    assert result.findings() == []
    assert [r.chart for r in result.releases if r.objects or r.relabelled or r.values] == ["kube-prometheus-stack"]


def base_revision() -> str:
    """The revision the upgrade starts from: $DIFF_BASE, else main, else HEAD (a shallow clone)."""
    for revision in (os.environ.get("DIFF_BASE"), "main", "HEAD"):
        if revision and not subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", revision],
                                           capture_output=True).returncode:
            return revision
    pytest.skip("not a git checkout: no revision to upgrade from")


@pytest.mark.charts
@pytest.mark.parametrize("stack", stacks())
def test_the_upgrade_from_the_base_revision_replaces_no_data_bearing_resource(stack, capsys):
    """The base revision rendered with its own code in a git worktree, both templated at their own pins,
    through the command itself: no volume, claim, StatefulSet, bucket, PagerDuty service or release
    holding them deleted or replaced, no CRD rolled back (an intended migration is --accept'ed with its
    runbook in the PR workflow instead)."""
    revision = base_revision()
    code = diff.main([stack, "--base", revision, "--check"])
    out = capsys.readouterr().out
    assert out.startswith(f"== {revision} (") and "release kube-prometheus-stack (" in out
    assert [line for line in out.splitlines() if line.startswith(("! DATA", "! DOWNGRADE"))] == []
    assert code == 0 or "! IMMUTABLE" in out
    # The temporary worktree is gone.
    listed = subprocess.run(["git", "-C", str(ROOT), "worktree", "list", "--porcelain"], capture_output=True, text=True)
    assert not [line for line in listed.stdout.splitlines()
                if line.startswith(f"worktree {tempfile.gettempdir()}/{diff.WORKDIR_PREFIX}")]


def test_rolling_the_crds_release_back_is_refused():
    """A stack rollback that lowers the CRDs' pin would make Helm apply the older CRDs."""
    head = rendered_stack("dev")

    def older_crds(resources):
        next(r for r in resources if r["type"] == diff.RELEASE
             and r["inputs"]["chart"] == "prometheus-operator-crds")["inputs"]["version"] = "30.0.1"

    rolled_back = diff_of(head, edited(head, older_crds))
    assert rolled_back.findings() == [("kubernetes:helm.sh/v3:Release prometheus-operator-crds",
                                       "DOWNGRADE kubernetes:helm.sh/v3:Release prometheus-operator-crds: 31.0.1 -> 30.0.1 "
                                       "applies older CRDs, pruning from stored objects the fields the newer ones added: "
                                       "keep the newer pin")]
    # Upgrading them is what is expected.
    assert diff_of(edited(head, older_crds), head).findings() == []
