"""Live alert pipeline: real Prometheus, two clustered Alertmanagers, VictoriaMetrics, a synthetic
webhook delivery service and capture servers for PagerDuty, Slack and the heartbeat, configured by
the real Prometheus Operator against kube-apiserver, all on this machine.

The stack `make render` produces (rendered here into a temporary directory) is applied to the API
server: kube-prometheus-stack's objects as its chart makes them (the Prometheus and Alertmanager
resources among them) and the program's ServiceMonitors, Probes, PrometheusRules and Alertmanager
configuration, changed only by pointing receivers at the capture servers and the remote write at
the local receiver, and by dividing every duration by FACTOR (tests/e2e/timescale.py). The chart's
Operator generates the Prometheus configuration, the rule files and Alertmanager's configuration;
Prometheus discovers the synthetic services, Alertmanager and itself through the API server, from
EndpointSlices of their Services that point at the processes standing in for the pods (on this
machine's own address: EndpointSlices refuse loopback ones). `Harness.run()` plays every scenario concurrently, each on its own
`service` label value, and returns a `Report` of what the capture servers and the live APIs showed;
the tests (test_pipeline.py) and the benchmark (`python -m tests.e2e.bench`) read that report.

Each page is measured against its bound (`Harness.alert_bound`): the scrape that first sees the
failure, the time the alert's windowed condition needs to turn true for the fault's shape (0 for a
threshold on the current value; a short-window confirmation such as WebhookHighErrorRate's last
minute holds within that first scrape of a step), its `for`, an evaluation and the route's
group_wait. Each resolve against `Harness.resolve_bound`: the time the condition needs to stop
holding after the recovery, an evaluation, `keep_firing_for` (the alert keeps firing that long once
its condition is gone) and the route's group_interval (a resolve waits for the group's next flush).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from tests.e2e.synthetic import NAMESPACE, SLOW_LATENCIES, ClusterSeries, LoadGenerator, Phase, Service
from tests.e2e.timescale import (
    scale_alertmanager,
    scale_duration,
    scale_promql,
    scale_rule_groups,
)
from config.types import duration_ms
from testkit import operator
from testkit.apiserver import host_address
from testkit.live import CaptureServer, Process, free_port, http_json, responds, wait_until
from tools.go_tools import binary
from tools.render import render
from tools.rendered import ALERTMANAGER_CONFIG_KEY, RenderedStack
from tools.routing import matching_routes

FACTOR = 20  # every duration of the pipeline is divided by this: 5m -> 15s, 2m -> 6s, 30s -> 1500ms
STACK = "prod"  # PagerDuty on, heartbeat on: the whole alerting path
ENDPOINTS = ("api_example_com", "hooks_acme_io", "events_shop_io")
FAILING_ENDPOINT = "partner_flaky_net"
# Alertmanager's cluster peer timeout is a flag, not part of the rendered config: how long the second
# peer waits for the first one's notification log before sending itself. Its default (15s) scaled
# would be 750 ms, less than gossip can take on a loaded 2-core machine: then both send. Not scaled
# below this floor (the scenarios' deadlines allow for it).
PEER_TIMEOUT = "15s"
PEER_TIMEOUT_FLOOR = "3s"
# Prometheus re-sends firing alerts this often (flag default), scaled like everything else.
RESEND_DELAY = "1m"

HEALTHY = Phase()
ERROR_SPIKE = Phase(error_ratio={e: 0.5 for e in ENDPOINTS})
# 3 endpoints at 20/s succeed, one at 2.8/s always fails: 2.8 / 62.8 = 4.46 % of the service fails.
NEAR_MISS_BEFORE = Phase(rate={FAILING_ENDPOINT: 2.8})
NEAR_MISS = Phase(error_ratio={FAILING_ENDPOINT: 1.0}, rate={FAILING_ENDPOINT: 2.8})
SLOW = Phase(latencies=SLOW_LATENCIES)
SLOW_AND_FAILING = Phase(error_ratio={e: 0.5 for e in ENDPOINTS}, latencies=SLOW_LATENCIES)
QUEUE_BEFORE = Phase(queue_depth=(1000, 1000, 1000))
QUEUE_BACKLOG = Phase(queue_depth=(4000, 4000, 4000))  # 12000 in all; every replica under 10000
# A stuck consumer: 800 webhooks held, not one delivered; then deliveries resume and drain it.
STALLED = Phase(default_rate=0.0, queue_depth=(400, 400))
DRAINED = Phase(queue_depth=(0, 0))
# A crash loop at the kubelet's longest back-off: 5 minutes between restarts, 15 s scaled. Each
# process runs 40 s (2 s scaled: starting up, a few deliveries, the crash) before it dies again:
# about one scrape in seven of each target answers (scrape interval 30 s, 1.5 s scaled).
CRASH_PERIOD = "5m"
CRASH_ALIVE = "40s"

PAGERDUTY, SLACK, HEARTBEAT, PLATFORM = "/pagerduty", "/slack", "/heartbeat", "/platform"
# Log lines of Prometheus and Alertmanager that the harness causes on purpose (see Harness.log_problems).
EXPECTED_LOG_LINES = ('msg="Received an OS signal, exiting gracefully..."', 'msg="failed to join cluster"',
                      'msg="unable to join gossip mesh"',
                      # A peer's state (silences: `sil`, notification log: `nfl`) arriving before the
                      # receiving Alertmanager has registered its own at start: both start together.
                      'msg="unknown state key"')
# The stand-in for Mimir comes from Debian's victoria-metrics package; the rest is built by `make tools`.
# Mimir's HA tracker keeps one replica's samples and drops the replica label; the stand-in drops the
# label and keeps one sample per scrape interval (its deduplication): the same store, without
# Mimir's failover timeout (docs/operations: the gap bound).
REMOTE_WRITE_RECEIVER = "victoria-metrics"
LOKI = "loki"


def render_stacks(out_root: Path, stacks: tuple[str, ...] = ("dev", "prod")) -> Path:
    """`make render` for each stack into out_root/<stack>/ (its summary output swallowed)."""
    for stack in stacks:
        with contextlib.redirect_stdout(io.StringIO()):
            assert render(stack, out_root=out_root) == 0, f"render {stack} failed"
    return out_root


def alertmanager_for_test(config: dict[str, Any], capture_url: str, factor: int) -> dict[str, Any]:
    """The rendered config with receivers pointed at the capture servers and time scaled."""
    scaled = scale_alertmanager(config, factor)
    for receiver in scaled["receivers"]:
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["url"] = capture_url + PAGERDUTY
        for slack in receiver.get("slack_configs", []):
            slack["api_url"] = capture_url + (PLATFORM if receiver["name"] == "platform" else SLACK)
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = capture_url + HEARTBEAT
    return scaled


def route_for(config: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The route an alert with `labels` ends in (the first, where `continue` makes several), with the
    options it inherits."""
    return vars(matching_routes(config["route"], labels)[0])


@dataclass
class Detection:
    """One alert's way from fault onset to a notification, against the theoretical bound."""

    alert: str
    service: str
    receiver: str
    bound: float  # seconds: scrape interval + evaluation interval + for + group_wait, scaled
    onset: float = 0.0
    arrived: Optional[float] = None

    @property
    def latency(self) -> Optional[float]:
        return None if self.arrived is None else self.arrived - self.onset

    @property
    def ratio(self) -> Optional[float]:
        return None if self.latency is None else self.latency / self.bound


@dataclass
class Report:
    """What one run showed; the tests assert on it."""

    factor: int
    capture: CaptureServer
    routing_key: str
    alertmanager: dict[str, Any]
    detections: dict[str, Detection] = field(default_factory=dict)
    resolves: dict[str, Detection] = field(default_factory=dict)
    """From the recovery to the resolve (`bound`: Harness.resolve_bound), for the scenarios that time it."""
    facts: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    dashboard_queries: list[dict[str, Any]] = field(default_factory=list)
    remote_write: dict[str, Any] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    """Warnings and errors the servers logged that no scenario explains."""
    peer_timeout: float = 0.0
    """Seconds the second Alertmanager waits for the first one's notification log before sending."""
    scenario_services: dict[str, str] = field(default_factory=dict)
    """The `service` label each scenario's alerts carry (for "vanish", its monitor's name)."""
    wall_seconds: float = 0.0

    def pages(self, alert: str, service: str, action: Optional[str] = None) -> list[dict[str, Any]]:
        return self.capture.received(PAGERDUTY, lambda b: b["payload"]["class"] == alert
                                     and b["payload"]["component"] == service
                                     and (action is None or b["event_action"] == action))

    def slack_posts(self, service: str, alert: Optional[str] = None, path: str = SLACK) -> list[dict[str, Any]]:
        """The Slack attachments about `service` (and `alert`), in arrival order."""
        return [a for message in self.capture.received(path) for a in message["attachments"] if slack_about(a, service, alert)]

    def write_notifications(self, directory: Path) -> list[Path]:
        """The notification preview: per scenario, every PagerDuty event and Slack message it caused,
        as sent, in `directory`/<scenario>.json."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for scenario, service in self.scenario_services.items():
            sent = {
                "pagerduty": self.capture.received(PAGERDUTY, lambda b: b["payload"]["component"] == service),
                "slack": [m for m in self.capture.received(SLACK) + self.capture.received(PLATFORM)
                          if any(slack_about(a, service) for a in m["attachments"])],
            }
            path = directory / f"{scenario}.json"
            path.write_text(json.dumps(sent, indent=2, sort_keys=True) + "\n")
            written.append(path)
        return written


@dataclass
class AlertmanagerCluster:
    """Two clustered Alertmanagers as the Operator starts them (the spec's external URL and route
    prefix, each other as peers), each with its own storage under `workdir`, kept across restarts."""

    config: Path
    workdir: Path
    spec: dict[str, Any]
    peer_timeout: str
    address: str = "127.0.0.1"
    """Where their APIs listen (their gossip stays on loopback)."""
    web: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    gossip: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    starts: int = 0

    def start(self) -> dict[str, Process]:
        """Start both (again, on the same ports and storage); {API URL: process}."""
        self.starts += 1
        processes = {}
        for i in (0, 1):
            processes[f"http://{self.address}:{self.web[i]}"] = Process(
                [binary("alertmanager"), f"--config.file={self.config}", f"--storage.path={self.workdir / f'am{i}'}",
                 f"--web.listen-address={self.address}:{self.web[i]}", f"--cluster.listen-address=127.0.0.1:{self.gossip[i]}",
                 f"--cluster.peer=127.0.0.1:{self.gossip[1 - i]}", f"--cluster.peer-timeout={self.peer_timeout}",
                 f"--web.external-url={self.spec['externalUrl']}", f"--web.route-prefix={self.spec.get('routePrefix', '/')}"],
                self.workdir / f"alertmanager-{i}{'' if self.starts == 1 else f'-start{self.starts}'}.log")
        return processes


def slack_about(attachment: dict[str, Any], service: str, alert: Optional[str] = None) -> bool:
    """Whether a Slack attachment is about `service` (its title: `[STATUS] [env/cluster] service: ...`)
    and `alert` (its Alert field)."""
    return (f"] {service}: " in attachment["title"]
            and (alert is None or {"title": "Alert", "value": alert, "short": True} in attachment.get("fields", [])))


class Harness:
    """Start everything on loopback; `close()` tears it down (call it in a finally)."""

    def __init__(self, workdir: Path, rendered_root: Path, factor: int = FACTOR) -> None:
        self.started = time.monotonic()
        self.workdir = workdir
        self.factor = factor
        self.rendered = RenderedStack.load(rendered_root / STACK)
        self.dashboard_sets = {stack: RenderedStack.load(rendered_root / stack).dashboards for stack in ("dev", "prod")}
        self.processes: list[Process] = []
        self.kubernetes: Optional[operator.OperatedStack] = None
        self.capture = CaptureServer()
        self.address = host_address()
        address = self.address
        self.services = {
            "errors": Service("errors", 2, ENDPOINTS, HEALTHY, address),
            "nearmiss": Service("nearmiss", 2, ENDPOINTS + (FAILING_ENDPOINT,), NEAR_MISS_BEFORE, address),
            "latency": Service("latency", 2, ENDPOINTS, HEALTHY, address),
            "queue": Service("queue", 3, ENDPOINTS, QUEUE_BEFORE, address),
            "inhibit": Service("inhibit", 2, ENDPOINTS, HEALTHY, address),
            "ha": Service("ha", 2, ENDPOINTS, HEALTHY, address),
            # Its error series are born with its first errors.
            "fresh": Service("fresh", 2, ENDPOINTS, HEALTHY, address, statuses_up_front=("success",)),
            # Selected by the second configured ServiceMonitor; its targets leave discovery.
            "vanish": Service("vanish", 2, ENDPOINTS, HEALTHY, address),
            # A Prometheus replica dies while it fails.
            "failover": Service("failover", 2, ENDPOINTS, HEALTHY, address),
            # Every pod crash-loops, then runs again.
            "crashloop": Service("crashloop", 2, ENDPOINTS, HEALTHY, address),
            # Its consumers stop delivering while webhooks wait.
            "stalled": Service("stalled", 2, ENDPOINTS, HEALTHY, address),
        }
        # Every Service is selected by the first configured ServiceMonitor (one monitor may select
        # several Services), but "vanish", the only one of the second: without it, that monitor has no target.
        first, second, *_ = self.rendered.service_monitors
        self.monitor_of = {name: second if name == "vanish" else first for name in self.services}
        self.cluster_series = ClusterSeries(list(self.services.values()), address)
        self.load = LoadGenerator(list(self.services.values()), self.cluster_series)
        self.rules = scale_rule_groups(self.rendered.rule_groups, factor)
        self.alertmanager_config = alertmanager_for_test(self.rendered.alertmanager, self.capture.url, factor)
        self.evaluation_interval = self.scaled(self.rendered.prometheus_spec["evaluationInterval"])
        self.victoria_port = free_port()
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def scaled(self, duration: str) -> str:
        return scale_duration(duration, self.factor)

    @property
    def peer_timeout(self) -> str:
        return max(self.scaled(PEER_TIMEOUT), PEER_TIMEOUT_FLOOR, key=duration_ms)

    def seconds(self, duration: str) -> float:
        return duration_ms(duration) / 1000

    # ------------------------------------------------------------------------------ processes

    def _start(self) -> None:
        receiver = shutil.which(REMOTE_WRITE_RECEIVER)
        assert receiver, f"missing {REMOTE_WRITE_RECEIVER}: apt-get install {REMOTE_WRITE_RECEIVER} (Debian package)"
        self.load.start()
        replica_label = self.rendered.prometheus_spec["replicaExternalLabelName"]
        (self.workdir / "receiver-relabel.yaml").write_text(yaml.safe_dump([{"action": "labeldrop", "regex": replica_label}]))
        self.processes.append(Process(
            [receiver, f"-httpListenAddr=127.0.0.1:{self.victoria_port}",
             f"-storageDataPath={self.workdir / 'victoria-metrics'}", "-search.latencyOffset=0s",
             f"-relabelConfig={self.workdir / 'receiver-relabel.yaml'}",
             f"-dedup.minScrapeInterval={self.shortest_scrape_interval}"],
            self.workdir / "victoria-metrics.log"))
        # The API server and the Operator: the chart's objects and the program's, made for the test.
        self.kubernetes = operator.OperatedStack(self.workdir, self.rendered, self._for_test, namespaces=(NAMESPACE,))
        for service in self.services.values():
            self.discover(service)
        self.alertmanager_urls = self._start_alertmanagers()
        self._start_prometheus()
        for url in (*(f"{u}/-/ready" for u in self.prometheus_urls.values()),
                    f"http://127.0.0.1:{self.victoria_port}/health",
                    *(f"{u}/-/ready" for u in self.alertmanager_urls)):
            wait_until(lambda: responds(url), timeout=30, what=url)

    def _for_test(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An object as this test applies it: every duration scaled, the remote write sent to the
        local receiver, the Alertmanager configuration the test's."""
        obj = copy.deepcopy(obj)
        kind, spec = obj["kind"], obj.get("spec") or {}
        if kind == "Prometheus":
            for key in ("scrapeInterval", "evaluationInterval"):
                spec[key] = self.scaled(spec[key])
            # The federation jobs scrape other clusters' Prometheus, which are not here.
            spec.pop("additionalScrapeConfigs", None)
            for remote in spec.get("remoteWrite") or []:
                remote["url"] = f"http://127.0.0.1:{self.victoria_port}/api/v1/write"
        elif kind in ("ServiceMonitor", "PodMonitor"):
            for endpoint in spec.get("endpoints") or spec.get("podMetricsEndpoints") or []:
                for key in ("interval", "scrapeTimeout"):
                    if key in endpoint:
                        endpoint[key] = self.scaled(endpoint[key])
        elif kind == "Probe":
            for key in ("interval", "scrapeTimeout"):
                if key in spec:
                    spec[key] = self.scaled(spec[key])
        elif kind == "PrometheusRule":
            spec["groups"] = scale_rule_groups(spec["groups"], self.factor)
        elif kind == "Secret" and ALERTMANAGER_CONFIG_KEY in (obj.get("stringData") or {}):
            obj["stringData"][ALERTMANAGER_CONFIG_KEY] = yaml.safe_dump(self.alertmanager_config, sort_keys=False)
        return obj

    def discover(self, service: Service, present: bool = True) -> float:
        """Put the service's pods into discovery (its EndpointSlices), or take them out; returns the
        monotonic time."""
        monitor = self.rendered.service_monitors[self.monitor_of[service.name]]["spec"]
        labels = monitor["selector"]["matchLabels"]
        port = monitor["endpoints"][0]["port"]
        resource = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service.name, "namespace": NAMESPACE,
                                                                         "labels": labels},
                    "spec": {"selector": labels, "ports": [{"name": port, "port": 8080}]}}
        pods = {replica.pod: replica.port for replica in service.replicas}
        if present:
            self.kubernetes.publish(resource, port, pods, "webhook-delivery", labels)
        else:
            self.kubernetes.unpublish(resource, port, pods)
        return time.monotonic()

    def _start_alertmanagers(self) -> list[str]:
        config = self.workdir / "alertmanager.yaml"
        config.write_text(self.kubernetes.alertmanager_config())
        name = self.kubernetes.alertmanager["metadata"]["name"]
        cluster = AlertmanagerCluster(config, self.workdir, self.rendered.alertmanager_spec, self.peer_timeout,
                                      address=self.address)
        self.alertmanager_processes = cluster.start()
        self.processes += self.alertmanager_processes.values()
        service = self.kubernetes.service(f"{self.rendered.fullname}-alertmanager")
        self.kubernetes.publish(service, service["spec"]["ports"][0]["name"],
                      {f"alertmanager-{name}-{i}": port for i, port in enumerate(cluster.web)}, "alertmanager",
                      {"app.kubernetes.io/name": "alertmanager", "alertmanager": name})
        return list(self.alertmanager_processes)

    def _start_prometheus(self) -> None:
        """As many replicas as prod renders, named as the Operator names their pods, each on the
        configuration the Operator generated."""
        name = self.kubernetes.prometheus["metadata"]["name"]
        # Replica 0 is the one whose remote write keeps its series (the rendered write relabelling drops the others').
        ports = {f"prometheus-{name}-{i}": free_port() for i in range(self.rendered.prometheus_spec["replicas"])}
        self.prometheus_urls = {pod: f"http://{self.address}:{port}" for pod, port in ports.items()}
        self.prometheus_processes = {}
        configs = self.kubernetes.prometheus_configs(list(ports), self.workdir / "prometheus-pod")
        for pod, url in self.prometheus_urls.items():
            config = configs[pod]
            (self.workdir / f"{pod}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            self.prometheus_processes[pod] = Process(
                [binary("prometheus"), f"--config.file={self.workdir / f'{pod}.yaml'}",
                 f"--storage.tsdb.path={self.workdir / pod}", f"--web.listen-address={url.removeprefix('http://')}",
                 f"--rules.alert.resend-delay={self.scaled(RESEND_DELAY)}",
                 *(f"--enable-feature={feature}" for feature in self.rendered.prometheus_spec.get("enableFeatures", []))],
                self.workdir / f"{pod}.log")
            self.processes.append(self.prometheus_processes[pod])
        service = self.kubernetes.service(f"{self.rendered.fullname}-prometheus")
        self.kubernetes.publish(service, service["spec"]["ports"][0]["name"], ports, "prometheus",
                      {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": name})
        state_metrics = self.kubernetes.service(f"{self.rendered.fullname}-kube-state-metrics")
        self.kubernetes.publish(state_metrics, state_metrics["spec"]["ports"][0]["name"],
                      {f"{self.rendered.fullname}-kube-state-metrics-0": self.cluster_series.port}, "kube-state-metrics",
                      state_metrics["spec"]["selector"])

    @property
    def prometheus_url(self) -> str:
        """The first replica still running (the failover scenario kills one)."""
        return next(url for pod, url in self.prometheus_urls.items() if self.prometheus_processes[pod].running())

    @property
    def shortest_scrape_interval(self) -> str:
        intervals = [self.rendered.prometheus_spec["scrapeInterval"],
                     *(e["interval"] for m in self.rendered.service_monitors.values() for e in m["spec"]["endpoints"])]
        return self.scaled(min(intervals, key=duration_ms))

    def close(self) -> None:
        self.load.stop()
        # Prometheus first: a sender whose receivers are gone waits out its flush deadline.
        for process in reversed(self.processes):
            process.stop()
        if self.kubernetes is not None:
            self.kubernetes.close()
        for service in self.services.values():
            service.close()
        self.cluster_series.close()
        self.capture.shutdown()

    def log_problems(self) -> list[str]:
        """Every warning or error Prometheus and Alertmanager logged, but those a scenario causes on purpose:
        failing to reach a process the HA scenario killed, a peer not yet listening when the first
        Alertmanager starts, and the signal of the teardown. A deprecated or misread setting of the
        deployed versions shows up here."""
        killed = [address for p in self.processes if p.killed for address in p.listen_addresses()]
        problems = []
        for process in self.processes:
            if process.args[0] not in (binary("prometheus"), binary("alertmanager")):
                continue
            for line in process.log.read_text(errors="replace").splitlines():
                if re.search(r"level=(WARN|ERROR)", line) and not any(a in line for a in killed) \
                        and not any(expected in line for expected in EXPECTED_LOG_LINES):
                    problems.append(f"{process.log.name}: {line}")
        return problems

    # ------------------------------------------------------------------------------ queries

    def query(self, promql: str, at: Optional[float] = None) -> dict[str, Any]:
        """Instant query, now or at the Unix time `at`."""
        params = {"query": promql, **({} if at is None else {"time": f"{at:.3f}"})}
        return http_json(f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode(params))

    def values(self, promql: str, at: Optional[float] = None) -> dict[str, float]:
        """Instant query result as {service label (or ""): value}."""
        return {r["metric"].get("service", ""): float(r["value"][1]) for r in self.query(promql, at)["data"]["result"]}

    def settled(self) -> float:
        """One evaluation interval ago: every rule evaluation up to then has written all its series.

        A query "now" can land while a group is being evaluated, after one recorded series of that
        evaluation was written and before the next: a ratio of the two then mixes evaluations.
        """
        return time.time() - self.seconds(self.evaluation_interval)

    def live_alertmanagers(self) -> list[str]:
        return [url for url, process in self.alertmanager_processes.items() if process.running()]

    def _rule(self, alert: str) -> dict[str, Any]:
        """The alert's rule (of several, as one per configured service, the first: they differ only by service)."""
        rules = [r for g in self.rules for r in g["rules"] if r.get("alert") == alert]
        assert rules and all((r.get("for"), r["labels"]["severity"]) == (rules[0].get("for"), rules[0]["labels"]["severity"])
                             for r in rules), alert
        return rules[0]

    def route_of(self, alert: str) -> dict[str, Any]:
        """The Alertmanager route the alert takes, with the labels its rule gives it."""
        return route_for(self.alertmanager_config, {"alertname": alert, **self._rule(alert)["labels"]})

    def alert_bound(self, alert: str, service: str = "", window: float = 0.0) -> float:
        """Scrape interval (of the service's monitor) + `window` + `for` + evaluation interval +
        group_wait of the alert's route, seconds. `window`: how long the alert's windowed condition
        needs, after the fault's onset, to turn true for the fault's shape (scaled seconds)."""
        rule = self._rule(alert)
        route = self.route_of(alert)
        monitor = self.rendered.service_monitors[self.monitor_of.get(service, next(iter(self.monitor_of.values())))]
        interval = monitor["spec"]["endpoints"][0]["interval"]
        return window + sum(self.seconds(d) for d in (self.scaled(interval), self.evaluation_interval,
                                                        rule.get("for", "0s"), route["group_wait"]))

    def resolve_bound(self, alert: str, window: float = 0.0) -> float:
        """`window` (how long the condition needs to stop holding after the recovery, scaled seconds)
        + evaluation interval + `keep_firing_for` + group_interval of the alert's route, seconds."""
        rule = self._rule(alert)
        return window + sum(self.seconds(d) for d in (self.evaluation_interval, rule.get("keep_firing_for", "0s"),
                                                        self.route_of(alert)["group_interval"]))

    # ------------------------------------------------------------------------------ the run

    def run(self) -> Report:
        (pagerduty,) = [r for r in self.alertmanager_config["receivers"] if r["name"] == "pagerduty"]
        report = Report(self.factor, self.capture, routing_key=pagerduty["pagerduty_configs"][0]["routing_key"],
                        alertmanager=self.alertmanager_config, peer_timeout=self.seconds(self.peer_timeout),
                        scenario_services={**{name: name for name in self.services}, "vanish": self.monitor_of["vanish"]})
        self._wait_for_steady_state()
        # The scrape jobs as the running Prometheus holds them (what the tests compare with the monitors).
        report.facts["scrape_configs"] = yaml.safe_load(
            http_json(f"{self.prometheus_url}/api/v1/status/config")["data"]["yaml"])["scrape_configs"]
        scenarios = {
            "errors": lambda: self._error_spike(report, "errors"),
            "nearmiss": lambda: self._near_miss(report),
            "latency": lambda: self._latency(report),
            "queue": lambda: self._queue(report),
            "inhibit": lambda: self._inhibit(report),
            "ha": lambda: self._error_spike(report, "ha", kill_alertmanager=True),
            "fresh": lambda: self._fresh(report),
            "vanish": lambda: self._vanish(report),
            "failover": lambda: self._failover(report),
            "crashloop": lambda: self._crash_loop(report),
            "stalled": lambda: self._stalled(report),
        }
        with ThreadPoolExecutor(len(scenarios)) as pool:
            futures = {name: pool.submit(scenario) for name, scenario in scenarios.items()}
        for name, future in futures.items():
            if future.exception() is not None:
                report.errors[name] = future.exception()
        # The workload alerts at the end: the one workload crash-looping all along (synthetic.RESTARTING_POD).
        report.facts["workload_alerts"] = sorted(
            (r["metric"]["alertname"], r["metric"]["service"], r["metric"]["alertstate"])
            for r in self.query('ALERTS{alertname=~"Workload.*"}')["data"]["result"])
        report.dashboard_queries = self._query_dashboards()
        report.remote_write = self._remote_write_facts()
        return report

    def _wait_for_steady_state(self) -> None:
        """Every service has a full rate window of healthy history; both Alertmanagers have settled."""
        window = duration_ms(self.scaled("5m")) // duration_ms(self.evaluation_interval)

        def history_full() -> bool:
            counts = self.values(f"count_over_time(service:webhook_deliveries:rate5m[{self.scaled('5m')}])")
            return set(counts) >= set(self.services) and min(counts[s] for s in self.services) >= window - 1

        def cluster_ready() -> bool:
            statuses = [http_json(f"{url}/api/v2/status")["cluster"] for url in self.alertmanager_urls]
            return all(s["status"] == "ready" and len(s["peers"]) == 2 for s in statuses)

        wait_until(cluster_ready, timeout=60, interval=0.2, what="Alertmanager cluster settled")
        wait_until(history_full, timeout=60, interval=0.2, what="a full window of healthy history")

    def _detect(self, report: Report, key: str, alert: str, service: str, receiver: str,
                onset: float, match: Callable[[Any], bool], window: float = 0.0) -> Any:
        """Wait for the first notification `match` accepts; record its latency; return its body."""
        detection = report.detections[key] = Detection(alert, service, receiver, self.alert_bound(alert, service, window),
                                                       onset)
        body, detection.arrived = self._first_post(receiver, match, 4 * detection.bound + 10, f"{alert} for {service}")
        return body

    def _resolved(self, report: Report, alert: str, service: str, recovered: float, window: float = 0.0) -> None:
        """Wait for the page's resolve; record its latency from the recovery against `resolve_bound`."""
        resolve = report.resolves[f"{alert}/{service}"] = Detection(alert, service, PAGERDUTY,
                                                                    self.resolve_bound(alert, window), recovered)
        _, resolve.arrived = self._first_post(PAGERDUTY, self._page(alert, service, "resolve"), 4 * resolve.bound + 10,
                                              f"resolve of {alert} for {service}")

    def _first_post(self, receiver: str, match: Callable[[Any], bool], timeout: float, what: str) -> tuple[Any, float]:
        """(body, arrival time) of the first POST to `receiver` that `match` accepts, waiting up to `timeout` s."""

        def arrived():
            posts = self.capture.timed(receiver, match)
            return posts[0] if posts else None

        return wait_until(arrived, timeout=timeout, interval=0.05, what=what)

    def _page(self, alert: str, service: str, action: str) -> Callable[[Any], bool]:
        return lambda b: (b["payload"]["class"], b["payload"]["component"], b["event_action"]) == (alert, service, action)

    def _error_spike(self, report: Report, service: str, kill_alertmanager: bool = False) -> None:
        onset = self.services[service].set_phase(ERROR_SPIKE)
        self._detect(report, f"WebhookHighErrorRate/{service}", "WebhookHighErrorRate", service, PAGERDUTY, onset,
                     self._page("WebhookHighErrorRate", service, "trigger"))
        if kill_alertmanager:
            self._kill_notifying_alertmanager(report)
        recovered = self.services[service].set_phase(HEALTHY)
        # The errors leave the rate window (at the latest), the alert keeps firing, then the next group flush sends the resolve.
        deadline = 2 * self.resolve_bound("WebhookHighErrorRate", self.seconds(self.scaled("5m"))) + 10
        _, arrived = self._first_post(PAGERDUTY, self._page("WebhookHighErrorRate", service, "resolve"), deadline,
                                      f"resolve for {service}")
        report.facts[f"resolve_after_recovery/{service}"] = arrived - recovered

    def _kill_notifying_alertmanager(self, report: Report) -> None:
        """SIGKILL the Alertmanager at cluster position 0, the one that sends; its peer must take over."""
        statuses = {url: http_json(f"{url}/api/v2/status")["cluster"] for url in self.alertmanager_urls}
        report.facts["ha_alert_on_each_alertmanager"] = [
            len(http_json(f"{url}/api/v2/alerts?" + urllib.parse.urlencode(
                {"filter": ['alertname="WebhookHighErrorRate"', 'service="ha"']}, doseq=True)))
            for url in self.alertmanager_urls]
        first = min(statuses, key=lambda url: statuses[url]["name"])
        # Kill it between notifications: every one sent so far (this page, and the other scenarios'
        # running alongside) has had a second to reach the peer's notification log (gossip: 200 ms).
        # Killed right after a send, the peer would send it again: Alertmanager promises at least once.
        wait_until(lambda: time.monotonic() - self.capture.last_arrival() >= 1.0, timeout=60, interval=0.05,
                   what="a second without notifications")
        self.alertmanager_processes[first].kill()
        report.facts["killed_at"] = time.monotonic()

    def _near_miss(self, report: Report) -> None:
        """One endpoint fails hard, the service as a whole stays under 5 %: hold it past every bound."""
        onset = self.services["nearmiss"].set_phase(NEAR_MISS)
        window = self.seconds(self.scaled("5m"))
        hold_until = onset + window + 3 * self.alert_bound("WebhookHighErrorRate")
        # Watch from when the rate window holds only near-miss traffic (and its ratio was recorded).
        time.sleep(max(0.0, onset + window + 2 * self.seconds(self.evaluation_interval) - time.monotonic()))
        service_ratios, endpoint_ratios = [], []
        while time.monotonic() < hold_until:
            at = self.settled()
            service_ratios.append(self.values('service:webhook_delivery_errors:ratio_rate5m{service="nearmiss"}', at)["nearmiss"])
            endpoint_ratios.append(float(self.query(
                f'service_endpoint:webhook_delivery_errors:rate5m{{service="nearmiss", endpoint="{FAILING_ENDPOINT}"}}'
                f' / service_endpoint:webhook_deliveries:rate5m{{service="nearmiss", endpoint="{FAILING_ENDPOINT}"}}', at
            )["data"]["result"][0]["value"][1]))
            time.sleep(self.seconds(self.evaluation_interval))
        report.facts["nearmiss_service_ratio"] = (min(service_ratios), max(service_ratios))
        report.facts["nearmiss_endpoint_ratio"] = (min(endpoint_ratios), max(endpoint_ratios))
        report.facts["nearmiss_watched_seconds"] = hold_until - onset

    def _latency(self, report: Report) -> None:
        onset = self.services["latency"].set_phase(SLOW)
        self._detect(report, "HighLatency/latency", "HighLatency", "latency", SLACK, onset,
                     lambda b: any(slack_about(a, "latency", "HighLatency") for a in b["attachments"]))
        # A page would come with the same group_wait: wait one more before the tests look for it.
        time.sleep(self.seconds(self.route_of("WebhookHighErrorRate")["group_wait"]) * 2)

    def _queue(self, report: Report) -> None:
        report.facts["queue_before"] = self.values('service:webhook_queue_depth:sum{service="queue"}')["queue"]
        onset = self.services["queue"].set_phase(QUEUE_BACKLOG)
        # The rule counts the subquery's steps above the threshold: that many steps, the first one
        # at the next step after the onset.
        step, needed = re.search(r":(\w+)\]\) >= (\d+)", self._rule("WebhookQueueBacklog")["expr"]).groups()
        window = (int(needed) + 1) * self.seconds(step)
        self._detect(report, "WebhookQueueBacklog/queue", "WebhookQueueBacklog", "queue", PAGERDUTY, onset,
                     self._page("WebhookQueueBacklog", "queue", "trigger"), window)
        report.facts["queue_per_replica_max"] = max(self.values(
            'max by (service) (webhook_queue_depth{service="queue"})').values())

    def _inhibit(self, report: Report) -> None:
        """A critical and a warning for one service: the warning must stay in Alertmanager, suppressed."""
        onset = self.services["inhibit"].set_phase(SLOW_AND_FAILING)
        self._detect(report, "WebhookHighErrorRate/inhibit", "WebhookHighErrorRate", "inhibit", PAGERDUTY, onset,
                     self._page("WebhookHighErrorRate", "inhibit", "trigger"))

        def suppressed_warning():
            for url in self.live_alertmanagers():
                try:
                    alerts = http_json(f"{url}/api/v2/alerts?" + urllib.parse.urlencode(
                        {"filter": ['alertname="HighLatency"', 'service="inhibit"']}, doseq=True))
                except OSError:  # the HA scenario may be killing this one right now
                    continue
                if alerts:
                    return alerts[0]["status"]
            return None

        status = wait_until(suppressed_warning, timeout=4 * self.alert_bound("HighLatency") + 10, interval=0.2,
                            what="HighLatency of the inhibit service in Alertmanager")
        report.facts["inhibited_status"] = status
        warning_route = self.route_of("HighLatency")
        # Past the warning's group_wait (and a group_interval, for a late flush): a post would be here by now.
        time.sleep(self.seconds(warning_route["group_wait"]) + self.seconds(warning_route["group_interval"]))
        report.facts["inhibited_status_after"] = suppressed_warning()

    def _fresh(self, report: Report) -> None:
        """Errors begin on endpoints with no error series yet: each series is born with its first
        errors. The created-timestamp ingestion the stack enables stores a zero at its birth, so
        rate() counts those errors; without it they are the first sample, and lost."""
        report.facts["fresh_error_series_before"] = len(self.query(
            'webhook_deliveries_total{service="fresh", status="error"}')["data"]["result"])
        self._error_spike(report, "fresh")
        window = self.seconds(self.scaled("5m"))
        samples = [[(float(t), float(v)) for t, v in series["values"]] for series in self.query(
            f'webhook_deliveries_total{{service="fresh", status="error"}}[{int(time.monotonic() - self.started) + 1}s]'
        )["data"]["result"]]
        report.facts["fresh_series_samples"] = samples
        # Errors counted in the first rate window of each series, with its birth stored as a zero
        # and (what Prometheus does without the feature) from its first scraped value on.
        in_window = [[v for t, v in series if t <= series[0][0] + window] for series in samples]
        report.facts["fresh_first_window_errors"] = (sum(s[-1] - s[0] for s in in_window),
                                                     sum(s[-1] - s[1] for s in in_window))

    def _vanish(self, report: Report) -> None:
        """The only Service of the second monitor leaves discovery (its labels changed), and comes back."""
        service, monitor = self.services["vanish"], self.monitor_of["vanish"]
        onset = self.discover(service, present=False)
        self._detect(report, f"WebhookTargetsMissing/{monitor}", "WebhookTargetsMissing", monitor, PAGERDUTY, onset,
                     self._page("WebhookTargetsMissing", monitor, "trigger"))
        back = self.discover(service)
        # Discovery hands updates over every 5 s at most (not scaled), then a scrape and an evaluation.
        deadline = 2 * self.resolve_bound("WebhookTargetsMissing", 5) + 10
        _, arrived = self._first_post(PAGERDUTY, self._page("WebhookTargetsMissing", monitor, "resolve"), deadline,
                                      f"resolve for {monitor}")
        report.facts["resolve_after_rediscovery"] = arrived - back

    def _failover(self, report: Report) -> None:
        """A Prometheus replica killed mid-incident: the other one keeps evaluating (one page, then
        its resolve) and keeps writing (the long-term store has no gap)."""
        onset = self.services["failover"].set_phase(ERROR_SPIKE)
        # Mid-incident: the alert's `for` is running on both replicas when one dies.
        wait_until(lambda: self.values('ALERTS{alertname="WebhookHighErrorRate", service="failover"}'),
                   timeout=4 * self.alert_bound("WebhookHighErrorRate") + 10, interval=0.1, what="failover alert pending")
        victim = next(iter(self.prometheus_processes))
        killed = time.time()
        self.prometheus_processes[victim].kill()
        report.facts["failover_killed"] = victim
        self._detect(report, "WebhookHighErrorRate/failover", "WebhookHighErrorRate", "failover", PAGERDUTY, onset,
                     self._page("WebhookHighErrorRate", "failover", "trigger"))
        recovered = self.services["failover"].set_phase(HEALTHY)
        deadline = 2 * self.resolve_bound("WebhookHighErrorRate", self.seconds(self.scaled("5m"))) + 10
        _, arrived = self._first_post(PAGERDUTY, self._page("WebhookHighErrorRate", "failover", "resolve"), deadline,
                                      "resolve for failover")
        report.facts["resolve_after_recovery/failover"] = arrived - recovered
        # The long-term store around the kill: the largest gap between stored samples of the service's
        # scrapes and of its recorded rate, from a minute (scaled) before to the end.
        window = {"start": f"{killed - self.seconds(self.scaled('1m')):.3f}", "end": f"{time.time():.3f}"}
        # What one replica alone would leave: a scrape (an evaluation) missed in the handover at most.
        monitor = self.rendered.service_monitors[self.monitor_of["failover"]]
        scrape = self.seconds(self.scaled(monitor["spec"]["endpoints"][0]["interval"]))
        bounds = {'up{job="failover"}': 2 * scrape,
                  'service:webhook_deliveries:rate5m{service="failover"}': 2 * self.seconds(self.evaluation_interval)}
        report.facts["failover_gap_bounds"] = bounds
        gaps = {}
        for selector in bounds:
            exported = urllib.request.urlopen(f"http://127.0.0.1:{self.victoria_port}/api/v1/export?" + urllib.parse.urlencode(
                {"match[]": selector, **window}), timeout=10).read().decode().splitlines()
            series = [sorted(t / 1000 for t in json.loads(line)["timestamps"]) for line in exported]
            assert series, f"no {selector} in the long-term store"
            gaps[selector] = max(b - a for stamps in series for a, b in zip(stamps, stamps[1:]))
        report.facts["failover_long_term_gaps"] = gaps

    def _crash_loop(self, report: Report) -> None:
        """Every pod of the service crash-loops: each process dies, waits out the back-off and runs a
        moment, its counters back at zero; its targets answer the odd scrape. It pages once, as down,
        and resolves once when the pods run again."""
        service = self.services["crashloop"]
        period, alive = (self.seconds(self.scaled(d)) for d in (CRASH_PERIOD, CRASH_ALIVE))
        onset = service.crash_loop(period, alive)
        # Each target answers about alive/period of its scrapes: the best share over the window drops
        # under the rule's half after window * 0.5 / (1 - alive/period).
        window = self._target_window() * 0.5 / (1 - alive / period)
        self._detect(report, "WebhookTargetDown/crashloop", "WebhookTargetDown", "crashloop", PAGERDUTY, onset,
                     self._page("WebhookTargetDown", "crashloop", "trigger"), window)
        crashed = time.monotonic() - onset
        recovered = service.recover()
        # Answering every scrape again, the share passes half after half the window.
        self._resolved(report, "WebhookTargetDown", "crashloop", recovered, self._target_window() / 2)
        span = f"{int(crashed) + 1}s"
        since_last_healthy_scrape = f"{int(crashed + 2 * self.seconds(self.shortest_scrape_interval)) + 1}s"
        at = onset + crashed
        report.facts["crashloop"] = {
            "restarts": dict(service.restarts),
            "up_samples": self.values(f'sum by (service) (count_over_time(up{{service="crashloop"}}[{span}]))', at=self._wall(at)),
            "up_answered": self.values(f'sum by (service) (sum_over_time(up{{service="crashloop"}}[{span}]))', at=self._wall(at)),
            # From the last scrape before the onset (the counters of a long life), which `span` can miss.
            "counter_resets": self.values(f'sum by (service) (resets(webhook_deliveries_total{{service="crashloop"}}'
                                          f'[{since_last_healthy_scrape}]))', at=self._wall(at)),
            "waiting": self.values(f'max_over_time(kube_pod_container_status_waiting_reason{{pod=~"crashloop-.*", '
                                   f'reason="CrashLoopBackOff"}}[{span}])', at=self._wall(at)),
        }

    def _stalled(self, report: Report) -> None:
        """The consumers stop delivering while the queue holds webhooks (the targets answer): it pages
        once, and resolves once deliveries resume."""
        service = self.services["stalled"]
        onset = service.set_phase(STALLED)
        # The 5m delivery rate reads zero, and the queue has held, 5 minutes after the last delivery.
        window = self.seconds(self.scaled("5m"))
        self._detect(report, "WebhookDeliveriesStalled/stalled", "WebhookDeliveriesStalled", "stalled", PAGERDUTY, onset,
                     self._page("WebhookDeliveriesStalled", "stalled", "trigger"), window)
        stalled_for = time.monotonic() - onset
        recovered = service.set_phase(DRAINED)
        # The first delivery counted ends it: one scrape.
        self._resolved(report, "WebhookDeliveriesStalled", "stalled", recovered, self._scrape_interval("stalled"))
        # From the second scrape after the onset (the first may hold one replica's queue before the other's).
        span = f"{int(stalled_for - 2 * self._scrape_interval('stalled'))}s"
        at = self._wall(onset + stalled_for)
        report.facts["stalled"] = {
            "delivered": self.values(f'sum by (service) (increase(webhook_deliveries_total{{service="stalled"}}[{span}]))', at=at),
            "queue_min_max": (self.values(f'min_over_time(service:webhook_queue_depth:sum{{service="stalled"}}[{span}])', at=at),
                              self.values(f'max_over_time(service:webhook_queue_depth:sum{{service="stalled"}}[{span}])', at=at)),
            "answered": self.values(f'min by (service) (min_over_time(up{{service="stalled"}}[{span}]))', at=at),
        }

    def _target_window(self) -> float:
        """The window over which WebhookTargetDown reads each target's share of answered scrapes, scaled seconds."""
        return self.seconds(re.search(r"avg_over_time\(up\{[^}]*\}\[(\w+)\]\)", self._rule("WebhookTargetDown")["expr"])[1])

    def _scrape_interval(self, service: str) -> float:
        monitor = self.rendered.service_monitors[self.monitor_of[service]]
        return self.seconds(self.scaled(monitor["spec"]["endpoints"][0]["interval"]))

    def _wall(self, monotonic: float) -> float:
        """The Unix time of a monotonic instant of this run."""
        return time.time() - (time.monotonic() - monotonic)

    # ------------------------------------------------------------------------------ dashboards

    def _query_dashboards(self) -> list[dict[str, Any]]:
        """Every Prometheus target of every rendered dashboard, variables substituted, run once."""
        results = []
        elapsed = int(time.monotonic() - self.started) * self.factor  # $__range in unscaled seconds
        # Grafana: $__rate_interval = max(4 x scrape interval, ...); the data source's scrape interval is the global one.
        rate_interval = f"{4 * duration_ms(self.rendered.prometheus_spec['scrapeInterval']) // 1000}s"
        for stack, dashboards in self.dashboard_sets.items():
            for uid, dashboard in dashboards.items():
                variables = self._variables(dashboard)
                for panel in _panels(dashboard.get("panels", [])):
                    for target in panel.get("targets", []):
                        source = (target.get("datasource") or panel.get("datasource") or {}).get("type", "prometheus")
                        entry = {"stack": stack, "dashboard": uid, "panel": panel.get("title", ""),
                                 "expr": target.get("expr", ""), "datasource": source}
                        if source != LOKI:
                            expr = _substitute(entry["expr"], {**variables, "__range": f"{elapsed}s",
                                                               "__rate_interval": rate_interval})
                            entry["query"] = scale_promql(expr, self.factor)
                            try:
                                response = self.query(entry["query"])
                                entry["status"], entry["series"] = response["status"], len(response["data"]["result"])
                            except urllib.error.HTTPError as error:
                                entry["status"], entry["error"] = "error", error.read().decode()
                        results.append(entry)
        return results

    def _variables(self, dashboard: dict[str, Any]) -> dict[str, str]:
        """Template variable values as Grafana would send them with the defaults selected."""
        values: dict[str, str] = {}
        for variable in dashboard.get("templating", {}).get("list", []):
            if (variable.get("datasource") or {}).get("type") == LOKI:
                continue
            current = variable.get("current", {}).get("value", "")
            if variable["type"] == "query" and current == "$__all":
                if "allValue" in variable:
                    current = variable["allValue"]
                else:
                    metric, label = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["query"]).groups()
                    series = http_json(f"{self.prometheus_url}/api/v1/series?" + urllib.parse.urlencode(
                        {"match[]": _substitute(metric, values)}))["data"]
                    found = sorted({s[label] for s in series if label in s})
                    current = "(" + "|".join(_regex_escape(v) for v in found) + ")"
            values[variable["name"]] = current
        return values

    # ------------------------------------------------------------------------------ remote write

    def _remote_write_facts(self) -> dict[str, Any]:
        """Metric names the receiver holds, and the labels of one webhook series there."""
        receiver = f"http://127.0.0.1:{self.victoria_port}"
        drop = next(c for rw in self.rendered.prometheus_spec["remoteWrite"] for c in rw["writeRelabelConfigs"]
                    if c["action"] == "drop")

        def names() -> list[str]:
            return http_json(f"{receiver}/api/v1/label/__name__/values")["data"]

        wait_until(lambda: "service:webhook_delivery_errors:ratio_rate5m" in names(), timeout=30, interval=0.5,
                   what="recorded series at the remote-write receiver")
        local = http_json(f"{self.prometheus_url}/api/v1/label/__name__/values")["data"]
        series = http_json(f"{receiver}/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": 'webhook_deliveries_total{service="errors"}'}))["data"]
        run = f"{int(time.monotonic() - self.started) + 1}s"
        live = [pod for pod, process in self.prometheus_processes.items() if process.running()]
        # Each running replica's queue, as Prometheus exports it about itself (every replica scrapes
        # every replica); and what each replica sent over the run (the killed one's too, before it died).
        queues = {pod: {metric: self.values(f'max(prometheus_remote_storage_{metric}{{pod="{pod}"}})')[""]
                        for metric in ("queue_highest_timestamp_seconds", "queue_highest_sent_timestamp_seconds",
                                       "highest_timestamp_in_seconds")}
                  for pod in live}
        sent_by = {pod: self.values(f'max(max_over_time(prometheus_remote_storage_samples_total{{pod="{pod}"}}[{run}]))')
                   .get("", 0.0) for pod in self.prometheus_urls}
        # Every pipeline alert that was pending or firing on any running replica at any time of the run.
        pipeline_alerts = [r["metric"] for url in (self.prometheus_urls[pod] for pod in live) for r in http_json(
            f"{url}/api/v1/query?" + urllib.parse.urlencode(
                {"query": f'max_over_time(ALERTS{{alertname=~"LongTermStore.*"}}[{run}])'}))["data"]["result"]]
        return {"received_names": sorted(names()), "local_names": sorted(local), "drop_regex": drop["regex"],
                "webhook_series": series, "queues": queues, "sent_by": sent_by, "pipeline_alerts": pipeline_alerts,
                "sent": self.values("sum(prometheus_remote_storage_samples_total)")[""],
                "failed": self.values("sum(prometheus_remote_storage_samples_failed_total)")[""]}



def _panels(panels: list[dict[str, Any]]):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _regex_escape(value: str) -> str:
    """Grafana's escaping of a multi-value for a Prometheus regex: the backslash doubled for the string literal."""
    return re.sub(r"[\\$^*{}\[\]+?.()|]", lambda m: "\\\\" + m.group(0), value)


def _substitute(expr: str, variables: dict[str, str]) -> str:
    """Grafana's $name / ${name} expansion, longest names first so $__range_s is not half-replaced."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    return expr


def run_once(workdir: Path, rendered_root: Optional[Path] = None) -> Report:
    """Render, start, play every scenario, tear down; the Report outlives the processes.
    Its wall_seconds counts all of it, render and teardown included."""
    started = time.monotonic()
    if rendered_root is None:
        rendered_root = render_stacks(workdir / "rendered")
    harness = Harness(workdir, rendered_root)
    try:
        report = harness.run()
    finally:
        harness.close()
    report.log_problems = harness.log_problems()
    report.wall_seconds = time.monotonic() - started
    return report
