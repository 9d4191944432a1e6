"""The stacks of the checkout: one per `Pulumi.<stack>.yaml`. The Makefile, the tests and the PR
workflow's matrix all take them from here (standard library only: the workflow runs it before any
virtualenv exists).

    python3 -m tools.stacks            one stack name per line
    python3 -m tools.stacks --json     a JSON list (what the workflow's matrix reads)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stacks(root: Path = ROOT) -> list[str]:
    """Every stack with a stack file in `root`, sorted."""
    names = (p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
    return sorted(name for name in names if name)


if __name__ == "__main__":
    found = stacks()
    print(json.dumps(found) if sys.argv[1:] == ["--json"] else "\n".join(found))
