"""A synthetic webhook delivery service: the service's metrics contract, driven by scripted phases.

Each service runs several replicas; each replica has its own registry and HTTP server on the
address given (one scrape target, as one pod). A load generator thread ticks every TICK seconds and,
per replica and endpoint, counts deliveries at the phase's rate, fails the phase's fraction of
them exactly (fractional carry, no randomness), observes the phase's latencies and sets the
replica's queue depth. A service can crash-loop: each replica's process then dies and restarts
on the same port (its counters back at zero), alive only a moment of each cycle. Besides, one
exporter stands in for kube-state-metrics (following the replicas' crashes), cAdvisor, the kubelet,
node-exporter, postgres_exporter, Mimir and Loki with the series the dashboards read.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

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

    def __init__(self, pod: str, endpoints: tuple[str, ...], statuses: tuple[str, ...], address: str,
                 port: int = 0) -> None:
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
        self.server, _ = prometheus_client.start_http_server(port, addr=address, registry=self.registry)
        self.address, self.port = address, self.server.server_address[1]
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


# The pod-template hash of every synthetic Deployment's ReplicaSet: a pod's owner is `<service>-<hash>`.
POD_TEMPLATE_HASH = "7d9c5b8f6"


class Service:
    """A Kubernetes service of the webhook delivery application: replicas behind one name (the
    Deployment's and the Service's)."""

    def __init__(self, name: str, replicas: int, endpoints: tuple[str, ...], phase: Phase, address: str,
                 statuses_up_front: tuple[str, ...] = ("success", "error")) -> None:
        self.name = name
        self.endpoints = endpoints
        self.statuses_up_front = statuses_up_front
        self.replicas = [Replica(f"{name}-{i}", endpoints, statuses_up_front, address) for i in range(replicas)]
        self.restarts = {replica.pod: 0 for replica in self.replicas}
        self._down: set[str] = set()
        self._phase = phase
        self._lock = threading.Lock()
        self._crash_stop: Optional[threading.Event] = None
        self._crash_thread: Optional[threading.Thread] = None

    def set_phase(self, phase: Phase) -> float:
        """Switch behaviour now; returns the monotonic time of the switch (fault onset)."""
        with self._lock:
            self._phase = phase
            return time.monotonic()

    def step(self, dt: float) -> None:
        with self._lock:
            phase = self._phase
            running = [(ordinal, r) for ordinal, r in enumerate(self.replicas) if r.pod not in self._down]
        for ordinal, replica in running:
            replica.step(phase, self.endpoints, ordinal, dt)

    def down(self) -> set[str]:
        """The pods whose process is not running now (waiting out a crash back-off)."""
        with self._lock:
            return set(self._down)

    def crash_loop(self, period: float, alive: float) -> float:
        """From now on every replica's process dies, waits, and restarts with fresh counters on its
        port, running `alive` seconds of every `period`; the replicas out of step with each other, as
        pods are. Returns the monotonic time of the onset."""
        assert self._crash_thread is None, f"{self.name} already crash-loops"
        started = time.monotonic()
        self._crash_stop = threading.Event()
        self._crash_thread = threading.Thread(target=self._crash_cycle, args=(started, period, alive, self._crash_stop),
                                              daemon=True)
        self._crash_thread.start()
        return started

    def recover(self) -> float:
        """Stop crash-looping: every replica running from now on; returns the monotonic time."""
        assert self._crash_stop is not None and self._crash_thread is not None
        self._crash_stop.set()
        self._crash_thread.join(timeout=10)
        self._crash_thread = self._crash_stop = None
        for ordinal, replica in enumerate(list(self.replicas)):
            if replica.pod in self.down():
                self._start(ordinal, replica)
        return time.monotonic()

    def _crash_cycle(self, started: float, period: float, alive: float, stop: threading.Event) -> None:
        while not stop.wait(TICK):
            elapsed = time.monotonic() - started
            for ordinal, replica in enumerate(list(self.replicas)):
                # Each replica dies at the onset, then runs during the last `alive` seconds of its cycle.
                running = (elapsed + ordinal * period / len(self.replicas)) % period >= period - alive
                if running and replica.pod in self.down():
                    self._start(ordinal, replica)
                elif not running and replica.pod not in self.down():
                    with self._lock:
                        self._down.add(replica.pod)
                    replica.close()

    def _start(self, ordinal: int, dead: Replica) -> None:
        """A new process of the pod: a new registry (counters at zero) on the same port."""
        fresh = Replica(dead.pod, self.endpoints, self.statuses_up_front, dead.address, port=dead.port)
        with self._lock:
            self.replicas[ordinal] = fresh
            self.restarts[dead.pod] += 1
            self._down.discard(dead.pod)

    def close(self) -> None:
        if self._crash_stop is not None:
            self._crash_stop.set()
        for replica in self.replicas:
            replica.close()


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
# Mimir's and Loki's own series the store dashboards read, healthy: nothing refused, failed or
# corrupt (the stores' alerts stay quiet). Their `job` is the charts' `<namespace>/<component>`.
MIMIR = {"namespace": "monitoring", "job": "monitoring/distributor", "pod": "mimir-distributor-0"}
MIMIR_INGESTER = {"namespace": "monitoring", "job": "monitoring/ingester", "pod": "mimir-ingester-zone-a-0"}
MIMIR_COMPACTOR = {"namespace": "monitoring", "job": "monitoring/compactor", "pod": "mimir-compactor-0"}
MIMIR_STORE_GATEWAY = {"namespace": "monitoring", "job": "monitoring/store-gateway", "pod": "mimir-store-gateway-zone-a-0",
                       "component": "store-gateway"}
LOKI_WRITE = {"namespace": "monitoring", "job": "monitoring/loki-write", "pod": "loki-write-0"}
LOKI_BACKEND = {"namespace": "monitoring", "job": "monitoring/loki-backend", "pod": "loki-backend-0"}
AGENT = {"namespace": "monitoring-agents", "job": "monitoring-agents/alloy", "pod": "alloy-x7k2p",
         "host": "loki-gateway.monitoring.svc", "tenant": ""}
STORE_SERIES = (
    ("cortex_distributor_received_samples_total", {**MIMIR, "user": "anonymous"}, 0, 2000),
    ("cortex_discarded_samples_total", {**MIMIR, "user": "anonymous", "reason": "rate_limited", "group": ""}, 0, 0),
    ("cortex_request_duration_seconds_count", {**MIMIR, "route": "api_v1_push", "status_code": "200", "method": "POST",
                                               "ws": "false"}, 0, 20),
    ("cortex_ha_tracker_elected_replica_changes_total", {**MIMIR, "user": "anonymous"}, 1, 0),
    ("cortex_ingester_memory_series", MIMIR_INGESTER, 150000, 0),
    ("cortex_ingester_tsdb_wal_corruptions_total", MIMIR_INGESTER, 0, 0),
    ("cortex_ingester_tsdb_wal_writes_failed_total", MIMIR_INGESTER, 0, 0),
    ("cortex_compactor_blocks_marked_for_deletion_total", {**MIMIR_COMPACTOR, "reason": "compaction"}, 0, 0.01),
    ("thanos_objstore_bucket_operations_total", {**MIMIR_STORE_GATEWAY, "operation": "get_range", "bucket": "metrics"}, 0, 5),
    ("thanos_objstore_bucket_operation_failures_total", {**MIMIR_STORE_GATEWAY, "operation": "get_range", "bucket": "metrics"},
     0, 0),
    ("loki_distributor_lines_received_total", {**LOKI_WRITE, "tenant": "fake"}, 0, 500),
    ("loki_discarded_samples_total", {**LOKI_WRITE, "tenant": "fake", "reason": "rate_limited"}, 0, 0),
    ("loki_request_duration_seconds_count", {**LOKI_WRITE, "route": "loki_api_v1_push", "status_code": "204",
                                             "method": "POST", "ws": "false"}, 0, 10),
    ("loki_ingester_wal_corruptions_total", {**LOKI_WRITE, "type": "segment"}, 0, 0),
    ("loki_ingester_wal_disk_full_failures_total", LOKI_WRITE, 0, 0),
    ("loki_s3_request_duration_seconds_count", {**LOKI_WRITE, "operation": "S3.PutObject", "status_code": "200"}, 0, 2),
    ("loki_s3_request_duration_seconds_count", {**LOKI_WRITE, "operation": "S3.PutObject", "status_code": "500"}, 0, 0),
    ("loki_write_dropped_entries_total", {**AGENT, "reason": "rate_limited"}, 0, 0),
    ("loki_write_request_duration_seconds_count", {**AGENT, "status_code": "204"}, 0, 10),
    ("loki_write_request_duration_seconds_count", {**AGENT, "status_code": "429"}, 0, 0),
)
# The stores' last successful runs, every one just now.
STORE_TIMESTAMPS = (
    ("cortex_compactor_last_successful_run_timestamp_seconds", MIMIR_COMPACTOR),
    ("cortex_compactor_block_cleanup_last_successful_run_timestamp_seconds", MIMIR_COMPACTOR),
    ("cortex_bucket_stores_blocks_last_successful_sync_timestamp_seconds", MIMIR_STORE_GATEWAY),
    ("loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds", LOKI_BACKEND),
    ("loki_compactor_apply_retention_last_successful_run_timestamp_seconds", LOKI_BACKEND),
)
# A monitoring pod with a volume, for the cost panels of the monitoring namespace, and its owner.
MONITORING_POD = ("monitoring", "prometheus-kube-prometheus-stack-prometheus-0", "prometheus")
MONITORING_OWNER = ("StatefulSet", "prometheus-kube-prometheus-stack-prometheus")
# One pod of another workload of the team's namespace restarts every RESTART_STEPS steps all along
# (40 s scaled: a crash loop): the restarts panel shows increases whenever it is read, and the team
# is told (WorkloadCrashLooping, a warning) about that one workload while every other runs.
RESTARTING_POD = (NAMESPACE, f"webhook-retrier-{POD_TEMPLATE_HASH}-x2x9k", "webhook-retrier")
RESTARTING_OWNER = ("ReplicaSet", f"webhook-retrier-{POD_TEMPLATE_HASH}")
RESTART_STEPS = 20


class ClusterSeries:
    """kube-state-metrics, cAdvisor, kubelet, node-exporter and postgres_exporter series for the pods
    of the synthetic services, Loki's ruler metrics, and Mimir's and Loki's own (served with their
    own `job`/`instance`: scraped with honor_labels). kube-state-metrics follows the services'
    crashes: a pod whose process is down waits in CrashLoopBackOff, each restart is counted, and its
    Deployment has that many fewer replicas available."""

    def __init__(self, services: list[Service], address: str) -> None:
        self.registry = CollectorRegistry()
        self._services = services
        pod_labels = ["namespace", "pod", "container"]
        requests = Gauge("kube_pod_container_resource_requests", "", pod_labels + ["resource", "unit"], registry=self.registry)
        limits = Gauge("kube_pod_container_resource_limits", "", pod_labels + ["resource", "unit"], registry=self.registry)
        phase = Gauge("kube_pod_status_phase", "", ["namespace", "pod", "phase"], registry=self.registry)
        available = Gauge("kube_deployment_status_replicas_available", "", ["namespace", "deployment"], registry=self.registry)
        desired = Gauge("kube_deployment_spec_replicas", "", ["namespace", "deployment"], registry=self.registry)
        memory = Gauge("container_memory_working_set_bytes", "", pod_labels, registry=self.registry)
        owner = Gauge("kube_pod_owner", "", ["namespace", "pod", "owner_kind", "owner_name", "owner_is_controller"],
                      registry=self.registry)
        self._waiting = Gauge("kube_pod_container_status_waiting_reason", "", pod_labels + ["reason"], registry=self.registry)
        self._terminated = Gauge("kube_pod_container_status_last_terminated_reason", "", pod_labels + ["reason"],
                                 registry=self.registry)
        self._available = available
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
        self._pods += [MONITORING_POD, RESTARTING_POD]
        self._growing: list[tuple[Gauge, float]] = []  # (series, increase per second)
        gauges: dict[str, Gauge] = {}
        for name, labels, start, slope in EXPORTED_SERIES + LOKI_RULER_SERIES + STORE_SERIES:
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
            self._counters["kube_pod_container_status_restarts_total"].labels(namespace, pod, container)
        for service in services:
            for replica in service.replicas:
                owner.labels(NAMESPACE, replica.pod, "ReplicaSet", f"{service.name}-{POD_TEMPLATE_HASH}", "true").set(1)
        owner.labels(MONITORING_POD[0], MONITORING_POD[1], *MONITORING_OWNER, "true").set(1)
        owner.labels(RESTARTING_POD[0], RESTARTING_POD[1], *RESTARTING_OWNER, "true").set(1)
        self._ticks = 0
        self._timestamps = [
            (Gauge(name, "", sorted(labels), registry=self.registry).labels(**labels)) for name, labels in STORE_TIMESTAMPS]
        self._restarts_seen = {(service.name, pod): 0 for service in services for pod in service.restarts}
        self._waiting_pods: set[str] = set()
        for service in services:
            available.labels(NAMESPACE, service.name).set(len(service.replicas))
            desired.labels(NAMESPACE, service.name).set(len(service.replicas))
            storage.labels(NAMESPACE, f"{service.name}-data").set(10 * 2**30)
            used.labels(NAMESPACE, f"{service.name}-data").set(2 * 2**30)
            # Volumes fill slowly, so the capacity forecasts have a slope.
            self._growing.append((used.labels(NAMESPACE, f"{service.name}-data"), 1_000_000))
            capacity.labels(NAMESPACE, f"{service.name}-data").set(10 * 2**30)
        storage.labels(MONITORING_POD[0], "prometheus-db").set(100 * 2**30)
        self.server, _ = prometheus_client.start_http_server(0, addr=address, registry=self.registry)
        self.port = self.server.server_address[1]

    def step(self, dt: float) -> None:
        per_second = {"container_cpu_usage_seconds_total": 0.1, "container_cpu_cfs_periods_total": 10,
                      "container_cpu_cfs_throttled_periods_total": 1,
                      "container_network_receive_bytes_total": 50_000, "container_network_transmit_bytes_total": 20_000}
        for namespace, pod, container in self._pods:
            for name, rate in per_second.items():
                labels = (namespace, pod) if "network" in name else (namespace, pod, container)
                self._counters[name].labels(*labels).inc(rate * dt)
        for series, slope in self._growing:
            series.inc(slope * dt)
        self._ticks += 1
        if self._ticks % RESTART_STEPS == 0:
            self._counters["kube_pod_container_status_restarts_total"].labels(*RESTARTING_POD).inc()
        now = time.time()
        for series in self._timestamps:
            series.set(now)
        for service in self._services:
            down = service.down()
            self._available.labels(NAMESPACE, service.name).set(len(service.replicas) - len(down))
            for pod, restarts in service.restarts.items():
                labels = (NAMESPACE, pod, "webhook-delivery")
                if restarts > self._restarts_seen[(service.name, pod)]:
                    self._counters["kube_pod_container_status_restarts_total"].labels(*labels).inc(
                        restarts - self._restarts_seen[(service.name, pod)])
                    self._restarts_seen[(service.name, pod)] = restarts
                    self._terminated.labels(*labels, "Error").set(1)
                # The reason exists only while the container waits; a running one has none.
                if pod in down:
                    self._waiting.labels(*labels, "CrashLoopBackOff").set(1)
                    self._waiting_pods.add(pod)
                elif pod in self._waiting_pods:
                    self._waiting.remove(*labels, "CrashLoopBackOff")
                    self._waiting_pods.discard(pod)

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
