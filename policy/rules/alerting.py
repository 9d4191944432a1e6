"""Where alerts go: Slack's incoming webhooks and PagerDuty's Events API v2 and REST API rules.

Sources (docs/platform-rules.md gives the quotes):
- Slack, https://api.slack.com/messaging/webhooks: an app's incoming webhook posts to the channel it
  was installed for; "You cannot override the default channel (chosen by the user who installed your
  app), username, or icon when you're using Incoming Webhooks".
- PagerDuty developer-docs `docs/events-API-v2/02-Trigger-Events.md`: `payload.summary` "The maximum
  permitted length of this property is 1024 characters", `dedup_key` 255. Alertmanager v0.34.0
  `notify/pagerduty/pagerduty.go` renders the summary from `description` and cuts it to 1,024 runes;
  its dedup key is the SHA-256 of the group key (64 characters) and no setting changes it.
- PagerDuty REST API: a second service or escalation policy of an existing name is refused ("Name has
  already been taken"; `docs/REST-API/14-Errors.md` code 2001 "Escalation Policy has already been
  taken").
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from typing import Any, Iterator, Mapping, Optional

import yaml

from policy.kubernetes import LABEL_MAX
from policy.model import Rule, StackView, Violation, object_name

ALERTMANAGER_CONFIG_KEY = "alertmanager.yaml"
PAGERDUTY_SERVICE = "pagerduty:index/service:Service"
PAGERDUTY_ESCALATION_POLICY = "pagerduty:index/escalationPolicy:EscalationPolicy"
PAGERDUTY_SUMMARY_MAX = 1024

# How long a template action can render, for the summary's bound: a label value is at most a
# Kubernetes label's 63 characters (the labels of these alerts are Kubernetes names and label
# values); a number as Go prints a float64 at most 24; a count of alerts 10 digits.
NUMBER_MAX = 24
COUNT_MAX = 10
_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
_CONTROL = re.compile(r"(if|else|end|with|range|define|template|block)\b.*|/\*.*")
_NUMBER = re.compile(r".*(\$value|humanize|printf \"%\.?[0-9]*[fgde]\").*")


def alertmanager_configs(view: StackView) -> Iterator[tuple[Mapping[str, Any], dict[str, Any]]]:
    """(the Secret, its parsed Alertmanager configuration) of each Secret holding one."""
    for secret in view.kind("Secret"):
        text = (secret.get("stringData") or {}).get(ALERTMANAGER_CONFIG_KEY)
        if text is None and ALERTMANAGER_CONFIG_KEY in (secret.get("data") or {}):
            text = base64.b64decode(secret["data"][ALERTMANAGER_CONFIG_KEY]).decode()
        if isinstance(text, str):
            try:
                config = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(config, dict):
                yield secret, config


def slack_channels(view: StackView) -> Iterator[Violation]:
    for secret, config in alertmanager_configs(view):
        default_url = (config.get("global") or {}).get("slack_api_url")
        channels: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for receiver in config.get("receivers") or []:
            for slack in receiver.get("slack_configs") or []:
                url = slack.get("api_url") or slack.get("api_url_file") or default_url
                channels[str(url)][str(slack.get("channel"))].append(str(receiver.get("name")))
        for by_channel in channels.values():
            if len(by_channel) > 1:
                served = " and ".join(f"{channel} (receiver{'s' if len(names) > 1 else ''} {', '.join(sorted(names))})"
                                      for channel, names in sorted(by_channel.items()))
                yield Violation(object_name(secret), f"one incoming-webhook URL serves {served}: a Slack app's webhook "
                                "posts to the one channel it was made for and ignores `channel`, so all of them land "
                                "there; each channel needs its own webhook URL", view.urn_of(secret))


def template_bound(template: str, inner: Mapping[str, int]) -> int:
    """The most characters a Go template can render to: its text, plus each action at its bound
    (every branch counted); `inner` bounds actions by a fragment they contain."""
    total = len(_ACTION.sub("", template))
    for action in _ACTION.findall(template):
        if _CONTROL.fullmatch(action):
            continue
        known = [bound for fragment, bound in inner.items() if fragment in action]
        total += max(known) if known else NUMBER_MAX if _NUMBER.fullmatch(action) else \
            COUNT_MAX if action.startswith("len ") else LABEL_MAX
    return total


def pagerduty_summaries(view: StackView) -> Iterator[Violation]:
    alerts = [(obj, rule) for obj in view.kind("PrometheusRule")
              for group in (obj.get("spec") or {}).get("groups") or [] for rule in group.get("rules") or []
              if "alert" in rule]
    for secret, config in alertmanager_configs(view):
        for receiver in config.get("receivers") or []:
            for pagerduty in receiver.get("pagerduty_configs") or []:
                description = pagerduty.get("description")
                if not isinstance(description, str):
                    continue
                for obj, rule in alerts:
                    summary = ((rule.get("annotations") or {}).get("summary")) or ""
                    length = template_bound(description, {".Annotations.summary": template_bound(summary, {})})
                    if length > PAGERDUTY_SUMMARY_MAX:
                        yield Violation(f"{object_name(obj)}, alert {rule['alert']}",
                                        f"its PagerDuty summary through receiver {receiver.get('name')} can reach "
                                        f"{length} characters; PagerDuty's limit is {PAGERDUTY_SUMMARY_MAX} "
                                        "(Alertmanager cuts the rest)", view.urn_of(obj))


def pagerduty_names(view: StackView) -> Iterator[Violation]:
    for type_token, what in ((PAGERDUTY_SERVICE, "service"), (PAGERDUTY_ESCALATION_POLICY, "escalation policy")):
        seen: dict[str, str] = {}
        for resource in view.of_type(type_token):
            name: Optional[str] = resource.inputs.get("name")
            if not isinstance(name, str):
                continue
            if name in seen:
                yield Violation(f"PagerDuty {what} {resource.name}",
                                f"name {name!r} is also {seen[name]}'s: PagerDuty refuses a second {what} of a name "
                                "(Name has already been taken)", resource.urn)
            else:
                seen[name] = resource.name


RULES = (
    Rule("slack-webhook-per-channel",
         "Each Slack channel Alertmanager posts to has its own incoming-webhook URL.", slack_channels,
         ("https://api.slack.com/messaging/webhooks",)),
    Rule("pagerduty-summary-length",
         "The summary Alertmanager sends PagerDuty for any alert of the stack fits PagerDuty's 1,024 characters.",
         pagerduty_summaries,
         ("PagerDuty/developer-docs docs/events-API-v2/02-Trigger-Events.md",
          "prometheus/alertmanager v0.34.0 notify/pagerduty/pagerduty.go")),
    Rule("pagerduty-unique-names",
         "PagerDuty service and escalation-policy names are unique in the account (judged over every stack).",
         pagerduty_names, ("PagerDuty REST API errors (docs/REST-API/14-Errors.md)",), account_wide=True),
)
