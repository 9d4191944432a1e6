"""`make bench`: render time and memory per stack and at scale, the offline unit suite's and the chart check's wall time.

Budgets on the 2-core reference machine: `make render` <= 1 s per stack and <= 1.5 s for prod with
200 services and 200 probes (median of RUNS), <= 300 MB; the offline unit suite <= 20 s (the
Makefile's OFFLINE selection, passed with --offline). This prints measurements against them; it is
not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tools.mock_runtime import ROOT
from tools.program import stack_file
from tools.stacks import stacks

RUNS = 5
RENDER_SECONDS, SCALE_RENDER_SECONDS, RENDER_MB, SUITE_SECONDS = 1.0, 1.5, 300, 20.0
SCALE_STACK, SCALE_SERVICES, SCALE_PROBES = "prod", 200, 200
METRICS_KEY = "webhook-monitoring:metrics"


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one command (run to completion, output discarded)."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            output.seek(0)
            tail = output.read().decode()[-3000:]
            raise SystemExit(f"{' '.join(cmd)} failed:\n{tail}")
    return elapsed, usage.ru_maxrss / 1024


def verdict(value: float, budget: float) -> str:
    return "ok" if value <= budget else "OVER BUDGET"


def scaled_stack_file(folder: Path) -> Path:
    """Pulumi.<SCALE_STACK>.yaml in `folder`: the stack's file with SCALE_SERVICES services and
    SCALE_PROBES probes (each its own name, selector and URL)."""
    document = yaml.safe_load(stack_file(SCALE_STACK).read_text())
    metrics = document["config"][METRICS_KEY]
    namespace = metrics["services"][0]["namespace"]
    metrics["services"] = [{"name": f"webhook-svc-{i:03d}", "namespace": namespace,
                            "selector": {"app.kubernetes.io/name": f"webhook-svc-{i:03d}"}} for i in range(SCALE_SERVICES)]
    metrics["probes"] = [{"name": f"endpoint-{i:03d}", "url": f"https://hooks-{i:03d}.webhooks.example.com/healthz"}
                         for i in range(SCALE_PROBES)]
    path = folder / f"Pulumi.{SCALE_STACK}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def render_runs(what: str, cmd: list[str], budget: float) -> bool:
    """Render RUNS times; print the median and peak against the budgets; True when over one."""
    runs = [timed(cmd) for _ in range(RUNS)]
    seconds = statistics.median(r[0] for r in runs)
    peak = max(r[1] for r in runs)
    print(f"render {what} median {seconds:5.2f} s ({verdict(seconds, budget)}, budget {budget} s)"
          f"  peak {peak:4.0f} MB ({verdict(peak, RENDER_MB)}, budget {RENDER_MB} MB)")
    return seconds > budget or peak > RENDER_MB


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.bench")
    parser.add_argument("--offline", required=True, help="the pytest -m expression of the offline suite (the Makefile's OFFLINE)")
    parser.add_argument("stacks", nargs="*", help="the stacks to render (default: every stack file)")
    args = parser.parse_args(argv)
    over = False
    for stack in args.stacks or stacks():
        over |= render_runs(f"{stack:5s}", [sys.executable, "-m", "tools.render", stack], RENDER_SECONDS)
    with tempfile.TemporaryDirectory() as folder:
        path = scaled_stack_file(Path(folder))
        over |= render_runs(f"{SCALE_STACK} with {SCALE_SERVICES} services and {SCALE_PROBES} probes",
                            [sys.executable, "-m", "tools.render", SCALE_STACK, str(path)], SCALE_RENDER_SECONDS)
    seconds, _ = timed([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "worksteal", "-m", args.offline, "tests"])
    over |= seconds > SUITE_SECONDS
    print(f"offline unit suite {seconds:5.2f} s ({verdict(seconds, SUITE_SECONDS)}, budget {SUITE_SECONDS} s)")
    seconds, _ = timed([sys.executable, "-m", "pytest", "-q", "-m", "charts", "tests"])
    print(f"chart check (every release templated, validated, asserted, values keys probed) {seconds:5.2f} s")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
