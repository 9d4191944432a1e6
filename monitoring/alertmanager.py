"""Alertmanager configuration (its chart values: monitoring/helm/kube_prometheus_stack.py).

The configuration is plain data. Its secret values (Slack webhook URLs, PagerDuty routing keys,
heartbeat URL) come in as `Receivers`: the Alerting component fills them inside an
`Output.apply` and stores the YAML in a Kubernetes Secret; the render and the tests pass
placeholders. The Helm values only name that Secret, so no secret is ever in Helm values.

Routing (first match wins):
  alertname=Watchdog                 -> heartbeat  (dead-man's switch; "null" when no heartbeat URL is set)
  severity=none, alertname=InfoInhibitor -> null   (the chart's InfoInhibitor exists to be routed nowhere)
  alertname=<one of a route's alerts> -> that route's receiver (`alerting.routes`, in order; on to the
               routes below too with `continue`)
  team=<team>  (the team's rules, and the charts' Prometheus and Alertmanager alerts, which guard
               the team's alerting pipeline)
      Alertmanager failing to notify through PagerDuty -> slack; through Slack -> pagerduty
      severity=critical -> pagerduty (slack when PagerDuty is off; copied to Slack in prod)
      severity=warning  -> slack     (muted during `warningMuteIntervals`)
      severity=info     -> null
      anything else     -> slack
  anything else (the cluster's alerts: nodes, kubelet, storage, ...) -> platform
      severity=critical -> platform-pagerduty when its routing key is set
      severity=info     -> null
      anything else     -> platform (its Slack channel; without one, the team's, marked "[platform]")
Notification content: monitoring/notifications.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import yaml

from config.settings import Settings, TimeInterval
from config.schema import PROJECT
from monitoring import notifications

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
INFO_INHIBITOR = "InfoInhibitor"
# The chart's alerts on Alertmanager failing to deliver, labelled with the failing `integration`.
NOTIFIER_FAILURES = "AlertmanagerFailedToSendAlerts|AlertmanagerClusterFailedToSendAlerts"
PLATFORM = "platform"
PLATFORM_PAGERDUTY = "platform-pagerduty"
# The program's own receivers: a receiver of `alerting.receivers` takes another name.
PROGRAM_RECEIVERS = (SLACK, PAGERDUTY, PLATFORM, PLATFORM_PAGERDUTY, HEARTBEAT, NULL)
# What the cluster's alerts say first when they share the team's Slack channel.
PLATFORM_MARK = "[platform] "

# The heartbeat service expects a ping at least every HEARTBEAT_REPEAT: set its check period to
# that plus a grace of a few minutes. Watchdog never changes, so only repeat_interval re-sends it.
HEARTBEAT_GROUP_INTERVAL = "1m"
HEARTBEAT_REPEAT = "5m"


# A label selector that matches no object.
NOTHING = {"matchExpressions": [{"key": f"{PROJECT}/none", "operator": "Exists"},
                                {"key": f"{PROJECT}/none", "operator": "DoesNotExist"}]}


@dataclass(frozen=True)
class Receivers:
    """Secret values of the receivers, as plain strings (real ones only inside an Output.apply)."""

    slack_webhook_url: str
    """Slack incoming-webhook URL of the team's channel."""
    pagerduty_routing_key: Optional[str]
    """Events API v2 integration key; None when PagerDuty is off."""
    heartbeat_url: Optional[str]
    """Dead-man's-switch URL Watchdog is posted to; None: Watchdog goes to the "null" receiver."""
    platform_slack_webhook_url: Optional[str] = None
    """Slack incoming-webhook URL of the platform channel; None: the platform has no channel of its own, and
    its alerts go to the team's, marked as the platform's."""
    platform_pagerduty_routing_key: Optional[str] = None
    """Routing key of the platform's PagerDuty service; None: the cluster's critical alerts go to Slack."""
    named: Mapping[str, str] = field(default_factory=dict)
    """The secret of each receiver of `alerting.receivers` (the `receiverSecrets` secret): its Slack
    incoming-webhook URL or its PagerDuty routing key, by receiver name."""


def alertmanager_config(settings: Settings, receivers: Receivers) -> dict[str, Any]:
    """The whole Alertmanager configuration as a dict, ready for `render_yaml`."""
    am = settings.alerting.alertmanager
    pagerduty_on = settings.alerting.pagerduty.enabled
    if pagerduty_on != (receivers.pagerduty_routing_key is not None):
        raise ValueError(
            f"alerting.pagerduty.enabled is {pagerduty_on} but the PagerDuty routing key is "
            f"{'missing' if pagerduty_on else 'set'}"
        )
    warning_route: dict[str, Any] = {"receiver": SLACK, "matchers": ['severity="warning"']}
    if am.warning_mute_intervals:
        warning_route["mute_time_intervals"] = [str(t.name) for t in am.warning_mute_intervals]
    platform_critical = [{"receiver": PLATFORM_PAGERDUTY, "matchers": ['severity="critical"']}] \
        if receivers.platform_pagerduty_routing_key is not None else []
    chosen = [{"receiver": str(route.receiver), "matchers": [_alertname(route.alerts)],
               **({"continue": True} if route.continue_ else {})} for route in settings.alerting.routes]

    config: dict[str, Any] = {
        "global": {"resolve_timeout": am.resolve_timeout.text},
        "route": {
            "receiver": PLATFORM,
            "group_by": list(GROUP_BY),
            "group_wait": am.group_wait.text,
            "group_interval": am.group_interval.text,
            "repeat_interval": am.repeat_interval.text,
            "routes": [
                {
                    "receiver": HEARTBEAT if receivers.heartbeat_url is not None else NULL,
                    "matchers": [f'alertname="{WATCHDOG}"'],
                    "group_wait": "0s",
                    "group_interval": HEARTBEAT_GROUP_INTERVAL,
                    "repeat_interval": HEARTBEAT_REPEAT,
                },
                # The chart's InfoInhibitor (severity none) fires whenever an info alert does, to
                # inhibit it: it is routed nowhere, as anything else of severity none.
                {"receiver": NULL, "matchers": ['severity="none"']},
                {"receiver": NULL, "matchers": [f'alertname="{INFO_INHIBITOR}"']},
                *chosen,
                {
                    "receiver": SLACK,
                    "matchers": [f'team="{settings.team_label}"'],
                    "routes": [
                        # A failing notifier cannot report its own failure: PagerDuty's go to Slack,
                        # Slack's page (the heartbeat covers Alertmanager failing altogether).
                        {"receiver": SLACK, "matchers": [f'alertname=~"{NOTIFIER_FAILURES}"', 'integration="pagerduty"']},
                        *([{"receiver": PAGERDUTY, "matchers": [f'alertname=~"{NOTIFIER_FAILURES}"', 'integration="slack"']}]
                          if pagerduty_on else []),
                        {"receiver": PAGERDUTY if pagerduty_on else SLACK, "matchers": ['severity="critical"']},
                        warning_route,
                        # Info alerts are for dashboards; the chart's InfoInhibitor relies on them staying quiet.
                        {"receiver": NULL, "matchers": ['severity="info"']},
                    ],
                },
                # What is left is the cluster's: the platform's receivers, never the team's.
                {
                    "receiver": PLATFORM,
                    "matchers": [f'team!="{settings.team_label}"'],
                    "routes": [*platform_critical, {"receiver": NULL, "matchers": ['severity="info"']}],
                },
            ],
        },
        "inhibit_rules": inhibit_rules(settings),
        "receivers": _receivers(settings, receivers),
    }
    if am.warning_mute_intervals:
        config["time_intervals"] = [_time_interval(t) for t in am.warning_mute_intervals]
    return config


def _alertname(alerts: tuple[str, ...]) -> str:
    """The matcher of alerts by name (names are letters, digits and `_`: nothing to escape)."""
    return f'alertname="{alerts[0]}"' if len(alerts) == 1 else f'alertname=~"{"|".join(alerts)}"'


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
    am, platform = settings.alerting.alertmanager, settings.alerting.platform
    team_slack = notifications.slack_config(settings, receivers.slack_webhook_url, str(am.slack_channel))
    if receivers.platform_slack_webhook_url is not None:
        platform_slack = notifications.slack_config(
            settings, receivers.platform_slack_webhook_url, str(platform.slack_channel or am.slack_channel),
            service_links=False)
    else:
        # One webhook posts to one channel (a Slack app's ignores `channel`): the team's, marked.
        platform_slack = notifications.slack_config(settings, receivers.slack_webhook_url, str(am.slack_channel),
                                                    service_links=False, title_prefix=PLATFORM_MARK)
    result = [
        notifications.receiver(SLACK, slack=team_slack),
        notifications.receiver(PLATFORM, slack=platform_slack),
        # Sends nothing: info alerts, InfoInhibitor, and the Watchdog of a stack without a heartbeat URL.
        notifications.receiver(NULL),
    ]
    if receivers.pagerduty_routing_key is not None:
        result.append(notifications.receiver(
            PAGERDUTY, pagerduty=notifications.pagerduty_config(settings, receivers.pagerduty_routing_key),
            slack=team_slack if am.copy_pages_to_slack else None))
    if receivers.platform_pagerduty_routing_key is not None:
        result.append(notifications.receiver(
            PLATFORM_PAGERDUTY,
            pagerduty=notifications.pagerduty_config(settings, receivers.platform_pagerduty_routing_key, service_links=False)))
    if receivers.heartbeat_url is not None:
        result.append(notifications.receiver(HEARTBEAT, webhook=notifications.heartbeat_config(receivers.heartbeat_url)))
    for named in settings.alerting.receivers:
        secret = receivers.named.get(str(named.name))
        if secret is None:
            raise ValueError(f"receiver {named.name} of alerting.receivers has no secret")
        result.append(notifications.receiver(str(named.name), pagerduty=notifications.pagerduty_config(settings, secret))
                      if named.pagerduty else
                      notifications.receiver(str(named.name), slack=notifications.slack_config(settings, secret,
                                                                                              str(named.slack_channel))))
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
