"""`make upgrade-check`: a chart bump, the previous and the new pinned version templated with the same
values, refused when the upgrade would break what runs.

For every chart whose pinned version differs from the one pinned at BASE (or given with `--previous
<chart>=<version>`), every stack's release of it is templated at both versions with this checkout's
values, and the upgrade fails the check when:

- a CRD the previous version installed serves a version no more, or drops a field of its schema:
  stored objects using it are pruned of it (the API server drops unknown fields of structural schemas);
- an object of both versions changes a field the API server refuses to change (policy/immutable.py),
  or a data-bearing object is deleted or replaced (the diff of tools/diff.py, the one machinery);
- a values key the program sets is read by the previous version and by the new one no more
  (testkit/chart_check.py's ignored keys): the setting is silently lost.

A previous version that is not available (tools/charts.py: neither `helm pull` nor the git mirrors
have it) is skipped, with the reason; an unchanged pin has nothing to check. The last lines say which
bumps were checked.

    python -m testkit.upgrade_check [--base <rev>] [--previous <chart>=<version> ...] [stack ...]
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from monitoring.versions import Chart
from testkit.chart_check import ignored_keys
from tools import charts
from tools.diff import Revision, diff_stacks, templated
from tools.mock_runtime import ROOT
from tools.stacks import stacks
from tools.rendered import RELEASE, RenderedStack
from tools.templating import StackOutput, template_stack

PINNED = {c.name: c for c in charts.CHARTS}


@dataclass
class Outcome:
    chart: str
    previous: str
    pinned: str
    problems: list[str] = field(default_factory=list)
    skipped: Optional[str] = None
    stacks: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ what the previous revision pins


def pins_at(revision: str) -> dict[str, str]:
    """Chart name -> version as monitoring/versions.py pins them at `revision` (read, not imported)."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:monitoring/versions.py"], capture_output=True,
                          text=True, check=True).stdout
    pins = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Chart" and len(node.args) >= 2:
            name, version = (a.value for a in node.args[:2])
            pins[name] = version
    return pins


# ------------------------------------------------------------------------------ the checks


def schema_fields(schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Every field path an openAPIV3Schema declares (`spec.endpoints[].port`, `spec.x.*` for maps)."""
    found = set()
    for name, inner in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        found |= {path, *schema_fields(inner, path)}
    if isinstance(schema.get("items"), dict):
        found |= schema_fields(schema["items"], f"{prefix}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found |= schema_fields(schema["additionalProperties"], f"{prefix}.*")
    return found


def dropped_crd_fields(previous: Iterable[dict], new: Iterable[dict]) -> list[str]:
    """What CRDs of the previous version serve that the new version's no longer do."""
    new_by_name = {c["metadata"]["name"]: c for c in new}
    problems = []
    for crd in previous:
        name = crd["metadata"]["name"]
        if name not in new_by_name:
            continue  # Helm leaves a CRD it stops rendering in place (crds/) or a kept one: the diff reports it
        now = {v["name"]: v for v in new_by_name[name]["spec"]["versions"] if v.get("served")}
        for version in crd["spec"]["versions"]:
            if not version.get("served"):
                continue
            if version["name"] not in now:
                problems.append(f"CRD {name}: version {version['name']} no longer served")
                continue
            before = schema_fields((version.get("schema") or {}).get("openAPIV3Schema") or {})
            after = schema_fields((now[version["name"]].get("schema") or {}).get("openAPIV3Schema") or {})
            problems += [f"CRD {name} {version['name']}: field {path} dropped" for path in sorted(before - after)
                         if not any(path.startswith(gone + ".") or path.startswith(gone + "[") for gone in before - after
                                    if gone != path)]
    return problems


def at_version(rendered: RenderedStack, chart: str, version: str) -> RenderedStack:
    """The render with the release of `chart` installing `version` instead (the same values)."""
    resources = copy.deepcopy(list(rendered.resources))
    for resource in resources:
        if resource["type"] == RELEASE and resource["inputs"]["chart"] == chart:
            resource["inputs"]["version"] = version
    return dataclasses.replace(rendered, resources=tuple(resources))


def check_release(output: StackOutput, chart: str, previous: str, keys: bool = True) -> list[str]:
    """The problems of upgrading `chart` from `previous` to the pinned version in one stack."""
    head = output.rendered
    base = at_version(head, chart, previous)
    old, new = templated(base), dict(output.releases)
    if old[chart].skipped or new[chart].skipped:
        raise LookupError(old[chart].skipped or new[chart].skipped)
    problems = [f"{output.stack}: {what}" for _, what in
                diff_stacks(Revision(f"{chart} {previous}", base, old), Revision("pinned", head, new)).findings()]
    problems += [f"{output.stack}: {p}" for p in dropped_crd_fields(
        [o for o in old[chart].objects if o["kind"] == "CustomResourceDefinition"],
        [o for o in new[chart].objects if o["kind"] == "CustomResourceDefinition"])]
    if keys:
        lost = sorted(set(ignored_keys(output, new[chart])) - set(ignored_keys(output, old[chart])))
        problems += [f"{output.stack}: values key {key} is read by {chart} {previous}, not by {new[chart].chart.version}"
                     for key in lost]
    return problems


def check(previous: dict[str, str], stack_names: list[str], keys: bool = True) -> list[Outcome]:
    outcomes = []
    for name, version in sorted(previous.items()):
        pinned = PINNED[name]
        outcome = Outcome(name, version, pinned.version)
        outcomes.append(outcome)
        if version == pinned.version:
            continue
        source = charts.ensure(Chart(name, version, pinned.repo))
        if source.startswith("unavailable"):
            outcome.skipped = f"{name} {version} is not available: {source.removeprefix('unavailable: ')}"
            continue
        for stack in stack_names:
            output = template_stack(stack)
            if name not in output.releases:
                continue
            try:
                outcome.problems += check_release(output, name, version, keys)
            except LookupError as unavailable:
                outcome.skipped = str(unavailable)
                break
            outcome.stacks.append(stack)
    return outcomes


def report(outcomes: list[Outcome]) -> tuple[int, str]:
    lines, failed = [], False
    for o in outcomes:
        if o.previous == o.pinned:
            lines.append(f"{o.chart} {o.pinned}: unchanged, nothing to check")
        elif o.skipped:
            lines.append(f"{o.chart} {o.previous} -> {o.pinned}: SKIPPED: {o.skipped}")
        elif o.problems:
            failed = True
            lines.append(f"{o.chart} {o.previous} -> {o.pinned}: FAILED ({', '.join(o.stacks)})")
            lines += [f"  {p}" for p in o.problems]
        else:
            lines.append(f"{o.chart} {o.previous} -> {o.pinned}: ok ({', '.join(o.stacks) or 'no stack installs it'})")
    checked = [f"{o.chart} {o.previous} -> {o.pinned}" for o in outcomes if o.previous != o.pinned and not o.skipped]
    lines.append(f"bumps checked: {', '.join(checked) or 'none'}")
    return (1 if failed else 0), "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.upgrade_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="*")
    parser.add_argument("--base", default="main", help="the revision whose pins are the previous versions")
    parser.add_argument("--previous", action="append", default=[], metavar="CHART=VERSION")
    parser.add_argument("--no-keys", action="store_true", help="skip the values keys check (slow for large charts)")
    args = parser.parse_args(argv)
    explicit = dict(p.split("=", 1) for p in args.previous)
    unknown = sorted(set(explicit) - set(PINNED))
    if unknown:
        print(f"--previous names no chart the program installs: {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        previous = {**{n: v for n, v in pins_at(args.base).items() if n in PINNED}, **explicit}
    except subprocess.CalledProcessError as err:
        print(f"cannot read monitoring/versions.py at {args.base}: {err.stderr.strip()}", file=sys.stderr)
        return 2
    code, text = report(check(previous, args.stacks or stacks(), keys=not args.no_keys))
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
