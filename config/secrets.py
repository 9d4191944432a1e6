"""Secret config keys: top-level, set with `pulumi config set --secret`, never in settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from config.settings import Settings


@dataclass(frozen=True)
class SecretKey:
    name: str
    """Key under the `webhook-monitoring:` namespace."""
    doc: str
    required: Callable[[Settings], bool]
    """Whether the stack needs it, given its settings."""
    required_when: str
    """The same rule, in words, for the configuration reference."""
    example: str


SECRET_KEYS = (
    SecretKey(
        "slackWebhookUrl",
        "Slack incoming-webhook URL for warnings (and critical alerts when PagerDuty is off).",
        lambda s: True,
        "always",
        "https://hooks.slack.com/services/T000/B000/XXXX",
    ),
    SecretKey(
        "pagerdutyToken",
        "PagerDuty REST API token the PagerDuty provider uses to create the service and integration.",
        lambda s: s.alerting.pagerduty.enabled,
        "when `alerting.pagerduty.enabled` is true",
        "u+abcdefghijklmnopqrs",
    ),
    SecretKey(
        "pagerdutyUserToken",
        "PagerDuty user-level API token; the PagerDuty Slack connection can only be made with one.",
        lambda s: s.alerting.pagerduty.enabled and s.alerting.pagerduty.slack_workspace_id is not None,
        "when `alerting.pagerduty.slackWorkspaceId` is set",
        "u+userlevelapitoken",
    ),
    SecretKey(
        "heartbeatUrl",
        "Dead-man's-switch URL the always-firing Watchdog alert is sent to (required in prod).",
        lambda s: s.is_prod,
        "in prod",
        "https://hc-ping.com/00000000-0000-0000-0000-000000000000",
    ),
    SecretKey(
        "platformSlackWebhookUrl",
        "Slack incoming-webhook URL of the platform channel (`alerting.platform.slackChannel`); unset: "
        "the team's webhook URL, with the channel named.",
        lambda s: False,
        "optional",
        "https://hooks.slack.com/services/T000/B111/YYYY",
    ),
    SecretKey(
        "platformPagerdutyRoutingKey",
        "Events API v2 routing key of the platform team's PagerDuty service; when set, the cluster's "
        "critical alerts page it (unset: they go to the platform Slack channel).",
        lambda s: False,
        "optional",
        "R0UT1NGKEYOFTHEPLATFORMSERVICE",
    ),
    SecretKey(
        "grafanaOauthClientSecret",
        "OAuth client secret for Grafana SSO.",
        lambda s: s.grafana.sso is not None,
        "when `grafana.sso` is set",
        "s3cr3t",
    ),
)


@dataclass(frozen=True)
class Secrets:
    """Secret values (Pulumi secret outputs); None where the stack does not use one."""

    slack_webhook_url: Any
    pagerduty_token: Any
    pagerduty_user_token: Any
    heartbeat_url: Any
    platform_slack_webhook_url: Any
    platform_pagerduty_routing_key: Any
    grafana_oauth_client_secret: Any


def secret_field(key: SecretKey) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in key.name)
