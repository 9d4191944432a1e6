"""A synthetic webhook delivery service: the service's metrics contract, driven by scripted phases.

Each service runs several replicas; each replica has its own registry and HTTP server on
127.0.0.1 (one scrape target, as one pod). A load generator thread ticks every TICK seconds and,
per replica and endpoint, counts deliveries at the phase's rate, fails the phase's fraction of
them exactly (fractional carry, no randomness), observes the phase's latencies and sets the
replica's queue depth. Besides, one exporter stands in for kube-state-metrics, cAdvisor, the
kubelet, node-exporter and postgres_exporter with the series the dashboards read.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TICK = 0.1  # seconds between load generator steps
NAMESPACE = "webhook-delivery"
HEALTHY_LATENCIES = (0.04, 0.07, 0.1, 0.15, 0.2)  # seconds, cycled: P95 well under 0.5 s
SLOW_LATENCIES = (0.6, 0.8, 0.9, 1.2, 2.0)        # seconds: P95 well over 0.5 s


@dataclass(frozen=True)
class Phase:
    """What a service does from the moment the phase is set.

    error_ratio: per endpoint, the fraction of its deliveries that fail (missing = 0).
    rate: per endpoint, deliveries per second per replica (missing = default_rate).
    queue_depth: per replica, messages waiting.
    """

    error_ratio: dict[str, float] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    default_rate: float = 20.0
    latencies: tuple[float, ...] = HEALTHY_LATENCIES
    queue_depth: tuple[int, ...] = ()


class Replica:
    """One pod: the four metrics of its contract in its own registry and HTTP server."""

    def __init__(self, pod: str, endpoints: tuple[str, ...], statuses: tuple[str, ...]) -> None:
        self.pod = pod
        self.registry = CollectorRegistry()
        self.deliveries = Counter("webhook_deliveries", "Webhook delivery attempts by outcome.",
                                  ["status", "endpoint"], registry=self.registry)
        self.duration = Histogram("webhook_delivery_duration_seconds", "Time to deliver one webhook.",
                                  ["endpoint"], registry=self.registry)
        self.queue_depth = Gauge("webhook_queue_depth", "Webhooks waiting in this replica's queue.",
                                 registry=self.registry)
        self.retries = Counter("webhook_retries", "Delivery retries by attempt number.",
                               ["attempt_number"], registry=self.registry)
        # The series of `statuses` exist from the first scrape (at 0), as a careful exporter initialises
        # them; any other is born with its first increment (the "fresh" scenario: what Prometheus'
        # created-timestamp ingestion is for).
        for endpoint in endpoints:
            self.duration.labels(endpoint)
            for status in statuses:
                self.deliveries.labels(status, endpoint)
        for attempt in ("1", "2", "3"):
            self.retries.labels(attempt)
        self.server, _ = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        self._carry: dict[tuple[str, str], float] = {}
        self._latency = itertools.count()

    def step(self, phase: Phase, endpoints: tuple[str, ...], ordinal: int, dt: float) -> None:
        for endpoint in endpoints:
            total = self._take((endpoint, "total"), phase.rate.get(endpoint, phase.default_rate) * dt)
            errors = self._take((endpoint, "error"), total * phase.error_ratio.get(endpoint, 0.0), whole_of=total)
            if errors:
                self.deliveries.labels("error", endpoint).inc(errors)
                self.retries.labels(str(1 + errors % 3)).inc(errors)
            if total - errors:
                self.deliveries.labels("success", endpoint).inc(total - errors)
            for _ in range(total):
                self.duration.labels(endpoint).observe(phase.latencies[next(self._latency) % len(phase.latencies)])
        if phase.queue_depth:
            self.queue_depth.set(phase.queue_depth[ordinal])

    def _take(self, key: tuple[str, str], amount: float, whole_of: Optional[int] = None) -> int:
        """Whole units of `amount` plus what earlier steps carried over; the remainder carries on."""
        carried = self._carry.get(key, 0.0) + amount
        whole = int(carried) if whole_of is None else min(int(carried), whole_of)
        self._carry[key] = carried - whole
        return whole

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Service:
    """A Kubernetes service of the webhook delivery application: replicas behind one name."""

    def __init__(self, name: str, replicas: int, endpoints: tuple[str, ...], phase: Phase,
                 statuses_up_front: tuple[str, ...] = ("success", "error")) -> None:
        self.name = name
        self.endpoints = endpoints
        self.replicas = [Replica(f"{name}-{i}", endpoints, statuses_up_front) for i in range(replicas)]
        self._phase = phase
        self._lock = threading.Lock()

    def set_phase(self, phase: Phase) -> float:
        """Switch behaviour now; returns the monotonic time of the switch (fault onset)."""
        with self._lock:
            self._phase = phase
            return time.monotonic()

    def step(self, dt: float) -> None:
        with self._lock:
            phase = self._phase
        for ordinal, replica in enumerate(self.replicas):
            replica.step(phase, self.endpoints, ordinal, dt)

    def targets(self) -> Iterator[tuple[str, dict[str, str]]]:
        """(address, target labels) per replica: the labels the Prometheus Operator attaches."""
        for replica in self.replicas:
            yield replica.target, {"namespace": NAMESPACE, "service": self.name, "pod": replica.pod,
                                   "container": "webhook-delivery", "endpoint": "metrics"}


# node-exporter and postgres_exporter series the infrastructure dashboard joins on: (name, labels, start, slope/s).
# Plain gauges (slope 0) or counters (slope > 0); postgres_exporter's counters carry no _total suffix.
NODE = {"job": "node-exporter", "instance": "10.0.1.17:9100"}
DATABASE = {"datname": "webhooks"}
EXPORTED_SERIES = (
    ("node_filesystem_avail_bytes", {**NODE, "mountpoint": "/", "device": "/dev/nvme0n1p1"}, 60e9, -1e5),
    ("node_filesystem_size_bytes", {**NODE, "mountpoint": "/", "device": "/dev/nvme0n1p1"}, 100e9, 0),
    ("node_uname_info", {**NODE, "nodename": "ip-10-0-1-17.ec2.internal"}, 1, 0),
    ("node_disk_reads_completed_total", {**NODE, "device": "nvme0n1"}, 0, 120),
    ("node_disk_writes_completed_total", {**NODE, "device": "nvme0n1"}, 0, 300),
    ("node_disk_read_bytes_total", {**NODE, "device": "nvme0n1"}, 0, 4e6),
    ("node_disk_written_bytes_total", {**NODE, "device": "nvme0n1"}, 0, 9e6),
    ("pg_stat_activity_count", {**DATABASE, "state": "active"}, 12, 0),
    ("pg_stat_activity_count", {**DATABASE, "state": "idle"}, 30, 0),
    ("pg_settings_max_connections", {}, 200, 0),
    ("pg_stat_database_xact_commit", DATABASE, 0, 400),
    ("pg_stat_database_xact_rollback", DATABASE, 0, 2),
    ("pg_stat_statements_seconds_total", DATABASE, 0, 0.8),
    ("pg_stat_statements_calls_total", DATABASE, 0, 450),
    ("pg_stat_database_deadlocks", DATABASE, 0, 0.01),
    ("pg_stat_database_conflicts", DATABASE, 0, 0.01),
)
# Loki's ruler evaluating the log rules (LogRulerNotEvaluating reads it; there is no Loki here).
LOKI_RULER = {"namespace": "monitoring", "pod": "loki-backend-0", "rule_group": "webhook-delivery", "user": "fake"}
LOKI_RULER_SERIES = (
    ("loki_prometheus_rule_evaluations_total", LOKI_RULER, 0, 0.2),
    ("loki_prometheus_rule_evaluation_failures_total", LOKI_RULER, 0, 0),
)
# A monitoring pod with a volume, for the cost panels of the monitoring namespace.
MONITORING_POD = ("monitoring", "prometheus-kube-prometheus-stack-prometheus-0", "prometheus")


class ClusterSeries:
    """kube-state-metrics, cAdvisor, kubelet, node-exporter and postgres_exporter series for the pods
    of the synthetic services, and Loki's ruler metrics (served with their own `job`/`instance`:
    scraped with honor_labels)."""

    def __init__(self, services: list[Service]) -> None:
        self.registry = CollectorRegistry()
        pod_labels = ["namespace", "pod", "container"]
        requests = Gauge("kube_pod_container_resource_requests", "", pod_labels + ["resource", "unit"], registry=self.registry)
        limits = Gauge("kube_pod_container_resource_limits", "", pod_labels + ["resource", "unit"], registry=self.registry)
        phase = Gauge("kube_pod_status_phase", "", ["namespace", "pod", "phase"], registry=self.registry)
        available = Gauge("kube_deployment_status_replicas_available", "", ["namespace", "deployment"], registry=self.registry)
        desired = Gauge("kube_deployment_spec_replicas", "", ["namespace", "deployment"], registry=self.registry)
        memory = Gauge("container_memory_working_set_bytes", "", pod_labels, registry=self.registry)
        storage = Gauge("kube_persistentvolumeclaim_resource_requests_storage_bytes", "",
                        ["namespace", "persistentvolumeclaim"], registry=self.registry)
        used = Gauge("kubelet_volume_stats_used_bytes", "", ["namespace", "persistentvolumeclaim"], registry=self.registry)
        capacity = Gauge("kubelet_volume_stats_capacity_bytes", "", ["namespace", "persistentvolumeclaim"], registry=self.registry)
        self._counters = {
            name: Counter(name.removesuffix("_total"), "", labels, registry=self.registry)
            for name, labels in (
                ("container_cpu_usage_seconds_total", pod_labels),
                ("container_cpu_cfs_periods_total", pod_labels),
                ("container_cpu_cfs_throttled_periods_total", pod_labels),
                ("container_network_receive_bytes_total", ["namespace", "pod"]),
                ("container_network_transmit_bytes_total", ["namespace", "pod"]),
                ("kube_pod_container_status_restarts_total", pod_labels),
            )
        }
        self._pods = [(NAMESPACE, replica.pod, "webhook-delivery") for service in services for replica in service.replicas]
        self._pods.append(MONITORING_POD)
        self._growing: list[tuple[Gauge, float]] = []  # (series, increase per second)
        gauges: dict[str, Gauge] = {}
        for name, labels, start, slope in EXPORTED_SERIES + LOKI_RULER_SERIES:
            if name not in gauges:
                gauges[name] = Gauge(name, "", sorted(labels), registry=self.registry)
            series = gauges[name].labels(**labels) if labels else gauges[name]
            series.set(start)
            if slope:
                self._growing.append((series, slope))
        for namespace, pod, container in self._pods:
            requests.labels(namespace, pod, container, "cpu", "core").set(0.25)
            requests.labels(namespace, pod, container, "memory", "byte").set(256 * 2**20)
            limits.labels(namespace, pod, container, "memory", "byte").set(512 * 2**20)
            limits.labels(namespace, pod, container, "cpu", "core").set(1)
            phase.labels(namespace, pod, "Running").set(1)
            memory.labels(namespace, pod, container).set(180 * 2**20)
        for service in services:
            available.labels(NAMESPACE, service.name).set(len(service.replicas))
            desired.labels(NAMESPACE, service.name).set(len(service.replicas))
            storage.labels(NAMESPACE, f"{service.name}-data").set(10 * 2**30)
            used.labels(NAMESPACE, f"{service.name}-data").set(2 * 2**30)
            # Volumes fill slowly, so the capacity forecasts have a slope.
            self._growing.append((used.labels(NAMESPACE, f"{service.name}-data"), 1_000_000))
            capacity.labels(NAMESPACE, f"{service.name}-data").set(10 * 2**30)
        storage.labels(MONITORING_POD[0], "prometheus-db").set(100 * 2**30)
        self._ticks = 0
        self.server, _ = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"

    def step(self, dt: float) -> None:
        self._ticks += 1
        per_second = {"container_cpu_usage_seconds_total": 0.1, "container_cpu_cfs_periods_total": 10,
                      "container_cpu_cfs_throttled_periods_total": 1,
                      "container_network_receive_bytes_total": 50_000, "container_network_transmit_bytes_total": 20_000}
        for namespace, pod, container in self._pods:
            for name, rate in per_second.items():
                labels = (namespace, pod) if "network" in name else (namespace, pod, container)
                self._counters[name].labels(*labels).inc(rate * dt)
        for series, slope in self._growing:
            series.inc(slope * dt)
        # One pod restarts every 20 steps: the restarts panel shows increases, not only zeros.
        if self._ticks % 20 == 0:
            namespace, pod, container = self._pods[0]
            self._counters["kube_pod_container_status_restarts_total"].labels(namespace, pod, container).inc()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LoadGenerator:
    """Steps every service every TICK seconds on a daemon thread until stopped."""

    def __init__(self, services: list[Service], cluster: ClusterSeries) -> None:
        self.services = services
        self.cluster = cluster
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK):
            now = time.monotonic()
            for service in self.services:
                service.step(now - last)
            self.cluster.step(now - last)
            last = now

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
