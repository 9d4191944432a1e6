"""`python -m tools.cluster_facts <stack>`: the cluster a stack deploys to, as `key=value` lines.

The PR workflow's preview job reads them as step outputs (AWS region, kubeconfig context), so
the workflow holds no Python of its own to go stale.
"""

from __future__ import annotations

import sys

from config import load
from tools.program import stack_config, stack_file


def cluster_facts(stack: str) -> dict[str, str]:
    raw, secret_keys = stack_config(stack_file(stack))
    cluster = load(raw, secret_keys, lambda name: name, stack=stack)[0].cluster
    return {
        "name": cluster.name,
        "region": cluster.region,
        "kube-context": cluster.kube_context or cluster.name,
        # A stack without an infrastructure stack reads the kubeconfig of the machine it runs on.
        "ambient-kubeconfig": "false" if cluster.infra_stack else "true",
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tools.cluster_facts <stack>")
    print("\n".join(f"{key}={value}" for key, value in cluster_facts(sys.argv[1]).items()))
