"""Grafana Alloy configuration (Alloy config syntax) rendered from the log pipeline description.

Each Alloy pod of the DaemonSet discovers the pods of its own node, tails their log files from
the host's /var/log/pods, runs the pipeline stages and pushes to Loki.
"""

from __future__ import annotations

import json
from typing import Mapping

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


def _string(value: str) -> str:
    # JSON string escapes are a subset of Alloy's double-quoted string escapes.
    return json.dumps(value)


def _strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_string(v) for v in values) + "]"


def _map(values: Mapping[str, str], indent: str) -> str:
    inner = "".join(f"{indent}  {key} = {_string(value)},\n" for key, value in values.items())
    return "{\n" + inner + indent + "}"


def _block(header: str, lines: list[str], indent: str = "") -> str:
    body = "".join(f"{indent}  {line}\n" for line in lines)
    return f"{indent}{header} {{\n{body}{indent}}}\n"


def _relabel_rule(rule: Relabel) -> str:
    return _block(
        "rule",
        [
            f"source_labels = {_strings(rule.source_labels)}",
            f"separator     = {_string(rule.separator)}",
            f"regex         = {_string(rule.regex)}",
            f"target_label  = {_string(rule.target_label)}",
            f"replacement   = {_string(rule.replacement)}",
            'action        = "replace"',
        ],
        indent="  ",
    )


def _stage(stage: Stage) -> str:
    indent = "  "
    if isinstance(stage, ParseCri):
        return f"{indent}stage.cri {{}}\n"
    if isinstance(stage, ParseJson):
        expressions = {field: field for field in stage.fields}
        return _block("stage.json", [f"expressions = {_map(expressions, indent * 2)}"], indent)
    if isinstance(stage, Drop):
        return _block(
            "stage.drop",
            [
                f"source              = {_string(stage.source)}",
                f"expression          = {_string(stage.expression)}",
                f"drop_counter_reason = {_string(stage.reason)}",
            ],
            indent,
        )
    if isinstance(stage, StructuredMetadata):
        values = {field: field for field in stage.fields}
        return _block("stage.structured_metadata", [f"values = {_map(values, indent * 2)}"], indent)
    if isinstance(stage, Labels):
        values = {field: field for field in stage.fields}
        return _block("stage.labels", [f"values = {_map(values, indent * 2)}"], indent)
    raise TypeError(f"no Alloy rendering for pipeline stage {stage!r}")


def alloy_config(settings: Settings, loki_push_url: str) -> str:
    """The whole Alloy configuration file."""
    pipeline = log_pipeline(settings)
    parts = [
        "// Rendered by monitoring/logging/alloy.py from monitoring/logging/pipeline.py.\n",
        # Only this node's pods: every node runs its own Alloy (HOSTNAME is the node name); and, on a
        # shared cluster, only the team's namespaces.
        'discovery.kubernetes "pods" {\n'
        '  role = "pod"\n'
        + (f"  namespaces {{\n    names = {_strings(pipeline.namespaces)}\n  }}\n" if pipeline.namespaces else "")
        + "  selectors {\n"
        '    role  = "pod"\n'
        '    field = "spec.nodeName=" + sys.env("HOSTNAME")\n'
        "  }\n"
        "}\n",
        'discovery.relabel "pod_logs" {\n'
        "  targets = discovery.kubernetes.pods.targets\n"
        + "".join(_relabel_rule(rule) for rule in pipeline.relabels)
        + "}\n",
        'local.file_match "pod_logs" {\n'
        "  path_targets = discovery.relabel.pod_logs.output\n"
        "}\n",
        'loki.source.file "pod_logs" {\n'
        "  targets    = local.file_match.pod_logs.targets\n"
        "  forward_to = [loki.process.pod_logs.receiver]\n"
        "}\n",
        'loki.process "pod_logs" {\n'
        + "".join(_stage(stage) for stage in pipeline.stages)
        + "  forward_to = [loki.write.loki.receiver]\n"
        "}\n",
        'loki.write "loki" {\n'
        "  endpoint {\n"
        f"    url = {_string(loki_push_url)}\n"
        "  }\n"
        "}\n",
    ]
    return "\n".join(parts)
