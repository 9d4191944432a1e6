"""PagerDuty on-call resources and the Secret holding the Alertmanager configuration.

With PagerDuty on: an escalation policy (or an existing one), a service with high, constant
urgency, and an Events API v2 integration whose key becomes the Alertmanager `routing_key`;
optionally a PagerDuty Slack connection. Always: a Secret (key `alertmanager.yaml`) that
kube-prometheus-stack's Alertmanager reads through `alertmanagerSpec.configSecret`. Every
secret value reaches the Secret through outputs, inside one `apply`; the Secret is secret.
The Kubernetes provider comes through `opts`; the PagerDuty provider is made here, from the
tokens in the args, since nothing else talks to PagerDuty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_pagerduty as pagerduty

from config.types import Duration
from config.secrets import receiver_secrets
from config.settings import PagerDutySettings, Settings
from monitoring.alertmanager import Receivers, alertmanager_config, render_yaml
from monitoring import PART_OF

CONFIG_KEY = "alertmanager.yaml"
# What the PagerDuty Slack connection posts: the incident's life, not every note on it.
SLACK_CONNECTION_EVENTS = (
    "incident.triggered",
    "incident.acknowledged",
    "incident.escalated",
    "incident.resolved",
    "incident.reopened",
)


@dataclass(frozen=True)
class AlertingArgs:
    settings: Settings
    """The stack settings: `alerting` (routing, timings, PagerDuty) and `team_label` are read."""
    namespace: pulumi.Input[str]
    """Namespace of Alertmanager, where the configuration Secret goes."""
    slack_webhook_url: pulumi.Input[str]
    """Slack incoming-webhook URL (a secret output)."""
    heartbeat_url: Optional[pulumi.Input[str]] = None
    """Dead-man's-switch URL for Watchdog (a secret output); None: Watchdog goes nowhere."""
    pagerduty_token: Optional[pulumi.Input[str]] = None
    """PagerDuty REST API token (a secret output); required when PagerDuty is on."""
    pagerduty_user_token: Optional[pulumi.Input[str]] = None
    """PagerDuty user-level token (a secret output); the Slack connection needs it."""
    platform_slack_webhook_url: Optional[pulumi.Input[str]] = None
    """Slack webhook of the platform channel (a secret output); None: the team's webhook, channel named."""
    platform_pagerduty_routing_key: Optional[pulumi.Input[str]] = None
    """Routing key of the platform's PagerDuty service (a secret output); None: no platform paging."""
    receiver_secrets: Optional[pulumi.Input[str]] = None
    """The secrets of `alerting.receivers` as JSON, receiver -> webhook URL or routing key (a secret output);
    None when the stack names no receiver of its own."""


def pagerduty_timeout(timeout: Optional[Duration]) -> str:
    """PagerDuty service timeouts are whole seconds as a string; "null" turns one off."""
    return "null" if timeout is None else str(int(timeout.seconds))


class Alerting(pulumi.ComponentResource):
    config_secret_name: pulumi.Output[str]
    """Name of the Secret to give `alertmanager.alertmanagerSpec.configSecret`."""
    pagerduty_integration_key: Optional[pulumi.Output[str]]
    """Events API v2 routing key (secret); None when PagerDuty is off."""
    pagerduty_service_id: Optional[pulumi.Output[str]]
    """ID of the PagerDuty service; None when PagerDuty is off."""

    def __init__(self, name: str, args: AlertingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:alerting:Alerting", name, None, opts)
        settings = args.settings
        pd = settings.alerting.pagerduty
        self.pagerduty_integration_key = None
        self.pagerduty_service_id = None
        if pd.enabled:
            if args.pagerduty_token is None:
                raise ValueError(f"Alerting {name}: PagerDuty is on but no pagerduty_token was given")
            provider = pagerduty.Provider(
                f"{name}-pagerduty",
                token=args.pagerduty_token,
                user_token=args.pagerduty_user_token,
                opts=pulumi.ResourceOptions(parent=self),
            )
            on_pagerduty = pulumi.ResourceOptions(parent=self, provider=provider)
            # Deleting a PagerDuty service deletes its incidents: the history of every page.
            kept_on_pagerduty = pulumi.ResourceOptions(parent=self, provider=provider, protect=settings.protect)
            policy_id = pd.escalation_policy_id or self._escalation_policy(name, pd, provider, settings.protect).id
            service = pagerduty.Service(
                f"{name}-pagerduty-service",
                name=pd.service_name,
                escalation_policy=policy_id,
                incident_urgency_rule=pagerduty.ServiceIncidentUrgencyRuleArgs(type="constant", urgency="high"),
                auto_resolve_timeout=pagerduty_timeout(pd.auto_resolve_timeout),
                acknowledgement_timeout=pagerduty_timeout(pd.acknowledgement_timeout),
                opts=kept_on_pagerduty,
            )
            integration = pagerduty.ServiceIntegration(
                f"{name}-pagerduty-events",
                name="Alertmanager",
                service=service.id,
                type="events_api_v2_inbound_integration",
                # The provider does not mark the key secret; it is a credential.
                opts=pulumi.ResourceOptions.merge(on_pagerduty, pulumi.ResourceOptions(additional_secret_outputs=["integration_key"])),
            )
            if pd.slack_workspace_id is not None:
                pagerduty.SlackConnection(
                    f"{name}-pagerduty-slack",
                    source_id=service.id,
                    source_type="service_reference",
                    workspace_id=pd.slack_workspace_id,
                    channel_id=pd.slack_channel_id,
                    notification_type="responder",
                    configs=[pagerduty.SlackConnectionConfigArgs(events=list(SLACK_CONNECTION_EVENTS))],
                    opts=on_pagerduty,
                )
            self.pagerduty_integration_key = pulumi.Output.secret(integration.integration_key)
            self.pagerduty_service_id = service.id

        config_yaml = pulumi.Output.all(
            slack_webhook_url=args.slack_webhook_url,
            pagerduty_routing_key=self.pagerduty_integration_key,
            heartbeat_url=args.heartbeat_url,
            platform_slack_webhook_url=args.platform_slack_webhook_url,
            platform_pagerduty_routing_key=args.platform_pagerduty_routing_key,
            named=pulumi.Output.from_input(args.receiver_secrets).apply(lambda text: receiver_secrets(text) or {}),
        ).apply(lambda values: render_yaml(alertmanager_config(settings, Receivers(**values))))
        secret_name = f"{name}-alertmanager-config"
        config_secret = k8s.core.v1.Secret(
            secret_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                # A fixed name: the Helm values refer to it.
                name=secret_name,
                namespace=args.namespace,
                labels={"team": settings.team_label, **PART_OF},
            ),
            type="Opaque",
            string_data={CONFIG_KEY: pulumi.Output.secret(config_yaml)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.config_secret_name = config_secret.metadata.name
        self.register_outputs(
            {
                "config_secret_name": self.config_secret_name,
                "pagerduty_integration_key": self.pagerduty_integration_key,
                "pagerduty_service_id": self.pagerduty_service_id,
            }
        )

    def _escalation_policy(
        self, name: str, pd: PagerDutySettings, provider: pagerduty.Provider, protect: bool
    ) -> pagerduty.EscalationPolicy:
        """One level per schedule, then per user, in the configured order: each paged in turn."""
        lookup = pulumi.InvokeOutputOptions(parent=self, provider=provider)
        targets = [
            pagerduty.EscalationPolicyRuleTargetArgs(
                type="schedule_reference", id=pagerduty.get_schedule_output(name=schedule, opts=lookup).id
            )
            for schedule in pd.escalation_schedules
        ] + [
            pagerduty.EscalationPolicyRuleTargetArgs(
                type="user_reference", id=pagerduty.get_user_output(email=email, opts=lookup).id
            )
            for email in pd.escalation_users
        ]
        # PagerDuty takes whole minutes, at least one.
        delay_minutes = max(1, int(pd.escalation_delay.seconds // 60))
        return pagerduty.EscalationPolicy(
            f"{name}-escalation-policy",
            name=pd.service_name,
            description=f"Pages for {pd.service_name}, created by webhook-monitoring.",
            rules=[
                pagerduty.EscalationPolicyRuleArgs(escalation_delay_in_minutes=delay_minutes, targets=[target])
                for target in targets
            ],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=protect),
        )
