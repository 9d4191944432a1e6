"""Stack configuration: defaults, per-environment values, and every kind of bad input refused."""

from __future__ import annotations

import datetime
import json
import re
from importlib import metadata, resources
from pathlib import Path

import pytest

from config import ConfigError, load, types
from config.docs import render as render_configuration_docs
from config.schema import describe
from config.types import Duration, Size, duration_ms
from config.settings import Settings
from tests.support import ROOT, SECRET_VALUES, raw_config, stack_secrets, stack_settings
from tools import program, render
from tools.stacks import stacks


def problems(stack: str, overrides=None, secrets=None) -> list[str]:
    raw, secret_keys = raw_config(stack, overrides, secrets)
    with pytest.raises(ConfigError) as caught:
        load(raw, secret_keys, lambda name: "secret")
    return caught.value.problems


def test_defaults_are_the_task_documents_production_values():
    s = stack_settings("prod")
    assert s.prometheus.retention == Duration("15d")
    assert s.prometheus.retention_size == Size("50GB")
    # The requests are the load benchmark's measured use (tests/test_footprint.py), the limits the document's.
    assert (s.prometheus.resources.cpu_request, s.prometheus.resources.memory_request) == ("160m", "1989Mi")
    assert (s.prometheus.resources.cpu_limit, s.prometheus.resources.memory_limit) == ("1000m", "4000Mi")
    assert s.long_term_storage.retention.days == 90
    assert s.logging.retention.hours == "336h"
    assert s.alerting.alertmanager.retention.hours == "720h"
    assert s.alerting.thresholds.error_ratio == 0.05
    assert s.alerting.thresholds.queue_depth == 10000
    assert s.alerting.thresholds.latency_p95 == 0.5
    assert s.alerting.alertmanager.slack_channel == "#webhook-alerts"
    assert s.team_label == "webhook-delivery"


def test_environment_picks_per_environment_defaults():
    dev, prod = stack_settings("dev"), stack_settings("prod")
    assert (dev.prometheus.replicas, prod.prometheus.replicas) == (1, 2)
    assert (dev.alerting.alertmanager.replicas, prod.alerting.alertmanager.replicas) == (1, 3)
    assert (dev.protect, prod.protect) == (False, True)
    assert (dev.storage.reclaim_policy, prod.storage.reclaim_policy) == ("Delete", "Retain")
    assert (dev.alerting.pagerduty.enabled, prod.alerting.pagerduty.enabled) == (False, True)
    assert (dev.logging.mode, prod.logging.mode) == ("Monolithic", "SimpleScalable")
    # A stack-file value wins over the environment default.
    assert stack_settings("dev", {"prometheus": {"replicas": 3}}).prometheus.replicas == 3


def test_stack_files_hold_what_they_say():
    dev, prod = stack_settings("dev"), stack_settings("prod")
    assert dev.prometheus.volume_size == Size("60Gi") and prod.prometheus.volume_size == Size("200Gi")
    assert prod.cluster.infra_stack == "acme/webhook-infra/prod" and dev.cluster.infra_stack is None
    assert [t.name for t in prod.metrics.services] == ["webhook-api", "webhook-worker"]
    assert prod.metrics.services[1].interval == Duration("15s")
    assert prod.metrics.federation[0].cluster == "webhook-prod-euw1"


def test_section_defaults_merge_under_what_the_stack_sets():
    s = stack_settings("dev", {"prometheus": {"resources": {"memoryLimit": "6Gi"}}})
    assert s.prometheus.resources.memory_limit == "6Gi"
    assert s.prometheus.resources.cpu_request == "60m"  # the section's (dev) default stays


def test_secrets_are_read_through_the_secret_reader():
    secrets = stack_secrets("prod")
    assert secrets.slack_webhook_url == SECRET_VALUES["slackWebhookUrl"]
    assert secrets.pagerduty_token == SECRET_VALUES["pagerdutyToken"]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"prometheus": {"retention": "15 days"}},
         "webhook-monitoring:prometheus.retention: got '15 days', expected a duration"),
        ({"prometheus": {"retentionSize": "50G"}},
         "webhook-monitoring:prometheus.retentionSize: got '50G', expected a size such as 50GB or 100Gi"),
        ({"prometheus": {"replicas": "two"}}, "webhook-monitoring:prometheus.replicas: got 'two', expected a whole number"),
        ({"prometheus": {"replicas": 0}}, "webhook-monitoring:prometheus.replicas: got 0, expected a number from 1 to 10"),
        ({"environment": "production"},
         "webhook-monitoring:environment: got 'production', expected one of 'dev', 'staging', 'prod'"),
        ({"alerting": {"pagerduty": {"escalationUsers": ["not-an-email"]}}},
         "webhook-monitoring:alerting.pagerduty.escalationUsers[0]: got 'not-an-email', expected an e-mail address"),
        ({"metrics": {"probes": [{"name": "api", "url": "ftp://x"}]}},
         "webhook-monitoring:metrics.probes[0].url: got 'ftp://x', expected an http:// or https:// URL"),
        ({"metrics": {"services": []}}, "webhook-monitoring:metrics.services: got [], expected a non-empty list"),
        ({"namespace": "Monitoring"}, "webhook-monitoring:namespace: got 'Monitoring', expected a Kubernetes name"),
        ({"storage": {"profiles": [{"name": "fast", "iops": 100}]}},
         "webhook-monitoring:storage.profiles[0].iops: got 100, expected a number from 3000 to 80000"),
        ({"alerting": {"alertmanager": {"replicas": True}}},
         "webhook-monitoring:alerting.alertmanager.replicas: got true, expected a whole number"),
        ({"tags": {"owner": 1}}, "webhook-monitoring:tags: got {\"owner\": 1}, expected a map of string keys"),
        ({"prometheus": "15d"}, "webhook-monitoring:prometheus: got '15d', expected an object"),
        ({"grafana": {"host": "https://grafana.example.com/"}},
         "webhook-monitoring:grafana.host: got 'https://grafana.example.com/', expected a host name"),
        ({"grafana": {"host": "grafana.example.com", "tlsSecret": "Grafana_TLS"}},
         "webhook-monitoring:grafana.tlsSecret: got 'Grafana_TLS', expected a Kubernetes name"),
        ({"teamLabel": "webhook delivery"}, "webhook-monitoring:teamLabel: got 'webhook delivery', expected a Kubernetes label value"),
        ({"metrics": {"services": [{"name": "api", "namespace": "n", "selector": {}}]}},
         "webhook-monitoring:metrics.services[0].selector: got {}, expected at least one label"),
        ({"metrics": {"kubeStateMetricsJob": "kube state"}},
         "webhook-monitoring:metrics.kubeStateMetricsJob: got 'kube state', expected a Kubernetes label value"),
        ({"alerting": {"thresholds": {"queueDepthFor": "90s"}}},
         "webhook-monitoring:alerting.thresholds.queueDepthFor: got '90s', expected whole minutes"),
        ({"alerting": {"thresholds": {"stallQueueDepth": 0}}},
         "webhook-monitoring:alerting.thresholds.stallQueueDepth: got 0, expected a number of at least 1"),
        ({"alerting": {"platform": {"teamLabel": "webhook-delivery"}}},
         "webhook-monitoring:alerting.platform.teamLabel: got 'webhook-delivery', expected a team other than teamLabel"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_expected(overrides, expected):
    found = problems("prod", overrides)
    assert any(p.startswith(expected) for p in found), found


def test_misspelled_key_is_an_error_with_the_closest_valid_key():
    found = problems("dev", {"prometheus": {"retension": "15d"}})
    assert found == [
        "webhook-monitoring:prometheus.retension: unknown key; did you mean 'retention'? (valid keys: "
        "evaluationInterval, expectedSeries, remoteWriteDrop, remoteWriteQueue, replicas, resources, retention, retentionSize, "
        "scrapeInterval, volumeProfile, volumeSize)"
    ]
    top = problems("dev", {"prometheos": {}})
    assert top[0].startswith("webhook-monitoring:prometheos: unknown key; did you mean 'prometheus'?")


def test_every_problem_is_reported_at_once_one_line_each():
    found = problems("dev", {"prometheus": {"retention": "x", "volumeSize": "y"}, "grafana": {"host": None}})
    assert len(found) == 3
    assert {p.split(":")[1].split(" ")[0] for p in found} == {
        "prometheus.retention", "prometheus.volumeSize", "grafana.host"
    }
    assert all("\n" not in p for p in found)


def test_missing_required_secret_says_which_command_fixes_it():
    found = problems("prod", secrets={"slackWebhookUrl": "x", "heartbeatUrl": "y", "grafanaOauthClientSecret": "z",
                                      "platformSlackWebhookUrl": "w", "federationCredentials": SECRET_VALUES[
                                          "federationCredentials"]})
    assert found == [
        "webhook-monitoring:pagerdutyToken: missing, expected a secret (PagerDuty REST API token the PagerDuty "
        "provider uses to create the service and integration.) run "
        "`pulumi config set --secret webhook-monitoring:pagerdutyToken <value>`"
    ]
    # Dev turns PagerDuty off and has no heartbeat: only the Slack webhook is required there.
    assert stack_settings("dev").alerting.pagerduty.enabled is False
    raw, keys = raw_config("dev", secrets={"slackWebhookUrl": "x"})
    load(raw, keys, lambda name: "x")


def test_a_secret_set_in_plain_text_is_refused():
    raw, secret_keys = raw_config("dev")
    with pytest.raises(ConfigError) as caught:
        load(raw, [k for k in secret_keys if not k.endswith("slackWebhookUrl")], lambda name: "x")
    assert caught.value.problems == [
        "webhook-monitoring:slackWebhookUrl: is set in plain text, expected a secret: "
        "run `pulumi config set --secret webhook-monitoring:slackWebhookUrl <value>`"
    ]


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"cluster": {"oidcProviderArn": None}}, "cluster.oidcProviderArn"),
        ({"cluster": {"infraStack": "acme/infra/dev"}}, "cluster.infraStack"),
        ({"cluster": {"oidcProviderArn": "arn:aws:iam::1:role/x"}}, "cluster.oidcProviderArn"),
        ({"prometheus": {"retentionSize": "100GB", "volumeSize": "90Gi"}}, "prometheus.retentionSize"),
        ({"prometheus": {"remoteWriteQueue": {"minShards": 60}}}, "prometheus.remoteWriteQueue.minShards"),
        ({"longTermStorage": {"bucketExpiration": "90d"}}, "longTermStorage.bucketExpiration"),
        ({"logging": {"bucketExpiration": "14d"}}, "logging.bucketExpiration"),
        ({"longTermStorage": {"retention": "7d"}}, "longTermStorage.retention"),
        ({"prometheus": {"retention": "10d"}}, "alerting.thresholds.anomalyBaselineWeeks"),
        ({"logging": {"retention": "36h", "bucketExpiration": "3d"}}, "logging.retention"),
        ({"metrics": {"services": [{"name": "a", "namespace": "n", "selector": {"a": "b"}, "scrapeTimeout": "1m"}]}},
         "metrics.services[0].scrapeTimeout"),
        ({"metrics": {"services": [{"name": "a", "namespace": "n", "selector": {"a": "b"}}] * 2}},
         "metrics.services[1].name"),
        ({"metrics": {"federation": [{"cluster": "webhook-dev", "url": "https://p.example.com"}]}},
         "metrics.federation[0].cluster"),
        ({"alerting": {"pagerduty": {"enabled": True}}}, "alerting.pagerduty.escalationUsers"),
        ({"alerting": {"pagerduty": {"slackWorkspaceId": "T1"}}}, "alerting.pagerduty.slackChannelId"),
        ({"alerting": {"alertmanager": {"retention": "30d1m"}}}, "alerting.alertmanager.retention"),
        ({"alerting": {"alertmanager": {"warningMuteIntervals": [{"name": "night", "times": ["25:00-08:00"]}]}}},
         "alerting.alertmanager.warningMuteIntervals[0].times[0]"),
        ({"alerting": {"alertmanager": {"warningMuteIntervals": [{"name": "night", "times": ["22:00-06:00"]}]}}},
         "alerting.alertmanager.warningMuteIntervals[0].times[0]"),
        ({"alerting": {"alertmanager": {"warningMuteIntervals": [{"name": "wknd", "weekdays": ["sunday:saturday"]}]}}},
         "alerting.alertmanager.warningMuteIntervals[0].weekdays[0]"),
        ({"alerting": {"pagerduty": {"escalationDelay": "30s"}}}, "alerting.pagerduty.escalationDelay"),
        ({"grafana": {"folderPermissions": [{"role": "Viewer", "team": "sre"}]}}, "grafana.folderPermissions[0]"),
    ],
)
def test_cross_field_rules(overrides, key):
    found = problems("dev", overrides, secrets={"slackWebhookUrl": "x", "pagerdutyToken": "y"})
    assert any(p.startswith(f"webhook-monitoring:{key}: ") for p in found), found


def test_prometheus_limits_follow_the_sizing_rule_of_its_expected_series():
    # 1,000,000 series need 4639Mi and 1 core; 2,600,000 need 2.6 cores. The defaults (4000Mi, 1000m) fit
    # 600,000 series, not a million.
    def accepted(prometheus) -> bool:
        return load(*raw_config("dev", {"prometheus": prometheus}, {"slackWebhookUrl": "x"}), lambda name: "secret") is not None

    assert accepted({"expectedSeries": 600_000})
    assert problems("dev", {"prometheus": {"expectedSeries": 1_000_000}}, secrets={"slackWebhookUrl": "x"}) == [
        "webhook-monitoring:prometheus.resources.memoryLimit: got '4000Mi', expected at least 4639Mi for "
        "prometheus.expectedSeries (1000000): the measured bytes per series with 30% to spare (docs/operations/capacity.md)"]
    bigger = {"expectedSeries": 2_600_000, "resources": {"memoryLimit": "12Gi", "cpuLimit": "2500m"}}
    assert problems("dev", {"prometheus": bigger}, secrets={"slackWebhookUrl": "x"}) == [
        "webhook-monitoring:prometheus.resources.cpuLimit: got '2500m', expected unset or at least 2.6 for "
        "prometheus.expectedSeries (2600000): 1000000 series per core (docs/operations/capacity.md)"]
    unlimited = {**bigger, "resources": {"memoryLimit": "12Gi", "cpuLimit": None}}
    assert accepted(unlimited)


@pytest.mark.parametrize("quantity, cores", [("1000m", 1.0), ("250m", 0.25), ("2", 2.0), ("1.5", 1.5)])
def test_cpu_quantity_in_cores(quantity, cores):
    assert types.Cpu.parse(quantity).cores == cores


@pytest.mark.parametrize("quantity, size", [("4000Mi", 4000 * 2**20), ("4Gi", 4 * 2**30), ("512M", 512 * 10**6),
                                            ("1000", 1000), ("64Ki", 65536), ("1k", 1000)])
def test_memory_quantity_in_bytes(quantity, size):
    assert types.Memory.parse(quantity).bytes == size


def test_configuration_reference_matches_the_code():
    on_disk = (ROOT / "docs" / "configuration.md").read_text()
    assert on_disk == render_configuration_docs(), "docs/configuration.md is stale: run `python -m config.docs > docs/configuration.md`"


def test_configuration_reference_lists_every_key_with_an_example_or_default():
    keys = list(describe(Settings, ""))
    assert len(keys) > 100
    for doc in keys:
        if doc.type == "object" or doc.type.startswith("list of object"):
            continue
        assert doc.doc, doc.key
        assert doc.example or doc.default not in ("required", "none"), f"{doc.key} needs an example"
    on_disk = (ROOT / "docs" / "configuration.md").read_text()
    for doc in keys:
        assert f"| `{doc.key}` |" in on_disk


def test_durations_and_sizes_convert():
    assert Duration("720h").hours == "720h" and Duration("30d").hours == "720h"
    assert Duration("1h30m").seconds == 5400
    assert Size("50GB").bytes == 50 * 10**9 and Size("100Gi").bytes == 100 * 2**30
    for bad in ("", "15", "d15", "-5m", "0s", "5 m"):
        with pytest.raises(ValueError):
            Duration.parse(bad)
    assert re.match(r"^\d+h$", Duration("15d").hours)


# ---------------------------------------------------------------------------- strict value types

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
OIDC_PROVIDER = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
DURATION = "a duration such as 30s, 5m, 12h, 15d or 1h30m (units y w d h m s ms, in that order, each at most once)"
URL = ("an http:// or https:// URL: a host name or IPv4 address, an optional port from 1 to 65535, "
       "then an optional path")
HTTPS_URL = ("an https:// URL (credentials travel over it): a host name or IPv4 address, an optional port "
             "from 1 to 65535, then an optional path")
KMS = ("the ARN of one KMS key, arn:aws:kms:<region>:<12-digit account>:key/<key id>, such as "
       "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555 (no wildcard, no alias)")
OIDC = ("an IAM OIDC provider ARN, arn:aws:iam::<12-digit account>:oidc-provider/<issuer host and path>, such as "
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE")
REGION = "an AWS region such as us-east-1, eu-west-2, ap-southeast-1 or us-gov-west-1"
INTEGER_RANGE = "a whole number from -2147483648 to 2147483647"


def with_value(stack: str, key: str, value) -> tuple[dict, list[str]]:
    """Raw config of a stack file with the dotted `key` set to `value` (None included: a YAML null)."""
    raw, secret_keys = raw_config(stack)
    section, _, rest = key.partition(".")
    full = f"webhook-monitoring:{section}"
    if not rest:
        raw[full] = json.dumps(value)
        return raw, secret_keys
    tree = json.loads(raw.get(full, "{}"))
    node = tree
    *parents, last = rest.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    raw[full] = json.dumps(tree)
    return raw, secret_keys


def problems_with(stack: str, key: str, value) -> list[str]:
    raw, secret_keys = with_value(stack, key, value)
    with pytest.raises(ConfigError) as caught:
        load(raw, secret_keys, lambda name: "secret")
    return caught.value.problems


def settings_with(stack: str, key: str, value) -> Settings:
    raw, secret_keys = with_value(stack, key, value)
    return load(raw, secret_keys, lambda name: "secret")[0]


REFUSED = [
    # Durations: Prometheus' grammar, as promtool and amtool read it.
    ("dev", "alerting.alertmanager.groupWait", "30m1h", DURATION),
    ("dev", "alerting.alertmanager.groupWait", "1m1m", DURATION),
    ("dev", "alerting.alertmanager.groupWait", "5m\n", DURATION),
    ("dev", "alerting.alertmanager.groupWait", "\u0665m", DURATION),
    ("dev", "alerting.alertmanager.groupWait", "1h 30m", DURATION),
    ("dev", "alerting.alertmanager.groupWait", "1.5h", DURATION),
    ("dev", "alerting.alertmanager.groupWait", "0s", DURATION),
    ("dev", "alerting.alertmanager.groupWait", "293y", "a duration of at most 292y (Prometheus' limit)"),
    # Sizes and quantities.
    ("dev", "prometheus.volumeSize", "65Ti", "a size of at most 64Ti (the largest gp3 volume)"),
    ("dev", "prometheus.volumeSize", "\u0666\u0660Gi",
     "a size such as 50GB or 100Gi (units B, KB, MB, GB, TB, Ki, Mi, Gi, Ti)"),
    ("dev", "prometheus.volumeSize", "60Gi\n", "a size such as 50GB or 100Gi (units B, KB, MB, GB, TB, Ki, Mi, Gi, Ti)"),
    ("dev", "prometheus.resources.memoryLimit", "512K",
     "a memory quantity such as 512Mi or 4Gi (units k, M, G, T, Ki, Mi, Gi, Ti)"),
    ("dev", "prometheus.resources.memoryLimit", "17Ti", "a memory quantity of at most 16Ti"),
    ("dev", "prometheus.resources.cpuLimit", "1001", "a CPU quantity of at most 1000 cores"),
    ("dev", "prometheus.resources.cpuLimit", "2\n", "a CPU quantity such as 200m or 1"),
    # URLs.
    ("prod", "alerting.runbookBaseUrl", "https://..", URL),
    ("prod", "alerting.runbookBaseUrl", "https://example.com:0/", URL),
    ("prod", "alerting.runbookBaseUrl", "https://example.com:65536/", URL),
    ("prod", "alerting.runbookBaseUrl", "https://user:password@example.com/", URL),
    ("prod", "alerting.runbookBaseUrl", "https://example.com/\n", URL),
    ("prod", "alerting.runbookBaseUrl", "https://1.2.3/", URL),
    ("prod", "alerting.runbookBaseUrl", "https://300.1.1.1/", URL),
    ("prod", "alerting.runbookBaseUrl", "https://-docs.example.com/", URL),
    ("prod", "alerting.runbookBaseUrl", "https://exa mple.com/", URL),
    ("prod", "alerting.runbookBaseUrl", "ftp://example.com/", URL),
    # Credentials travel over https only.
    ("prod", "grafana.sso.authUrl", "http://example.okta.com/oauth2/v1/authorize", HTTPS_URL),
    ("prod", "grafana.sso.tokenUrl", "http://example.okta.com/oauth2/v1/token", HTTPS_URL),
    ("prod", "grafana.sso.apiUrl", "http://example.okta.com/oauth2/v1/userinfo", HTTPS_URL),
    ("dev", "cluster.oidcIssuerUrl", "http://oidc.eks.us-east-1.amazonaws.com/id/DEV0EXAMPLE", HTTPS_URL),
    # KMS keys: one key, never a wildcard.
    ("prod", "buckets.kmsKeyArn", "*", KMS),
    ("prod", "buckets.kmsKeyArn", "arn:aws:kms:*:123456789012:key/*", KMS),
    ("prod", "buckets.kmsKeyArn", "arn:aws:kms:us-east-1:123456789012:key/*", KMS),
    ("prod", "buckets.kmsKeyArn", "arn:aws:kms:us-east-1:123456789012:alias/monitoring", KMS),
    ("prod", "buckets.kmsKeyArn", "arn:aws:kms:us-east-1:12345:key/11111111-2222-3333-4444-555555555555", KMS),
    ("prod", "buckets.kmsKeyArn", "arn:aws:kms:useast1:123456789012:key/11111111-2222-3333-4444-555555555555", KMS),
    ("prod", "buckets.kmsKeyArn", KMS_KEY + "\n", KMS),
    ("prod", "storage.kmsKeyId", "arn:aws:kms:us-east-1:1:key/k", KMS),
    # IAM OIDC providers and regions.
    ("dev", "cluster.oidcProviderArn", "arn:aws:iam::123456789012:role/x", OIDC),
    ("dev", "cluster.oidcProviderArn", "arn:aws:iam::123456789012:oidc-provider/", OIDC),
    ("dev", "cluster.oidcProviderArn", OIDC_PROVIDER + "\n", OIDC),
    ("dev", "cluster.region", "us-east", REGION),
    ("dev", "cluster.region", "US-EAST-1", REGION),
    ("dev", "cluster.region", "useast1", REGION),
    ("dev", "cluster.region", "us-east-1\n", REGION),
    # Whole numbers and numbers: in range, ASCII digits, finite.
    ("dev", "prometheus.remoteWriteQueue.capacity", 2**31, INTEGER_RANGE),
    ("dev", "prometheus.remoteWriteQueue.capacity", 10**30, INTEGER_RANGE),
    ("dev", "prometheus.remoteWriteQueue.capacity", "9" * 5000, INTEGER_RANGE),
    ("dev", "prometheus.remoteWriteQueue.capacity", "\u0667", "a whole number"),
    ("dev", "alerting.thresholds.latencyP95", 10**400, "a finite number"),
    ("dev", "alerting.thresholds.latencyP95", float("inf"), "a finite number"),
    ("dev", "alerting.thresholds.latencyP95", float("nan"), "a finite number"),
    ("dev", "alerting.thresholds.latencyP95", "inf", "a number"),
    ("dev", "alerting.thresholds.latencyP95", "\u0660.5", "a number"),
    # Names and patterns refuse a trailing newline.
    ("dev", "teamLabel", "webhook-delivery\n",
     "a Kubernetes label value (letters, digits, '-', '_', '.'; 63 at most)"),
    ("dev", "namespace", "monitoring\n", "a Kubernetes name: lower-case letters, digits and '-', 1 to 63 characters"),
    ("dev", "grafana.host", "grafana.example.com\n", "a host name such as grafana.example.com (no scheme, port or path)"),
    # Prices are not negative.
    ("dev", "grafana.unitCosts.cpuCoreHour", -0.01, "a number of at least 0"),
    ("dev", "grafana.revenuePerDelivery", -1, "a number of at least 0"),
    # S3 keeps a noncurrent version whole days.
    ("dev", "buckets.noncurrentExpiration", "12h", "at least 1d (S3 counts whole days)"),
    # null is not a value of a section or of a key with a default, nor of a required key.
    ("dev", "prometheus.resources", None, "an object (leave the key out to take the defaults)"),
    ("dev", "alerting.alertmanager.resources", None, "an object (leave the key out to take the defaults)"),
    ("dev", "logging", None, "an object (leave the key out to take the defaults)"),
    ("dev", "prometheus.retention", None, f"{DURATION} (leave the key out to take the default)"),
    ("dev", "metrics.services", None, "a list of object (leave the key out to take the default)"),
    ("dev", "cluster.name", None, "a non-empty string (the key is required)"),
]


def _shown(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int) and value > 10**300:
        return "a 401-digit number"
    return json.dumps(value)


@pytest.mark.parametrize("stack, key, value, expected", REFUSED, ids=[f"{k}={v!r:.40}" for _, k, v, _ in REFUSED])
def test_a_refused_value_is_one_line_naming_the_key_the_value_and_what_is_expected(stack, key, value, expected):
    shown = _shown(value)
    if isinstance(value, str) and len(shown) > 80:
        shown = shown[:77] + "..."
    assert problems_with(stack, key, value) == [f"webhook-monitoring:{key}: got {shown}, expected {expected}"]


ACCEPTED = [
    ("dev", "alerting.alertmanager.groupWait", "1h30m", Duration("1h30m")),
    ("dev", "alerting.alertmanager.groupWait", "1y2w3d4h5m6s7ms", Duration("1y2w3d4h5m6s7ms")),
    ("dev", "alerting.alertmanager.groupWait", "500ms", Duration("500ms")),
    ("dev", "alerting.alertmanager.groupWait", "292y", Duration("292y")),
    ("dev", "prometheus.volumeSize", "64Ti", Size("64Ti")),
    ("dev", "alerting.alertmanager.resources.memoryLimit", "512k", "512k"),
    ("dev", "prometheus.resources.memoryLimit", "16Ti", "16Ti"),
    ("dev", "prometheus.resources.cpuLimit", "1000", "1000"),
    ("dev", "prometheus.resources.cpuLimit", 1.5, "1.5"),
    ("dev", "prometheus.resources.cpuLimit", None, None),
    ("prod", "alerting.runbookBaseUrl", "http://10.0.0.1:8080/runbooks/", "http://10.0.0.1:8080/runbooks/"),
    ("prod", "alerting.runbookBaseUrl", "https://docs.example.com:65535/r?x=1#y", "https://docs.example.com:65535/r?x=1#y"),
    ("prod", "alerting.runbookBaseUrl", "http://localhost:8080", "http://localhost:8080"),
    ("prod", "grafana.sso.authUrl", "https://login.example.com:8443/authorize", "https://login.example.com:8443/authorize"),
    ("prod", "buckets.kmsKeyArn", KMS_KEY, KMS_KEY),
    ("prod", "buckets.kmsKeyArn", "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef",
     "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"),
    ("prod", "storage.kmsKeyId", KMS_KEY, KMS_KEY),
    ("dev", "cluster.oidcProviderArn", OIDC_PROVIDER, OIDC_PROVIDER),
    ("dev", "prometheus.remoteWriteQueue.capacity", 2**31 - 1, 2**31 - 1),
    ("dev", "prometheus.remoteWriteQueue.capacity", "20000", 20000),
    ("dev", "alerting.thresholds.latencyP95", "0.25", 0.25),
    ("dev", "metrics.latencyBuckets", [0.5, 1e300], (0.5, 1e300)),
    ("dev", "buckets.noncurrentExpiration", "1d", Duration("1d")),
    ("dev", "grafana.unitCosts.cpuCoreHour", 0, 0.0),
    ("dev", "grafana.clusterIssuer", None, None),
]


def _attribute(settings: Settings, key: str):
    value = settings
    for part in key.split("."):
        value = getattr(value, re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), part))
    return value


@pytest.mark.parametrize("stack, key, value, parsed", ACCEPTED, ids=[f"{k}={v!r:.40}" for _, k, v, _ in ACCEPTED])
def test_an_accepted_value_parses_to_what_the_program_uses(stack, key, value, parsed):
    assert _attribute(settings_with(stack, key, value), key) == parsed


@pytest.mark.parametrize("tp, value", [
    (types.AwsRegion, "eu-west-2"), (types.AwsRegion, "ap-southeast-1"), (types.AwsRegion, "us-gov-west-1"),
    (types.AwsRegion, "cn-north-1"), (types.AwsRegion, "eusc-de-east-1"),
    (types.KmsKeyArn, "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"),
    (types.OidcProviderArn, "arn:aws-cn:iam::123456789012:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/X"),
])
def test_every_partition_is_accepted(tp, value):
    assert tp.parse(value) == value


def test_the_regions_are_every_partitions_in_the_pinned_botocore():
    """The endpoint data botocore ships (the AWS SDKs' own): its partitions' regions, no more."""
    pinned = next(line.split("==")[1] for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("botocore=="))
    assert metadata.version("botocore") == pinned
    regions = types.aws_regions()
    data = json.loads(resources.files("botocore").joinpath("data", "endpoints.json").read_text())
    assert regions == {region for partition in data["partitions"] for region in partition["regions"]}
    assert {"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1", "us-iso-east-1"} <= regions
    assert "us-east-7" not in regions and "eu-west-9" not in regions


def test_every_value_type_refuses_a_trailing_newline_and_unicode_digits():
    examples = {
        types.Duration: "15d", types.Size: "50GB", types.Cpu: "200m", types.Memory: "512Mi",
        types.Url: "https://example.com/x", types.HttpsUrl: "https://example.com/x", types.Email: "a@example.com",
        types.DnsLabel: "monitoring", types.Hostname: "grafana.example.com", types.AwsRegion: "us-east-1",
        types.KmsKeyArn: KMS_KEY, types.OidcProviderArn: OIDC_PROVIDER, types.SlackChannel: "#webhook-alerts",
        types.PortName: "metrics",
    }
    assert set(examples) == set(types.VALUE_TYPES) - {types.HelmValues}  # an object, not text
    for tp, good in examples.items():
        tp.parse(good)
        for bad in (good + "\n", "\n" + good, good + " ", good.replace("5", "\u0665").replace("1", "\u0661")):
            if bad != good:
                with pytest.raises(ValueError):
                    tp.parse(bad)
    assert types.label_value("webhook-delivery\n") is not None


def test_no_pattern_in_config_can_end_before_a_trailing_newline():
    """`$` matches before a final newline and `re.match` leaves the end open: every pattern in
    config/ is matched whole with `re.fullmatch`, and spells digits `[0-9]`."""
    for path in sorted((ROOT / "config").glob("*.py")):
        source = path.read_text()
        assert not re.search(r"\bre\.match\(|\.match\(|\bre\.search\(", source), path.name
        for literal in re.findall(r'r"([^"]*)"', source) + re.findall(r"r'([^']*)'", source):
            outside_classes = re.sub(r"\[(?:\\.|[^\]])*\]", "", literal)
            assert "$" not in outside_classes and "\\d" not in literal, (path.name, literal)


def test_mute_intervals_refuse_unicode_digits_and_an_open_weekday_range():
    base = {"name": "night"}
    assert problems("dev", {"alerting": {"alertmanager": {"warningMuteIntervals": [
        {**base, "times": ["\u0660\u0660:00-08:00"]}]}}}) == [
        "webhook-monitoring:alerting.alertmanager.warningMuteIntervals[0].times[0]: got '\u0660\u0660:00-08:00', "
        "expected a time range HH:MM-HH:MM with the start before the end"]
    assert problems("dev", {"alerting": {"alertmanager": {"warningMuteIntervals": [
        {**base, "weekdays": ["monday:"]}]}}}) == [
        "webhook-monitoring:alerting.alertmanager.warningMuteIntervals[0].weekdays[0]: got 'monday:', expected a "
        "weekday (monday ... sunday) or a range first:last in week order, such as monday:friday"]
    ok = stack_settings("dev", {"alerting": {"alertmanager": {"warningMuteIntervals": [
        {**base, "weekdays": ["monday:friday", "sunday"], "times": ["00:00-08:00"]}]}}})
    assert ok.alerting.alertmanager.warning_mute_intervals[0].weekdays == ("monday:friday", "sunday")


def test_values_that_are_not_json_show_as_text_not_a_traceback():
    """A YAML date reaches the parser only when a caller hands over Python values (the Pulumi CLI
    and the render hand over text): it is refused like any other wrong type."""
    raw, secret_keys = raw_config("dev")
    raw["webhook-monitoring:prometheus"] = {"retention": datetime.date(2024, 1, 1), datetime.date(2024, 1, 2): 1}
    with pytest.raises(ConfigError) as caught:
        load(raw, secret_keys, lambda name: "secret")
    assert caught.value.problems[:2] == [
        "webhook-monitoring:prometheus.2024-01-02: unknown key (valid keys: evaluationInterval, expectedSeries, remoteWriteDrop, "
        "remoteWriteQueue, replicas, resources, retention, retentionSize, scrapeInterval, volumeProfile, volumeSize)",
        f'webhook-monitoring:prometheus.retention: got "2024-01-01", expected {DURATION}',
    ]


# ---------------------------------------------------------------------------- stack files through the render

DEV_STACK = (ROOT / "Pulumi.dev.yaml").read_text()


def render_file(tmp_path: Path, text: str, capsys, stack: str = "broken") -> tuple[int, list[str]]:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text)
    code = render.render(stack, path=path, out_root=tmp_path / "build")
    return code, capsys.readouterr().err.splitlines()


MALFORMED = [
    ("tab", DEV_STACK.replace("    volumeSize: 60Gi", "\tvolumeSize: 60Gi"),
     "Pulumi.broken.yaml:{line}:1: found character '\\t' that cannot start any token"),
    ("config-list", "config:\n  - webhook-monitoring:environment: dev\n",
     "Pulumi.broken.yaml:2:3: `config:` must be a mapping of keys to values, found a list"),
    ("config-string", "config: webhook-monitoring:environment=dev\n",
     "Pulumi.broken.yaml:1:9: `config:` must be a mapping of keys to values, found a single value"),
    ("top-list", "- config:\n    webhook-monitoring:environment: dev\n",
     "Pulumi.broken.yaml:1:1: expected a mapping holding `config:`, found a list"),
    ("not-yaml", "config:\n  webhook-monitoring:cluster: {name: webhook-dev\n",
     "Pulumi.broken.yaml:3:1: expected ',' or '}}', but got '<stream end>' (while parsing a flow mapping on line 2)"),
    ("duplicate", DEV_STACK + "  webhook-monitoring:grafana:\n    host: grafana.example.com\n",
     "Pulumi.broken.yaml:{last}:3: key 'webhook-monitoring:grafana' given twice (first on line {grafana})"),
    ("same-key", DEV_STACK + "  environment: dev\n",
     "Pulumi.broken.yaml:{last}:3: 'environment' and 'webhook-monitoring:environment' are the same key"),
    ("two-documents", DEV_STACK + "---\nconfig: {}\n",
     "Pulumi.broken.yaml:{last}:1: expected a single document in the stream, but found another document"),
    ("unknown-tag", "config:\n  webhook-monitoring:tags: !!python/object:os.system {}\n",
     "Pulumi.broken.yaml:2:28: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object:os.system'"),
    ("control-character", DEV_STACK.replace("name: webhook-dev", "name: webhook\x07dev"),
     "Pulumi.broken.yaml:{name}: character #x0007 is not allowed in YAML"),
]


@pytest.mark.parametrize("name, text, expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_stack_file_is_one_line_naming_the_file_and_the_line(name, text, expected, tmp_path, capsys):
    lines = text.splitlines()
    where = {  # 1-based line numbers
        "line": next((i + 1 for i, line in enumerate(lines) if line.startswith("\t")), 0),
        "grafana": next((i + 1 for i, line in enumerate(lines) if "webhook-monitoring:grafana" in line), 0),
        "name": next((i + 1 for i, line in enumerate(lines) if "\x07" in line), 0),
        # the line of the second `grafana:` block, of `environment:`, of `---`
        "last": len(lines) - {"duplicate": 1, "same-key": 0, "two-documents": 1}.get(name, 0),
    }
    assert render_file(tmp_path, text, capsys) == (2, [expected.format(**where)])


def test_a_stack_file_that_is_not_utf8_names_the_line(tmp_path, capsys):
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_bytes(DEV_STACK.encode().replace(b"webhook-dev\n", b"webhook-\xffdev\n", 1))
    assert render.render("broken", path=path, out_root=tmp_path / "build") == 2
    line = next(i + 1 for i, text in enumerate(DEV_STACK.splitlines()) if "webhook-dev" in text)
    assert capsys.readouterr().err.splitlines() == [f"Pulumi.broken.yaml:{line}: not UTF-8 text (byte 0xff)"]


def test_a_secret_in_plain_text_fails_the_render_as_it_fails_pulumi_preview(tmp_path, capsys):
    text = DEV_STACK + "  webhook-monitoring:slackWebhookUrl: https://hooks.slack.com/services/T000/B000/XXXX\n"
    assert render_file(tmp_path, text, capsys) == (2, [
        "webhook-monitoring:slackWebhookUrl: is set in plain text, expected a secret: "
        "run `pulumi config set --secret webhook-monitoring:slackWebhookUrl <value>`"])
    # Without the namespace it is the same key, and the same refusal.
    text = DEV_STACK + "  pagerdutyToken: u+abcdefghijklmnopqrs\n"
    assert render_file(tmp_path, text, capsys) == (2, [
        "webhook-monitoring:pagerdutyToken: is set in plain text, expected a secret: "
        "run `pulumi config set --secret webhook-monitoring:pagerdutyToken <value>`"])


def test_a_secret_set_as_a_secret_renders(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(DEV_STACK + "  webhook-monitoring:slackWebhookUrl:\n    secure: v1:AAAABBBBCCCC\n")
    config, secret_keys = program.stack_config(path)
    assert "webhook-monitoring:slackWebhookUrl" in secret_keys
    assert config["webhook-monitoring:slackWebhookUrl"] == "https://secret.invalid/slackWebhookUrl"
    assert render.render("dev", root=tmp_path) == 0


def test_stack_file_values_reach_the_program_as_the_pulumi_cli_hands_them_over(tmp_path):
    """The CLI (Go yaml.v2) keeps a date as the text written; a single value is its text, an
    object JSON; null is null."""
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(
        DEV_STACK.replace("name: webhook-dev", "name: 2024-01-01").replace("volumeSize: 60Gi", "volumeSize: 2024-01-01")
        + "  webhook-monitoring:protect: yes\n  webhook-monitoring:logging:\n"
    )
    config, _ = program.stack_config(path)
    assert json.loads(config["webhook-monitoring:cluster"])["name"] == "2024-01-01"
    assert config["webhook-monitoring:protect"] == "yes"
    assert config["webhook-monitoring:logging"] == "null"
    with pytest.raises(ConfigError) as caught:
        load(config, [], lambda name: name)
    assert caught.value.problems[:3] == [
        "webhook-monitoring:protect: got 'yes', expected true or false",
        "webhook-monitoring:prometheus.volumeSize: got '2024-01-01', expected a size such as 50GB or 100Gi "
        "(units B, KB, MB, GB, TB, Ki, Mi, Gi, Ti)",
        "webhook-monitoring:logging: got null, expected an object (leave the key out to take the defaults)",
    ]


def test_huge_numbers_and_dates_in_a_stack_file_are_lines_not_tracebacks(tmp_path, capsys):
    text = DEV_STACK.replace("  webhook-monitoring:alerting:\n", (
        "  webhook-monitoring:alerting:\n"
        "    thresholds:\n"
        f"      errorRatio: {'9' * 400}\n"
        f"      queueDepth: {'9' * 5000}\n"
        "      latencyP95: 2024-01-01 10:00:00\n"
    ))
    code, lines = render_file(tmp_path, text, capsys)
    assert code == 2
    assert lines == [
        "webhook-monitoring:alerting.thresholds.errorRatio: got a 400-digit number, expected a finite number",
        f"webhook-monitoring:alerting.thresholds.queueDepth: got '{'9' * 76}..., expected {INTEGER_RANGE}",
        "webhook-monitoring:alerting.thresholds.latencyP95: got '2024-01-01 10:00:00', expected a number",
    ]


def test_libyaml_reads_a_stack_file_as_pyyaml_does(tmp_path):
    """The render reads a stack file with libyaml and, when libyaml refuses it, again with PyYAML
    to word the refusal (the malformed files above): both must read the same values from a file
    they accept, dates, huge numbers, merges, sets and binaries included."""
    tricky = DEV_STACK.replace("name: webhook-dev", "name: 2024-01-01") + (
        "  webhook-monitoring:tags: &tags {team: webhooks, born: 2024-01-01 10:00:00}\n"
        "  webhook-monitoring:owners:\n    <<: *tags\n    host: grafana.example.com\n"
        f"  webhook-monitoring:protect: {'9' * 400}\n"
        "  webhook-monitoring:logging: !!set {a, b}\n"
        "  webhook-monitoring:federationCredentials: !!binary aGVsbG8=\n"
        "  webhook-monitoring:slackWebhookUrl:\n    secure: v1:AAAABBBBCCCC\n"
    )
    texts = [path.read_text() for path in [*ROOT.glob("Pulumi.*.yaml"), *ROOT.glob("docs/examples/Pulumi.*.yaml")]]
    for text in [*texts, tricky]:
        path = tmp_path / "Pulumi.any.yaml"
        path.write_text(text)
        read = program._config_of(path, text, program._FastStackFileLoader)
        assert read == program._config_of(path, text, program._StackFileLoader)
    config, declared = read
    assert (json.loads(config["webhook-monitoring:cluster"])["name"], config["webhook-monitoring:protect"]) == ("2024-01-01", "9" * 400)
    assert json.loads(config["webhook-monitoring:owners"]) == {
        "team": "webhooks", "born": "2024-01-01 10:00:00", "host": "grafana.example.com"}
    assert json.loads(config["webhook-monitoring:logging"]) == {"a": None, "b": None}
    assert config["webhook-monitoring:federationCredentials"] == "aGVsbG8="
    assert declared == {"webhook-monitoring:slackWebhookUrl"}


def test_the_readme_example_of_configuration_errors_is_what_the_render_prints(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("with one line per problem:\n\n```\n", 1)[1].split("```", 1)[0]
    example = block.splitlines()
    assert len(example) >= 3
    text = DEV_STACK.replace(
        "  webhook-monitoring:prometheus:\n    volumeSize: 60Gi\n",
        "  webhook-monitoring:prometheus:\n    retension: 15d\n    volumeSize: 100Gb\n",
    ) + "  webhook-monitoring:slackWebhookUrl: https://hooks.slack.com/services/T000/B000/XXXX\n"
    code, lines = render_file(tmp_path, text, capsys, stack="dev")
    assert code == 2
    assert [line for line in example if line not in lines] == []
    assert lines == example, "the README shows every line the render prints for these mistakes"


def test_any_stack_file_is_a_stack_the_render_knows(tmp_path, capsys):
    for stack in ("dev", "prod"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text((ROOT / f"Pulumi.{stack}.yaml").read_text())
    # A stack of its own: another cluster and Grafana host than dev's (a copy left unchanged is refused:
    # tests/test_everyday.py).
    (tmp_path / "Pulumi.staging.yaml").write_text(DEV_STACK.replace("environment: dev", "environment: staging")
                                                  .replace("webhook-dev", "webhook-staging")
                                                  .replace("grafana.dev.", "grafana.staging."))
    (tmp_path / "Pulumi.yaml").write_text("name: webhook-monitoring\n")
    assert stacks(tmp_path) == ["dev", "prod", "staging"]
    assert program.stack_file("staging", tmp_path) == tmp_path / "Pulumi.staging.yaml"
    assert render.render("staging", root=tmp_path) == 0
    assert (tmp_path / "build" / "staging" / "resources.json").is_file()
    capsys.readouterr()
    assert render.render("qa", root=tmp_path) == 2
    assert capsys.readouterr().err == "no stack file Pulumi.qa.yaml: stacks are dev, prod, staging\n"


@pytest.mark.parametrize("text, ms", [("0", 0), ("0s", 0), ("500ms", 500), ("90s", 90_000), ("1h30m", 5_400_000),
                                      ("1w", 604_800_000), ("3d", 259_200_000), ("1m30s500ms", 90_500)])
def test_duration_ms(text, ms):
    """The one duration parser: what the settings, the live harness and the SLO test read."""
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "5x", "1.5h", "30m1h", "1s1s", "-5m", "5M"])
def test_duration_ms_refuses_what_prometheus_refuses(text):
    """Prometheus takes units from the largest down, each once (`1h30m`, never `30m1h`)."""
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_ms(text)
