"""Prometheus rules of the webhook delivery service: recording and alert rule groups as data.

`rule_groups(settings)` is what is deployed (as PrometheusRule objects) and rendered to
`build/<stack>/prometheus-rules.yaml`; `federation_match(settings)` is what a federating Prometheus
pulls. Pure content: no Pulumi.
"""

from __future__ import annotations

from typing import Any

from config import Settings
from monitoring.rules.alerts import alert_groups
from monitoring.rules.recording import (
    APPLICATION_METRICS,
    baseline_mean_series,
    baseline_stddev_series,
    federation_match,
    recorded_series,
    recording_groups,
)


def rule_groups(settings: Settings) -> list[dict[str, Any]]:
    """Recording groups first (alerts read their series), then alert groups."""
    return recording_groups(settings) + alert_groups(settings)


__all__ = [
    "APPLICATION_METRICS",
    "alert_groups",
    "baseline_mean_series",
    "baseline_stddev_series",
    "federation_match",
    "recorded_series",
    "recording_groups",
    "rule_groups",
]
