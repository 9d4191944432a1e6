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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="webhook-e2e-") as workdir:
        report = run_once(Path(workdir))
    over = bool(report.errors)
    for name, error in sorted(report.errors.items()):
        print(f"scenario {name} failed: {error}")
    print(f"live alert pipeline, time scaled 1/{report.factor}")
    for key, detection in sorted(report.detections.items()):
        if detection.ratio is None:
            over = True
            print(f"  {key:32s} no notification")
            continue
        over |= detection.ratio > RATIO_TARGET
        print(f"  {key:32s} -> {detection.receiver.strip('/'):9s} {detection.latency:6.2f} s / bound {detection.bound:6.2f} s"
              f" = {detection.ratio:4.2f} ({verdict(detection.ratio, RATIO_TARGET)}, target {RATIO_TARGET})")
    for key, resolve in sorted(report.resolves.items()):
        if resolve.ratio is None:
            over = True
            print(f"  {key:32s} no resolve")
            continue
        over |= resolve.ratio > RATIO_TARGET
        print(f"  {key:32s} resolved {resolve.latency:6.2f} s after the recovery / bound {resolve.bound:6.2f} s"
              f" = {resolve.ratio:4.2f} ({verdict(resolve.ratio, RATIO_TARGET)}, target {RATIO_TARGET})")
    if "fresh_first_window_errors" in report.facts:
        counted, without = report.facts["fresh_first_window_errors"]
        print(f"  new error series, first rate window: {counted:.0f} errors counted; {without:.0f} without "
              f"created timestamps ({1 - without / counted:.0%} lost)")
    over |= report.wall_seconds > WALL_SECONDS
    print(f"harness wall time {report.wall_seconds:6.1f} s ({verdict(report.wall_seconds, WALL_SECONDS)}, budget {WALL_SECONDS:.0f} s)")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
