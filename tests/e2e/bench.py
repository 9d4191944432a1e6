"""`python -m tests.e2e.bench`: one run of the live alert pipeline, measured.

Prints, per alert, the detection latency from fault onset to the PagerDuty/Slack POST over the
theoretical bound (scrape interval + the time the alert's windowed condition needs for the fault's
shape + `for` + evaluation interval + group_wait, all scaled by the harness FACTOR, Harness.alert_bound);
for the scenarios that time it, the resolve latency from the recovery over its bound (the condition
clearing + evaluation interval + keep_firing_for + group_interval, Harness.resolve_bound); the
errors that new error series would lose without created timestamps, and the harness wall time
(render, start, scenarios, checks, teardown).
Budgets on the 2-core reference machine: ratio <= 1.2 per alert, wall time <= 180 s.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.e2e.harness import run_once
from testkit.bench import verdict

RATIO_TARGET, WALL_SECONDS = 1.2, 180.0


def judged(key: str, measured, missing: str, what: str) -> bool:
    """Print one latency against its bound (`what` holds `{latency}`); True when over the target or missing."""
    if measured.ratio is None:
        print(f"  {key:32s} {missing}")
        return True
    print(f"  {key:32s} {what.format(latency=f'{measured.latency:6.2f}')} / bound {measured.bound:6.2f} s"
          f" = {measured.ratio:4.2f} ({verdict(measured.ratio, RATIO_TARGET)}, target {RATIO_TARGET})")
    return measured.ratio > RATIO_TARGET


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="webhook-e2e-") as workdir:
        report = run_once(Path(workdir))
    over = bool(report.errors)
    for name, error in sorted(report.errors.items()):
        print(f"scenario {name} failed: {error}")
    print(f"live alert pipeline, time scaled 1/{report.factor}")
    for key, detection in sorted(report.detections.items()):
        over |= judged(key, detection, "no notification", f"-> {detection.receiver.strip('/'):9s} {{latency}} s")
    for key, resolve in sorted(report.resolves.items()):
        over |= judged(key, resolve, "no resolve", "resolved {latency} s after the recovery")
    if "fresh_first_window_errors" in report.facts:
        counted, without = report.facts["fresh_first_window_errors"]
        print(f"  new error series, first rate window: {counted:.0f} errors counted; {without:.0f} without "
              f"created timestamps ({1 - without / counted:.0%} lost)")
    over |= report.wall_seconds > WALL_SECONDS
    print(f"harness wall time {report.wall_seconds:6.1f} s ({verdict(report.wall_seconds, WALL_SECONDS)}, budget {WALL_SECONDS:.0f} s)")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
