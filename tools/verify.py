"""`make verify STACK=<name>`: check a deployed stack end to end, read-only, and print a table.

    python -m tools.verify <stack> [--context <kubeconfig context>]

What is expected (namespaces, scrape pools, rule groups, the Alertmanager configuration and its
replicas, dashboards, folders, data sources, the cluster label) comes from rendering the stack
with the program itself, as `make render` does; what is found comes from the cluster, through the
Kubernetes API (`kubectl get --raw`) and port-forwards this command opens and closes itself.
Prometheus and Alertmanager listen on localhost inside their pods, behind the authenticating
proxy (monitoring/web_auth.py): a port-forward to the pod's upstream port reaches them directly,
so no client credentials are needed. Grafana's admin credentials are read from its Secret and
never printed.

The one thing sent is a synthetic alert whose labels the rendered routing sends to a receiver
without integrations (asserted before it is sent): it pages no one, and is expired at once.

Every row is `check  subject  ok|FAIL|skipped  detail`; the exit code is 1 when a row failed,
2 when the command could not start (unknown stack, configuration error, no kubectl, the cluster
out of reach).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Protocol

import yaml
from prometheus_client.parser import text_string_to_metric_families

from config import Duration, Settings
from monitoring.dashboards.datasources import ALERTMANAGER_UID, LOKI_UID, MIMIR_UID, PROMETHEUS_UID
from monitoring.logging.pipeline import log_pipeline
from monitoring.web_auth import ALERTMANAGER, PROMETHEUS
from tools.program import RenderError, render_stack
from tools.routing import parse_matcher, receivers_for, silent_receivers
from tools.rendered import NAMESPACE, RenderedStack

OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"


# A container restarted this often, the last time this recently, is restarting in a loop even
# between two CrashLoopBackOff waits.
RESTART_LOOP_COUNT = 3
RESTART_LOOP_WINDOW = datetime.timedelta(minutes=15)
# A healthy queue sends each sample within its batch deadline (5 s by default); a minute behind
# means the long-term store is not taking them.
REMOTE_WRITE_MAX_LAG_SECONDS = 60
# A rule group whose last evaluation is older than this many intervals has stopped evaluating.
STALLED_EVALUATIONS = 3
# A node with a working log agent has sent something in this long: its own pods log at start and
# the agents themselves log as they tail.
LOG_WINDOW = "10m"
# Alertmanager shows every secret field of its running configuration as this.
SECRET_MASK = "<secret>"
MATCHER_LISTS = ("matchers", "source_matchers", "target_matchers")
SYNTHETIC_ALERTNAME = "WebhookMonitoringVerify"
# If this command dies before expiring it, the synthetic alert resolves itself after this long.
SYNTHETIC_LIFETIME = datetime.timedelta(minutes=5)


class VerifyError(Exception):
    """Something this command cannot do: one line for the user."""


@dataclass(frozen=True)
class Row:
    check: str
    subject: str
    status: str
    detail: str


# ------------------------------------------------------------------------------ what is expected


@dataclass(frozen=True)
class ServiceAddress:
    """A Kubernetes Service as an in-cluster URL names it (`http://<name>.<namespace>.svc...:<port>/<path>`)."""

    namespace: str
    name: str
    port: Optional[int]
    """The Service's port; None: its first one."""
    path: str = ""

    @classmethod
    def from_url(cls, url: str) -> "ServiceAddress":
        parsed = urllib.parse.urlsplit(url)
        name, namespace, *_ = parsed.hostname.split(".")
        return cls(namespace, name, parsed.port, parsed.path.rstrip("/"))


@dataclass(frozen=True)
class Expected:
    """What the rendered stack says must be running."""

    cluster: str
    """The `cluster` external label of every series."""
    kube_context: Optional[str]
    namespaces: tuple[str, ...]
    releases: tuple[tuple[str, str], ...]
    """(namespace, name) of every Helm release, in install order."""
    scrape_pools: tuple[tuple[str, str], ...]
    """(ServiceMonitor name, scrape pool) of every configured webhook service's endpoints."""
    rule_groups: tuple[tuple[str, tuple[str, ...]], ...]
    """(group name, its rules' names) of every rendered rule group."""
    remote_write_queues: tuple[str, ...]
    alertmanager_config: dict[str, Any]
    alertmanager_replicas: int
    prometheus: ServiceAddress
    alertmanager: ServiceAddress
    loki: ServiceAddress
    mimir: ServiceAddress
    grafana: ServiceAddress
    grafana_admin_secret: str
    grafana_admin_keys: tuple[str, str]
    """Keys of the admin user and password in `grafana_admin_secret`."""
    dashboards: tuple[str, ...]
    folders: tuple[str, ...]
    """Folder titles (the dashboard sidecar makes folders by title)."""
    folder_permissions: tuple[str, ...]
    """What every folder grants, as `grantee: level` (`Viewer: View`, `team sre: Edit`), sorted."""
    datasources: tuple[str, ...]
    log_labels: tuple[str, str]
    """The stream labels the log pipeline gives every line's namespace and pod."""

    @classmethod
    def from_rendered(cls, rendered: RenderedStack, settings: Settings) -> "Expected":
        release = rendered.kube_prometheus_stack
        prometheus_spec, grafana = rendered.prometheus_spec, release.values["grafana"]
        datasource_urls = {d["uid"]: d["url"] for d in grafana["additionalDataSources"]}
        relabels = {r.source_labels: r.target_label for r in log_pipeline(settings).relabels}
        return cls(
            cluster=prometheus_spec["externalLabels"]["cluster"],
            kube_context=settings.cluster.kube_context,
            namespaces=tuple(sorted(n["metadata"]["name"] for n in rendered.inputs(NAMESPACE))),
            releases=tuple((r.namespace, r.name) for r in rendered.releases.values()),
            # The configured services' monitors, each endpoint a scrape pool as the Operator names it.
            scrape_pools=tuple((name, f"serviceMonitor/{m['metadata']['namespace']}/{name}/{i}")
                               for name, m in rendered.service_monitors.items() for i in range(len(m["spec"]["endpoints"]))),
            rule_groups=tuple((g["name"], tuple(r.get("record") or r["alert"] for r in g["rules"])) for g in rendered.rule_groups),
            remote_write_queues=tuple(queue["name"] for queue in prometheus_spec.get("remoteWrite", [])),
            alertmanager_config=rendered.alertmanager,
            alertmanager_replicas=rendered.alertmanager_spec["replicas"],
            prometheus=ServiceAddress.from_url(datasource_urls[PROMETHEUS_UID]),
            alertmanager=ServiceAddress.from_url(datasource_urls[ALERTMANAGER_UID]),
            loki=ServiceAddress.from_url(datasource_urls[LOKI_UID]),
            mimir=ServiceAddress.from_url(datasource_urls[MIMIR_UID]),
            # The chart's Grafana subchart is named after the release.
            grafana=ServiceAddress(release.namespace, f"{release.name}-grafana", None),
            grafana_admin_secret=grafana["admin"]["existingSecret"],
            grafana_admin_keys=(grafana["admin"]["userKey"], grafana["admin"]["passwordKey"]),
            dashboards=tuple(rendered.dashboards),
            folders=tuple(sorted(set(rendered.dashboard_folders.values()))),
            folder_permissions=tuple(sorted(grant_text(p.get("role") or "", p.get("team") or "", p["permission"])
                                            for p in rendered.folder_permissions)),
            datasources=tuple(sorted(datasource_urls)),
            log_labels=(relabels[("__meta_kubernetes_namespace",)], relabels[("__meta_kubernetes_pod_name",)]),
        )


def render_expected(stack: str) -> Expected:
    """Render Pulumi.<stack>.yaml offline (secrets as placeholders) into what must be running."""
    try:
        settings, rendered = render_stack(stack)
    except RenderError as err:
        raise VerifyError("; ".join(err.lines)) from None
    return Expected.from_rendered(rendered, settings)


# ------------------------------------------------------------------------------ the cluster


class Cluster(Protocol):
    """What the checks need of a cluster; `Kubectl` is the real one."""

    def get_json(self, api_path: str) -> Any:
        """A Kubernetes API GET, e.g. `/api/v1/namespaces/monitoring/pods?labelSelector=a%3Db`."""

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, decoded."""

    def forward(self, namespace: str, pod: str, port: int) -> contextlib.AbstractContextManager[str]:
        """A port-forward to `port` of the pod, open while the context lasts; yields its base URL."""


@dataclass(frozen=True)
class Kubectl:
    """The cluster of a kubeconfig context (None: the current one), through kubectl."""

    context: Optional[str]

    @property
    def command(self) -> list[str]:
        return ["kubectl", *(["--context", self.context] if self.context else [])]

    def get_json(self, api_path: str) -> Any:
        result = subprocess.run([*self.command, "get", "--raw", api_path], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise VerifyError(f"kubectl get --raw {api_path}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        data = self.get_json(f"/api/v1/namespaces/{namespace}/secrets/{name}").get("data") or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    @contextlib.contextmanager
    def forward(self, namespace: str, pod: str, port: int) -> Iterator[str]:
        process = subprocess.Popen(
            [*self.command, "-n", namespace, "port-forward", "--address", "127.0.0.1", f"pod/{pod}", f":{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # kubectl's first line names the local port it chose: "Forwarding from 127.0.0.1:41235 -> 9090".
            found = re.search(r"127\.0\.0\.1:(\d+)", process.stdout.readline())
            if found is None:
                process.kill()
                raise VerifyError(f"port-forward to {namespace}/{pod}:{port}: {process.communicate()[1].strip()}")
            # Drained, so that a pipe kubectl fills ("Handling connection for ...") never blocks it.
            for stream in (process.stdout, process.stderr):
                threading.Thread(target=stream.read, daemon=True).start()
            yield f"http://127.0.0.1:{found[1]}"
        finally:
            process.terminate()
            process.wait(timeout=10)


# ------------------------------------------------------------------------------ HTTP


def http(url: str, *, body: Any = None, headers: Optional[dict[str, str]] = None, timeout: float = 10.0) -> tuple[int, Any]:
    """(status, parsed JSON or text) of a GET, or a POST of `body` as JSON; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def get_ok(url: str, **options: Any) -> Any:
    status, data = http(url, **options)
    if status != 200:
        raise VerifyError(f"GET {urllib.parse.urlsplit(url).path}: HTTP {status}")
    return data


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of `name` in a Prometheus text exposition."""
    return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name]


# ------------------------------------------------------------------------------ Kubernetes objects


def items(cluster: Cluster, api_path: str) -> list[dict[str, Any]]:
    return cluster.get_json(api_path).get("items", [])


def service_pods(cluster: Cluster, address: ServiceAddress) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Service and the pods its selector selects, by name."""
    service = cluster.get_json(f"/api/v1/namespaces/{address.namespace}/services/{address.name}")
    selector = ",".join(f"{k}={v}" for k, v in sorted(service["spec"].get("selector", {}).items()))
    pods = items(cluster, f"/api/v1/namespaces/{address.namespace}/pods?" + urllib.parse.urlencode({"labelSelector": selector}))
    return service, sorted(pods, key=lambda p: p["metadata"]["name"])


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def target_port(service: dict[str, Any], pod: dict[str, Any], port: Optional[int]) -> int:
    """The pod's port behind the Service's `port` (its first port when None)."""
    ports = service["spec"]["ports"]
    chosen = next((p for p in ports if port is None or p["port"] == port), None)
    if chosen is None:
        raise VerifyError(f"service {service['metadata']['name']} has no port {port}")
    target = chosen.get("targetPort", chosen["port"])
    if isinstance(target, int):
        return target
    for container in pod["spec"]["containers"]:
        for container_port in container.get("ports", []):
            if container_port.get("name") == target:
                return container_port["containerPort"]
    raise VerifyError(f"pod {pod['metadata']['name']} has no port named {target}")


@contextlib.contextmanager
def forward_service(cluster: Cluster, address: ServiceAddress) -> Iterator[str]:
    """A port-forward to a ready pod of the Service; yields its base URL with the address's path."""
    service, pods = service_pods(cluster, address)
    ready = [p for p in pods if is_ready(p)]
    if not ready:
        raise VerifyError(f"no ready pod behind service {address.namespace}/{address.name}")
    pod = ready[0]
    with cluster.forward(address.namespace, pod["metadata"]["name"], target_port(service, pod, address.port)) as url:
        yield url + address.path


# ------------------------------------------------------------------------------ Alertmanager routing


def synthetic_labels(config: dict[str, Any]) -> Optional[tuple[dict[str, str], str]]:
    """Labels of an alert that the rendered routing sends only to a receiver without integrations,
    and that receiver; None when no route makes one. Built from the equality matchers on the way to
    such a route, then checked by walking the whole tree as Alertmanager does."""
    silent = silent_receivers(config)

    def candidates(route: dict[str, Any], path: list[str]) -> Iterator[dict[str, str]]:
        for child in route.get("routes", []):
            matchers = path + child.get("matchers", [])
            equal = {n: v for n, op, v in map(parse_matcher, matchers) if op == "="}
            # A route for one alert by name (Watchdog's, in a stack without a heartbeat) is that
            # alert's: the synthetic one keeps a name of its own.
            if child.get("receiver") in silent and "alertname" not in equal:
                yield {"alertname": SYNTHETIC_ALERTNAME, **equal}
            yield from candidates(child, matchers)

    for labels in candidates(config["route"], []):
        receivers = set(receivers_for(config["route"], labels))
        if receivers <= silent:
            return labels, min(receivers)
    return None


# ------------------------------------------------------------------------------ configuration diff


def _same_value(rendered: Any, running: Any) -> bool:
    """Equal, durations by length (Alertmanager writes 24h back as 1d)."""
    try:
        return Duration.parse(rendered).seconds == Duration.parse(running).seconds
    except ValueError:
        return rendered == running


def config_difference(rendered: Any, running: Any, path: str = "") -> Optional[str]:
    """Where the running configuration differs from the rendered one, or None.

    Alertmanager shows its configuration with every default filled in and every secret as
    `<secret>`: a key the rendered configuration does not set is not compared, and a secret is
    compared by being set. Alertmanager sorts matchers; so are both sides here.
    """
    if running == SECRET_MASK and isinstance(rendered, str):
        return None
    if isinstance(rendered, dict):
        if not isinstance(running, dict):
            return f"{path}: running {running!r}, rendered a mapping"
        for key in sorted(rendered):
            where = f"{path}.{key}" if path else key
            if key not in running:
                return f"{where}: missing"
            found = config_difference(rendered[key], running[key], where)
            if found:
                return found
        return None
    if isinstance(rendered, list):
        if not isinstance(running, list) or len(running) != len(rendered):
            return f"{path}: running {running!r}, rendered {rendered!r}"
        if path.rsplit(".", 1)[-1] in MATCHER_LISTS:
            rendered, running = sorted(rendered), sorted(running)
        for i, (mine, theirs) in enumerate(zip(rendered, running)):
            found = config_difference(mine, theirs, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if _same_value(rendered, running) else f"{path}: running {running!r}, rendered {rendered!r}"


# ------------------------------------------------------------------------------ the checks


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 time as Kubernetes and Prometheus write it (Prometheus with nanoseconds, more
    digits than Python reads)."""
    return datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00"))


def _age(timestamp: str, now: datetime.datetime) -> datetime.timedelta:
    return now - parse_time(timestamp)


def _minutes(delta: datetime.timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)}m"


@dataclass
class Verifier:
    """Runs every check against `cluster` for `expected`; `run()` returns the rows in order."""

    cluster: Cluster
    expected: Expected
    synthetic_timeout: float = 10.0
    """Seconds the synthetic alert may take to show in Alertmanager's groups."""
    rows: list[Row] = field(default_factory=list)

    def add(self, check: str, subject: str, status: str, detail: str) -> None:
        self.rows.append(Row(check, subject, status, detail))

    def run(self) -> list[Row]:
        for section, check in ((self.releases, "helm release"), (self.pods, "pods"), (self.volumes, "volumes"),
                               (self.prometheus, "prometheus"),
                               (self.alertmanager, "alertmanager"), (self.grafana, "grafana"), (self.logs, "logs"),
                               (self.long_term_store, "long-term store")):
            with self.guard(check, "-"):
                section()
        return self.rows

    @contextlib.contextmanager
    def guard(self, check: str, subject: str) -> Iterator[None]:
        """A part that cannot go on says why in a FAIL row, and the rest still runs."""
        try:
            yield
        except VerifyError as error:
            self.add(check, subject, FAIL, str(error))
        except (OSError, ValueError, KeyError, subprocess.SubprocessError) as error:
            self.add(check, subject, FAIL, f"{type(error).__name__}: {error}")

    # -------------------------------------------------------------------------- Kubernetes

    def releases(self) -> None:
        """Each Helm release's current revision is deployed; one that is not says how to recover it."""
        for namespace, name in self.expected.releases:
            selector = urllib.parse.quote(f"owner=helm,name={name},status!=superseded")
            records = items(self.cluster, f"/api/v1/namespaces/{namespace}/secrets?labelSelector={selector}")
            revisions = {int(r["metadata"]["labels"]["version"]): r["metadata"]["labels"]["status"] for r in records}
            if not revisions:
                self.add("helm release", f"{namespace}/{name}", FAIL, "not installed: `pulumi up` installs it")
                continue
            current = max(revisions)
            status, detail = release_state(namespace, name, current, revisions)
            self.add("helm release", f"{namespace}/{name}", status, detail)

    def pods(self) -> None:
        now = utc_now()
        for namespace in self.expected.namespaces:
            pods = sorted(items(self.cluster, f"/api/v1/namespaces/{namespace}/pods"), key=lambda p: p["metadata"]["name"])
            # A finished Job's pod is done, not unready.
            running = [p for p in pods if p.get("status", {}).get("phase") != "Succeeded"]
            problems = [(p["metadata"]["name"], problem) for p in running if (problem := self._pod_problem(p, now))]
            for name, problem in problems:
                self.add("pods", f"{namespace}/{name}", FAIL, problem)
            if not problems:
                self.add("pods", namespace, OK, f"{count(len(running), 'pod')} ready")

    @staticmethod
    def _pod_problem(pod: dict[str, Any], now: datetime.datetime) -> Optional[str]:
        status = pod.get("status", {})
        for container in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
            waiting = container.get("state", {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                return f"container {container['name']} in CrashLoopBackOff ({container['restartCount']} restarts)"
            finished = (container.get("lastState", {}).get("terminated") or {}).get("finishedAt")
            if container.get("restartCount", 0) >= RESTART_LOOP_COUNT and finished and _age(finished, now) < RESTART_LOOP_WINDOW:
                return (f"container {container['name']} restarting: {container['restartCount']} restarts, "
                        f"the last {_minutes(_age(finished, now))} ago")
        if not is_ready(pod):
            ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
            return f"not ready ({ready.get('message') or status.get('phase', 'no status')})"
        return None

    def volumes(self) -> None:
        for namespace in self.expected.namespaces:
            claims = sorted(items(self.cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"),
                            key=lambda c: c["metadata"]["name"])
            unbound = [c for c in claims if c.get("status", {}).get("phase") != "Bound"]
            for claim in unbound:
                self.add("volumes", f"{namespace}/{claim['metadata']['name']}", FAIL,
                         f"claim {claim.get('status', {}).get('phase', 'without status')}, not Bound")
            if not unbound:
                self.add("volumes", namespace, OK, f"{count(len(claims), 'claim')} bound" if claims else "no volume claims")

    # -------------------------------------------------------------------------- Prometheus

    def prometheus(self) -> None:
        address = self.expected.prometheus
        _, pods = service_pods(self.cluster, address)
        if not pods:
            raise VerifyError(f"no pod behind service {address.namespace}/{address.name}")
        for pod in pods:
            name = pod["metadata"]["name"]
            # The upstream port, on the pod's localhost: past the authenticating proxy.
            with self.guard("prometheus", name), self.cluster.forward(address.namespace, name, PROMETHEUS.upstream_port) as url:
                self._targets(name, url)
                metrics = get_ok(f"{url}/metrics")
                self._rules(name, url, metrics)
                self._remote_write(name, metrics)

    def _targets(self, pod: str, url: str) -> None:
        targets = get_ok(f"{url}/api/v1/targets?state=active")["data"]["activeTargets"]
        for monitor, pool in self.expected.scrape_pools:
            found = [t for t in targets if t["scrapePool"] == pool]
            down = [t for t in found if t["health"] == "down"]
            subject = f"{pod} {monitor}"
            if not found:
                self.add("targets", subject, FAIL, f"no targets in scrape pool {pool}")
            elif down:
                self.add("targets", subject, FAIL, f"{len(down)} of {len(found)} down: " + "; ".join(
                    f"{t['labels'].get('instance', t['scrapeUrl'])}: {t['lastError']}" for t in down))
            else:
                self.add("targets", subject, OK, f"{count(len(found), 'target')} up")

    def _rules(self, pod: str, url: str, metrics: str) -> None:
        loaded = {g["name"]: g for g in get_ok(f"{url}/api/v1/rules")["data"]["groups"]}
        missed = {labels["rule_group"].rsplit(";", 1)[-1]: value
                  for labels, value in metric_samples(metrics, "prometheus_rule_group_iterations_missed_total")}
        now = utc_now()
        for name, rules in self.expected.rule_groups:
            subject = f"{pod} {name}"
            group = loaded.get(name)
            if group is None:
                self.add("rules", subject, FAIL, "group not loaded")
                continue
            present = {r["name"] for r in group["rules"]}
            problems = []
            if absent := [r for r in rules if r not in present]:
                problems.append(f"rules not loaded: {', '.join(absent)}")
            problems += [f"rule {r['name']}: {r.get('lastError') or r['health']}" for r in group["rules"] if r["health"] == "err"]
            if group["lastEvaluation"].startswith("0001-"):
                problems.append("not evaluated yet")
            elif _age(group["lastEvaluation"], now).total_seconds() > STALLED_EVALUATIONS * group["interval"]:
                problems.append(f"last evaluated {int(_age(group['lastEvaluation'], now).total_seconds())}s ago, "
                                f"every {group['interval']:g}s")
            if missed.get(name, 0) > 0:
                problems.append(f"{missed[name]:g} iterations missed (evaluation slower than its interval)")
            self.add("rules", subject, FAIL if problems else OK,
                     "; ".join(problems) or f"{count(len(group['rules']), 'rule')} evaluated without errors")

    def _remote_write(self, pod: str, metrics: str) -> None:
        def by_queue(name: str) -> dict[str, float]:
            return {labels["remote_name"]: value for labels, value in metric_samples(metrics, name)}

        enqueued = by_queue("prometheus_remote_storage_queue_highest_timestamp_seconds")
        sent = by_queue("prometheus_remote_storage_queue_highest_sent_timestamp_seconds")
        samples = by_queue("prometheus_remote_storage_samples_total")
        failed = by_queue("prometheus_remote_storage_samples_failed_total")
        retried = by_queue("prometheus_remote_storage_samples_retried_total")
        for queue in self.expected.remote_write_queues:
            subject = f"{pod} {queue}"
            if queue not in enqueued:
                self.add("remote write", subject, FAIL, "no such queue")
            elif enqueued[queue] > 0 and sent.get(queue, 0) == 0:
                self.add("remote write", subject, FAIL, "nothing sent since Prometheus started")
            elif (lag := enqueued[queue] - sent.get(queue, 0)) > REMOTE_WRITE_MAX_LAG_SECONDS:
                self.add("remote write", subject, FAIL, f"{lag:.0f}s behind "
                         f"({failed.get(queue, 0):g} samples failed, {retried.get(queue, 0):g} retried since start)")
            else:
                self.add("remote write", subject, OK, f"{lag:.0f}s behind; since start {samples.get(queue, 0):g} samples "
                         f"sent, {failed.get(queue, 0):g} failed")

    # -------------------------------------------------------------------------- Alertmanager

    def alertmanager(self) -> None:
        address = self.expected.alertmanager
        _, pods = service_pods(self.cluster, address)
        if not pods:
            raise VerifyError(f"no pod behind service {address.namespace}/{address.name}")
        synthetic = synthetic_labels(self.expected.alertmanager_config)
        for pod in pods:
            name = pod["metadata"]["name"]
            with self.guard("alertmanager", name), self.cluster.forward(address.namespace, name, ALERTMANAGER.upstream_port) as url:
                status = get_ok(f"{url}/api/v2/status")
                self._peers(name, status["cluster"])
                difference = config_difference(self.expected.alertmanager_config, yaml.safe_load(status["config"]["original"]))
                self.add("alertmanager config", name, FAIL if difference else OK,
                         f"differs from the rendered configuration at {difference}" if difference
                         else "the rendered configuration")
                if synthetic is None:
                    self.add("synthetic alert", name, SKIPPED, "no route of the rendered configuration reaches "
                             "only receivers without integrations")
                else:
                    self._synthetic(name, url, *synthetic)

    def _peers(self, pod: str, cluster: dict[str, Any]) -> None:
        replicas = self.expected.alertmanager_replicas
        if cluster["status"] == "disabled":
            # The Operator starts a single replica without clustering.
            self.add("alertmanager peers", pod, OK if replicas == 1 else FAIL,
                     "clustering off, 1 replica" if replicas == 1 else f"clustering off, rendered {replicas} replicas")
            return
        peers = len(cluster.get("peers") or [])
        self.add("alertmanager peers", pod, OK if peers == replicas else FAIL,
                 f"{peers} of {replicas} peers")

    def _synthetic(self, pod: str, url: str, labels: dict[str, str], receiver: str) -> None:
        started = utc_now()
        alert = {"labels": labels,
                 "annotations": {"summary": "Posted by `make verify` to check the alert path; routed to no one."},
                 "startsAt": started.isoformat(), "endsAt": (started + SYNTHETIC_LIFETIME).isoformat()}
        status, answer = http(f"{url}/api/v2/alerts", body=[alert])
        if status != 200:
            self.add("synthetic alert", pod, FAIL, f"POST /api/v2/alerts: HTTP {status} {answer}")
            return
        query = "/api/v2/alerts/groups?" + urllib.parse.urlencode(
            {"filter": [f'{k}="{v}"' for k, v in sorted(labels.items())]}, doseq=True)
        try:
            deadline = time.monotonic() + self.synthetic_timeout
            while True:
                receivers = {g["receiver"]["name"] for g in get_ok(url + query)
                             if any(a["labels"] == labels and a["status"]["state"] == "active" for a in g["alerts"])}
                if receivers or time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        finally:
            # Expired at once: ended now.
            http(f"{url}/api/v2/alerts", body=[{**alert, "endsAt": utc_now().isoformat()}])
        if receivers == {receiver}:
            self.add("synthetic alert", pod, OK, f"{labels_text(labels)} reached receiver {receiver} (no integrations), expired")
        elif receivers:
            self.add("synthetic alert", pod, FAIL, f"{labels_text(labels)} reached {', '.join(sorted(receivers))}, "
                     f"not only {receiver}")
        else:
            self.add("synthetic alert", pod, FAIL, f"{labels_text(labels)} not active under receiver {receiver} "
                     f"within {self.synthetic_timeout:g}s")

    # -------------------------------------------------------------------------- Grafana

    def grafana(self) -> None:
        address = self.expected.grafana
        user_key, password_key = self.expected.grafana_admin_keys
        credentials = self.cluster.secret(address.namespace, self.expected.grafana_admin_secret)
        token = base64.b64encode(f"{credentials[user_key]}:{credentials[password_key]}".encode()).decode()
        auth = {"Authorization": f"Basic {token}"}
        with forward_service(self.cluster, address) as url:
            status, health = http(f"{url}/api/health")
            healthy = status == 200 and isinstance(health, dict) and health.get("database") == "ok"
            self.add("grafana", f"{address.namespace}/{address.name}", OK if healthy else FAIL,
                     f"database ok, version {health.get('version', '?')}" if healthy else f"/api/health: HTTP {status} {health}")
            for uid in self.expected.dashboards:
                status, found = http(f"{url}/api/dashboards/uid/{uid}", headers=auth)
                self.add("dashboard", uid, OK if status == 200 else FAIL,
                         f"\"{found['dashboard']['title']}\"" if status == 200 else _grafana_missing(status, "dashboard"))
            self._folders(url, auth)
            _, settings = http(f"{url}/api/frontend/settings", headers=auth)
            backend = {d["uid"]: d.get("meta", {}).get("backend", False)
                       for d in (settings.get("datasources", {}) if isinstance(settings, dict) else {}).values()}
            for uid in self.expected.datasources:
                self._datasource(url, auth, uid, backend.get(uid, False))

    def _folders(self, url: str, auth: dict[str, str]) -> None:
        """Each folder, found by title, grants exactly what the folder Job gives it."""
        status, listed = http(f"{url}/api/folders?limit=1000", headers=auth)
        uids = {f["title"]: f["uid"] for f in listed} if status == 200 and isinstance(listed, list) else {}
        expected = list(self.expected.folder_permissions)
        for title in self.expected.folders:
            if title not in uids:
                self.add("folder", title, FAIL, "missing" if status == 200 else _grafana_missing(status, "folder list"))
                continue
            status, granted = http(f"{url}/api/folders/{urllib.parse.quote(uids[title])}/permissions", headers=auth)
            if status != 200:
                self.add("folder", title, FAIL, _grafana_missing(status, "folder's permissions"))
                continue
            found = sorted(grant_text(g.get("role") or "", g.get("team") or "", g.get("permissionName", ""))
                           for g in granted if not g.get("inherited"))
            if found == expected:
                self.add("folder", title, OK, f"{uids[title]}, grants {', '.join(expected)}")
            else:
                self.add("folder", title, FAIL, f"grants {', '.join(found) or 'nothing'}, expected {', '.join(expected)}: "
                         "run the folder Job again (docs/operations/grafana-admin.md)")

    def _datasource(self, url: str, auth: dict[str, str], uid: str, backend: bool) -> None:
        status, source = http(f"{url}/api/datasources/uid/{uid}", headers=auth)
        if status != 200:
            self.add("data source", uid, FAIL, _grafana_missing(status, "data source"))
            return
        if backend:
            status, answer = http(f"{url}/api/datasources/uid/{uid}/health", headers=auth, timeout=30)
            message = answer.get("message", "") if isinstance(answer, dict) else str(answer)
            self.add("data source", uid, OK if status == 200 else FAIL, message if status == 200 else f"HTTP {status}: {message}")
        elif source["type"] == "alertmanager":
            # Its plugin runs in the browser only: Grafana has no health check for it (grafana/grafana#83794,
            # "Plugin unavailable"). A request through Grafana's data source proxy takes the same way.
            status, _ = http(f"{url}/api/datasources/proxy/uid/{uid}/api/v2/status", headers=auth, timeout=30)
            self.add("data source", uid, OK if status == 200 else FAIL,
                     "Alertmanager answers through Grafana's proxy" if status == 200
                     else f"Alertmanager through Grafana's proxy: HTTP {status}")
        else:
            self.add("data source", uid, SKIPPED, f"its {source['type']} plugin runs in the browser only: no health check")

    # -------------------------------------------------------------------------- Loki and Mimir

    def logs(self) -> None:
        namespace_label, pod_label = self.expected.log_labels
        query = (f"sum by ({namespace_label}, {pod_label}) "
                 f'(count_over_time({{{namespace_label}=~".+"}}[{LOG_WINDOW}]))')
        with forward_service(self.cluster, self.expected.loki) as url:
            result = get_ok(f"{url}/loki/api/v1/query?" + urllib.parse.urlencode({"query": query}))["data"]["result"]
        logged = {(r["metric"].get(namespace_label), r["metric"].get(pod_label)) for r in result if float(r["value"][1]) > 0}
        on_node: dict[str, list[tuple[str, str]]] = {}
        for pod in items(self.cluster, "/api/v1/pods"):
            if pod["spec"].get("nodeName"):
                on_node.setdefault(pod["spec"]["nodeName"], []).append((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        for node in sorted(n["metadata"]["name"] for n in items(self.cluster, "/api/v1/nodes")):
            pods = on_node.get(node, [])
            logging = sum(1 for p in pods if p in logged)
            self.add("logs", node, OK if logging else FAIL,
                     f"{logging} of {count(len(pods), 'pod')} logged in the last {LOG_WINDOW}" if logging
                     else f"no log lines in the last {LOG_WINDOW} from its {count(len(pods), 'pod')}")

    def long_term_store(self) -> None:
        selector = f'up{{cluster="{self.expected.cluster}"}}'
        with forward_service(self.cluster, self.expected.mimir) as url:
            result = get_ok(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": f"timestamp({selector})"}))["data"]["result"]
        if not result:
            self.add("long-term store", selector, FAIL, "no sample in the last 5m (the query's lookback)")
            return
        newest = max(float(r["value"][1]) for r in result)
        self.add("long-term store", selector, OK,
                 f"{count(len(result), 'series', 'series')}, newest sample {utc_now().timestamp() - newest:.0f}s old")


def release_state(namespace: str, name: str, current: int, revisions: dict[int, str]) -> tuple[str, str]:
    """(status, detail) of a Helm release whose newest revision is `current`; revision -> Helm status of
    every revision not superseded. A release stuck in a pending state (the process running Helm died:
    an interrupted `pulumi up`) refuses every later operation; the detail is the one command that
    recovers it (docs/operations/failed-release.md)."""
    status = revisions[current]
    deployed = [r for r, s in revisions.items() if s == "deployed" and r < current]
    if status == "deployed":
        return OK, f"revision {current} deployed"
    where = f"helm -n {namespace}"
    if status == "pending-install" or (status == "failed" and not deployed):
        action = f"`{where} uninstall {name}` (a first install that never completed holds no data), then `pulumi up`"
    elif status in ("pending-upgrade", "pending-rollback") and deployed:
        action = f"`{where} rollback {name} {max(deployed)}` (its last deployed revision), then `pulumi up`"
    elif status in ("pending-upgrade", "pending-rollback"):
        action = f"`{where} history {name}`, roll back to the last deployed revision, then `pulumi up`"
    else:  # failed after a deployed revision (not atomic): Helm upgrades it again
        action = "`pulumi up`"
    return FAIL, f"revision {current} {status}: {action} (docs/operations/failed-release.md)"


def grant_text(role: str, team: str, level: str) -> str:
    """A folder permission as the table shows it: `Viewer: View`, `team sre: Edit`."""
    return f"{role or 'team ' + team}: {level}"


def _grafana_missing(status: int, what: str) -> str:
    return "missing (HTTP 404)" if status == 404 else f"cannot read the {what}: HTTP {status}"


def count(number: int, noun: str, plural: str = "") -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def labels_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


# ------------------------------------------------------------------------------ output


HEADER = Row("check", "subject", "status", "detail")


def table(rows: list[Row]) -> str:
    """The rows as aligned columns under a header, and a count of each status."""
    every = [HEADER, *rows]
    widths = [max(len(getattr(r, column)) for r in every) for column in ("check", "subject", "status")]
    lines = [f"{r.check:<{widths[0]}}  {r.subject:<{widths[1]}}  {r.status:<{widths[2]}}  {r.detail}".rstrip() for r in every]
    counts = {status: sum(1 for r in rows if r.status == status) for status in (OK, FAIL, SKIPPED)}
    lines.append(f"{len(rows)} checks: {counts[OK]} ok, {counts[FAIL]} failed, {counts[SKIPPED]} skipped")
    return "\n".join(lines)


def verify(cluster: Cluster, expected: Expected, **options: Any) -> tuple[int, str]:
    """(exit code, table) of every check."""
    rows = Verifier(cluster, expected, **options).run()
    return (1 if any(r.status == FAIL for r in rows) else 0), table(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--context", help="kubeconfig context (default: the stack's cluster.kubeContext, "
                                           "else the kubeconfig's current context)")
    args = parser.parse_args(argv)
    if shutil.which("kubectl") is None:
        print("kubectl: not found on PATH; install it (https://kubernetes.io/docs/tasks/tools/) to verify a stack",
              file=sys.stderr)
        return 2
    try:
        expected = render_expected(args.stack)
    except VerifyError as error:
        print(error, file=sys.stderr)
        return 2
    context = args.context or expected.kube_context
    cluster = Kubectl(context)
    try:
        cluster.get_json("/version")
    except VerifyError as error:
        print(f"cannot reach the cluster: {error}", file=sys.stderr)
        return 2
    print(f"stack {args.stack}, cluster {expected.cluster}, kubeconfig context {context or '(current)'}")
    code, output = verify(cluster, expected)
    print(output)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
