"""`python -m testkit.load_bench`: the rendered Prometheus rules against a large webhook service.

A synthetic webhook delivery service (--pods pods, each exposing the service's metrics contract for
--endpoints customer endpoints: two delivery counters and a 12-bucket histogram per endpoint) is
scraped by the real Prometheus on the configuration the real Prometheus Operator generates from the
rendered stack (testkit/operator.py: kube-prometheus-stack's objects and the program's on the
loopback API server): its scrape and evaluation intervals, rules, and the scrape settings of the
first configured service's ServiceMonitor, which discovers the pods through the API server. The
remote write and the federation jobs are left out: their other ends are not here. Prometheus is held to the rendered
resource limits: pinned to as many CPUs as its CPU limit allows (GOMAXPROCS too, as Go sets it
from a container's CPU limit), with GOMEMLIMIT at 90 % of its memory limit (what
--auto-gomemlimit sets from the container's). The exporter runs on the other CPUs.

After a warm-up it samples Prometheus' own metrics for --minutes and prints, per rule group, how
long an evaluation takes against its interval, the iterations missed and the samples written; the
head series; and the resident memory against the memory limit. The budgets:

- no rule group misses an iteration at the CPU limit: a missed iteration is a gap in every
  recorded series and an alert evaluated late;
- the `webhook-delivery.recording` group's median evaluation takes under 25 % of its interval:
  headroom for growth, for remote write and for the queries of dashboards and alerts sharing the CPU;
- the peak resident memory stays under 70 % of the memory limit: head compaction and queries
  need the rest, and the limit is an OOM kill.

Exit status 1 when a budget is over. `--root` renders another checkout (a `git worktree` of an
older commit, say) with that checkout's own code, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import http.server
import json
import math
import operator
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from config.types import Cpu, Memory, duration_ms
from monitoring.versions import PROMETHEUS_VERSION
from testkit.apiserver import host_address
from testkit.bench import verdict
from testkit.live import Process, free_port, responds, wait_until
from testkit.operator import OperatedStack
from tools.go_tools import binary
from tools.mock_runtime import ROOT
from tools.program import RenderError, render_checkout
from tools.rendered import RenderedStack

RECORDING_GROUP = "webhook-delivery.recording"
RECORDING_SHARE = 0.25  # of its interval, median evaluation
RSS_SHARE = 0.70  # of the memory limit, peak
GOMEMLIMIT_RATIO = 0.9  # Prometheus' --auto-gomemlimit.ratio default
SAMPLE_SECONDS = 5.0
APP_CONTAINER = "webhook-delivery"

# The synthetic service's traffic, per pod and endpoint in each scrape interval.
DELIVERIES = (1, 5)  # a few deliveries, uniformly
FAILING_EVERY = 10  # every tenth endpoint fails ERROR_RATIO of its deliveries
ERROR_RATIO = 0.01
LATENCY_MEDIANS = (0.01, 0.15)  # seconds: each endpoint's median latency lies between these
LATENCY_SIGMA = 0.7  # log-normal spread around an endpoint's median: P50, P95, P99 about 0.04, 0.2, 0.4 s
# client_golang's DefBuckets, as the exporter writes `le`, and +Inf.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LE = (*(str(b) for b in BUCKETS), "+Inf")
HISTOGRAM_LINES = len(LE) + 2  # the buckets, _sum, _count
ATTEMPTS = ("1", "2", "3")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# ------------------------------------------------------------------------------ the rendered stack


@dataclass(frozen=True)
class Stack:
    """What the bench takes from a rendered stack."""

    directory: Path
    rendered: RenderedStack
    monitor: dict[str, Any]
    """The first configured service's ServiceMonitor."""

    @classmethod
    def load(cls, directory: Path) -> "Stack":
        rendered = RenderedStack.load(directory)
        return cls(directory, rendered, next(iter(rendered.service_monitors.values())))

    @property
    def monitor_name(self) -> str:
        return self.monitor["metadata"]["name"]

    @property
    def endpoint(self) -> dict[str, Any]:
        return self.monitor["spec"]["endpoints"][0]

    @property
    def spec(self) -> dict[str, Any]:
        return self.rendered.prometheus_spec

    @property
    def cpu_limit(self) -> float:
        return Cpu.parse(str(self.spec["resources"]["limits"]["cpu"])).cores

    @property
    def memory_limit(self) -> int:
        return Memory.parse(self.spec["resources"]["limits"]["memory"]).bytes

    @property
    def namespace(self) -> str:
        """Where the service runs: the monitor's namespace selector's."""
        return self.monitor["spec"]["namespaceSelector"]["matchNames"][0]

    @property
    def service(self) -> dict[str, Any]:
        """The Kubernetes Service of the synthetic pods, as the monitor selects it (named after it:
        the Operator makes the Service's name the `job`)."""
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": self.monitor_name, "namespace": self.namespace,
                             "labels": self.monitor["spec"]["selector"]["matchLabels"]},
                "spec": {"selector": self.monitor["spec"]["selector"]["matchLabels"],
                         "ports": [{"name": self.endpoint["port"], "port": 8080}]}}

    @property
    def scrape_interval(self) -> float:
        """The monitor's, seconds."""
        return duration_ms(self.endpoint.get("interval", self.spec["scrapeInterval"])) / 1000

    @property
    def longest_evaluation_interval(self) -> float:
        return max(duration_ms(g.get("interval", self.spec["evaluationInterval"])) for g in self.rendered.rule_groups) / 1000


# ------------------------------------------------------------------------------ the synthetic service


def endpoint_label(index: int) -> str:
    return f"ep_{index:05d}_example_com"


def _with_header(lines: list[str], name: str, kind: str, help_text: str) -> list[str]:
    """The family's HELP and TYPE lines put in front of its first line's prefix."""
    return [f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{lines[0]}", *lines[1:]]


@functools.cache
def line_prefixes(endpoints: int) -> list[str]:
    """Every line of a pod's exposition up to its value, in the order `SyntheticPod.values` holds them
    (built once, shared by the pods)."""
    names = [endpoint_label(e) for e in range(endpoints)]
    deliveries = [f'webhook_deliveries_total{{endpoint="{n}",status="{s}"}} ' for n in names for s in ("success", "error")]
    histogram = [line for n in names for line in (
        *(f'webhook_delivery_duration_seconds_bucket{{endpoint="{n}",le="{le}"}} ' for le in LE),
        f'webhook_delivery_duration_seconds_sum{{endpoint="{n}"}} ',
        f'webhook_delivery_duration_seconds_count{{endpoint="{n}"}} ')]
    retries = [f'webhook_retries_total{{attempt_number="{a}"}} ' for a in ATTEMPTS]
    return (_with_header(deliveries, "webhook_deliveries_total", "counter", "Webhook delivery attempts by outcome.")
            + _with_header(histogram, "webhook_delivery_duration_seconds", "histogram", "Time to deliver one webhook.")
            + _with_header(["webhook_queue_depth "], "webhook_queue_depth", "gauge", "Webhooks waiting in this replica's queue.")
            + _with_header(retries, "webhook_retries_total", "counter", "Delivery retries by attempt number."))


@functools.cache
def latency_medians(endpoints: int) -> list[float]:
    """Each endpoint's median delivery latency, the same on every pod: log-uniform over LATENCY_MEDIANS."""
    rng = random.Random(0)
    low, high = (math.log(m) for m in LATENCY_MEDIANS)
    return [math.exp(rng.uniform(low, high)) for _ in range(endpoints)]


class SyntheticPod:
    """One pod's exposition of the service's metrics for `endpoints` endpoints.

    The text before each value is built once; `regenerate()` advances the numbers by one scrape
    interval of traffic and formats only them.
    """

    def __init__(self, name: str, endpoints: int, seed: int) -> None:
        self.name = name
        self.endpoints = endpoints
        self._prefixes = line_prefixes(endpoints)
        self.values: list[int | float] = [0] * len(self._prefixes)
        self._medians = [math.log(m) for m in latency_medians(endpoints)]
        self._rng = random.Random(seed)
        self.body = b""
        self.regenerate()

    def regenerate(self) -> None:
        values, rng = self.values, self._rng
        errors_in_all = 0
        for e in range(self.endpoints):
            deliveries = rng.randint(*DELIVERIES)
            errors = sum(rng.random() < ERROR_RATIO for _ in range(deliveries)) if e % FAILING_EVERY == 0 else 0
            values[2 * e] += deliveries - errors
            values[2 * e + 1] += errors
            errors_in_all += errors
            first = 2 * self.endpoints + HISTOGRAM_LINES * e  # this endpoint's first bucket
            for _ in range(deliveries):
                latency = rng.lognormvariate(self._medians[e], LATENCY_SIGMA)
                for bucket in range(first + bisect.bisect_left(BUCKETS, latency), first + len(LE)):
                    values[bucket] += 1
                values[first + len(LE)] += latency
            values[first + len(LE) + 1] += deliveries
        # The last lines: the queue depth, then the retries by attempt (each retry fails half the time).
        values[-1 - len(ATTEMPTS)] = rng.randint(0, 200)
        for attempt in range(len(ATTEMPTS)):
            values[attempt - len(ATTEMPTS)] += errors_in_all >> attempt
        self.body = ("\n".join(map(operator.add, self._prefixes, map(str, values))) + "\n").encode()


class _ExpositionHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.pod.body
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Exporter:
    """`pods` synthetic pods, each its own HTTP server on `address` and its own thread regenerating
    its exposition once per `interval` seconds (the pods' turns spread over the interval)."""

    def __init__(self, service: str, pods: int, endpoints: int, interval: float, address: str = "127.0.0.1") -> None:
        self.interval = interval
        self.servers = []
        for i in range(pods):
            server = http.server.ThreadingHTTPServer((address, 0), _ExpositionHandler)
            server.daemon_threads = True
            server.pod = SyntheticPod(f"{service}-{i}", endpoints, seed=i)
            self.servers.append(server)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def targets(self) -> list[tuple[str, str]]:
        """(address, pod name) of every pod."""
        return [(f"{s.server_address[0]}:{s.server_address[1]}", s.pod.name) for s in self.servers]

    def start(self) -> None:
        start = time.monotonic()
        for i, server in enumerate(self.servers):
            first = start + self.interval * (1 + i / len(self.servers))
            # A short poll interval: close() shuts the servers down one after another.
            self._threads += [threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True),
                              threading.Thread(target=self._regenerate, args=(server.pod, first), daemon=True)]
        for thread in self._threads:
            thread.start()

    def _regenerate(self, pod: SyntheticPod, at: float) -> None:
        while not self._stop.wait(max(0.0, at - time.monotonic())):
            pod.regenerate()
            at += self.interval

    def close(self) -> None:
        self._stop.set()
        for server in self.servers:
            if self._threads:  # serving: shutdown() returns once serve_forever has stopped
                server.shutdown()
            server.server_close()


# ------------------------------------------------------------------------------ Prometheus


# What the Prometheus resource names that is not here: the long-term store (remote write) and other
# clusters' Prometheus (the federation jobs, its additional scrape configurations).
ABSENT_HERE = ("remoteWrite", "additionalScrapeConfigs")


def without_what_is_absent(obj: dict[str, Any]) -> dict[str, Any]:
    """The Prometheus resource without what it sends to or scrapes from elsewhere; other objects as they are."""
    if obj["kind"] != "Prometheus":
        return obj
    return {**obj, "spec": {k: v for k, v in obj["spec"].items() if k not in ABSENT_HERE}}


def operated_prometheus(stack: Stack, exporter: Exporter, workdir: Path) -> tuple[OperatedStack, Path, str]:
    """The stack under the Operator with the exporter's pods published as the service's: (the
    operated stack, the first replica's configuration file, the address it listens on)."""
    operated = OperatedStack(workdir, stack.rendered, without_what_is_absent, namespaces=(stack.namespace,))
    try:
        operated.publish(stack.service, stack.endpoint["port"],
                         {pod: int(address.rsplit(":", 1)[1]) for address, pod in exporter.targets()}, APP_CONTAINER,
                         stack.monitor["spec"]["selector"]["matchLabels"])
        pod = f"prometheus-{operated.prometheus['metadata']['name']}-0"
        port = free_port()
        config = workdir / "prometheus.yaml"
        config.write_text(yaml.safe_dump(operated.prometheus_configs([pod], workdir / "pod")[pod], sort_keys=False))
        # Prometheus scrapes itself through its Service, as the rendered monitors have it.
        service = operated.service(stack.rendered.prometheus_job)
        operated.publish(service, service["spec"]["ports"][0]["name"], {pod: port}, "prometheus",
                         {"app.kubernetes.io/name": "prometheus"})
        return operated, config, f"{operated.address}:{port}"
    except BaseException:
        operated.close()
        raise


def split_cpus(cores: float, cpus: list[int]) -> tuple[list[int], list[int]]:
    """(Prometheus' CPUs, the exporter's): the ceil(cores) highest-numbered for Prometheus, the rest
    for the exporter (all of them, shared, when none are left)."""
    count = min(len(cpus), math.ceil(cores))
    return cpus[-count:], cpus[:-count] or cpus


def start_prometheus(stack: Stack, config: Path, workdir: Path, address: str, cpus: list[int]) -> Process:
    """The built Prometheus pinned to `cpus`, its Go runtime sized as in a container with the rendered limits."""
    go_limits = [f"GOMAXPROCS={len(cpus)}", f"GOMEMLIMIT={int(GOMEMLIMIT_RATIO * stack.memory_limit)}"]
    return Process(
        ["env", *go_limits, "taskset", "-c", ",".join(map(str, cpus)), binary("prometheus"),
         f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address={address}",
         *(f"--enable-feature={feature}" for feature in stack.spec.get("enableFeatures", []))],
        workdir / "prometheus.log")


# ------------------------------------------------------------------------------ measuring

LAST_DURATION = "prometheus_rule_group_last_duration_seconds"
LAST_EVALUATION = "prometheus_rule_group_last_evaluation_timestamp_seconds"
INTERVAL = "prometheus_rule_group_interval_seconds"
MISSED = "prometheus_rule_group_iterations_missed_total"
SAMPLES = "prometheus_rule_group_last_evaluation_samples"
HEAD_SERIES = "prometheus_tsdb_head_series"
CPU_SECONDS = "process_cpu_seconds_total"
GOMAXPROCS = "go_sched_gomaxprocs_threads"
GOMEMLIMIT = "go_gc_gomemlimit_bytes"
SELF_METRICS = (LAST_DURATION, LAST_EVALUATION, INTERVAL, MISSED, SAMPLES, HEAD_SERIES, CPU_SECONDS, GOMAXPROCS, GOMEMLIMIT)


def self_metrics(url: str) -> dict[str, dict[str, float]]:
    """Prometheus' own metrics the bench reads: name -> {rule group name ("" for the others): value}."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {name: {} for name in SELF_METRICS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in found:
                group = sample.labels.get("rule_group", "").partition(";")[2]  # "<file>;<group>"
                found[sample.name][group] = sample.value
    return found


def query(url: str, promql: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}), timeout=60) as response:
        return json.load(response)["data"]["result"]


def running(process: Process) -> None:
    if not process.running():
        raise SystemExit(f"Prometheus exited:\n{process.tail()}")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M)[1]) for key in ("VmRSS", "VmHWM")}


@dataclass
class Measurement:
    """What the measuring window showed."""

    seconds: float
    first: dict[str, dict[str, float]]
    last: dict[str, dict[str, float]]
    evaluations: dict[str, dict[float, float]]
    """Per rule group: evaluation timestamp -> its duration, for the evaluations in the window."""
    memory: dict[str, int]
    scrape_durations: list[float] = field(default_factory=list)
    samples_scraped: float = 0.0
    samples_kept: float = 0.0
    """After metric relabelling."""
    targets_up: int = 0

    def durations(self, group: str) -> list[float]:
        return list(self.evaluations.get(group, {}).values()) or [math.inf]

    def missed(self, group: str) -> float:
        return self.last[MISSED][group] - self.first[MISSED][group]


def warm_up(url: str, process: Process, stack: Stack, pods: int) -> float:
    """Wait for a first scrape of every pod, then two of the longest evaluation interval; its seconds."""
    started = time.monotonic()
    wait_until(lambda: len(query(url, f'up{{job="{stack.monitor_name}"}}')) == pods, timeout=3 * stack.scrape_interval + 60,
               interval=1, what="a first scrape of every synthetic pod")
    time.sleep(2 * stack.longest_evaluation_interval)
    running(process)
    return time.monotonic() - started


def measure(url: str, process: Process, job: str, seconds: float) -> Measurement:
    """Sample Prometheus' own metrics every SAMPLE_SECONDS for `seconds`; then its memory and the job's scrapes."""
    started, wall_start = time.monotonic(), time.time()
    first = last = self_metrics(url)
    evaluations: dict[str, dict[float, float]] = {}
    while time.monotonic() - started < seconds:
        time.sleep(SAMPLE_SECONDS)
        running(process)
        last = self_metrics(url)
        for group, at in last[LAST_EVALUATION].items():
            if at >= wall_start:
                evaluations.setdefault(group, {})[at] = last[LAST_DURATION][group]
    measurement = Measurement(time.monotonic() - started, first, last, evaluations, memory_kib(process.popen.pid))
    window = f"{math.ceil(measurement.seconds)}s"
    measurement.scrape_durations = [float(v) for series in query(url, f'scrape_duration_seconds{{job="{job}"}}[{window}]')
                                    for _, v in series["values"]]
    measurement.samples_scraped, measurement.samples_kept = (
        sum(float(s["value"][1]) for s in query(url, f'{metric}{{job="{job}"}}'))
        for metric in ("scrape_samples_scraped", "scrape_samples_post_metric_relabeling"))
    measurement.targets_up = int(sum(float(s["value"][1]) for s in query(url, f'up{{job="{job}"}}')))
    return measurement


# ------------------------------------------------------------------------------ the report


def gib(kib: float) -> str:
    return f"{kib / 2**20:.2f} GiB"


def report(stack: Stack, m: Measurement, args: argparse.Namespace, cpus: tuple[list[int], list[int]],
           warm_up_seconds: float) -> tuple[list[str], bool]:
    """The printed lines, and whether a budget is over."""
    limits = stack.spec["resources"]["limits"]
    prometheus_cpus, exporter_cpus = cpus
    scrapes = m.scrape_durations or [math.nan]
    lines = [
        f"load bench: stack {args.stack} rendered from {args.root}, {args.pods} pods x {args.endpoints} endpoints, "
        f"{m.seconds / 60:.1f} min measured after {warm_up_seconds:.0f} s of warm-up",
        f"prometheus {PROMETHEUS_VERSION} on CPU {','.join(map(str, prometheus_cpus))} (limit {limits['cpu']}), "
        f"GOMAXPROCS {m.last[GOMAXPROCS]['']:.0f}, GOMEMLIMIT {gib(m.last[GOMEMLIMIT][''] / 1024)} (limit {limits['memory']}); "
        f"exporter on CPU {','.join(map(str, exporter_cpus))}",
        f"job {stack.monitor_name}: {m.targets_up}/{args.pods} targets up, {m.samples_scraped:,.0f} samples per scrape round "
        f"({m.samples_kept:,.0f} kept after metric relabelling; sample_limit {stack.monitor.get('sampleLimit', 'none')} per pod), "
        f"scrape duration median {statistics.median(scrapes):.3f} s, max {max(scrapes):.3f} s (timeout {stack.endpoint.get('scrapeTimeout', 'global')})",
        f"head series {m.last[HEAD_SERIES]['']:,.0f}; Prometheus used "
        f"{(m.last[CPU_SECONDS][''] - m.first[CPU_SECONDS]['']) / m.seconds:.3f} CPU cores on average",
        f"{'rule group':36s} {'evals':>5s} {'median':>9s} {'max':>9s} {'of interval':>12s} {'missed':>6s} {'samples/eval':>12s}",
    ]
    for group in sorted(m.last[INTERVAL]):
        durations, interval = m.durations(group), m.last[INTERVAL][group]
        lines.append(f"{group:36s} {len(m.evaluations.get(group, {})):5d} {statistics.median(durations):7.3f} s "
                     f"{max(durations):7.3f} s {statistics.median(durations) / interval:6.0%} of {interval:3.0f}s "
                     f"{m.missed(group):6.0f} {m.last[SAMPLES][group]:12,.0f}")
    missed = sum(m.missed(group) for group in m.last[MISSED])
    recording_share = statistics.median(m.durations(RECORDING_GROUP)) / m.last[INTERVAL][RECORDING_GROUP]
    rss_share = m.memory["VmHWM"] * 1024 / stack.memory_limit
    lines += [
        f"memory: peak RSS {gib(m.memory['VmHWM'])} (at the end {gib(m.memory['VmRSS'])}), limit {limits['memory']} "
        f"= {gib(stack.memory_limit / 1024)}",
        "budgets:",
        f"  missed iterations in the window, all groups, at the CPU limit: {missed:.0f} ({verdict(missed, 0)}, budget 0)",
        f"  {RECORDING_GROUP} median evaluation: {recording_share:.0%} of its interval "
        f"({verdict(recording_share, RECORDING_SHARE)}, budget {RECORDING_SHARE:.0%})",
        f"  peak RSS: {rss_share:.0%} of the memory limit ({verdict(rss_share, RSS_SHARE)}, budget {RSS_SHARE:.0%})",
    ]
    over = missed > 0 or recording_share > RECORDING_SHARE or rss_share > RSS_SHARE
    return lines, over


# ------------------------------------------------------------------------------ the run


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[str], bool]:
    try:
        stack = Stack.load(render_checkout(args.stack, args.root, workdir / "rendered"))
    except RenderError as err:
        raise SystemExit(str(err)) from None
    cpus = split_cpus(stack.cpu_limit, sorted(os.sched_getaffinity(0)))
    os.sched_setaffinity(0, cpus[1])  # the exporter's threads, started below, inherit it
    progress(f"building {args.pods} pods x {args.endpoints} endpoints")
    # The API server refuses loopback endpoints: the pods listen on this machine's own address.
    exporter = Exporter(stack.monitor_name, args.pods, args.endpoints, stack.scrape_interval, host_address())
    prometheus = operated = None
    try:
        exporter.start()
        progress("the Operator configures Prometheus")
        operated, config, address = operated_prometheus(stack, exporter, workdir)
        prometheus = start_prometheus(stack, config, workdir, address, cpus[0])
        url = f"http://{address}"
        wait_until(lambda: responds(f"{url}/-/ready"), timeout=60, what="Prometheus ready")
        progress("Prometheus ready; warming up")
        warm_up_seconds = warm_up(url, prometheus, stack, args.pods)
        progress(f"measuring for {args.minutes} min")
        measurement = measure(url, prometheus, stack.monitor_name, args.minutes * 60)
    finally:
        if prometheus is not None:
            prometheus.stop(timeout=30)
        if operated is not None:
            operated.close()
        exporter.close()
    return report(stack, measurement, args, cpus, warm_up_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.load_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--endpoints", type=int, default=2000, help="customer endpoints per pod")
    parser.add_argument("--minutes", type=float, default=5.0, help="measuring window, after the warm-up")
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to render (default: this one)")
    args = parser.parse_args(argv)
    args.root = args.root.resolve()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # clean up as on Ctrl-C
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        lines, over = run(args, Path(tmp))
    print("\n".join(lines))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
