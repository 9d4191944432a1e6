"""`make bench`: render time and memory per stack, the offline unit suite's and the chart check's wall time.

Budgets on the 2-core reference machine: render <= 2 s and <= 300 MB per stack; offline unit
suite <= 30 s. This prints measurements against them; it is not a timed test.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from tools.mock_runtime import ROOT

RUNS = 5
RENDER_SECONDS, RENDER_MB, SUITE_SECONDS = 2.0, 300, 30.0


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


def main(stacks: list[str]) -> int:
    over = False
    for stack in stacks:
        runs = [timed([sys.executable, "-m", "tools.render", stack]) for _ in range(RUNS)]
        seconds = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        over |= seconds > RENDER_SECONDS or peak > RENDER_MB
        print(f"render {stack:5s} median {seconds:5.2f} s ({verdict(seconds, RENDER_SECONDS)}, budget {RENDER_SECONDS} s)"
              f"  peak {peak:4.0f} MB ({verdict(peak, RENDER_MB)}, budget {RENDER_MB} MB)")
    seconds, _ = timed([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "worksteal", "-m", "not live and not charts and not pack and not variants", "tests"])
    over |= seconds > SUITE_SECONDS
    print(f"offline unit suite {seconds:5.2f} s ({verdict(seconds, SUITE_SECONDS)}, budget {SUITE_SECONDS} s)")
    seconds, _ = timed([sys.executable, "-m", "pytest", "-q", "-m", "charts", "tests"])
    print(f"chart check (every release templated, validated, asserted, values keys probed) {seconds:5.2f} s")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["dev", "prod"]))
