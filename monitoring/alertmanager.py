"""Alertmanager configuration and the `alertmanager:` values of kube-prometheus-stack.

The configuration is plain data. Its secret values (Slack webhook URL, PagerDuty routing key,
heartbeat URL) come in as `Receivers`: the Alerting component fills them inside an
`Output.apply` and stores the YAML in a Kubernetes Secret; the render and the tests pass
placeholders. The Helm values only name that Secret, so no secret is ever in Helm values.

Routing (first match wins):
  alertname=Watchdog  -> heartbeat  (dead-man's switch; "null" when no heartbeat URL is set)
  severity=critical   -> pagerduty  (slack when PagerDuty is off)
  severity=warning    -> slack      (muted during `warningMuteIntervals`)
  anything else       -> slack      (info and unlabelled alerts)
Syntax: `matchers`, `source_matchers`, `target_matchers`, top-level `time_intervals`, as the
Alertmanager the chart deploys (0.34, pinned in monitoring/versions.py) and the amtool of the same
version the tests run accept them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import yaml

from config.settings import Settings, TimeInterval
from monitoring import versions, web_auth
from monitoring.helm import container_resources, kubernetes_quantity

PAGERDUTY = "pagerduty"
SLACK = "slack"
HEARTBEAT = "heartbeat"
# A receiver without integrations: what Alertmanager does with an alert nobody must hear about.
NULL = "null"

WATCHDOG = "Watchdog"
TARGET_DOWN = "WebhookTargetDown"
HIGH_ERROR_RATE = "WebhookHighErrorRate"
BUDGET_BURN = "WebhookErrorBudgetBurn"
GROUP_BY = ("alertname", "cluster", "service")
SLACK_TITLE = "Webhook Delivery Alert"

# The heartbeat service expects a ping at least every HEARTBEAT_REPEAT: set its check period to
# that plus a grace of a few minutes. Watchdog never changes, so only repeat_interval re-sends it.
HEARTBEAT_GROUP_INTERVAL = "1m"
HEARTBEAT_REPEAT = "5m"

# One line per alert of the group, resolved ones included: what, how bad, where to look.
SLACK_TEXT = (
    "{{ range .Alerts }}"
    "[{{ .Status | toUpper }}] *{{ .Labels.alertname }}*"
    " ({{ .Labels.severity }}, {{ .Labels.service }}):"
    " {{ with .Annotations.description }}{{ . }}{{ else }}{{ .Annotations.summary }}{{ end }}\n"
    "{{ with .Annotations.runbook_url }}Runbook: {{ . }}\n{{ end }}"
    "{{ end }}"
)

# Events API v2. Alertmanager sends the group key's hash as dedup_key, so one incident per
# (alertname, cluster, service) group, resolved when the group resolves.
PAGERDUTY_DESCRIPTION = (
    "{{ (index .Alerts 0).Annotations.summary }}"
    "{{ if gt (len .Alerts) 1 }} ({{ len .Alerts }} alerts){{ end }}"
)
PAGERDUTY_DETAILS = {
    "cluster": "{{ .CommonLabels.cluster }}",
    "environment": "{{ .CommonLabels.environment }}",
    "namespace": "{{ .CommonLabels.namespace }}",
    "descriptions": "{{ range .Alerts }}{{ .Annotations.description }}\n{{ end }}",
    "runbook_url": "{{ (index .Alerts 0).Annotations.runbook_url }}",
}


# A label selector that matches no object.
NOTHING = {"matchExpressions": [{"key": "webhook-monitoring/none", "operator": "Exists"},
                                {"key": "webhook-monitoring/none", "operator": "DoesNotExist"}]}


@dataclass(frozen=True)
class Receivers:
    """Secret values of the receivers, as plain strings (real ones only inside an Output.apply)."""

    slack_webhook_url: str
    """Slack incoming-webhook URL."""
    pagerduty_routing_key: Optional[str]
    """Events API v2 integration key; None when PagerDuty is off."""
    heartbeat_url: Optional[str]
    """Dead-man's-switch URL Watchdog is posted to; None: Watchdog goes to the "null" receiver."""


def alertmanager_config(settings: Settings, receivers: Receivers) -> dict[str, Any]:
    """The whole Alertmanager configuration as a dict, ready for `render_yaml`."""
    am = settings.alerting.alertmanager
    pagerduty_on = settings.alerting.pagerduty.enabled
    if pagerduty_on != (receivers.pagerduty_routing_key is not None):
        raise ValueError(
            f"alerting.pagerduty.enabled is {pagerduty_on} but the PagerDuty routing key is "
            f"{'missing' if pagerduty_on else 'set'}"
        )
    heartbeat = HEARTBEAT if receivers.heartbeat_url is not None else NULL

    warning_route: dict[str, Any] = {"receiver": SLACK, "matchers": ['severity="warning"']}
    if am.warning_mute_intervals:
        warning_route["mute_time_intervals"] = [str(t.name) for t in am.warning_mute_intervals]

    config: dict[str, Any] = {
        "global": {"resolve_timeout": am.resolve_timeout.text},
        "route": {
            "receiver": SLACK,
            "group_by": list(GROUP_BY),
            "group_wait": am.group_wait.text,
            "group_interval": am.group_interval.text,
            "repeat_interval": am.repeat_interval.text,
            "routes": [
                {
                    "receiver": heartbeat,
                    "matchers": [f'alertname="{WATCHDOG}"'],
                    "group_wait": "0s",
                    "group_interval": HEARTBEAT_GROUP_INTERVAL,
                    "repeat_interval": HEARTBEAT_REPEAT,
                },
                {"receiver": PAGERDUTY if pagerduty_on else SLACK, "matchers": ['severity="critical"']},
                warning_route,
                # Info alerts are for dashboards; the chart's InfoInhibitor relies on them staying quiet.
                {"receiver": NULL, "matchers": ['severity="info"']},
            ],
        },
        "inhibit_rules": inhibit_rules(settings),
        "receivers": _receivers(settings, receivers),
    }
    if am.warning_mute_intervals:
        config["time_intervals"] = [_time_interval(t) for t in am.warning_mute_intervals]
    return config


def inhibit_rules(settings: Settings) -> list[dict[str, Any]]:
    """Alert fatigue prevention. Watchdog is never a target: silencing it would page for nothing.

    The team's own alerts only: the chart's alerts share `service` values (its kubelet monitor
    feeds many unrelated alerts), so a rule over them would silence the unrelated.
    """
    not_watchdog = f'alertname!="{WATCHDOG}"'
    team = f'team="{settings.team_label}"'
    same_service = ("cluster", "namespace", "service")
    return [
        # The page already says it; the warning about the same service adds nothing.
        {
            "source_matchers": ['severity="critical"', team],
            "target_matchers": ['severity="warning"', team, not_watchdog],
            "equal": list(same_service),
        },
        # No scrape, no trustworthy metrics: the target being down is the one alert to act on.
        {
            "source_matchers": [f'alertname="{TARGET_DOWN}"', team],
            "target_matchers": [f'alertname!="{TARGET_DOWN}"', team, not_watchdog],
            "equal": list(same_service),
        },
        # One outage, one page: a high error rate also burns the error budget fast.
        {
            "source_matchers": [f'alertname="{HIGH_ERROR_RATE}"', team],
            "target_matchers": [f'alertname="{BUDGET_BURN}"', 'severity="critical"', team],
            "equal": list(same_service),
        },
    ]


def _receivers(settings: Settings, receivers: Receivers) -> list[dict[str, Any]]:
    slack = {
        "api_url": receivers.slack_webhook_url,
        "channel": str(settings.alerting.alertmanager.slack_channel),
        "title": SLACK_TITLE,
        "text": SLACK_TEXT,
        "send_resolved": True,
    }
    result: list[dict[str, Any]] = [{"name": SLACK, "slack_configs": [slack]}]
    if receivers.pagerduty_routing_key is not None:
        pagerduty = {
            "routing_key": receivers.pagerduty_routing_key,
            "severity": "critical",
            "class": "{{ .CommonLabels.alertname }}",
            "group": "{{ .CommonLabels.cluster }}",
            "component": "{{ .CommonLabels.service }}",
            "description": PAGERDUTY_DESCRIPTION,
            "details": dict(PAGERDUTY_DETAILS),
            "send_resolved": True,
        }
        result.append({"name": PAGERDUTY, "pagerduty_configs": [pagerduty]})
    if receivers.heartbeat_url is not None:
        heartbeat = {"url": receivers.heartbeat_url, "send_resolved": False}
        result.append({"name": HEARTBEAT, "webhook_configs": [heartbeat]})
    # Sends nothing: info alerts, and the Watchdog of a stack without a heartbeat URL.
    result.append({"name": NULL})
    return sorted(result, key=lambda r: r["name"])


def _time_interval(interval: TimeInterval) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if interval.weekdays:
        spec["weekdays"] = [str(day) for day in interval.weekdays]
    if interval.times:
        spec["times"] = [dict(zip(("start_time", "end_time"), span.split("-"))) for span in interval.times]
    return {"name": str(interval.name), "time_intervals": [spec]}


def render_yaml(config: dict[str, Any]) -> str:
    """The configuration as Alertmanager reads it; keys sorted so the output is stable."""
    return yaml.safe_dump(config, sort_keys=True, default_flow_style=False, allow_unicode=True)


def helm_values(
    settings: Settings,
    config_secret_name: str,
    storage_class_name: str,
) -> dict[str, Any]:
    """The `alertmanager:` section of the kube-prometheus-stack values.

    The configuration comes from `config_secret_name` (key `alertmanager.yaml`), which the
    Alerting component creates; `useExistingSecret` stops the chart rendering its own secret
    from `alertmanager.config`, which is therefore never set.
    """
    am = settings.alerting.alertmanager
    clustered = am.replicas > 1
    spec: dict[str, Any] = {
        # What the tests run (tools/go_tools.py builds the same version), not whatever the chart picks.
        "image": {"tag": versions.ALERTMANAGER_IMAGE_TAG},
        "replicas": am.replicas,
        "retention": am.retention.hours,
        "configSecret": config_secret_name,
        "useExistingSecret": True,
        "storage": {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage_class_name,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": kubernetes_quantity(am.volume_size)}},
                }
            }
        },
        "resources": container_resources(am.resources),
        # The routing is the program's Secret alone: no AlertmanagerConfig object, whoever creates it
        # and wherever, is merged in. The chart turns an empty selector into "select all", so the
        # selector is one no object can satisfy (a key both present and absent).
        "alertmanagerConfigSelector": NOTHING,
        "alertmanagerConfigNamespaceSelector": NOTHING,
    }
    # Reached from the network only through the authenticating proxy (monitoring/web_auth.py); the
    # Operator probes no Alertmanager that listens locally, so the probes come with it.
    spec["listenLocal"] = True
    spec["containers"] = [
        web_auth.sidecar(web_auth.ALERTMANAGER),
        {"name": "alertmanager", "livenessProbe": web_auth.local_probe(web_auth.ALERTMANAGER, "/-/healthy"),
         "readinessProbe": web_auth.local_probe(web_auth.ALERTMANAGER, "/-/ready")},
    ]
    spec["volumes"] = web_auth.sidecar_volumes(web_auth.ALERTMANAGER)
    if clustered:
        # Replicas gossip notifications and silences; two on one node would fail together.
        spec["podAntiAffinity"] = "hard"
        spec["podAntiAffinityTopologyKey"] = "kubernetes.io/hostname"
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}},
                # The operator labels each pod alertmanager=<its Alertmanager's name>.
                "matchLabelKeys": ["alertmanager"],
            }
        ]
    return {
        "enabled": True,
        "alertmanagerSpec": spec,
        "service": {"targetPort": web_auth.ALERTMANAGER.proxy_port},
        "serviceMonitor": {"selfMonitor": False},
        # Drains take one replica at a time; a single replica gets no budget so nodes can drain.
        "podDisruptionBudget": {"enabled": True, "minAvailable": am.replicas - 1} if clustered else {"enabled": False},
    }
