"""`make diff STACK=<name> BASE=<rev>`: what deploying this checkout over revision BASE changes.

Both revisions are rendered offline, each with its own code (BASE in a temporary `git worktree`,
tools/render.py), and every Helm release of each is templated at the chart version that revision
pins (tools/templating.py; an older pin is fetched through tools/charts.py). The diff is printed
per program object (what the program registers itself: Kubernetes objects, buckets, PagerDuty,
passwords) and per release (its chart version, its values, and the objects its chart makes), each
object added, removed or changed field by field. Flagged:

- IMMUTABLE: a field the API server refuses to change (policy/immutable.py): the upgrade
  fails unless the object is replaced by a migration step;
- DATA: a data-bearing resource (a bucket, a PagerDuty service, a volume claim, a StatefulSet with
  volumes, a Prometheus or Alertmanager with storage, a CRD, a release holding any of those) that
  the upgrade deletes or replaces;
- DOWNGRADE: a release that installs CRDs going to a lower chart version (a rollback): the older
  CRDs prune from stored objects the fields the newer ones added.

`diff_stacks(base, head)` is the one machinery: it takes two (RenderedStack, templated releases)
pairs, whatever revision or render they come from.

    python -m tools.diff <stack> --base <rev> [--check] [--accept '<key>=<runbook>' ...]

Exit status: 0 with the diff printed; with `--check`, 1 when an IMMUTABLE, DATA or DOWNGRADE finding is not
accepted (`--accept` names the finding's key and the docs/operations/ page of its migration);
2 when a revision does not render.
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from monitoring.versions import PROMETHEUS_OPERATOR_CRDS, Chart
from policy.immutable import refusal
from policy.kubernetes import CLUSTER_SCOPED
from policy.model import api_version_and_kind
from tools import charts
from tools.mock_runtime import ROOT
from tools.program import CheckoutError, RenderError, render_revision, render_stack
from tools.rendered import RELEASE, Release, RenderedStack, reveal
from tools.templating import ChartRelease, template_releases

MISSING = object()
# The temporary folder holding the base revision's worktree and render.
WORKDIR_PREFIX = "make-diff-"
Path_ = tuple[Any, ...]

# Pulumi resources whose replacement or deletion loses data or history.
DATA_TYPES = {
    "aws:s3/bucket:Bucket": "its objects",
    "aws:s3/bucketV2:BucketV2": "its objects",
    "pagerduty:index/service:Service": "its incidents",
    "kubernetes:core/v1:PersistentVolumeClaim": "its volume",
    "kubernetes:apps/v1:StatefulSet": "its volumes",
}
# Inputs whose change makes the provider replace the resource (its schema's forceNew / replaceOnChanges).
REPLACING_INPUTS = {
    "aws:s3/bucket:Bucket": (("bucket",), ("bucketPrefix",)),
    RELEASE: (("name",), ("namespace",)),
}
KUBERNETES_REPLACING = (("metadata", "name"), ("metadata", "namespace"))
# Labels every object of a chart carries with its version: a chart bump changes them everywhere.
VERSION_LABELS = {"helm.sh/chart", "app.kubernetes.io/version", "chart"}
# What identifies an item of a list of objects, in the order tried.
IDENTITIES = ("name", "alert", "record", "uid", "job_name", "mountPath", "containerPort", "port")
TEXT_WIDTH = 100


# ------------------------------------------------------------------------------ the diff


@dataclass(frozen=True)
class FieldChange:
    path: Path_
    before: Any
    after: Any
    immutable: Optional[str] = None

    @property
    def where(self) -> str:
        return path_text(self.path)


@dataclass(frozen=True)
class ObjectChange:
    key: str
    """`<kind> <namespace>/<name>` of a Kubernetes object, `<type> <name>` of another resource."""
    change: str
    """added, removed or changed."""
    fields: tuple[FieldChange, ...] = ()
    loss: Optional[str] = None
    """What is lost when the change deletes or replaces a data-bearing resource."""
    replaced_by: Optional[str] = None
    """Why the change is a replacement (deletion and creation), when it is one."""

    @property
    def immutable(self) -> list[FieldChange]:
        return [f for f in self.fields if f.immutable]


@dataclass(frozen=True)
class ReleaseDiff:
    chart: str
    before: Optional[str]
    """The base's chart version (None: the release is new)."""
    after: Optional[str]
    values: tuple[FieldChange, ...]
    objects: tuple[ObjectChange, ...]
    relabelled: int
    """Objects whose only change is their chart's version labels."""
    skipped: tuple[str, ...]
    """Why the chart's objects are not compared (a chart source unavailable)."""
    release: Optional[ObjectChange]
    """The Helm release itself, when it is added, removed or replaced."""
    crd_downgrade: bool = False
    """A lower chart version of a release that installs CRDs: Helm would apply the older CRDs."""

    @property
    def changed(self) -> bool:
        """Whether deploying it changes anything: the release, its chart version, values or objects."""
        return bool(self.release or self.before != self.after or self.values or self.objects or self.relabelled)


@dataclass(frozen=True)
class Revision:
    """One side of a diff: a rendered stack and what its charts make of it."""

    label: str
    rendered: RenderedStack
    charts: Mapping[str, ChartRelease] = field(default_factory=dict)


@dataclass(frozen=True)
class StackDiff:
    base: str
    head: str
    program: tuple[ObjectChange, ...]
    releases: tuple[ReleaseDiff, ...]

    @property
    def changed(self) -> bool:
        return bool(self.program) or any(r.changed for r in self.releases)

    def objects(self) -> Iterable[ObjectChange]:
        yield from self.program
        for release in self.releases:
            if release.release:
                yield release.release
            yield from release.objects

    def findings(self) -> list[tuple[str, str]]:
        """(key, what) of every IMMUTABLE and DATA finding."""
        found = []
        for change in self.objects():
            if change.loss:
                found.append((change.key, f"DATA {change.key}: {change.change}"
                                          f"{' (' + change.replaced_by + ')' if change.replaced_by else ''}, {change.loss} lost"))
            found += [(change.key, f"IMMUTABLE {change.key}: {f.immutable}") for f in change.immutable]
        found += [(f"{RELEASE} {r.chart}", f"DOWNGRADE {RELEASE} {r.chart}: {r.before} -> {r.after} applies older CRDs, "
                                           "pruning from stored objects the fields the newer ones added: keep the newer pin")
                  for r in self.releases if r.crd_downgrade]
        return found

    def text(self) -> str:
        lines = [f"== {self.base} -> {self.head}"]
        lines += _section("program objects", self.program)
        for release in self.releases:
            lines += _release_lines(release)
        findings = self.findings()
        lines.append("")
        lines += [f"! {what}" for _, what in findings] or ["no immutable field changed, no data-bearing resource replaced"]
        return "\n".join(lines)


def diff_stacks(base: Revision, head: Revision) -> StackDiff:
    """Everything that differs between two renders of a stack, with their charts' output."""
    # Where each chart object of the head lives: one leaving a release for another is adopted there
    # (take ownership), not deleted.
    homes = {key: chart for chart, release in head.charts.items() for key in _objects(release)}
    releases = []
    for chart in sorted(set(base.rendered.releases) | set(head.rendered.releases),
                        key=lambda c: _install_order(c, head, base)):
        releases.append(_release_diff(chart, base, head, homes))
    return StackDiff(base.label, head.label, tuple(_program_diff(base.rendered, head.rendered)), tuple(releases))


def _install_order(chart: str, *revisions: Revision) -> tuple[int, str]:
    for revision in revisions:
        order = list(revision.charts) or list(revision.rendered.releases)
        if chart in order:
            return order.index(chart), chart
    return len(order), chart


# ------------------------------------------------------------------------------ program objects


def _program_diff(base: RenderedStack, head: RenderedStack) -> list[ObjectChange]:
    def index(rendered: RenderedStack) -> dict[str, dict[str, Any]]:
        return {f"{r['type']} {r['name']}": r for r in rendered.resources
                if r["type"] != RELEASE and not r["type"].startswith(("webhook-monitoring:", "pulumi:pulumi:"))}

    before, after = index(base), index(head)
    aliased = {alias for r in head.resources for alias in r.get("aliases", [])}
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        resource = new or old
        loss = DATA_TYPES.get(resource["type"])
        if old is None:
            changes.append(ObjectChange(key, "added"))
        elif new is None:
            moved = key in aliased
            changes.append(ObjectChange(key, "removed", loss=None if moved else loss,
                                        replaced_by="moved under an alias" if moved else None))
        else:
            fields = field_changes(reveal(old["inputs"]), reveal(new["inputs"]))
            if not fields:
                continue
            api_version, kind = api_version_and_kind(resource["type"])
            fields = tuple(_flag(f, api_version, kind) for f in fields)
            replacing = [f.where for f in fields if _replaces(resource["type"], f.path)]
            changes.append(ObjectChange(key, "changed", fields, loss if replacing else None,
                                        f"replaced: {', '.join(replacing)} changed" if replacing else None))
    return changes


def _replaces(type_token: str, path: Path_) -> bool:
    replacing = REPLACING_INPUTS.get(type_token, KUBERNETES_REPLACING if type_token.startswith("kubernetes:") else ())
    return any(path[:len(p)] == p for p in replacing)


def _flag(change: FieldChange, api_version: str, kind: str) -> FieldChange:
    if not api_version:
        return change
    before = None if change.before is MISSING else change.before
    after = None if change.after is MISSING else change.after
    plain = tuple(p[1] if isinstance(p, tuple) else p for p in change.path)
    message = refusal(kind, plain, before, after)
    return FieldChange(change.path, change.before, change.after, message and f"{kind} {change.where}: {message}")


# ------------------------------------------------------------------------------ releases


def _objects(release: Optional[ChartRelease]) -> dict[str, dict[str, Any]]:
    if release is None or release.skipped:
        return {}
    found = {}
    for obj in release.objects:
        metadata = obj.get("metadata") or {}
        # Helm puts the release's namespace on what it renders without one, cluster-scoped kinds apart.
        namespace = metadata.get("namespace") or ("" if obj["kind"] in CLUSTER_SCOPED else release.namespace)
        found[f"{obj['kind']} {namespace + '/' if namespace else ''}{metadata.get('name', '?')}"] = obj
    return found


def _holds_data(obj: Mapping[str, Any]) -> Optional[str]:
    """What deleting or replacing this chart object loses, if anything."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    if kind == "PersistentVolumeClaim":
        return "its volume"
    if kind == "StatefulSet" and spec.get("volumeClaimTemplates"):
        return "its volumes' claims"
    if kind in ("Prometheus", "Alertmanager", "ThanosRuler") and spec.get("storage"):
        return "its volumes' claims"
    if kind == "CustomResourceDefinition":
        return "every object of its kind"
    return None


def _hook(obj: Mapping[str, Any]) -> bool:
    return "helm.sh/hook" in ((obj.get("metadata") or {}).get("annotations") or {})


def _kept(obj: Mapping[str, Any]) -> bool:
    """Helm leaves an object annotated `helm.sh/resource-policy: keep` in place when it stops rendering it."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get("helm.sh/resource-policy") == "keep"


def _release_diff(chart: str, base: Revision, head: Revision, homes: Mapping[str, str]) -> ReleaseDiff:
    old, new = base.rendered.releases.get(chart), head.rendered.releases.get(chart)
    old_chart, new_chart = base.charts.get(chart), head.charts.get(chart)
    skipped = tuple(f"{label}: {r.skipped}" for label, r in ((base.label, old_chart), (head.label, new_chart))
                    if r is not None and r.skipped)
    values = tuple(field_changes(old.values if old else {}, new.values if new else {})) if old and new else ()
    before, after = _objects(old_chart), _objects(new_chart)
    objects, relabelled = [], 0
    # Compared only when both sides are templated; a release added or removed takes its objects with it.
    comparable = old and new and old_chart and new_chart and not (old_chart.skipped or new_chart.skipped)
    for key in sorted(set(before) | set(after)) if comparable else ():
        if key not in after and homes.get(key, chart) != chart:
            objects.append(ObjectChange(key, "removed", replaced_by=f"moved to release {homes[key]}"))
        elif key not in after:
            loss = None if _kept(before[key]) else _holds_data(before[key])
            objects.append(ObjectChange(key, "removed", loss=loss))
        elif key not in before:
            objects.append(ObjectChange(key, "added"))
        else:
            fields = field_changes(before[key], after[key])
            if before[key]["kind"] == "Secret":
                fields = [FieldChange(f.path, "<hidden>", "<hidden>") for f in fields]
            meaningful = [f for f in fields if not _version_label(f.path)]
            if fields and not meaningful:
                relabelled += 1
            if meaningful:
                # Helm deletes and creates a hook at every run (its default delete policy): never updated.
                flagged = tuple(meaningful) if _hook(after[key]) else tuple(
                    _flag(f, after[key].get("apiVersion", ""), after[key]["kind"]) for f in meaningful)
                objects.append(ObjectChange(key, "changed", flagged))
    release_change = _release_change(chart, old, new, before or after)
    installs_crds = any(o["kind"] == "CustomResourceDefinition" for o in before.values()) or (
        not before and chart == PROMETHEUS_OPERATOR_CRDS.name)
    downgrade = bool(old and new and installs_crds and charts.version_key(new.version) < charts.version_key(old.version))
    return ReleaseDiff(chart, old.version if old else None, new.version if new else None, values, tuple(objects),
                       relabelled, skipped, release_change, downgrade)


def _release_change(chart: str, old: Optional[Release], new: Optional[Release],
                    objects: Mapping[str, Mapping[str, Any]]) -> Optional[ObjectChange]:
    """The release itself added, removed or replaced (a new name or namespace), with what it loses."""
    key = f"{RELEASE} {chart}"
    held = [what for what in map(_holds_data, objects.values()) if what]
    if held:
        loss: Optional[str] = f"its {len(held)} data-bearing objects"
    else:  # without its objects (its chart not templated), a release is taken to hold data
        loss = None if objects else "its objects (its chart not templated: taken to hold data)"
    if old is None:
        return ObjectChange(key, "added")
    if new is None:
        return ObjectChange(key, "removed", loss=loss)
    moved = [p for p in REPLACING_INPUTS[RELEASE] if getattr(old, p[0]) != getattr(new, p[0])]
    if moved:
        fields = tuple(FieldChange(p, getattr(old, p[0]), getattr(new, p[0])) for p in moved)
        return ObjectChange(key, "changed", fields, loss, f"replaced: {', '.join(path_text(p) for p in moved)} changed")
    return None


def _version_label(path: Path_) -> bool:
    return len(path) >= 2 and path[-2] == "labels" and path[-1] in VERSION_LABELS


# ------------------------------------------------------------------------------ field changes


def _name(item: dict[str, Any], key: str, shared: frozenset[str]) -> str:
    """An item's name by `key`; for a name several items share, followed by the item's labels (a rule per
    service of one alert: `WebhookTargetsMissing{service="webhook-api", ...}`)."""
    name = str(item[key])
    if name not in shared:
        return name
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted((item.get("labels") or {}).items())) + "}"


def _identity(*lists: list[Any]) -> Optional[tuple[str, frozenset[str]]]:
    """The key that identifies every item of each list of objects uniquely (with the items' labels where
    items share a name), and the names shared; None when there is none."""
    if not all(items and all(isinstance(i, dict) for i in items) for items in lists):
        return None
    for key in IDENTITIES:
        if not all(i.get(key) is not None for items in lists for i in items):
            continue
        shared = frozenset(name for items in lists for name, count in Counter(str(i[key]) for i in items).items()
                           if count > 1)
        if all(len({_name(i, key, shared) for i in items}) == len(items) for items in lists):
            return key, shared
    return None


def field_changes(before: Any, after: Any, path: Path_ = ()) -> list[FieldChange]:
    """Every leaf (or subtree added or removed) that differs; items of lists of objects matched by
    their name (or alert, record, ...), so an insertion does not show as every later item changed."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            changes += field_changes(before.get(key, MISSING), after.get(key, MISSING), path + (key,))
        return changes
    if isinstance(before, list) and isinstance(after, list):
        identity = _identity(before, after)
        if identity:
            key, shared = identity
            old = {_name(i, key, shared): i for i in before}
            new = {_name(i, key, shared): i for i in after}
            changes = []
            for name in [*old, *(n for n in new if n not in old)]:
                changes += field_changes(old.get(name, MISSING), new.get(name, MISSING), path + ((key, name),))
            return changes
        if len(before) == len(after):
            return [c for index, (b, a) in enumerate(zip(before, after)) for c in field_changes(b, a, path + (index,))]
    return [FieldChange(path, before, after)]


def path_text(path: Path_) -> str:
    text = ""
    for part in path:
        if isinstance(part, tuple):
            text += f"[{part[0]}={part[1]}]"
        elif isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _value_text(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= TEXT_WIDTH else text[:TEXT_WIDTH - 3] + "..."


def _changed_part(before: str, after: str, context: int = 30) -> tuple[str, str]:
    """The part of two long one-line texts that differs, with a little context either side."""
    prefix = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    suffix = next((i for i, (a, b) in enumerate(zip(reversed(before), reversed(after))) if a != b),
                  min(len(before), len(after)) - prefix)
    start = max(prefix - context, 0)

    def part(text: str) -> str:
        end = min(len(text) - suffix + context, len(text))
        return ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")

    return part(before), part(after)


def field_lines(change: FieldChange, indent: str) -> list[str]:
    flag = f"  IMMUTABLE: {change.immutable}" if change.immutable else ""
    if change.before is MISSING:
        return [f"{indent}+ {change.where}: {_value_text(change.after)}{flag}"]
    if change.after is MISSING:
        return [f"{indent}- {change.where}: {_value_text(change.before)}{flag}"]
    if isinstance(change.before, str) and isinstance(change.after, str) and ("\n" in change.before or "\n" in change.after):
        diff = difflib.unified_diff(change.before.splitlines(), change.after.splitlines(), lineterm="", n=1)
        return [f"{indent}~ {change.where}:{flag}", *(f"{indent}    {line}" for line in list(diff)[2:])]
    before, after = change.before, change.after
    if isinstance(before, str) and isinstance(after, str) and max(len(before), len(after)) > TEXT_WIDTH:
        before, after = _changed_part(before, after)
    return [f"{indent}~ {change.where}: {_value_text(before)} -> {_value_text(after)}{flag}"]


def _counts(changes: Iterable[ObjectChange]) -> str:
    counted = {kind: 0 for kind in ("added", "removed", "changed")}
    for change in changes:
        counted[change.change] += 1
    return ", ".join(f"{n} {kind}" for kind, n in counted.items())


def _object_lines(change: ObjectChange, indent: str) -> list[str]:
    sign = {"added": "+", "removed": "-", "changed": "~"}[change.change]
    note = f"  ({change.replaced_by})" if change.replaced_by else ""
    lines = [f"{indent}{sign} {change.key}{note}"]
    for f in change.fields:
        lines += field_lines(f, indent + "    ")
    return lines


def _section(title: str, changes: Iterable[ObjectChange]) -> list[str]:
    changes = list(changes)
    lines = [f"{title}: {_counts(changes)}"]
    for change in changes:
        lines += _object_lines(change, "  ")
    return lines


def _release_lines(release: ReleaseDiff) -> list[str]:
    version = (f"{release.before} -> {release.after}" if release.before != release.after else release.after)
    if release.before is None:
        version = f"new, {release.after}"
    elif release.after is None:
        version = f"removed, was {release.before}"
    if release.release and release.release.change != "changed":
        return [f"release {release.chart} ({version})"]
    if not release.changed and not release.skipped:
        return [f"release {release.chart} ({version}): unchanged"]
    lines = [f"release {release.chart} ({version}): values {len(release.values)} changed; objects {_counts(release.objects)}"
             + (f"; {release.relabelled} with only their chart's version labels changed" if release.relabelled else "")]
    if release.release:
        lines += _object_lines(release.release, "  ")
    lines += [f"  (objects not compared: {why})" for why in release.skipped]
    if release.values:
        lines.append("  values:")
        lines += [line for f in release.values for line in field_lines(f, "    ")]
    for change in release.objects:
        lines += _object_lines(change, "  ")
    return lines


# ------------------------------------------------------------------------------ revisions


def templated(rendered: RenderedStack) -> dict[str, ChartRelease]:
    """The stack's releases through their charts, each at the version this render pins (fetched
    when missing)."""
    for release in rendered.releases.values():
        charts.ensure(Chart(release.chart, release.version, release.repo))
    return template_releases(rendered)


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def diff_against(stack: str, revision: str, with_charts: bool = True) -> StackDiff:
    """This checkout's stack against the same stack at `revision`. Raises RenderError."""
    label = f"{revision} ({_git('rev-parse', '--short', revision)})"
    with tempfile.TemporaryDirectory(prefix=WORKDIR_PREFIX) as tmp:
        base = render_revision(stack, revision, Path(tmp))
    _, head = render_stack(stack)
    base = base or RenderedStack(stack, ())
    return diff_stacks(Revision(label, base, templated(base) if with_charts else {}),
                       Revision("this checkout", head, templated(head) if with_charts else {}))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--base", required=True, help="the revision deployed (a branch, tag or commit)")
    parser.add_argument("--no-charts", action="store_true", help="compare the program's objects and values only")
    parser.add_argument("--check", action="store_true", help="exit 1 on an IMMUTABLE or DATA finding not accepted")
    parser.add_argument("--accept", action="append", default=[], metavar="KEY=RUNBOOK",
                        help="a finding whose migration docs/operations/RUNBOOK describes")
    args = parser.parse_args(argv)
    accepted = dict(a.split("=", 1) for a in args.accept)
    missing = [doc for doc in accepted.values() if not (ROOT / "docs" / "operations" / doc).exists()]
    if missing:
        print(f"--accept names no runbook: {', '.join(f'docs/operations/{d}' for d in missing)}", file=sys.stderr)
        return 2
    try:
        diff = diff_against(args.stack, args.base, with_charts=not args.no_charts)
    except CheckoutError as err:
        print(f"BASE {args.base}: cannot be checked out: {err}", file=sys.stderr)
        return 2
    except (RenderError, subprocess.CalledProcessError) as err:
        print(getattr(err, "stderr", None) or err, file=sys.stderr)
        return 2
    print(diff.text())
    refused = [what for key, what in diff.findings() if key not in accepted]
    return 1 if args.check and refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
