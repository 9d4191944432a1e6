"""`python -m tools.footprint [--nodes N] <stack> ...`: what each stack requests of its cluster.

Every release of the stack through the pinned charts (tools/templating.py), and the program's own
objects, summed per workload by monitoring/footprint.py: CPU and memory requests, volumes, and the
per-node agents apart.

Templating the charts takes seconds, more than a render may: each release's workloads are kept in
build/footprint/, by the release's chart, version, name, namespace and values, and `make render` sums
them when every release of its stack is there (`known_footprint`), or says which are not.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Optional

from monitoring.footprint import Footprint, Workload, workloads
from tools.mock_runtime import ROOT
from tools.rendered import RenderedStack
from tools.templating import StackOutput, template_stack

KNOWN = ROOT / "build" / "footprint"


def _known(chart: str, version: str, name: str, namespace: str, values: Any, folder: Path) -> Path:
    """Where the workloads of a release with exactly these chart, version, name, namespace and values are kept."""
    text = json.dumps([chart, version, name, namespace, values], sort_keys=True)
    return folder / f"{chart}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.json"


def stack_footprint(output: StackOutput, folder: Path = KNOWN) -> Footprint:
    """The footprint of a templated stack, each release's workloads kept in `folder` for the render;
    raises RuntimeError when a chart is unavailable (its workloads would be missing from the sum)."""
    if output.unavailable():
        raise RuntimeError(output.unavailable())
    found = []
    for release in output.releases.values():
        own = workloads(release.objects, release.namespace)
        path = _known(release.chart.name, release.chart.version, release.name, release.namespace, release.values, folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([dataclasses.asdict(w) for w in own]))
        found += own
    return Footprint(tuple(found + workloads(output.program)))


def known_footprint(rendered: RenderedStack, folder: Path = KNOWN) -> tuple[Optional[Footprint], list[str]]:
    """The footprint of a rendered stack from the workloads `stack_footprint` kept for its very releases
    (without templating a chart), and the releases whose workloads are not kept (then no footprint)."""
    found, missing = [], []
    for release in rendered.releases.values():
        path = _known(release.chart, release.version, release.name, release.namespace, release.values, folder)
        if path.exists():
            found += [Workload(**w) for w in json.loads(path.read_text())]
        else:
            missing.append(release.chart)
    return (None if missing else Footprint(tuple(found + workloads(rendered.manifests())))), missing


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.footprint", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=None, help="nodes of the cluster, to total the per-node agents")
    parser.add_argument("stacks", nargs="+")
    args = parser.parse_args(argv)
    for stack in args.stacks:
        print(f"== {stack}")
        print(stack_footprint(template_stack(stack)).table(args.nodes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
