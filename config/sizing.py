"""Prometheus sizing: the memory and CPU limits a replica needs for the head series it holds.

Derived from the load benchmark (`python -m testkit.load_bench`, docs/operations/capacity.md) on
Prometheus 3.14 with the rendered prod rules, held to its CPU limit with GOMEMLIMIT at 90 % of its
memory limit. Peak resident memory grows linearly with the head series, from a fixed base. The
limit keeps 30 % of itself free on top: head compaction (every two hours, which a bench window
does not reach) and dashboard queries need it, and reaching the limit is an OOM kill.
"""

from __future__ import annotations

import math

MIB = 2**20
BASE_MEMORY = 100 * MIB
"""Peak RSS of Prometheus with the stack's rules and no load (measured: 92 MiB at 1,364 series)."""
MEMORY_PER_SERIES = 3300
"""Bytes of peak RSS per head series: the series, their chunks and postings, and the Go heap's
slack. Measured: 768 MiB at 225,362 series, 1,454 MiB at 445,490 (3,215 bytes per series between
the smallest and the largest run), rounded up."""
MEMORY_HEADROOM = 0.30
"""Share of the memory limit the sizing leaves free."""
CPU_PER_SERIES = 0.09 / 445_490
"""Cores Prometheus uses per head series with the stack's rules and scrapes: the load benchmark at 20
pods x 2,000 endpoints (445,490 series) used 0.09 of its one core at full load."""
REQUEST_HEADROOM = 0.30
"""Share the CPU request adds above the measured use (queries, remote-write catch-up, compaction)."""
SERIES_PER_CORE = 1_000_000
"""Head series one core of CPU limit serves: at 445,490 series the recording group takes 5 % of its
interval on one core, so a million keep it near 11 %, under half the load benchmark's 25 % budget,
with room for queries and remote write."""


def memory_limit_for(series: int) -> int:
    """Smallest memory limit (bytes) for `series` head series, whole MiB."""
    peak = BASE_MEMORY + MEMORY_PER_SERIES * series
    return math.ceil(peak / (1 - MEMORY_HEADROOM) / MIB) * MIB


def cpu_limit_for(series: int) -> float:
    """Smallest CPU limit (cores) for `series` head series, whole tenths, at least one core."""
    return max(1.0, math.ceil(series / SERIES_PER_CORE * 10) / 10)


def memory_request_for(series: int) -> int:
    """The memory request (bytes) for `series` head series: the measured peak, whole MiB. What the
    scheduler reserves; the limit's headroom above it is for bursts."""
    return math.ceil((BASE_MEMORY + MEMORY_PER_SERIES * series) / MIB) * MIB


def cpu_request_for(series: int) -> float:
    """The CPU request (cores) for `series` head series: the measured use with REQUEST_HEADROOM, whole
    hundredths of a core."""
    return math.ceil(series * CPU_PER_SERIES * (1 + REQUEST_HEADROOM) * 100) / 100
