"""Helm values of the log agent charts: Grafana Alloy (default) and Promtail (end of life).

Both run as a DaemonSet that tolerates every taint, so every node's pod logs are collected,
and read the host's /var/log/pods.
"""

from __future__ import annotations

from typing import Any

import yaml

from config import Settings, naming
from monitoring.pods import container_resources, small_resources
from monitoring.logging.promtail import PROMTAIL_PORT

# One toleration with no key and operator Exists tolerates every taint.
TOLERATE_EVERY_TAINT = [{"operator": "Exists"}]


# Read positions on the host, like Promtail's /run/promtail: a restarted pod resumes where it
# stopped instead of sending every file again.
ALLOY_DATA_VOLUME = "alloy-data"
ALLOY_DATA_PATH = "/var/lib/alloy"


# Alloy reads /var/log/pods (files root owns, mode 0640) as root, but with no capability at all:
# the owner's read bit is all it needs, and nothing lets it escalate.
AGENT_CONTAINER = {
    "runAsUser": 0,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# What the pipeline uses of the Kubernetes API: pod discovery (on its own node). The chart's role
# also reads every ConfigMap and Secret of the cluster, for components this pipeline never runs, and
# its template cannot render a shorter list: the Logging component grants this instead.
ALLOY_RULES = ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},)
ALLOY_SERVICE_ACCOUNT = "alloy"


def alloy_values(settings: Settings, config_text: str) -> dict[str, Any]:
    return {
        # The chart's PodLogs CRD serves a discovery this pipeline does not use, and a cluster has one of
        # it: another stack's or the platform's Alloy brings it too. The deployed stacks keep theirs (a
        # CRD removed from a release takes every object of its kind: tools/diff.py).
        **({} if naming.legacy(settings) else {"crds": {"create": False}}),
        "rbac": {"create": False},
        "serviceAccount": {"create": True, "name": ALLOY_SERVICE_ACCOUNT},
        "configReloader": {"resources": small_resources("10m", "50Mi", "128Mi")},
        "controller": {
            "type": "daemonset",
            "tolerations": TOLERATE_EVERY_TAINT,
            "volumes": {
                "extra": [{"name": ALLOY_DATA_VOLUME, "hostPath": {"path": ALLOY_DATA_PATH, "type": "DirectoryOrCreate"}}]
            },
        },
        "alloy": {
            "configMap": {"create": True, "content": config_text},
            "mounts": {"varlog": True, "extra": [{"name": ALLOY_DATA_VOLUME, "mountPath": ALLOY_DATA_PATH}]},
            "storagePath": ALLOY_DATA_PATH,
            "enableReporting": False,
            "resources": container_resources(settings.logging.agent_resources),
            "securityContext": AGENT_CONTAINER,
            "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": 12345}, "initialDelaySeconds": 10},
        },
        "serviceMonitor": {"enabled": True, "additionalLabels": {"team": settings.team_label}},
    }


def promtail_values(settings: Settings, config: dict[str, Any]) -> dict[str, Any]:
    """The chart names its ClusterRole after its fullname: one no other stack of the cluster has."""
    return {
        **({} if naming.legacy(settings) else {"fullnameOverride": f"{naming.instance(settings)}-promtail"}),
        "daemonset": {"enabled": True},
        "deployment": {"enabled": False},
        "config": {
            # The chart renders `config.file` as the whole configuration; ours replaces its template.
            "serverPort": PROMTAIL_PORT,
            "file": yaml.safe_dump(config, sort_keys=True),
        },
        "tolerations": TOLERATE_EVERY_TAINT,
        "resources": container_resources(settings.logging.agent_resources),
        "containerSecurityContext": {**AGENT_CONTAINER, "readOnlyRootFilesystem": True},
        "serviceMonitor": {"enabled": True, "labels": {"team": settings.team_label}},
    }
