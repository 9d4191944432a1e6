"""Prometheus' duration grammar, which the stack's settings and the stores it configures share.

Source: prometheus/common `model/time.go` ParseDuration (Prometheus 3.14, and Mimir's and Loki's
`model.Duration` settings such as their retention periods): units y, w, d, h, m, s and ms, in that
order, each at most once, or a bare 0.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

DURATION_UNITS_MS = {"y": 31536000000, "w": 604800000, "d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}
_DURATION_RE = re.compile("".join(f"(?:([0-9]+){unit})?" for unit in DURATION_UNITS_MS))


@functools.lru_cache(maxsize=1024)  # a stack's few durations, read for every service and probe
def parse_duration_ms(text: str) -> Optional[int]:
    """Milliseconds of a duration in Prometheus' grammar, or None when it is not one."""
    if text == "0":  # ParseDuration takes a bare zero
        return 0
    m = _DURATION_RE.fullmatch(text) if text else None
    if m is None:
        return None
    return sum(int(n) * ms for n, ms in zip(m.groups(), DURATION_UNITS_MS.values()) if n is not None)
