"""`make verify` (tools/verify.py): green on a healthy stack, red with the right line for each failure.

The stack is prod as the program renders it, Alertmanager's group timings shortened so that a
notification sent by mistake would arrive while a test waits. Prometheus and Alertmanager are the
real servers of the deployed versions on loopback: Prometheus with the rendered rule groups,
scraping a stand-in target per configured service and remote-writing to VictoriaMetrics (the
stand-in for Mimir, queried under /prometheus as Mimir's API is); three clustered Alertmanagers
with the rendered configuration, every receiver pointed at a capture server. The Kubernetes API
answers come from tests/fixtures/verify/cluster.json (an EKS cluster's objects in the API's shape,
written for these tests with the fields the checks read: no cluster was at hand to record them); Grafana and Loki are a small fake HTTP server. Each failure test breaks
one thing and expects exactly its FAIL lines.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import http.server
import json
import os
import re
import shutil
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
import yaml

from monitoring.dashboards.datasources import DATASOURCES
from monitoring.helm.kube_prometheus_stack import fullname
from monitoring.web_auth import ALERTMANAGER, PROMETHEUS
from tests.e2e.harness import alertmanager_for_test
from config.types import duration_ms
from monitoring.grafana_folders import LEVELS
from testkit.grafana import GrafanaApi
from testkit.live import CaptureServer, Process, free_port, http_json, responds, serve, stop, wait_until
from tests.support import merged, rendered_stack, stack_settings
from tools.go_tools import binary
from tools.verify import (
    SYNTHETIC_ALERTNAME,
    Expected,
    Kubectl,
    config_difference,
    main,
    metric_samples,
    parse_time,
    release_state,
    synthetic_labels,
    verify,
)

STACK = "prod"
OVERRIDES = {"alerting": {"alertmanager": {"groupWait": "1s", "groupInterval": "2s"}}}
FIXTURE = Path(__file__).parent / "fixtures" / "verify" / "cluster.json"
NAMESPACE = "monitoring"
FULLNAME = fullname(stack_settings(STACK))
PROMETHEUS_PODS = tuple(f"prometheus-{FULLNAME}-prometheus-{i}" for i in range(2))
ALERTMANAGER_PODS = tuple(f"alertmanager-{FULLNAME}-alertmanager-{i}" for i in range(3))
GRAFANA_POD = f"{FULLNAME}-grafana-7c9d8f6b5-x2kqp"
LOKI_GATEWAY_POD = "loki-gateway-5d8f7c9b6-h2kdn"
MIMIR_GATEWAY_POD = "mimir-distributed-gateway-6c7b8d9f5-p5vqs"
GATEWAY_PORT = 8080
GRAFANA_PORT = 3000
ADMIN = ("admin", "recorded-admin-password")
# A recording rule that fails at every evaluation: the two metrics lose their names to abs() and
# leave series with the same labels.
FAILING_RULE = {"record": "verify:duplicate_labelsets", "expr": 'abs({__name__=~"up|scrape_duration_seconds"})'}
SYNTHETIC_TIMEOUT = 1.0

live = pytest.mark.live


# ------------------------------------------------------------------------------ the cluster


class FakeCluster:
    """The Kubernetes API of the recorded objects, and port-forwards mapped to loopback URLs."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]], forwards: dict[tuple[str, int], str]) -> None:
        self.objects = objects
        self.forwards = forwards
        self.open_forwards = 0

    def get_json(self, api_path: str) -> Any:
        parsed = urllib.parse.urlsplit(api_path)
        selector = urllib.parse.parse_qs(parsed.query).get("labelSelector", [""])[0]
        terms = [term.replace("!=", "=!", 1).split("=", 1) for term in selector.split(",") if term]
        parts = parsed.path.strip("/").split("/")
        assert parts[:2] == ["api", "v1"], api_path
        if len(parts) == 3:  # /api/v1/<kind>, every namespace
            return {"items": self.objects[parts[2]]}
        _, _, _, namespace, kind, *name = parts
        found = [o for o in self.objects[kind] if o["metadata"]["namespace"] == namespace
                 and all(matches(o["metadata"].get("labels", {}).get(k), v) for k, v in terms)]
        if not name:
            return {"items": found}
        return next(o for o in found if o["metadata"]["name"] == name[0])

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        data = self.get_json(f"/api/v1/namespaces/{namespace}/secrets/{name}")["data"]
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    @contextlib.contextmanager
    def forward(self, namespace: str, pod: str, port: int) -> Iterator[str]:
        assert namespace == NAMESPACE
        self.open_forwards += 1
        try:
            yield self.forwards[(pod, port)]
        finally:
            self.open_forwards -= 1


def matches(value: Optional[str], term: str) -> bool:
    """A label selector's `key=value`, or `key!=value` (given as `=!value`)."""
    return value != term[1:] if term.startswith("!") else value == term


def pod(objects: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    return next(p for p in objects["pods"] if p["metadata"]["name"] == name)


# ------------------------------------------------------------------------------ Grafana and Loki


@dataclass
class Backends:
    """A fake Grafana (its admin API, behind the admin's basic auth: folders, permissions and
    dashboards from testkit/grafana.py), a Loki gateway and a Mimir gateway without samples; also the
    scrape target of every configured service."""

    alertmanager_url: str
    grafana: GrafanaApi
    logged_pods: set[tuple[str, str]]
    health: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        backends = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = backends.answer(urllib.parse.urlsplit(self.path), self.headers.get("Authorization", ""))
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4" if isinstance(body, str) else "application/json")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, url: urllib.parse.SplitResult, authorization: str) -> tuple[int, Any]:
        path = url.path
        if path == "/metrics":
            return 200, "# TYPE verify_fixture gauge\nverify_fixture 1\n"
        if path == "/api/health":
            return 200, {"commit": "0000000", "database": "ok", "version": "12.3.0"}
        if path == "/loki/api/v1/query":
            self.queries.append(urllib.parse.parse_qs(url.query)["query"][0])
            return 200, {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"namespace": ns, "pod": name}, "value": [0, "12"]} for ns, name in sorted(self.logged_pods)]}}
        if path == "/prometheus/api/v1/query":
            return 200, {"status": "success", "data": {"resultType": "vector", "result": []}}
        if authorization != "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode():
            return 401, {"message": "Unauthorized"}
        if path.startswith(("/api/dashboards/", "/api/folders", "/api/teams/")):
            return self.grafana.answer("GET", url.geturl(), None, authorization)
        if path == "/api/frontend/settings":
            return 200, {"datasources": {uid.title(): {"uid": uid, "type": plugin, "meta": {"backend": plugin != "alertmanager"}}
                                         for uid, plugin in DATASOURCES.items()}}
        if found := re.fullmatch(r"/api/datasources/uid/([^/]+)/health", path):
            return self.health.get(found[1], (200, {"status": "OK", "message": "Data source is working"}))
        if path == "/api/datasources/proxy/uid/alertmanager/api/v2/status":  # Grafana's data source proxy
            return 200, http_json(f"{self.alertmanager_url}/api/v2/status")
        if found := re.fullmatch(r"/api/datasources/uid/([^/]+)", path):
            return 200, {"uid": found[1], "type": DATASOURCES[found[1]]}
        return 404, {"message": "Not found"}

    def shutdown(self) -> None:
        stop(self.server)


# ------------------------------------------------------------------------------ the servers


@dataclass
class Stack:
    expected: Expected
    rule_groups: list[dict[str, Any]]
    enabled_features: list[str]
    folder_grants: list[dict[str, Any]]
    """The folder Job's permission items, as it posts them (roles only in this stack)."""


@dataclass
class Servers:
    directory: Path
    stack: Stack
    capture: CaptureServer
    backends: Backends
    victoria_url: str
    alertmanager_config: Path
    alertmanager_urls: list[str]
    prometheus: dict[str, str] = field(default_factory=dict)
    """URL of each Prometheus by name: the healthy one, and one per failure it must report."""
    closed: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    """An address nothing listens on."""
    processes: list[Process] = field(default_factory=list)

    @property
    def target(self) -> str:
        """The stand-in scrape target of every configured service."""
        return self.backends.url.removeprefix("http://")

    def launch_prometheus(self, name: str, *, pools: Optional[dict[str, str]] = None,
                          rule_groups: Optional[list[dict[str, Any]]] = None, remote_write: str = "") -> Callable[[], bool]:
        """Start a Prometheus with the rendered rule groups, one job per scrape pool (each scraping
        the stand-in target), remote-writing to the stand-in for Mimir; its URL goes in
        `prometheus[name]`. Returns whether it has settled: ready, every target scraped, every
        group evaluated since (with data) and, to a receiver that listens, samples sent."""
        expected = self.stack.expected
        pools = {pool: self.target for _, pool in expected.scrape_pools} if pools is None else pools
        remote_write = remote_write or f"{self.victoria_url}/api/v1/write"
        rules = self.directory / f"{name}-rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": self.stack.rule_groups if rule_groups is None else rule_groups}))
        config = self.directory / f"{name}.yaml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "external_labels": {"cluster": expected.cluster}},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": pool, "static_configs": [{"targets": [target]}]} for pool, target in pools.items()],
            "remote_write": [{"name": queue, "url": remote_write, "queue_config": {"batch_send_deadline": "200ms"}}
                             for queue in expected.remote_write_queues],
        }))
        url = self.prometheus[name] = f"http://127.0.0.1:{free_port()}"
        self.processes.append(Process(
            [binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={self.directory / name}",
             f"--web.listen-address={url.removeprefix('http://')}",
             *(f"--enable-feature={feature}" for feature in self.stack.enabled_features)],
            self.directory / f"{name}.log"))

        scraped: list[datetime.datetime] = []

        def settled() -> bool:
            if not responds(f"{url}/-/ready"):
                return False
            targets = http_json(f"{url}/api/v1/targets?state=active")["data"]["activeTargets"]
            # Discovery hands targets over every 5 s at most: a pool may not be there yet.
            if not scraped and {t["scrapePool"] for t in targets} == set(pools) and all(t["health"] != "unknown" for t in targets):
                scraped.append(max(parse_time(t["lastScrape"]) for t in targets))
            groups = http_json(f"{url}/api/v1/rules")["data"]["groups"]
            metrics = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
            sent = [v for _, v in metric_samples(metrics, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds")]
            return (bool(scraped) and all(parse_time(g["lastEvaluation"]) > scraped[0] for g in groups)
                    and (not remote_write.startswith(self.victoria_url) or bool(sent) and all(sent)))

        return settled

    def start_alertmanager(self, name: str, gossip: int, peers: tuple[int, ...] = ()) -> str:
        """An Alertmanager with the test's configuration, gossiping on `gossip` with `peers`; its URL."""
        web = free_port()
        self.processes.append(Process(
            [binary("alertmanager"), f"--config.file={self.alertmanager_config}", f"--storage.path={self.directory / name}",
             f"--web.listen-address=127.0.0.1:{web}", f"--cluster.listen-address=127.0.0.1:{gossip}",
             *(f"--cluster.peer=127.0.0.1:{peer}" for peer in peers)],
            self.directory / f"{name}.log"))
        return f"http://127.0.0.1:{web}"

    def forwards(self) -> dict[tuple[str, int], str]:
        return {
            **{(p, PROMETHEUS.upstream_port): self.prometheus["healthy"] for p in PROMETHEUS_PODS},
            **{(p, ALERTMANAGER.upstream_port): url for p, url in zip(ALERTMANAGER_PODS, self.alertmanager_urls)},
            (GRAFANA_POD, GRAFANA_PORT): self.backends.url,
            (LOKI_GATEWAY_POD, GATEWAY_PORT): self.backends.url,
            (MIMIR_GATEWAY_POD, GATEWAY_PORT): self.victoria_url,
        }


@pytest.fixture(scope="module")
def stack() -> Stack:
    rendered = rendered_stack(STACK, OVERRIDES)
    features = rendered.prometheus_spec.get("enableFeatures", [])
    grants = [{"role": p["role"], "permission": LEVELS[p["permission"]]} for p in rendered.folder_permissions]
    return Stack(Expected.from_rendered(rendered, stack_settings(STACK, OVERRIDES)), rendered.rule_groups, features, grants)


@pytest.fixture(scope="module")
def servers(stack: Stack, tmp_path_factory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("verify")
    objects = json.loads(FIXTURE.read_text())
    capture = CaptureServer()
    config = directory / "alertmanager.yaml"
    config.write_text(yaml.safe_dump(alertmanager_for_test(stack.expected.alertmanager_config, capture.url, factor=1)))
    victoria_port = free_port()
    grafana = GrafanaApi(ADMIN, folders={title.lower().replace(" ", "-"): title for title in stack.expected.folders},
                         dashboards=set(stack.expected.dashboards))
    for uid in grafana.folders:
        grafana.grant(uid, stack.folder_grants)
    servers = Servers(directory, stack, capture, Backends(
        alertmanager_url="", grafana=grafana,
        logged_pods={(p["metadata"]["namespace"], p["metadata"]["name"]) for p in objects["pods"]
                     if p["status"]["phase"] == "Running"}),
        f"http://127.0.0.1:{victoria_port}", config, [])
    try:
        receiver = shutil.which("victoria-metrics")
        assert receiver, "missing victoria-metrics: apt-get install victoria-metrics (Debian package)"
        servers.processes.append(Process(
            [receiver, f"-httpListenAddr=127.0.0.1:{victoria_port}", f"-storageDataPath={directory / 'victoria-metrics'}",
             "-search.latencyOffset=0s"], directory / "victoria-metrics.log"))
        gossip = [free_port() for _ in ALERTMANAGER_PODS]
        servers.alertmanager_urls += [
            servers.start_alertmanager(f"alertmanager-{i}", port, tuple(p for p in gossip if p != port))
            for i, port in enumerate(gossip)]
        servers.backends.alertmanager_url = servers.alertmanager_urls[0]
        wait_until(lambda: responds(f"{servers.victoria_url}/health"), timeout=30, what="VictoriaMetrics")
        (_, first), (_, second) = stack.expected.scrape_pools
        failing_rule = copy.deepcopy(stack.rule_groups)
        next(g for g in failing_rule if g["name"].endswith(".recording"))["rules"].append(FAILING_RULE)
        # Started together: each takes seconds to settle (target discovery, first evaluations).
        settled = {
            "healthy": servers.launch_prometheus("healthy"),
            "no-targets": servers.launch_prometheus("no-targets", pools={first: servers.target}),
            "target-down": servers.launch_prometheus("target-down", pools={first: servers.closed, second: servers.target}),
            "failing-rule": servers.launch_prometheus("failing-rule", rule_groups=failing_rule),
            "remote-write-failing": servers.launch_prometheus("remote-write-failing",
                                                              remote_write=f"http://{servers.closed}/api/v1/write"),
        }
        for name, condition in settled.items():
            wait_until(condition, timeout=60, interval=0.2, what=f"Prometheus {name} settled")
        query = urllib.parse.urlencode({"query": f'up{{cluster="{stack.expected.cluster}"}}'})
        wait_until(lambda: http_json(f"{servers.victoria_url}/prometheus/api/v1/query?{query}")["data"]["result"],
                   timeout=30, interval=0.2, what="samples searchable in the stand-in for Mimir")
        for url in servers.alertmanager_urls:
            wait_until(lambda: len(http_json(f"{url}/api/v2/status")["cluster"].get("peers") or []) == len(ALERTMANAGER_PODS),
                       timeout=30, interval=0.2, what=f"{url} clustered")
        yield servers
    finally:
        for process in reversed(servers.processes):
            process.stop(timeout=2)
        servers.backends.shutdown()
        capture.shutdown()


def run(servers: Servers, objects: Optional[dict[str, Any]] = None,
        forwards: Optional[dict[tuple[str, int], str]] = None) -> tuple[int, list[tuple[str, ...]]]:
    """`make verify` against the recorded cluster (changed as given) and the servers; (exit code, rows)."""
    cluster = FakeCluster(objects or json.loads(FIXTURE.read_text()), {**servers.forwards(), **(forwards or {})})
    code, output = verify(cluster, servers.stack.expected, synthetic_timeout=SYNTHETIC_TIMEOUT)
    assert cluster.open_forwards == 0, "a port-forward was left open"
    return code, rows_of(output)


def rows_of(output: str) -> list[tuple[str, ...]]:
    """The table's rows as (check, subject, status, detail), cut at the header's columns."""
    header, *lines, _summary = output.splitlines()
    starts = [header.index(column) for column in ("check", "subject", "status", "detail")]
    return [tuple(line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])) for line in lines]


def failures(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [row for row in rows if row[2] == "FAIL"]


# ------------------------------------------------------------------------------ healthy


@live
def test_a_healthy_stack_passes_every_check_and_pages_no_one(servers: Servers):
    expected = servers.stack.expected
    code, rows = run(servers)
    assert [row for row in rows if row[2] != "ok"] == []
    assert code == 0
    checks = {}
    for check, subject, _, _ in rows:
        checks.setdefault(check, []).append(subject)
    assert checks["helm release"] == [f"{namespace}/{name}" for namespace, name in expected.releases]
    assert checks["pods"] == list(expected.namespaces)
    assert checks["targets"] == [f"{p} {monitor}" for p in PROMETHEUS_PODS for monitor, _ in expected.scrape_pools]
    assert checks["rules"] == [f"{p} {group}" for p in PROMETHEUS_PODS for group, _ in expected.rule_groups]
    assert checks["remote write"] == [f"{p} long-term-store" for p in PROMETHEUS_PODS]
    assert checks["alertmanager peers"] == checks["alertmanager config"] == checks["synthetic alert"] == list(ALERTMANAGER_PODS)
    assert checks["dashboard"] == list(expected.dashboards) and checks["folder"] == list(expected.folders)
    assert checks["data source"] == list(expected.datasources)
    assert checks["logs"] == sorted(n["metadata"]["name"] for n in json.loads(FIXTURE.read_text())["nodes"])
    assert checks["long-term store"] == [f'up{{cluster="{expected.cluster}"}}']
    assert servers.backends.queries[-1] == 'sum by (namespace, pod) (count_over_time({namespace=~".+"}[10m]))'
    # The synthetic alert reached every Alertmanager, routed to no one, and is expired.
    labels, receiver = synthetic_labels(expected.alertmanager_config)
    assert receiver == "null" and labels == {"alertname": SYNTHETIC_ALERTNAME, "severity": "none"}
    for url in servers.alertmanager_urls:
        assert http_json(f"{url}/api/v2/alerts?active=true&filter=alertname%3D%22{SYNTHETIC_ALERTNAME}%22") == []
    # Past group_wait and group_interval: a notification sent by mistake would be here.
    route = expected.alertmanager_config["route"]
    time.sleep(sum(duration_ms(route[key]) for key in ("group_wait", "group_interval")) / 1000 + 1)
    assert servers.capture.posts == []


# ------------------------------------------------------------------------------ Kubernetes


@live
def test_a_release_stuck_mid_upgrade_or_after_an_interrupted_first_install(servers: Servers):
    """The state an interrupted `pulumi up` leaves: Helm refuses every later operation on the release."""
    objects = json.loads(FIXTURE.read_text())
    for record in objects["secrets"]:
        labels = record["metadata"].get("labels", {})
        if labels.get("name") == "kube-prometheus-stack" and labels["version"] == "2":
            objects["secrets"].append({**record, "metadata": {**record["metadata"], "name": f"{record['metadata']['name']}3",
                                       "labels": {**labels, "version": "3", "status": "pending-upgrade"}}})
        if labels.get("name") == "loki":
            labels.update(version="1", status="pending-install") if labels["version"] == "1" else labels.clear()
    code, rows = run(servers, objects)
    assert code == 1
    assert failures(rows) == [
        ("helm release", "monitoring/kube-prometheus-stack", "FAIL", "revision 3 pending-upgrade: `helm -n monitoring "
         "rollback kube-prometheus-stack 2` (its last deployed revision), then `pulumi up` (docs/operations/failed-release.md)"),
        ("helm release", "monitoring/loki", "FAIL", "revision 1 pending-install: `helm -n monitoring uninstall loki` "
         "(a first install that never completed holds no data), then `pulumi up` (docs/operations/failed-release.md)"),
    ]


@pytest.mark.parametrize("revisions, expected", [
    ({3: "deployed"}, ("ok", "revision 3 deployed")),
    ({1: "failed"}, ("FAIL", "revision 1 failed: `helm -n monitoring uninstall loki` (a first install that never completed "
                             "holds no data), then `pulumi up` (docs/operations/failed-release.md)")),
    ({4: "pending-rollback"}, ("FAIL", "revision 4 pending-rollback: `helm -n monitoring history loki`, roll back to the "
                                       "last deployed revision, then `pulumi up` (docs/operations/failed-release.md)")),
    ({2: "deployed", 3: "failed"}, ("FAIL", "revision 3 failed: `pulumi up` (docs/operations/failed-release.md)")),
])
def test_each_helm_state_gets_the_command_that_recovers_it(revisions, expected):
    assert release_state("monitoring", "loki", max(revisions), revisions) == expected


@live
def test_a_pod_not_ready(servers: Servers):
    objects = json.loads(FIXTURE.read_text())
    pod(objects, "loki-read-1")["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [loki]"}]
    code, rows = run(servers, objects)
    assert code == 1
    assert failures(rows) == [("pods", "monitoring/loki-read-1", "FAIL", "not ready (containers with unready status: [loki])")]


@live
def test_a_crash_looping_container(servers: Servers):
    objects = json.loads(FIXTURE.read_text())
    alloy = pod(objects, "alloy-m2vtp")
    alloy["status"]["containerStatuses"][0].update(restartCount=7, ready=False, state={"waiting": {"reason": "CrashLoopBackOff"}})
    alloy["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    # Another restarts again and again, running between two restarts.
    finished = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=3, seconds=10)
    loki = pod(objects, "loki-write-2")
    loki["status"]["containerStatuses"][0].update(restartCount=4, lastState={"terminated": {
        "exitCode": 1, "reason": "Error", "finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ")}})
    code, rows = run(servers, objects)
    assert code == 1
    assert failures(rows) == [
        ("pods", "monitoring/loki-write-2", "FAIL", "container loki restarting: 4 restarts, the last 3m ago"),
        ("pods", "monitoring-agents/alloy-m2vtp", "FAIL", "container alloy in CrashLoopBackOff (7 restarts)"),
    ]


@live
def test_a_volume_claim_pending(servers: Servers):
    objects = json.loads(FIXTURE.read_text())
    next(c for c in objects["persistentvolumeclaims"] if c["metadata"]["name"] == "data-loki-write-2")["status"] = {"phase": "Pending"}
    code, rows = run(servers, objects)
    assert code == 1
    assert failures(rows) == [("volumes", "monitoring/data-loki-write-2", "FAIL", "claim Pending, not Bound")]


# ------------------------------------------------------------------------------ Prometheus


def broken_prometheus(servers: Servers, name: str) -> dict[tuple[str, int], str]:
    """The second Prometheus replica's port-forward to the Prometheus `name`."""
    return {(PROMETHEUS_PODS[1], PROMETHEUS.upstream_port): servers.prometheus[name]}


@live
def test_a_service_without_targets(servers: Servers):
    _, (monitor, pool) = servers.stack.expected.scrape_pools
    code, rows = run(servers, forwards=broken_prometheus(servers, "no-targets"))
    assert code == 1
    assert failures(rows) == [("targets", f"{PROMETHEUS_PODS[1]} {monitor}", "FAIL", f"no targets in scrape pool {pool}")]


@live
def test_a_target_down(servers: Servers):
    (monitor, _), _ = servers.stack.expected.scrape_pools
    code, rows = run(servers, forwards=broken_prometheus(servers, "target-down"))
    assert code == 1
    closed = servers.closed
    assert failures(rows) == [("targets", f"{PROMETHEUS_PODS[1]} {monitor}", "FAIL",
                               f'1 of 1 down: {closed}: Get "http://{closed}/metrics": dial tcp {closed}: connect: connection refused')]


@live
def test_a_rule_group_with_a_failing_rule(servers: Servers):
    group = next(name for name, _ in servers.stack.expected.rule_groups if name.endswith(".recording"))
    code, rows = run(servers, forwards=broken_prometheus(servers, "failing-rule"))
    assert code == 1
    assert failures(rows) == [("rules", f"{PROMETHEUS_PODS[1]} {group}", "FAIL",
                               f"rule {FAILING_RULE['record']}: vector cannot contain metrics with the same labelset")]


@live
def test_remote_write_failing(servers: Servers):
    code, rows = run(servers, forwards=broken_prometheus(servers, "remote-write-failing"))
    assert code == 1
    assert failures(rows) == [("remote write", f"{PROMETHEUS_PODS[1]} long-term-store", "FAIL",
                               "nothing sent since Prometheus started")]


# ------------------------------------------------------------------------------ Alertmanager


@live
def test_an_alertmanager_peer_missing(servers: Servers):
    # The third replica alone, cut off from the other two.
    url = servers.start_alertmanager("lone-alertmanager", free_port())
    wait_until(lambda: responds(f"{url}/-/ready"), timeout=30, what="the lone Alertmanager")
    code, rows = run(servers, forwards={(ALERTMANAGER_PODS[2], ALERTMANAGER.upstream_port): url})
    assert code == 1
    assert failures(rows) == [("alertmanager peers", ALERTMANAGER_PODS[2], "FAIL", "1 of 3 peers")]


@live
def test_alertmanager_running_another_configuration(servers: Servers):
    original = servers.alertmanager_config.read_text()
    changed = yaml.safe_load(original)
    changed["route"]["repeat_interval"] = "11h"
    try:
        reload(servers, yaml.safe_dump(changed), "11h")
        code, rows = run(servers)
    finally:
        reload(servers, original, "12h")
    assert code == 1
    assert failures(rows) == [("alertmanager config", p, "FAIL",
                               "differs from the rendered configuration at route.repeat_interval: running '11h', rendered '12h'")
                              for p in ALERTMANAGER_PODS]


def reload(servers: Servers, config: str, repeat_interval: str) -> None:
    servers.alertmanager_config.write_text(config)
    for url in servers.alertmanager_urls:
        urllib.request.urlopen(urllib.request.Request(f"{url}/-/reload", method="POST"), timeout=10).close()
        wait_until(lambda: f"repeat_interval: {repeat_interval}" in http_json(f"{url}/api/v2/status")["config"]["original"],
                   timeout=10, what=f"{url} reloaded")


@live
def test_the_synthetic_alert_not_visible(servers: Servers):
    # A silence over the synthetic alert: posted, it never becomes active under its receiver.
    now = datetime.datetime.now(datetime.timezone.utc)
    silence = {"matchers": [{"name": "alertname", "value": SYNTHETIC_ALERTNAME, "isRegex": False, "isEqual": True}],
               "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(hours=1)).isoformat(),
               "createdBy": "test_verify", "comment": "hides the synthetic alert"}
    request = urllib.request.Request(f"{servers.alertmanager_urls[0]}/api/v2/silences", json.dumps(silence).encode(),
                                     {"Content-Type": "application/json"})
    silence_id = json.load(urllib.request.urlopen(request, timeout=10))["silenceID"]
    try:
        for url in servers.alertmanager_urls:  # gossiped to every peer
            wait_until(lambda: any(s["id"] == silence_id for s in http_json(f"{url}/api/v2/silences")), what="the silence")
        code, rows = run(servers)
    finally:
        for url in servers.alertmanager_urls[:1]:
            urllib.request.urlopen(urllib.request.Request(f"{url}/api/v2/silence/{silence_id}", method="DELETE"), timeout=10).close()
    assert code == 1
    assert failures(rows) == [("synthetic alert", p, "FAIL", f'{{alertname="{SYNTHETIC_ALERTNAME}", severity="none"}} '
                               f"not active under receiver null within {SYNTHETIC_TIMEOUT:g}s") for p in ALERTMANAGER_PODS]


# ------------------------------------------------------------------------------ Grafana, Loki, Mimir


@live
def test_a_dashboard_missing(servers: Servers):
    dashboards = servers.backends.grafana.dashboards
    missing = sorted(dashboards)[0]
    dashboards.discard(missing)
    try:
        code, rows = run(servers)
    finally:
        dashboards.add(missing)
    assert code == 1
    assert failures(rows) == [("dashboard", missing, "FAIL", "missing (HTTP 404)")]


@live
def test_a_folder_missing_or_granting_other_permissions(servers: Servers):
    grafana = servers.backends.grafana
    (missing, changed, *_) = sorted(grafana.folders)
    title, permissions = grafana.folders.pop(missing), dict(grafana.permissions)
    grafana.grant(changed, [{"role": "Viewer", "permission": 2}])
    try:
        code, rows = run(servers)
    finally:
        grafana.folders[missing] = title
        grafana.permissions.update(permissions)
    assert code == 1
    expected = ", ".join(servers.stack.expected.folder_permissions)
    assert expected == "Editor: Edit, Viewer: View"
    assert failures(rows) == [
        ("folder", title, "FAIL", "missing"),
        ("folder", grafana.folders[changed], "FAIL", f"grants Viewer: Edit, expected {expected}: run the folder Job again "
         "(docs/operations/grafana-admin.md)"),
    ]


@live
def test_a_data_source_unhealthy(servers: Servers):
    message = "Unable to connect with Loki. Please check the server logs for more details."
    servers.backends.health["loki"] = (400, {"status": "ERROR", "message": message})
    try:
        code, rows = run(servers)
    finally:
        del servers.backends.health["loki"]
    assert code == 1
    assert failures(rows) == [("data source", "loki", "FAIL", f"HTTP 400: {message}")]


@live
def test_no_logs_from_a_node(servers: Servers):
    objects = json.loads(FIXTURE.read_text())
    node = objects["nodes"][2]["metadata"]["name"]
    silent = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in objects["pods"] if p["spec"]["nodeName"] == node}
    logged = set(servers.backends.logged_pods)
    servers.backends.logged_pods -= silent
    try:
        code, rows = run(servers, objects)
    finally:
        servers.backends.logged_pods = logged
    assert code == 1
    assert failures(rows) == [("logs", node, "FAIL", f"no log lines in the last 10m from its {len(silent)} pods")]


@live
def test_no_recent_samples_in_the_long_term_store(servers: Servers):
    code, rows = run(servers, forwards={(MIMIR_GATEWAY_POD, GATEWAY_PORT): servers.backends.url})
    assert code == 1
    assert failures(rows) == [("long-term store", f'up{{cluster="{servers.stack.expected.cluster}"}}', "FAIL",
                               "no sample in the last 5m (the query's lookback)")]


# A kubectl answering `get --raw` from recorded answers and port-forwarding by naming the local port
# of the loopback server; it logs each call (its arguments and process id).
FAKE_KUBECTL = """#!{python}
import json, os, signal, sys
directory = {directory!r}
args = sys.argv[1:]
with open(os.path.join(directory, "calls.jsonl"), "a") as log:
    log.write(json.dumps({{"args": args, "pid": os.getpid()}}) + "\\n")
command = args[2:] if args[:1] == ["--context"] else args
if command[:2] == ["get", "--raw"]:
    answers = json.load(open(os.path.join(directory, "answers.json")))
    if command[2] not in answers:
        sys.exit("Error from server (NotFound): " + command[2])
    print(json.dumps(answers[command[2]]))
elif "port-forward" in command:
    pod, port = command[-2].removeprefix("pod/"), command[-1].removeprefix(":")
    local = json.load(open(os.path.join(directory, "forwards.json")))[pod + ":" + port]
    print(f"Forwarding from 127.0.0.1:{{local}} -> {{port}}", flush=True)
    signal.pause()
else:
    sys.exit("unexpected: " + " ".join(args))
"""


class RecordingCluster(FakeCluster):
    """The fake cluster, keeping every Kubernetes API answer it gave by path."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.answers: dict[str, Any] = {}

    def get_json(self, api_path: str) -> Any:
        self.answers[api_path] = super().get_json(api_path)
        return self.answers[api_path]


@live
def test_the_cluster_is_reached_through_kubectl_with_the_stack_context(servers: Servers, tmp_path, monkeypatch):
    recording = RecordingCluster(json.loads(FIXTURE.read_text()), servers.forwards())
    assert verify(recording, servers.stack.expected, synthetic_timeout=SYNTHETIC_TIMEOUT)[0] == 0
    (tmp_path / "answers.json").write_text(json.dumps(recording.answers))
    (tmp_path / "forwards.json").write_text(json.dumps({f"{pod}:{port}": urllib.parse.urlsplit(url).port
                                                        for (pod, port), url in servers.forwards().items()}))
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable, directory=str(tmp_path)))
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    code, output = verify(Kubectl("webhook-prod"), servers.stack.expected, synthetic_timeout=SYNTHETIC_TIMEOUT)
    assert [row for row in rows_of(output) if row[2] != "ok"] == []
    assert code == 0
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert all(call["args"][:2] == ["--context", "webhook-prod"] for call in calls)
    forwarded = [call for call in calls if "port-forward" in call["args"]]
    assert sorted(call["args"][-2] for call in forwarded) == sorted(
        f"pod/{pod}" for pod in (*PROMETHEUS_PODS, *ALERTMANAGER_PODS, GRAFANA_POD, LOKI_GATEWAY_POD, MIMIR_GATEWAY_POD))
    for call in forwarded:  # every port-forward closed
        with pytest.raises(ProcessLookupError):
            os.kill(call["pid"], 0)


# ------------------------------------------------------------------------------ offline


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_the_synthetic_alert_routes_to_a_receiver_without_integrations(stack_name: str):
    expected = Expected.from_rendered(rendered_stack(stack_name), stack_settings(stack_name))
    labels, receiver = synthetic_labels(expected.alertmanager_config)
    # Not Watchdog's route, though dev sends Watchdog nowhere too (no heartbeat URL).
    assert labels == {"alertname": SYNTHETIC_ALERTNAME, "severity": "none"}
    assert receiver == "null"
    assert next(r for r in expected.alertmanager_config["receivers"] if r["name"] == receiver) == {"name": "null"}


def test_no_synthetic_alert_is_sent_where_every_route_reaches_an_integration():
    config = copy.deepcopy(Expected.from_rendered(rendered_stack(STACK), stack_settings(STACK)).alertmanager_config)
    # Everything copied to Slack first: no label set reaches only receivers without integrations.
    config["route"]["routes"].insert(0, {"receiver": "slack", "matchers": ['alertname=~".+"'], "continue": True})
    assert synthetic_labels(config) is None


@pytest.mark.parametrize("running, difference", [
    ({}, None),
    ({"route": {"repeat_interval": "1d"}}, None),  # 24h, as Alertmanager writes it back
    ({"route": {"continue": False}, "global": {"smtp_hello": "localhost"}}, None),  # defaults it fills in
    ({"receivers": [{"name": "slack", "slack_configs": [{"api_url": "<secret>"}]}]}, None),
    ({"inhibit_rules": [{"target_matchers": ['team="t"', 'severity="warning"']}]}, None),  # sorted
    ({"route": {"repeat_interval": "12h"}}, "route.repeat_interval: running '12h', rendered '24h'"),
    ({"receivers": [{"name": "slack", "slack_configs": [{"api_url": "<secret>"}]}, {"name": "null"}]},
     "receivers: running [{'name': 'slack', 'slack_configs': [{'api_url': '<secret>'}]}, {'name': 'null'}], "
     "rendered [{'name': 'slack', 'slack_configs': [{'api_url': 'https://hooks.example.com/x'}]}]"),
])
def test_the_running_configuration_is_compared_with_the_rendered_one(running: dict[str, Any], difference: Optional[str]):
    rendered = {"route": {"repeat_interval": "24h"},
                "receivers": [{"name": "slack", "slack_configs": [{"api_url": "https://hooks.example.com/x"}]}],
                "inhibit_rules": [{"target_matchers": ['severity="warning"', 'team="t"']}]}
    base = {"route": {"repeat_interval": "24h", "continue": False},
            "receivers": [{"name": "slack", "slack_configs": [{"api_url": "<secret>", "send_resolved": False}]}],
            "inhibit_rules": [{"target_matchers": ['severity="warning"', 'team="t"']}], "global": {}}
    assert config_difference(rendered, merged(base, running)) == difference


def test_an_unknown_stack_is_one_line(tmp_path, monkeypatch, capsys):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\nexit 1\n")
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert main(["staging"]) == 2
    assert capsys.readouterr().err == "no stack file Pulumi.staging.yaml: stacks are dev, prod\n"


def test_missing_kubectl_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["dev"]) == 2
    assert capsys.readouterr().err == ("kubectl: not found on PATH; install it (https://kubernetes.io/docs/tasks/tools/) "
                                       "to verify a stack\n")
