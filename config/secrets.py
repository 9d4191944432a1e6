"""Secret config keys: top-level, set with `pulumi config set --secret`, never in settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

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
    check: Optional[Callable[[Settings, str], list[str]]] = None
    """What is wrong with a value, given the settings (never echoing it): `<what>, expected <what>`."""
    placeholder: Optional[Callable[[Settings], str]] = None
    """A stand-in of the right shape for the offline render (None: any text)."""


def federated_clusters(s: Settings) -> list[str]:
    """The federation sources whose credentials the program puts in a Secret from the `federationCredentials`
    secret: those naming a Secret and no source stack (whose output gives them instead)."""
    return [str(f.cluster) for f in s.metrics.federation if f.credentials_secret and f.stack is None]


def platform_channel_of_its_own(s: Settings) -> bool:
    """Whether the cluster's alerts go to a Slack channel other than the team's (a webhook URL of its own)."""
    return s.alerting.platform.slack_channel not in (None, s.alerting.alertmanager.slack_channel)


FEDERATION_CREDENTIALS_SHAPE = '{"<cluster>": {"username": "...", "password": "..."}}'


def federation_credentials(text: str) -> Optional[dict[str, dict[str, str]]]:
    """The `federationCredentials` secret, cluster -> {username, password}; None when it is not that."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    ok = isinstance(value, dict) and all(
        isinstance(v, dict) and set(v) == {"username", "password"} and all(isinstance(x, str) and x for x in v.values())
        for v in value.values())
    return value if ok else None


def _federation_credentials_problems(s: Settings, text: str) -> list[str]:
    credentials = federation_credentials(text)
    if credentials is None:
        return [f"not a JSON object of that shape, expected {FEDERATION_CREDENTIALS_SHAPE}"]
    return [f"no entry for cluster {cluster!r} (its metrics.federation entry names a credentialsSecret), expected "
            f"{FEDERATION_CREDENTIALS_SHAPE}" for cluster in federated_clusters(s) if cluster not in credentials]


RECEIVER_SECRETS_SHAPE = '{"<receiver>": "<Slack incoming-webhook URL, or PagerDuty Events API v2 routing key>"}'


def receiver_secrets(text: str) -> Optional[dict[str, str]]:
    """The `receiverSecrets` secret, receiver -> its webhook URL or routing key; None when it is not that."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    ok = isinstance(value, dict) and all(isinstance(v, str) and v for v in value.values())
    return value if ok else None


def _receiver_secrets_problems(s: Settings, text: str) -> list[str]:
    secrets = receiver_secrets(text)
    if secrets is None:
        return [f"not a JSON object of that shape, expected {RECEIVER_SECRETS_SHAPE}"]
    receivers = {str(r.name): r for r in s.alerting.receivers}
    problems = [f"no entry for receiver {name!r} (alerting.receivers names it), expected {RECEIVER_SECRETS_SHAPE}"
                for name in receivers if name not in secrets]
    problems += [f"an entry for {name!r}, which alerting.receivers does not name, expected one entry per receiver"
                 for name in secrets if name not in receivers]
    problems += [f"the entry of Slack receiver {name!r} is not an https:// URL, expected its incoming-webhook URL"
                 for name, value in secrets.items()
                 if name in receivers and not receivers[name].pagerduty and not value.startswith("https://")]
    return problems


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
        "federationCredentials",
        "The basic-auth credentials of each federation source that names a `credentialsSecret`, as JSON "
        f"`{FEDERATION_CREDENTIALS_SHAPE}`; the program writes each into that Secret.",
        lambda s: bool(federated_clusters(s)),
        "when a `metrics.federation` entry names a `credentialsSecret`",
        '{"webhook-prod-euw1": {"username": "federation", "password": "..."}}',
        check=_federation_credentials_problems,
        placeholder=lambda s: json.dumps({cluster: {"username": "federation", "password": f"<secret password of {cluster}>"}
                                          for cluster in federated_clusters(s)}),
    ),
    SecretKey(
        "platformSlackWebhookUrl",
        "Slack incoming-webhook URL of the platform channel (`alerting.platform.slackChannel`): a Slack app's "
        "webhook posts only to the channel it was made for.",
        platform_channel_of_its_own,
        "when `alerting.platform.slackChannel` names a channel other than `alerting.alertmanager.slackChannel`",
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
        "receiverSecrets",
        "The secret of each receiver of `alerting.receivers`, as JSON "
        f"`{RECEIVER_SECRETS_SHAPE}`: one secret key for them all, so that adding a receiver adds an entry, not "
        "a key the program must know.",
        lambda s: bool(s.alerting.receivers),
        "when `alerting.receivers` is set",
        '{"payments-oncall": "https://hooks.slack.com/services/T000/B222/ZZZZ"}',
        check=_receiver_secrets_problems,
        placeholder=lambda s: json.dumps({str(r.name): f"<secret routing key of {r.name}>" if r.pagerduty
                                          else f"https://secret.invalid/receiverSecrets/{r.name}"
                                          for r in s.alerting.receivers}),
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
    federation_credentials: Any
    receiver_secrets: Any
    grafana_oauth_client_secret: Any


def secret_field(key: SecretKey) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in key.name)
