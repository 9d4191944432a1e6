"""Promtail configuration rendered from the log pipeline description.

Promtail reached end of life on 2026-03-02; it stays selectable (`logging.agent: promtail`) for
teams that still run it. Same discovery, labels and stages as the Alloy config.
"""

from __future__ import annotations

from typing import Any

from config import Settings
from monitoring.logging.pipeline import (
    Drop,
    Labels,
    ParseCri,
    ParseJson,
    Relabel,
    Stage,
    StructuredMetadata,
    log_pipeline,
)

PROMTAIL_PORT = 3101
# On the chart's hostPath volume `run`, so read positions survive a pod restart.
POSITIONS_FILE = "/run/promtail/positions.yaml"


def _relabel(rule: Relabel) -> dict[str, Any]:
    return {
        "action": "replace",
        "regex": rule.regex,
        "replacement": rule.replacement,
        "separator": rule.separator,
        "source_labels": list(rule.source_labels),
        "target_label": rule.target_label,
    }


def _stage(stage: Stage) -> dict[str, Any]:
    if isinstance(stage, ParseCri):
        return {"cri": {}}
    if isinstance(stage, ParseJson):
        return {"json": {"expressions": {field: field for field in stage.fields}}}
    if isinstance(stage, Drop):
        return {"drop": {"source": stage.source, "expression": stage.expression, "drop_counter_reason": stage.reason}}
    if isinstance(stage, StructuredMetadata):
        return {"structured_metadata": {field: field for field in stage.fields}}
    if isinstance(stage, Labels):
        return {"labels": {field: field for field in stage.fields}}
    raise TypeError(f"no Promtail rendering for pipeline stage {stage!r}")


def promtail_config(settings: Settings, loki_push_url: str) -> dict[str, Any]:
    """The whole Promtail configuration file, as data."""
    pipeline = log_pipeline(settings)
    return {
        "server": {"http_listen_port": PROMTAIL_PORT, "log_level": "info"},
        "positions": {"filename": POSITIONS_FILE},
        "clients": [{"url": loki_push_url}],
        "scrape_configs": [
            {
                "job_name": "kubernetes-pods",
                # Promtail only finds files on its own node: other nodes' paths match nothing.
                "kubernetes_sd_configs": [{"role": "pod", **({"namespaces": {"names": list(pipeline.namespaces)}}
                                                              if pipeline.namespaces else {})}],
                "relabel_configs": [_relabel(rule) for rule in pipeline.relabels],
                "pipeline_stages": [_stage(stage) for stage in pipeline.stages],
            }
        ],
    }
