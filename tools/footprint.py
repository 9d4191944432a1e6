"""`python -m tools.footprint [--nodes N] <stack> ...`: what each stack requests of its cluster.

Every release of the stack through the pinned charts (tools/templating.py), and the program's own
objects, summed per workload by monitoring/footprint.py: CPU and memory requests, volumes, and the
per-node agents apart.
"""

from __future__ import annotations

import argparse
import sys

from monitoring.footprint import Footprint, workloads
from tools.templating import StackOutput, template_stack


def stack_footprint(output: StackOutput) -> Footprint:
    """The footprint of a templated stack; raises RuntimeError when a chart is unavailable (its
    workloads would be missing from the sum)."""
    if output.unavailable():
        raise RuntimeError(output.unavailable())
    found = [w for release in output.releases.values() for w in workloads(release.objects, release.namespace)]
    return Footprint(tuple(found + workloads(output.program)))


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
