"""Stack configuration: defaults, per-environment values, and every kind of bad input refused."""

from __future__ import annotations

import re

import pytest

from config import ConfigError, load
from config.docs import render as render_configuration_docs
from config.schema import Duration, Size, describe
from config.settings import Settings
from tests.support import ROOT, SECRET_VALUES, raw_config, stack_secrets, stack_settings


def problems(stack: str, overrides=None, secrets=None) -> list[str]:
    raw, secret_keys = raw_config(stack, overrides, secrets)
    with pytest.raises(ConfigError) as caught:
        load(raw, secret_keys, lambda name: "secret")
    return caught.value.problems


def test_defaults_are_the_task_documents_production_values():
    s = stack_settings("prod")
    assert s.prometheus.retention == Duration("15d")
    assert s.prometheus.retention_size == Size("50GB")
    assert (s.prometheus.resources.cpu_request, s.prometheus.resources.memory_request) == ("200m", "2000Mi")
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
    assert s.prometheus.resources.cpu_request == "200m"  # the section default stays


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
        ({"storage": {"iops": 100}}, "webhook-monitoring:storage.iops: got 100, expected a number from 3000 to 16000"),
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
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_expected(overrides, expected):
    found = problems("prod", overrides)
    assert any(p.startswith(expected) for p in found), found


def test_misspelled_key_is_an_error_with_the_closest_valid_key():
    found = problems("dev", {"prometheus": {"retension": "15d"}})
    assert found == [
        "webhook-monitoring:prometheus.retension: unknown key; did you mean 'retention'? (valid keys: "
        "evaluationInterval, remoteWriteDrop, remoteWriteQueue, replicas, resources, retention, retentionSize, "
        "scrapeInterval, volumeSize)"
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
    found = problems("prod", secrets={"slackWebhookUrl": "x", "heartbeatUrl": "y", "grafanaOauthClientSecret": "z"})
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
