"""What the charts make of a stack: every Helm release of a rendered stack through `helm template`.

Each release is templated (Helm 3, as pulumi-kubernetes embeds it) with the exact chart version,
values, release name and namespace, CRDs and install and upgrade hooks included (test hooks not:
nothing runs `helm test`), for the Kubernetes version the stack
targets. The chart check, the security scan, the policy pack and `make diff` read the result. A
release whose chart is not available (tools/charts.py) is kept with the reason it was skipped:
nothing unavailable passes silently.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import yaml

from config import Settings
from monitoring import versions
from monitoring.versions import Chart
from tools import charts
from tools.go_tools import binary
from tools.program import render_stack
from tools.rendered import RenderedStack

CHARTS_BY_NAME = {c.name: c for c in charts.CHARTS}


class _Loader(yaml.CSafeLoader):
    """YAML as the API server reads it; `=` is a string (an enum value in the Operator's CRDs), not
    YAML 1.1's `value` tag."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_all(text: str) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML stream."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


@dataclass
class ChartRelease:
    """One Helm release of a stack, and what its chart makes of its values."""

    name: str
    chart: Chart
    namespace: str
    values: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)
    skipped: Optional[str] = None
    """Why the chart was not templated (its source is unavailable)."""


@dataclass
class StackOutput:
    stack: str
    settings: Settings
    rendered: RenderedStack
    releases: dict[str, ChartRelease]
    """By chart name, in install order."""
    program: list[dict[str, Any]]
    """The Kubernetes objects the program registers itself."""

    def objects(self, chart: Optional[str] = None, kind: Optional[str] = None) -> list[dict[str, Any]]:
        """The objects of one release (or all, the program's included), of one kind (or all)."""
        pools = [self.releases[chart].objects] if chart else [r.objects for r in self.releases.values()] + [self.program]
        return [o for pool in pools for o in pool if kind is None or o.get("kind") == kind]

    def one(self, chart: str, kind: str, name: Optional[str] = None) -> dict[str, Any]:
        """The only object of that kind (and name) in a release's output."""
        found = [o for o in self.objects(chart, kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{chart}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def crds(self) -> list[dict[str, Any]]:
        return self.objects(kind="CustomResourceDefinition")

    @property
    def skipped(self) -> dict[str, str]:
        """Chart name -> why its release was not templated."""
        return {name: r.skipped for name, r in self.releases.items() if r.skipped}

    def unavailable(self) -> Optional[str]:
        """Why not every release of the stack was templated (None when each was): what a check over the
        whole stack says when it skips. The stack's objects depend on each other (the monitors on
        kube-prometheus-stack's CRDs, the flows on every release's pods): judged in part, they fail
        for what is missing rather than for what is wrong."""
        skipped = "; ".join(f"{name}: {reason}" for name, reason in self.skipped.items())
        return f"stack {self.stack}: not every chart is available ({skipped})" if skipped else None


def api_versions(crds: list[dict[str, Any]]) -> list[str]:
    """What the cluster serves once the stack's CRDs are installed, as Helm's --api-versions takes
    it: `group/version` and `group/version/Kind` (charts test either before rendering monitors)."""
    served = set()
    for crd in crds:
        for version in crd["spec"]["versions"]:
            served.add(f"{crd['spec']['group']}/{version['name']}")
            served.add(f"{crd['spec']['group']}/{version['name']}/{crd['spec']['names']['kind']}")
    return sorted(served)


def helm_template(release: ChartRelease, values: dict[str, Any], chart_dir: Path, apis: list[str]) -> str:
    """`helm template` of the release with `values`; raises RuntimeError with Helm's message on failure."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
        json.dump(values, values_file)  # JSON is YAML: no YAML 1.1 surprises on the way in
        values_file.flush()
        args = [binary("helm"), "template", release.name, str(chart_dir), "--namespace", release.namespace,
                # Test hooks run only with `helm test`, which a Helm release under Pulumi never runs.
                "--values", values_file.name, "--include-crds", "--skip-tests",
                "--kube-version", versions.KUBERNETES_VERSION,
                *(f"--api-versions={api}" for api in apis)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"helm template {release.name} ({release.chart.name} {release.chart.version}) failed: "
                           f"{result.stderr.strip()}")
    return result.stdout


def template_release(rendered: RenderedStack, chart: str, apis: list[str]) -> ChartRelease:
    """The release of `chart` templated at the chart version it installs, for a cluster serving `apis`
    (skipped, with the reason, where that chart's source is not available)."""
    installed = rendered.releases[chart]
    release = ChartRelease(installed.name, Chart(installed.chart, installed.version, installed.repo),
                           installed.namespace, installed.values)
    chart_dir = charts.chart_dir(release.chart)
    if chart_dir is None:
        release.skipped = charts.unavailable_reason(release.chart)
    else:
        release.objects = load_all(helm_template(release, release.values, chart_dir, apis))
    return release


def template_releases(rendered: RenderedStack) -> dict[str, ChartRelease]:
    """Every release of a rendered stack templated (`template_release`), by chart name in the order
    the program installs them (the CRDs first: the later charts render monitors once the CRDs are served)."""
    releases: list[ChartRelease] = []
    for chart in rendered.releases:
        apis = api_versions([o for r in releases for o in r.objects if o["kind"] == "CustomResourceDefinition"])
        releases.append(template_release(rendered, chart, apis))
    return {r.chart.name: r for r in releases}


def template_rendered(rendered: RenderedStack, settings: Settings) -> StackOutput:
    """Every release of a rendered stack templated (`template_releases`), at the pinned versions."""
    for release in rendered.releases.values():
        pinned = CHARTS_BY_NAME[release.chart].version
        assert release.version == pinned, f"{release.name}: chart {release.version} installed, {pinned} pinned"
    return StackOutput(rendered.stack, settings, rendered, template_releases(rendered), rendered.manifests())


@lru_cache(maxsize=None)
def template_stack(stack: str, path: Optional[Path] = None) -> StackOutput:
    """Run the program for `stack` (its stack file, or `path`) under mocks and template every release."""
    settings, rendered = render_stack(stack, path)
    return template_rendered(rendered, settings)
