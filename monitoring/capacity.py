"""Requests of the long-term stores, from their vendors' documented requirements for the load the stack
is configured for (the load benchmark measures Prometheus alone: config/sizing.py).

Mimir, from "Planning Grafana Mimir capacity" (grafana/mimir docs/sources/mimir/manage/
run-production-environment/planning-capacity.md), for one tenant at the default configuration:
distributors 1 core and 1 GB per 25,000 received samples per second; ingesters 1 core and 2.5 GB per
300,000 series in memory (active series times the replication factor); query-frontends 1 core and
1 GB per 250 queries per second; queriers and store-gateways 1 core and 1 GB per 10 queries per
second; a compactor 1 core and 4 GB per 20 million active series. "Run Grafana Mimir with 50% extra
capacity for memory": the memory figures get it.

Loki, from "Size the cluster" (grafana/loki docs/sources/setup/size/_index.md), its smallest tier
(under 3 TB a day: p90 requests of ingesters, distributors, index gateways, queriers,
query-frontends, query-schedulers and a compactor), per TB a day, mapped onto the simple scalable
targets: write = distributors and ingesters, read = queriers and query-frontends, backend = index
gateways, query-schedulers and the compactor.

Neither document gives a process's base: no pod is sized below the mimir-distributed chart's own
default requests (100m, and 128Mi or 512Mi by component), nor a Loki pod below 100m and 256Mi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.settings import Settings


def mimir_replication_factor(settings: Settings) -> int:
    """3 (one copy per zone) with at least 3 ingesters; 1 below that, where 3 copies cannot exist.

    Mimir defaults to 3: with one ingester (dev) every write would fail its quorum.
    """
    return 3 if settings.long_term_storage.replicas >= 3 else 1


def loki_replication_factor(settings: Settings) -> int:
    """One copy per replica, up to 3 (Loki's default), so a single replica (dev) meets its quorum."""
    return min(settings.logging.replicas, 3)


GB = 10**9
MI = 2**20
MEMORY_HEADROOM = 1.5
# Mimir: documented requirements per unit of load (cores, bytes).
SAMPLES_PER_SECOND_PER_DISTRIBUTOR_CORE = 25_000
SERIES_PER_INGESTER_CORE = 300_000
INGESTER_BYTES_PER_CORE = 2.5 * GB
QUERIES_PER_SECOND_PER_QUERIER_CORE = 10
QUERIES_PER_SECOND_PER_FRONTEND_CORE = 250
SERIES_PER_COMPACTOR = 20_000_000
COMPACTOR = (1.0, 4 * GB)
# The mimir-distributed 5.7.0 chart's default requests (cores, bytes): the floor.
MIMIR_FLOOR = {"distributor": (0.1, 512 * MI), "ingester": (0.1, 512 * MI), "querier": (0.1, 128 * MI),
               "query_frontend": (0.1, 128 * MI), "store_gateway": (0.1, 512 * MI), "compactor": (0.1, 512 * MI)}
# Loki's smallest tier, totals for 3 TB a day (cores, GiB), by simple scalable target.
LOKI_TIER_TB_PER_DAY = 3
LOKI_TIER = {"write": (12 + 8, 24 + 2), "read": (10 + 2, 10 + 4), "backend": (2 + 2 + 2, 8 + 1 + 10)}
LOKI_FLOOR = (0.1, 256 * MI)


@dataclass(frozen=True)
class Requests:
    cpu: float
    """Cores per pod."""
    memory: int
    """Bytes per pod."""

    def resources(self, limit_factor: float = 2.0) -> dict:
        """A Kubernetes `resources` block: these requests, a memory limit `limit_factor` times the request."""
        return {"requests": {"cpu": f"{math.ceil(self.cpu * 1000)}m", "memory": f"{math.ceil(self.memory / MI)}Mi"},
                "limits": {"memory": f"{math.ceil(self.memory * limit_factor / MI)}Mi"}}


def _per_pod(total_cpu: float, total_memory: float, pods: int, floor: tuple[float, float]) -> Requests:
    return Requests(max(floor[0], total_cpu / pods), int(max(floor[1], total_memory / pods)))


def mimir_requests(settings: Settings, component: str, pods: int, replication_factor: int) -> Requests:
    """Requests of each of `pods` pods of a Mimir component for the configured series and queries."""
    lts = settings.long_term_storage
    series, queries = lts.expected_series, lts.queries_per_second
    samples = series / settings.prometheus.scrape_interval.seconds
    if component == "distributor":
        cores = samples / SAMPLES_PER_SECOND_PER_DISTRIBUTOR_CORE
        total = (cores, cores * GB * MEMORY_HEADROOM)
    elif component == "ingester":
        cores = series * replication_factor / SERIES_PER_INGESTER_CORE
        total = (cores, cores * INGESTER_BYTES_PER_CORE * MEMORY_HEADROOM)
    elif component in ("querier", "store_gateway"):
        cores = queries / QUERIES_PER_SECOND_PER_QUERIER_CORE
        total = (cores, cores * GB * MEMORY_HEADROOM)
    elif component == "query_frontend":
        cores = queries / QUERIES_PER_SECOND_PER_FRONTEND_CORE
        total = (cores, cores * GB * MEMORY_HEADROOM)
    elif component == "compactor":
        share = series / SERIES_PER_COMPACTOR
        total = (COMPACTOR[0] * share, COMPACTOR[1] * share * MEMORY_HEADROOM)
    else:
        raise ValueError(f"no documented requirement for Mimir's {component}")
    return _per_pod(*total, pods, MIMIR_FLOOR[component])


def loki_requests(settings: Settings, target: str, pods: int) -> Requests:
    """Requests of each of `pods` pods of a Loki simple scalable target (or the single binary: all three)
    for the configured daily log volume."""
    tb_per_day = settings.logging.daily_volume.bytes / 10**12
    targets = ("write", "read", "backend") if target == "single-binary" else (target,)
    cores = sum(LOKI_TIER[t][0] for t in targets) * tb_per_day / LOKI_TIER_TB_PER_DAY
    memory = sum(LOKI_TIER[t][1] for t in targets) * 2**30 * tb_per_day / LOKI_TIER_TB_PER_DAY
    return _per_pod(cores, memory, pods, LOKI_FLOOR)


# Bytes a sample takes in the long-term store's compacted blocks, index and chunks ("Planning Grafana
# Mimir capacity", the store-gateway's disk estimate).
MIMIR_BYTES_PER_SAMPLE = 2

# Loki's ingestion limits (its defaults are 4 MB/s, 6 MB of burst and 5,000 streams per tenant).
LOKI_DEFAULT_RATE_MB = 4
LOKI_DEFAULT_BURST_MB = 6
LOKI_DEFAULT_STREAMS = 5000
# Logs come in bursts (a deploy, an incident's errors): the limits take five times the day's average rate.
LOG_PEAK_TO_AVERAGE = 5


def loki_limits(settings: Settings) -> dict:
    """`limits_config` ingestion keys for the configured volume and streams, never below Loki's defaults."""
    average_mb = settings.logging.daily_volume.bytes / 86400 / 10**6
    rate = max(LOKI_DEFAULT_RATE_MB, math.ceil(average_mb * LOG_PEAK_TO_AVERAGE))
    return {
        "ingestion_rate_mb": rate,
        # Loki's own ratio of burst to rate.
        "ingestion_burst_size_mb": max(LOKI_DEFAULT_BURST_MB, math.ceil(rate * LOKI_DEFAULT_BURST_MB / LOKI_DEFAULT_RATE_MB)),
        "max_global_streams_per_user": max(LOKI_DEFAULT_STREAMS, 2 * settings.logging.streams),
    }
