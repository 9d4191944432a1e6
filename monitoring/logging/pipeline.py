"""The log pipeline as data: one description that every log agent's config is rendered from.

Every node's agent tails the container log files under /var/log/pods, labels each stream with
its Kubernetes origin, and runs the same stages: read the CRI line format, parse the JSON the
services log, drop health-check noise, keep the per-request IDs as structured metadata (high
cardinality: never labels) and the level as a label (a handful of values, used to select).

`alloy.py` and `promtail.py` render this to each agent's own syntax; neither decides a step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from config import Settings
from monitoring.tenancy import log_namespaces

# Where the kubelet writes container logs: /var/log/pods/<namespace>_<pod>_<uid>/<container>/N.log
POD_LOGS_GLOB = "/var/log/pods/*$1/*.log"

# Fields of the services' JSON log lines (the application's logging contract).
LEVEL_FIELD = "level"
CORRELATION_ID_FIELD = "correlation_id"
TRACE_ID_FIELD = "trace_id"
PATH_FIELD = "path"
ENDPOINT_FIELD = "endpoint"
STATUS_FIELD = "status"

HEALTH_CHECK_DROP_REASON = "health_check"


@dataclass(frozen=True)
class Relabel:
    """A Prometheus-style `replace` relabel rule on Kubernetes pod discovery targets."""

    source_labels: tuple[str, ...]
    target_label: str
    regex: str = "(.*)"
    replacement: str = "$1"
    separator: str = ";"


@dataclass(frozen=True)
class ParseCri:
    """Unwrap the CRI log format (timestamp, stream, partial flag) around each line."""


@dataclass(frozen=True)
class ParseJson:
    """Parse the line as JSON and extract these top-level fields by name."""

    fields: tuple[str, ...]


@dataclass(frozen=True)
class Drop:
    """Drop lines whose extracted `source` matches the RE2 `expression`."""

    source: str
    expression: str
    reason: str


@dataclass(frozen=True)
class StructuredMetadata:
    """Attach these extracted fields as structured metadata (searchable, not indexed)."""

    fields: tuple[str, ...]


@dataclass(frozen=True)
class Labels:
    """Promote these extracted fields to stream labels."""

    fields: tuple[str, ...]


Stage = Union[ParseCri, ParseJson, Drop, StructuredMetadata, Labels]


@dataclass(frozen=True)
class Pipeline:
    relabels: tuple[Relabel, ...]
    """Discovery target -> stream labels and the file path to tail, in order."""
    stages: tuple[Stage, ...]
    """Processing of each line, in order."""
    namespaces: tuple[str, ...] = ()
    """Namespaces whose pods are discovered; empty: every namespace (monitoring/tenancy.py)."""


# The first non-empty value of the source labels (they are joined with ";").
_FIRST_NON_EMPTY = "^;*([^;]+)(;.*)?$"


def health_check_expression(paths: tuple[str, ...]) -> str:
    """RE2 matching exactly the given request paths, with or without a query string."""
    alternatives = "|".join(re.escape(p) for p in sorted(paths))
    return f"^(?:{alternatives})(?:\\?.*)?$"


def log_pipeline(settings: Settings) -> Pipeline:
    relabels = (
        Relabel(("__meta_kubernetes_namespace",), "namespace"),
        Relabel(("__meta_kubernetes_pod_name",), "pod"),
        Relabel(("__meta_kubernetes_pod_container_name",), "container"),
        # The recommended label first, the older `app` label as fallback.
        Relabel(
            ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_label_app"),
            "app",
            regex=_FIRST_NON_EMPTY,
        ),
        Relabel(
            ("__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"),
            "__path__",
            replacement=POD_LOGS_GLOB,
            separator="/",
        ),
    )
    stages: list[Stage] = [
        ParseCri(),
        ParseJson((LEVEL_FIELD, CORRELATION_ID_FIELD, TRACE_ID_FIELD, PATH_FIELD)),
    ]
    if settings.logging.drop_paths:
        # Early, so that dropped lines cost no further work.
        stages.append(Drop(PATH_FIELD, health_check_expression(settings.logging.drop_paths), HEALTH_CHECK_DROP_REASON))
    stages += [
        StructuredMetadata((CORRELATION_ID_FIELD, TRACE_ID_FIELD)),
        Labels((LEVEL_FIELD,)),
    ]
    return Pipeline(relabels=relabels, stages=tuple(stages), namespaces=log_namespaces(settings))
