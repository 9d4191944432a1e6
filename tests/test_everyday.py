"""Everyday changes without code, and the mistakes a new user makes refused or warned about, each with its
exact line: the keys of docs/cookbook.md, checked on the settings and the content alone (no program run;
the recipes themselves render in tests/test_cookbook.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config import ConfigError, load
from config.checks import warnings
from monitoring import dashboards, rules
from monitoring.alertmanager import Receivers, alertmanager_config
from monitoring.checks import content_problems
from tests.support import RUNBOOKS, ROOT, SECRET_VALUES, raw_config, run_stack, stack_settings
from tools import program
from tools.stacks import stacks
from tools.routing import receivers_for, routing_problems
from tools.summary import routing_rows

NS = "webhook-monitoring"
RECEIVERS = [{"name": "payments-oncall", "slackChannel": "#payments-alerts"}, {"name": "payments-pager", "pagerduty": True}]


def receiver_secrets(overrides) -> dict[str, str]:
    """The secrets, with a `receiverSecrets` entry for each receiver `overrides` names (none without receivers)."""
    named = ((overrides or {}).get("alerting") or {}).get("receivers") or []
    if not named:
        return SECRET_VALUES
    return {**SECRET_VALUES, "receiverSecrets": json.dumps({r["name"]: f"receiver-routing-key-canary-{r['name']}"
                                                            if r.get("pagerduty") else
                                                            f"https://hooks.slack.com/services/T1/B2/{r['name']}-canary"
                                                            for r in named})}


def settings_of(stack: str, overrides) -> object:
    raw, secret_keys = raw_config(stack, overrides, receiver_secrets(overrides))
    return load(raw, secret_keys, lambda key: raw[f"{NS}:{key}"])[0]


def problems(stack: str, overrides=None, extra=None, secrets=None, name: str = "") -> list[str]:
    """The lines `make render` (and `pulumi preview`) refuses the stack with: its settings', then its content's."""
    raw, secret_keys = raw_config(stack, overrides, secrets or receiver_secrets(overrides))
    raw.update(extra or {})
    try:
        settings, _ = load(raw, secret_keys, lambda key: raw[f"{NS}:{key}"], stack=name)
    except ConfigError as err:
        return err.problems
    return content_problems(settings)


SLACK_CHANNEL = "a Slack channel such as #webhook-alerts: '#', then lower-case letters, digits, '-' and '_' (80 at most)"
PATH = "a URL path: '/' first, such as /metrics, without '?', '#' or spaces (Prometheus escapes them into the path)"
SERVICE = {"name": "api", "namespace": "webhook-delivery", "selector": {"app": "api"}}

REFUSED = [
    # A typo in the project's namespace: the key would be nobody's.
    ("dev", None, {"webhook-monitorng:prometheus": json.dumps({"retention": "30d"})},
     "webhook-monitorng:prometheus: unknown namespace 'webhook-monitorng'; did you mean 'webhook-monitoring:prometheus'? "
     "(the program reads webhook-monitoring: keys, and Pulumi pulumi, random, tls: keys)"),
    # Provider keys the program's own providers never read.
    ("dev", None, {"kubernetes:context": "webhook-staging"},
     "kubernetes:context: ignored, expected no `kubernetes:` key: the program makes its Kubernetes provider from "
     "cluster.infraStack or cluster.kubeContext, which reads no stack key of its own; set "
     "webhook-monitoring:cluster.kubeContext instead"),
    ("dev", None, {"aws:region": "eu-west-1"},
     "aws:region: ignored, expected no `aws:` key: the program makes its AWS provider from cluster.region (credentials "
     "from the environment), which reads no stack key of its own; set webhook-monitoring:cluster.region instead"),
    ("dev", None, {"aws:profile": "sre"},
     "aws:profile: ignored, expected no `aws:` key: the program makes its AWS provider from cluster.region (credentials "
     "from the environment), which reads no stack key of its own; remove it"),
    ("dev", None, {"grafana:url": "https://grafana.example.com"},
     "grafana:url: unknown namespace 'grafana' (the program reads webhook-monitoring: keys, and Pulumi pulumi, random, "
     "tls: keys)"),
    # Slack's rule for channel names.
    ("dev", {"alerting": {"alertmanager": {"slackChannel": "#Webhook Alerts"}}}, None,
     f"{NS}:alerting.alertmanager.slackChannel: got '#Webhook Alerts', expected {SLACK_CHANNEL}"),
    ("dev", {"alerting": {"alertmanager": {"slackChannel": "webhook-alerts"}}}, None,
     f"{NS}:alerting.alertmanager.slackChannel: got 'webhook-alerts', expected {SLACK_CHANNEL}"),
    ("prod", {"alerting": {"platform": {"slackChannel": "#platform.alerts"}}}, None,
     f"{NS}:alerting.platform.slackChannel: got '#platform.alerts', expected {SLACK_CHANNEL}"),
    ("prod", {"alerting": {"receivers": [{"name": "payments", "slackChannel": "#" + "x" * 81}]}}, None,
     f"{NS}:alerting.receivers[0].slackChannel: got '#{'x' * 75}..., expected {SLACK_CHANNEL}"),
    # Alertmanager repeats only on a group flush, and forgets past its retention.
    ("dev", {"alerting": {"alertmanager": {"repeatInterval": "1m"}}}, None,
     f"{NS}:alerting.alertmanager.repeatInterval: got '1m', expected at least alerting.alertmanager.groupInterval (5m): "
     "Alertmanager repeats a notification only when it flushes the group, every group interval"),
    ("dev", {"alerting": {"alertmanager": {"repeatInterval": "60d"}}}, None,
     f"{NS}:alerting.alertmanager.repeatInterval: got '60d', expected at most alerting.alertmanager.retention (720h): "
     "past it Alertmanager has forgotten the notification and sends it again"),
    ("dev", {"alerting": {"alertmanager": {"warningMuteIntervals": [{"name": "night", "times": ["00:00-06:00"]},
                                                                    {"name": "night", "weekdays": ["sunday"]}]}}}, None,
     f"{NS}:alerting.alertmanager.warningMuteIntervals[1].name: got 'night', expected a name no other interval has "
     "(Alertmanager refuses a time interval named twice)"),
    # What a ServiceMonitor needs of a service.
    ("dev", {"metrics": {"services": [{**SERVICE, "path": "metrics"}]}}, None,
     f"{NS}:metrics.services[0].path: got 'metrics', expected {PATH}"),
    ("dev", {"metrics": {"services": [{**SERVICE, "path": "/metrics?format=text"}]}}, None,
     f"{NS}:metrics.services[0].path: got '/metrics?format=text', expected {PATH}"),
    ("dev", {"metrics": {"services": [{**SERVICE, "port": "8080"}]}}, None,
     f"{NS}:metrics.services[0].port: got '8080', expected a Service port name such as metrics: 1 to 15 lower-case "
     "letters, digits and '-', at least one letter, no '-' at either end nor two in a row (a port number is not a name)"),
    ("dev", {"metrics": {"services": [{**SERVICE, "selector": {"app kubernetes": "api"}}]}}, None,
     f"{NS}:metrics.services[0].selector: got {{'app kubernetes': 'api'}}, expected Kubernetes label keys and values, "
     "which a label selector matches: not a qualified name (letters, digits, '-', '_' and '.', alphanumeric at both ends)"),
    ("dev", {"metrics": {"additionalServices": [{**SERVICE, "name": "webhook-delivery"}]}}, None,
     f"{NS}:metrics.additionalServices[0].name: got 'webhook-delivery', expected a name no other service has"),
    # AWS: a region that exists, and keys of the cluster's own region.
    ("dev", {"cluster": {"region": "us-east-7"}}, None,
     f"{NS}:cluster.region: got 'us-east-7', expected a region AWS has (none of the partitions in botocore 1.43.11's "
     "endpoint data lists it); did you mean 'us-east-2'?"),
    ("dev", {"cluster": {"region": "eu-west-1"}}, None,
     f"{NS}:cluster.oidcProviderArn: got 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/"
     "DEV0EXAMPLE', expected the OIDC issuer of an EKS cluster in cluster.region (eu-west-1)"),
    ("prod", {"buckets": {"kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"}},
     None, f"{NS}:buckets.kmsKeyArn: got 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555', "
     "expected a key of cluster.region (us-east-1): AWS encrypts with a KMS key of the resource's own region"),
    ("dev", {"tags": {"aws:owner": "sre"}}, None,
     f"{NS}:tags: got {{'aws:owner': 'sre'}}, expected tags AWS takes: the aws: prefix is reserved for AWS's own tags"),
    # A key the program would ignore.
    ("prod", {"cluster": {"kubeContext": "webhook-prod"}}, None,
     f"{NS}:cluster.kubeContext: got 'webhook-prod', expected unset when cluster.infraStack is set: the kubeconfig, its "
     "context included, comes from that stack"),
    # The runbook link of every page: this repository's, said by the stack.
    ("dev", {"alerting": {"runbookBaseUrl": None}}, None,
     f"{NS}:alerting.runbookBaseUrl: missing, expected url (Where this repository's `docs/runbooks/` is browsable (every "
     "page and Slack message links its alert's runbook there); each alert's runbook_url is this plus `<alert>.md`.)"),
    # Routes, receivers and overrides.
    ("dev", {"alerting": {"routes": [{"alerts": ["WebhookQueueGrowing"], "receiver": "payments"}]}}, None,
     f"{NS}:alerting.routes[0].receiver: got 'payments', expected a receiver of alerting.receivers (none is set) or of "
     "the program's (slack, platform, null)"),
    ("prod", {"alerting": {"receivers": RECEIVERS, "routes": [{"alerts": ["HighLatency"], "receiver": "payments-oncal"}]}},
     None, f"{NS}:alerting.routes[0].receiver: got 'payments-oncal', expected a receiver of alerting.receivers "
           "(payments-oncall, payments-pager) or of the program's (slack, pagerduty, platform, null); did you mean "
           "'payments-oncall'?"),
    ("dev", {"alerting": {"routes": [{"alerts": ["WebhookQueueGrowin"], "receiver": "slack"}]}}, None,
     f"{NS}:alerting.routes[0].alerts[0]: got 'WebhookQueueGrowin', expected an alert of the stack (docs/alerting.md); "
     "did you mean 'WebhookQueueGrowing'?"),
    ("dev", {"alerting": {"routes": [{"alerts": ["Watchdog"], "receiver": "slack"}]}}, None,
     f"{NS}:alerting.routes[0].alerts[0]: got 'Watchdog', expected an alert other than Watchdog, the dead man's switch "
     "that only the heartbeat receiver takes"),
    ("dev", {"alerting": {"routes": [{"alerts": ["HighLatency"], "receiver": "pagerduty"}]}}, None,
     f"{NS}:alerting.routes[0].receiver: got 'pagerduty', expected a receiver of alerting.receivers (none is set) or of "
     "the program's (slack, platform, null)"),
    ("dev", {"alerting": {"routes": [{"alerts": ["HighLatency"], "receiver": "slack"},
                                     {"alerts": ["HighLatency"], "receiver": "null"}]}}, None,
     f"{NS}:alerting.routes[1].alerts: got 'HighLatency', expected an alert no earlier route sends "
     "(alerting.routes[0] takes it first)"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "HighLatency", "enabled": False}],
                           "routes": [{"alerts": ["HighLatency"], "receiver": "slack"}]}}, None,
     f"{NS}:alerting.routes[0].alerts[0]: got 'HighLatency', expected an alert that is deployed "
     "(alerting.alertOverrides[0] turns it off)"),
    ("prod", {"alerting": {"receivers": [{"name": "slack", "slackChannel": "#x"}]}}, None,
     f"{NS}:alerting.receivers[0].name: got 'slack', expected a name other than the program's receivers' (slack, "
     "pagerduty, platform, platform-pagerduty, heartbeat, null)"),
    ("prod", {"alerting": {"receivers": [{"name": "payments", "slackChannel": "#x", "pagerduty": True}]}}, None,
     f"{NS}:alerting.receivers[0]: got 'payments', expected a slackChannel, or pagerduty: true (exactly one of the two)"),
    ("dev", {"alerting": {"alertOverrides": [{"alert": "HighLatency", "threshold": 1}]}}, None,
     f"{NS}:alerting.alertOverrides[0].threshold: got 1, expected no threshold here: set alerting.thresholds.latencyP95"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "HighLatency", "for": "20m"}]}}, None,
     f"{NS}:alerting.alertOverrides[0].for: got '20m', expected no `for` here: set alerting.thresholds.latencyP95For"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "WebhookProbeFailed", "threshold": 1.5}]}}, None,
     f"{NS}:alerting.alertOverrides[0].threshold: got 1.5, expected a share of failed probes over 5m, above 0 and below 1"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "MimirIngesterRestarting", "threshold": 2.5}]}}, None,
     f"{NS}:alerting.alertOverrides[0].threshold: got 2.5, expected whole restarts in the window, from 1 to 100"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "WorkloadCrashLooping", "threshold": 5}]}}, None,
     f"{NS}:alerting.alertOverrides[0].threshold: got 5, expected a threshold only for an alert that compares one number "
     "no setting holds (LogPipelineLokiPushErrors, LongTermStoreRemoteWriteBehind, LongTermStoreRemoteWriteFailing, "
     "MimirHATrackerFlapping, MimirIngesterRestarting, WebhookProbeFailed, WebhookScrapeNearSampleLimit)"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "WebhookErrorBudgetBurn", "severity": "warning"}]}}, None,
     f"{NS}:alerting.alertOverrides[0]: got 'WebhookErrorBudgetBurn', expected an alert whose rules share one severity "
     "and `for`: its 4 rules differ, so one override cannot say which it means"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "Watchdog", "enabled": False}]}}, None,
     f"{NS}:alerting.alertOverrides[0].alert: got 'Watchdog', expected an alert other than Watchdog, the dead man's "
     "switch (the heartbeat service pages when it stops)"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "WebhookLogErrorBurst", "enabled": False}]}}, None,
     f"{NS}:alerting.alertOverrides[0].alert: got 'WebhookLogErrorBurst', expected one of the stack's alert rules (a log "
     "alert: logging.errorBurstLines sets its threshold)"),
    ("prod", {"alerting": {"alertOverrides": [{"alert": "HighLatency", "enabled": False, "severity": "info"}]}}, None,
     f"{NS}:alerting.alertOverrides[0]: got 'HighLatency', expected enabled: false alone, or a severity, for or threshold "
     "for a rule that stays"),
    # Helm values: a pinned chart, and no secret.
    ("prod", {"helmValues": {"kube-prometheus-stak": {"grafana": {"replicas": 2}}}}, None,
     f"{NS}:helmValues.kube-prometheus-stak: unknown chart; did you mean 'kube-prometheus-stack'? (the program's charts: "
     "alloy, kube-prometheus-stack, loki, mimir-distributed, prometheus-blackbox-exporter, prometheus-operator-crds, "
     "promtail)"),
    ("prod", {"helmValues": {"kube-prometheus-stack": {"grafana": {"adminPassword": "hunter2"}}}}, None,
     f"{NS}:helmValues.kube-prometheus-stack.grafana.adminPassword: holds a secret (not shown), expected none in Helm "
     "values: Helm keeps them in plain text in the release; give the chart's reference to a Secret (existingSecret, "
     "secretName, ...) instead"),
    ("prod", {"helmValues": {"loki": {"loki": {"storage": {"s3": {"endpoint": "https://user:pass@s3.example.com"}}}}}},
     None, f"{NS}:helmValues.loki.loki.storage.s3.endpoint: holds a credential (not shown: a Slack webhook, a password in "
           "a URL, a private or access key), expected none in Helm values: Helm keeps them in plain text in the release; "
           "reference a Secret instead"),
    ("prod", {"helmValues": {"kube-prometheus-stack": "x"}}, None,
     f"{NS}:helmValues: got {{\"kube-prometheus-stack\": \"x\"}}, expected an object of chart names, each holding an "
     "object of that chart's values"),
    ("dev", {"grafana": {"extraPanels": [{"dashboard": "webhook-overveiw", "title": "Retries", "expr": "up"}]}}, None,
     f"{NS}:grafana.extraPanels[0].dashboard: got 'webhook-overveiw', expected the UID of one of the stack's dashboards "
     "(webhook-overview, webhook-logs, webhook-ab, webhook-business, webhook-cost, webhook-infrastructure, "
     "webhook-capacity, webhook-mimir, webhook-loki); did you mean 'webhook-overview'?"),
]


@pytest.mark.parametrize("stack, overrides, extra, expected", REFUSED, ids=[line.split(": ")[0] for *_, line in REFUSED])
def test_a_mistake_is_refused_with_one_exact_line(stack, overrides, extra, expected):
    found = problems(stack, overrides, extra)
    assert expected in found
    # Every problem the render prints is one line naming its full key.
    assert all("\n" not in line and line.split(": ")[0].split(":")[0] in {NS, "kubernetes", "aws", "grafana",
                                                                          "webhook-monitorng"} for line in found), found


@pytest.mark.parametrize("stack, environment, expected", [
    ("prod-euw1", "dev", f"{NS}:environment: got 'dev', expected 'prod' for stack prod-euw1 (a stack is named "
                         "<environment>-<what sets it apart>): it would run with dev's defaults, not prod's"),
    ("staging", "dev", f"{NS}:environment: got 'dev', expected 'staging' for stack staging (a stack is named "
                       "<environment>-<what sets it apart>): it would run with dev's defaults, not staging's"),
    ("production_eu", "staging", f"{NS}:environment: got 'staging', expected 'prod' for stack production_eu (a stack is "
                                 "named <environment>-<what sets it apart>): it would run with staging's defaults, not "
                                 "prod's"),
])
def test_an_environment_the_stack_name_contradicts_is_refused(stack, environment, expected):
    assert problems("dev", {"environment": environment}, name=stack) == [expected]


def test_a_stack_named_for_its_environment_or_for_none_loads():
    assert problems("dev", {"environment": "staging"}, name="staging-use1") == []
    assert problems("prod", name="prod-euw1") == []
    assert problems("dev", name="sandbox") == [] and problems("dev", name="") == []


def test_a_receivers_secret_names_each_receiver_once_never_echoing_a_value():
    overrides = {"alerting": {"receivers": RECEIVERS}}
    with_secret = {**SECRET_VALUES, "receiverSecrets": json.dumps({"payments-oncall": "http://hooks.example.com/x",
                                                                   "payments": "x"})}
    found = problems("prod", overrides, secrets=with_secret)
    assert found == [
        f"{NS}:receiverSecrets: no entry for receiver 'payments-pager' (alerting.receivers names it), expected "
        '{"<receiver>": "<Slack incoming-webhook URL, or PagerDuty Events API v2 routing key>"}',
        f"{NS}:receiverSecrets: an entry for 'payments', which alerting.receivers does not name, expected one entry per "
        "receiver",
        f"{NS}:receiverSecrets: the entry of Slack receiver 'payments-oncall' is not an https:// URL, expected its "
        "incoming-webhook URL",
    ]
    assert not any("hooks.example.com" in line for line in found)
    assert problems("prod", overrides, secrets=SECRET_VALUES)[0].startswith(f"{NS}:receiverSecrets: missing, expected a secret")
    assert problems("prod", overrides) == []


# ---------------------------------------------------------------------------- warnings


def test_the_shipped_stacks_warn_about_their_example_hosts_and_still_render():
    assert warnings(stack_settings("dev")) == [
        f"{NS}:alerting.runbookBaseUrl: '{RUNBOOKS}' is in a domain reserved for examples (RFC 2606): nothing answers "
        "there; a sample value to replace",
        f"{NS}:grafana.host: 'grafana.dev.webhooks.example.com' is in a domain reserved for examples (RFC 2606): nothing "
        "answers there; a sample value to replace",
    ]
    real = stack_settings("dev", {"grafana": {"host": "grafana.dev.acme-webhooks.io"},
                                  "alerting": {"runbookBaseUrl": "https://github.com/acme-sre/webhook-monitoring/blob/"
                                                                 "main/docs/runbooks/"}})
    assert warnings(real) == []
    # `pulumi preview` shows the same lines: the program logs them as warnings.
    assert run_stack("dev").warnings == warnings(stack_settings("dev"))


def test_a_default_service_dropped_without_a_word_is_warned_about():
    only_new = stack_settings("dev", {"metrics": {"services": [
        {"name": "billing", "namespace": "billing", "selector": {"app": "billing"}}]}})
    assert f"{NS}:metrics.services: replaces the default list, and no service of namespace webhook-delivery is scraped " \
           "any more (the default webhook-delivery was): list it again, or add services with " \
           "metrics.additionalServices" in warnings(only_new)
    added = stack_settings("dev", {"metrics": {"additionalServices": [
        {"name": "billing", "namespace": "billing", "selector": {"app": "billing"}}]}})
    assert [str(t.name) for t in added.metrics.scraped_services] == ["webhook-delivery", "billing"]
    assert not any("metrics.services" in w for w in warnings(added))
    # Prod lists the default namespace's services one by one: nothing dropped, nothing said.
    assert not any("metrics.services" in w for w in warnings(stack_settings("prod")))


def test_escalation_targets_with_pagerduty_off_are_warned_about():
    settings = stack_settings("dev", {"alerting": {"pagerduty": {"escalationUsers": ["oncall@acme-webhooks.io"]}}})
    assert f"{NS}:alerting.pagerduty: escalation targets are set but alerting.pagerduty.enabled is false: no one is " \
           "paged (critical alerts go to Slack)" in warnings(settings)


def _fleet(tmp_path: Path, **files: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / f"Pulumi.{name}.yaml").write_text(text)
    return tmp_path


def test_a_stack_file_copied_from_another_is_refused_for_its_grafana_host_and_cluster(tmp_path):
    dev = (ROOT / "Pulumi.dev.yaml").read_text()
    folder = _fleet(tmp_path, dev=dev, staging=dev.replace("environment: dev", "environment: staging"))
    settings = load(*program.stack_config(folder / "Pulumi.staging.yaml"), lambda key: "x", check_secrets=False,
                    stack="staging")[0]
    refused, warned = program.fleet_findings("staging", settings, folder)
    shared = "; stacks share a cluster only with tenancy.naming derived, both"
    assert refused == [
        f"{NS}:grafana.host: got 'grafana.dev.webhooks.example.com', expected a value of this stack's own: stack dev "
        "has it too (a stack file copied from dev and not changed?)",
        f"{NS}:cluster.name: got 'webhook-dev', expected a value of this stack's own: stack dev has it too (a stack "
        f"file copied from dev and not changed?){shared}",
        f"{NS}:cluster.kubeContext: got 'webhook-dev', expected a value of this stack's own: stack dev has it too (a "
        f"stack file copied from dev and not changed?){shared}",
    ]
    assert warned == []
    # The shipped stacks share nothing.
    for stack in stacks():
        assert program.fleet_findings(stack, stack_settings(stack)) == ([], []), stack


def test_stacks_deriving_their_names_share_a_cluster(tmp_path):
    """Staging beside prod in one cluster (docs/tenancy.md): every name of each is its own."""
    example = (ROOT / "docs" / "examples" / "Pulumi.new-cluster.yaml").read_text()
    folder = _fleet(tmp_path, **{"prod-euw1": example,
                                 "staging-euw1": example.replace("environment: prod", "environment: staging")})
    settings = load(*program.stack_config(folder / "Pulumi.staging-euw1.yaml"), lambda key: "x", check_secrets=False,
                    stack="staging-euw1")[0]
    assert program.fleet_findings("staging-euw1", settings, folder) == ([], [])
    broken = _fleet(tmp_path / "broken", dev="config: [")
    assert program.fleet_findings("staging-euw1", settings, broken) == (
        [], [f"{NS}: stack dev does not load: what this stack shares with it is not checked"])


# ---------------------------------------------------------------------------- what the keys deploy


def test_an_alert_turned_off_is_not_deployed_and_an_override_changes_its_rule_only():
    settings = stack_settings("prod", {"alerting": {"alertOverrides": [
        {"alert": "WebhookTrafficAnomaly", "enabled": False},
        {"alert": "WebhookQueueGrowing", "severity": "critical", "for": "30m"},
        {"alert": "WebhookProbeFailed", "threshold": 0.25},
    ]}})
    deployed = {r["alert"]: r for g in rules.rule_groups(settings) for r in g["rules"] if "alert" in r}
    shipped = {r["alert"]: r for g in rules.rule_groups(stack_settings("prod")) for r in g["rules"] if "alert" in r}
    assert "WebhookTrafficAnomaly" not in deployed and "WebhookTrafficAnomaly" in shipped
    assert "webhook-delivery.anomaly" not in {g["name"] for g in rules.rule_groups(settings)}  # no empty group
    assert (deployed["WebhookQueueGrowing"]["labels"]["severity"], deployed["WebhookQueueGrowing"]["for"]) == \
           ("critical", "30m")
    assert shipped["WebhookQueueGrowing"]["labels"]["severity"] == "warning"
    assert "> 0.25" in deployed["WebhookProbeFailed"]["expr"] and "> 0.5" in shipped["WebhookProbeFailed"]["expr"]
    untouched = set(shipped) - {"WebhookTrafficAnomaly", "WebhookQueueGrowing", "WebhookProbeFailed"}
    assert all(deployed[name] == shipped[name] for name in untouched)


def test_a_route_sends_its_alerts_to_its_receiver_before_the_severity_routing():
    settings = settings_of("prod", {"alerting": {"receivers": RECEIVERS, "routes": [
        {"alerts": ["WebhookQueueGrowing", "HighLatency"], "receiver": "payments-oncall"},
        {"alerts": ["WebhookQueueBacklog"], "receiver": "payments-pager", "continue": True},
        {"alerts": ["WebhookTrafficAnomaly"], "receiver": "null"},
    ]}})
    secrets = {"payments-oncall": "https://hooks.slack.com/services/T1/B2/oncall", "payments-pager": "pager-key"}
    config = alertmanager_config(settings, Receivers("https://hooks.slack.com/services/T/B/team", "team-routing-key",
                                                     "https://hc-ping.example.com/x",
                                                     "https://hooks.slack.com/services/T/B/platform", named=secrets))
    assert routing_problems(config) == []

    def goes(alert: str, severity: str) -> list[str]:
        return receivers_for(config["route"], {"alertname": alert, "team": "webhook-delivery", "severity": severity})

    assert goes("WebhookQueueGrowing", "warning") == ["payments-oncall"]
    assert goes("HighLatency", "warning") == ["payments-oncall"]
    assert goes("WebhookQueueBacklog", "critical") == ["payments-pager", "pagerduty"]  # continue: on to the team's too
    assert goes("WebhookTrafficAnomaly", "warning") == ["null"]
    assert goes("WebhookHighErrorRate", "critical") == ["pagerduty"] and goes("Watchdog", "info") == ["heartbeat"]
    # The summary walks the same routing: each routed alert at its rule's severity.
    rows = dict(routing_rows(settings, config, {"WebhookQueueGrowing": "warning", "HighLatency": "warning",
                                                "WebhookQueueBacklog": "critical", "WebhookTrafficAnomaly": "warning"}))
    assert rows["WebhookQueueBacklog (critical)"] == ("payments-pager (PagerDuty), then pagerduty (PagerDuty, Slack "
                                                      "#webhook-alerts)")
    assert rows["WebhookTrafficAnomaly (warning)"] == "null (nowhere)"
    assert rows["warning alerts of team webhook-delivery"] == "slack (Slack #webhook-alerts)"
    by_name = {r["name"]: r for r in config["receivers"]}
    assert by_name["payments-oncall"]["slack_configs"][0]["channel"] == "#payments-alerts"
    assert by_name["payments-oncall"]["slack_configs"][0]["api_url"] == secrets["payments-oncall"]
    assert by_name["payments-pager"]["pagerduty_configs"][0]["routing_key"] == secrets["payments-pager"]


def test_alertmanager_refusals_of_a_routing_tree_are_found_before_it_is_deployed():
    config = {"route": {"receiver": "slack", "routes": [{"receiver": "slak", "matchers": ['severity="warning"']},
                                                        {"receiver": "null", "mute_time_intervals": ["weekend"]}]},
              "receivers": [{"name": "slack"}, {"name": "null"}, {"name": "null"}]}
    assert routing_problems(config) == [
        "receivers: 'null' is defined 2 times, expected once",
        "route.routes[0].receiver: 'slak' is not defined, expected one of the receivers (slack, null, null)",
        "route.routes[1].mute_time_intervals: 'weekend' is not defined, expected a time interval of the configuration",
    ]
    assert routing_problems({"route": {"matchers": ['a="b"']}, "receivers": []}) == [
        "route: no receiver, expected the default receiver every alert falls back to",
        "route: matchers or time intervals, expected none on the root route (every alert's fallback)",
    ]


def test_an_extra_panel_is_added_below_its_dashboards_own_with_ids_of_its_own():
    panel = {"dashboard": "webhook-overview", "title": "Deliveries retried", "legend": "{{service}}",
             "expr": "sum by (service) (rate(webhook_retries_total[5m]))"}
    settings = stack_settings("dev", {"grafana": {"extraPanels": [panel]}})
    boards = {b.uid: b for b in dashboards.dashboards(settings)}
    shipped = {b.uid: b for b in dashboards.dashboards(stack_settings("dev"))}
    overview, before = boards["webhook-overview"].json["panels"], shipped["webhook-overview"].json["panels"]
    assert overview[:len(before)] == before
    row, added = overview[len(before):]
    assert (row["type"], row["title"]) == ("row", dashboards.EXTRA_ROW)
    assert (added["type"], added["title"], added["targets"][0]["expr"]) == ("timeseries", panel["title"], panel["expr"])
    assert [p["id"] for p in overview] == list(range(1, len(overview) + 1))
    assert row["gridPos"]["y"] >= max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in before)
    assert all(boards[uid].json == shipped[uid].json for uid in shipped if uid != "webhook-overview")


def test_the_alerting_doc_lists_every_threshold_an_override_sets_with_its_default():
    from monitoring.rules.config import TUNABLE_THRESHOLDS, RuleConfig

    defaults = {f.name: f.default for f in RuleConfig.__dataclass_fields__.values()}
    rows = re.findall(r"^  \| (\w+) \| [^|]+ \| ([0-9.]+) \|$", (ROOT / "docs" / "alerting.md").read_text(), re.M)
    assert {name: float(default) for name, default in rows} == {
        name: float(defaults[t.field]) for name, t in TUNABLE_THRESHOLDS.items()}
