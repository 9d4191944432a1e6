"""`python -m testkit.backtest_bench`: `make backtest` over a week of history, timed.

A week of the webhook delivery service's history (by default 2 services x 10 pods x 200 customer
endpoints: 20 pods, 44,120 series, every 30 s) is written straight into TSDB blocks by tsdbgen
(testkit/tsdbgen: the pinned Prometheus' own TSDB packages; scraping it would take the week), with
an error spike, a slow hour and a queue backlog in it. The pinned Prometheus serves those blocks
with its default query limits, and the prod stack's whole rule set is backtested at its evaluation
interval, as `make backtest` runs it, over the week but its first day (the history the 1-day SLO
window reads before its first evaluation). It prints the data (series x days, samples,
size), the time per day of range against the target, and where the time goes, by rule.

The history is kept in build/backtest-bench/ and reused while its parameters are the same.
`--report FILE` writes the backtest's markdown report (docs/alerting.md shows one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from config.types import duration_ms
from monitoring.versions import PROMETHEUS_VERSION
from testkit.bench import verdict
from testkit.live import Process, free_port, responds, wait_until
from tools import backtest
from tools.go_tools import binary
from tools.mock_runtime import ROOT
from tools.program import render_stack

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Measured on the 2-core reference machine, shared (load average 9): 34 s per day of range at 20
# pods x 200 endpoints, nearly all of it the source reading the raw series once for each recording
# rule that reads them (the histogram's buckets alone half). The target leaves a third for the load.
SECONDS_PER_DAY_TARGET = 45.0
# The scripted faults, by (service, kind, start after the history's start, length).
FAULTS = (("webhook-api-0", "errors", 2 * DAY_MS + 10 * HOUR_MS, 45 * 60_000),
          ("webhook-api-1", "latency", 4 * DAY_MS + 14 * HOUR_MS, HOUR_MS),
          ("webhook-api-0", "backlog", 5 * DAY_MS + 3 * HOUR_MS, 30 * 60_000))
INCIDENTS = ("checkout errors", "slow deliveries", "queue backlog")


def history(directory: Path, days: int, services: int, pods: int, endpoints: int) -> dict:
    """The blocks of `days` of history ending at the last full hour, written once per parameters."""
    meta = directory / "history.json"
    wanted = {"days": days, "services": services, "pods": pods, "endpoints": endpoints}
    if meta.exists() and json.loads(meta.read_text())["parameters"] == wanted:
        return json.loads(meta.read_text())
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "data").mkdir(parents=True)
    end = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    start = end - days * DAY_MS
    faults = [f"{service}:{kind}:{start + after}:{start + after + length}" for service, kind, after, length in FAULTS]
    started = time.monotonic()
    done = subprocess.run([binary("tsdbgen"), "-out", str(directory / "data"), "-start", str(start), "-end", str(end),
                           "-services", str(services), "-pods", str(pods), "-endpoints", str(endpoints),
                           *(a for f in faults for a in ("-fault", f))], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"tsdbgen failed: {done.stderr}")
    series, samples = (int(n) for n in done.stdout.split()[0:3:2])
    size = sum(p.stat().st_size for p in (directory / "data").rglob("*") if p.is_file())
    facts = {"parameters": wanted, "start": start, "end": end, "series": series, "samples": samples, "bytes": size,
             "seconds": time.monotonic() - started,
             "incidents": [{"name": name, "start": start + after, "end": start + after + length}
                           for name, (_, _, after, length) in zip(INCIDENTS, FAULTS)]}
    meta.write_text(json.dumps(facts))
    return facts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.backtest_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--services", type=int, default=2)
    parser.add_argument("--pods", type=int, default=10, help="per service")
    parser.add_argument("--endpoints", type=int, default=200, help="customer endpoints per pod")
    parser.add_argument("--report", type=Path, help="write the backtest's markdown report here")
    args = parser.parse_args(argv)
    facts = history(ROOT / "build" / "backtest-bench", args.days, args.services, args.pods, args.endpoints)
    print(f"backtest bench: {facts['series']} series x {args.days} days, {facts['samples'] / 1e6:.0f} M samples, "
          f"{facts['bytes'] / 2**30:.2f} GiB of blocks (written in {facts['seconds']:.0f} s)")
    _, rendered = render_stack(args.stack)
    ruleset = backtest.RuleSet.from_rendered(rendered)
    with tempfile.TemporaryDirectory(prefix="backtest-bench-") as workdir:
        config = Path(workdir) / "prometheus.yaml"
        config.write_text(yaml.safe_dump({"global": {"evaluation_interval": ruleset.evaluation_interval}}))
        url = f"http://127.0.0.1:{free_port()}"
        prometheus = Process([binary("prometheus"), f"--config.file={config}",
                              f"--storage.tsdb.path={ROOT / 'build' / 'backtest-bench' / 'data'}",
                              f"--web.listen-address={url.removeprefix('http://')}",
                              "--storage.tsdb.retention.time=90d",
                              # The blocks are a day each: no compaction competing with the queries.
                              "--storage.tsdb.max-block-duration=1d"], Path(workdir) / "prometheus.log")
        try:
            wait_until(lambda: responds(f"{url}/-/ready"), timeout=120, what="Prometheus on the benchmark's blocks")
            api = backtest.QueryApi.connect(url)
            result = backtest.run(ruleset, api, facts["start"] + DAY_MS, facts["end"], show_progress=sys.stderr.isatty())
        finally:
            prometheus.stop()
    days = args.days - 1
    per_day = result.seconds / days
    print(f"backtest of {len(result.alerts)} alerting rules over {days} days every {ruleset.evaluation_interval}: "
          f"{result.seconds:.1f} s in {result.queries} queries, {per_day:.1f} s per day of range "
          f"({verdict(per_day, SECONDS_PER_DAY_TARGET)}, target {SECONDS_PER_DAY_TARGET:g} s)")
    for part, seconds in sorted(result.spent.items(), key=lambda item: -item[1])[:8]:
        print(f"  {seconds:6.1f} s  {part}")
    unjudged = [a.rule.key for a in result.alerts if not a.judged]
    print(f"  not judged (the week is shorter than they read): {', '.join(unjudged) or 'none'}")
    if args.report:
        incidents = [backtest.Incident(i["name"], i["start"], i["end"]) for i in facts["incidents"]]
        report = backtest.Report(args.stack, f"a local Prometheus {PROMETHEUS_VERSION} holding the benchmark's week",
                                 result, incidents=incidents, tolerance_ms=duration_ms(ruleset.evaluation_interval))
        args.report.write_text(report.markdown())
    return 1 if per_day > SECONDS_PER_DAY_TARGET else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
