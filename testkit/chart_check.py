"""`make chart-check`: every Helm release of every stack through the real chart templates.

For each stack and each Helm release the program registers, `helm template` (Helm 3, as
pulumi-kubernetes embeds it) with the exact chart version, values, release name and namespace,
CRDs and hooks included. Then:

1. every object produced is validated: built-in kinds strictly against Kubernetes' schemas,
   custom resources against the CRDs the stack installs (the program's own objects too);
2. the program's intent is asserted on the objects (testkit/chart_intent.py);
3. the stack's own values (`helmValues`, merged over the program's) are each changed and the chart
   templated again: a key no template reads is a mistake Helm takes without a word; with `--keys`,
   every values leaf the program sets too.

A release whose chart is not available (tools/charts.py; templating: tools/templating.py) is reported as skipped, with the reason;
nothing unavailable passes silently.

    python -m testkit.chart_check [--keys] [stack ...]     (default: every Pulumi.<stack>.yaml)
"""

from __future__ import annotations

import base64
import copy
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Optional

from testkit import k8s
from testkit.chart_intent import CHECKS
from tools import charts
from tools.stacks import stacks
from tools.templating import ChartRelease, StackOutput, api_versions, helm_template, load_all, template_stack


def validation_problems(output: StackOutput) -> list[str]:
    validators = k8s.crd_validators(output.crds())
    return list(k8s.validation_problems(output.objects(), validators))


# ------------------------------------------------------------------------------ ignored keys


Path_ = tuple[Any, ...]


def leaves(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """(path, value) of every leaf: scalars, None, and empty maps and lists."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from leaves(inner, path + (key,))
    elif isinstance(value, list) and value:
        for index, inner in enumerate(value):
            yield from leaves(inner, path + (index,))
    else:
        yield path, value


def replaced(values: dict[str, Any], changes: dict[Path_, Any]) -> dict[str, Any]:
    out = copy.deepcopy(values)
    for path, new in changes.items():
        target = out
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = new
    return out


def marker(index: int, old: Any) -> Optional[tuple[Any, str]]:
    """(new value, text that shows up verbatim in the output if the chart uses the leaf); None for a
    boolean, which has no such value."""
    if isinstance(old, bool):
        return None
    token = f"zqmark{index}x"
    if isinstance(old, (int, float)):
        # Under a million: Go templates print larger numbers in exponent form (7.000001e+06).
        return 900_000 + index, str(900_000 + index)
    if isinstance(old, dict):
        return {"zqmark": token}, token
    if isinstance(old, list):
        return [token], token
    if isinstance(old, str) and old.startswith("$__"):
        # A Grafana file or environment reference: the chart refuses a secret key given plainly.
        return f"$__file{{/{token}}}", token
    return token, token


def mutation(old: Any) -> Any:
    """A different value of the same type, for a leaf whose marker did not show up."""
    if isinstance(old, bool):
        return not old
    if isinstance(old, (int, float)):
        return old + 1 if old != 0 else 1
    if isinstance(old, str):
        return old + "x" if old else "x"
    if isinstance(old, dict):
        return {"zqmutated": "x"}
    if isinstance(old, list):
        return ["x"]
    return "x"


def key_text(path: Path_) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def _secret_texts(manifests: str) -> list[str]:
    """The decoded `data` of the Secrets in a rendered stream (values the charts put in Secrets,
    such as extra scrape configurations, are base64 there)."""
    texts = []
    for obj in load_all(manifests):
        if obj.get("kind") == "Secret":
            texts += [base64.b64decode(value).decode(errors="replace") for value in (obj.get("data") or {}).values()]
    return texts


def ignored_keys(output: StackOutput, release: ChartRelease, only: Optional[set[Path_]] = None) -> list[str]:
    """The values leaves of `release` (those at the paths `only` names, if given) that no template reads:
    changing them changes no object."""
    chart_dir = charts.chart_dir(release.chart)
    apis = api_versions(output.crds())

    def render(values: dict[str, Any]) -> Optional[str]:
        try:
            return helm_template(release, values, chart_dir, apis)
        except RuntimeError:
            return None  # the chart refused the value: it reads it

    baseline = render(release.values)
    all_leaves = [(path, old) for path, old in leaves(release.values) if only is None or path in only]
    # One run with a marker in every leaf finds most of the leaves in use; the rest are changed one
    # by one (booleans, values only compared, and everything when the marked values are refused).
    markers = {path: m for i, (path, old) in enumerate(all_leaves) if (m := marker(i, old)) is not None}
    marked = render(replaced(release.values, {path: value for path, (value, _) in markers.items()}))
    marked = marked and marked + "\n".join(_secret_texts(marked))
    found = {path for path, (_, token) in markers.items() if marked is not None and token in marked}
    rest = [(path, old) for path, old in all_leaves if path not in found]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = list(pool.map(lambda leaf: render(replaced(release.values, {leaf[0]: mutation(leaf[1])})), rest))
    return [key_text(path) for (path, _), out in zip(rest, outputs) if out == baseline]


def ignored_overrides(output: StackOutput, release: ChartRelease) -> list[str]:
    """The stack's own values of `release` (`helmValues`) that no template of its chart reads."""
    own = output.settings.helm_values.get(release.chart.name)
    return ignored_keys(output, release, {path for path, _ in leaves(own)}) if own else []


# ------------------------------------------------------------------------------ command line


def main(argv: list[str]) -> int:
    keys = "--keys" in argv
    names = [a for a in argv if not a.startswith("--")] or sorted(stacks())
    failed = False
    for stack in names:
        started = time.monotonic()
        output = template_stack(stack)
        print(f"== stack {stack}")
        for release in output.releases.values():
            what = f"SKIPPED: {release.skipped}" if release.skipped else f"{len(release.objects)} objects"
            print(f"  release {release.name:30s} {release.chart.name} {release.chart.version}: {what}")
        problems = validation_problems(output)
        print(f"  validated {len(output.objects())} objects ({len(output.program)} of the program's own): "
              f"{len(problems)} problems")
        for problem in problems:
            print(f"    {problem}")
        failed |= bool(problems)
        passed = skipped = 0
        for check in CHECKS:
            if not check.applies(output):
                continue
            if check.skip_reason(output):
                skipped += 1
                continue
            try:
                check.run(output)
                passed += 1
            except AssertionError as error:
                failed = True
                print(f"    FAILED {check.name}: {error}")
        print(f"  intent assertions: {passed} passed, {skipped} skipped")
        for release in output.releases.values():
            if not release.skipped and release.chart.name in output.settings.helm_values:
                ignored = ignored_overrides(output, release)
                failed |= bool(ignored)
                print(f"  helmValues of {release.name} no template reads: {len(ignored)}"
                      + "".join(f"\n    {key}" for key in ignored))
        if keys:
            for release in output.releases.values():
                if release.skipped:
                    continue
                ignored = ignored_keys(output, release)
                failed |= bool(ignored)
                print(f"  ignored values keys of {release.name}: {len(ignored)} of {len(list(leaves(release.values)))} leaves"
                      + "".join(f"\n    {key}" for key in ignored))
        print(f"  ({time.monotonic() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
