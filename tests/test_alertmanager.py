"""Alertmanager configuration (amtool), its Helm values, and the Alerting component (mocks)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator, Optional

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor
import yaml

from components.alerting import Alerting, AlertingArgs, pagerduty_timeout
from config import ConfigError, Duration, Settings, load
from monitoring.rules import rule_groups
from tests.support import ONCALL, SECRET_VALUES, minimal_settings, raw_config, stack_settings
from monitoring.alertmanager import PLATFORM_MARK, Receivers, alertmanager_config, inhibit_rules, render_yaml
from monitoring.helm.kube_prometheus_stack import alertmanager_values as helm_values
from testkit.live import CaptureServer, Process, free_port, post_json, responds, wait_until
from tests.mocks_alerting import (
    GET_SCHEDULE,
    GET_USER,
    INTEGRATION_KEY,
    AlertingMocks,
    schedule_id,
    secret_value,
    user_id,
)
from tools.go_tools import binary

NS = "webhook-monitoring:"

SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-placeholder"
ROUTING_KEY = "pagerduty-routing-key-placeholder"
HEARTBEAT_URL = "https://hc-ping.example.com/heartbeat-placeholder"
PLATFORM_SLACK_URL = "https://hooks.slack.com/services/T000/B111/platform-placeholder"
PLATFORM_ROUTING_KEY = "platform-routing-key-placeholder"
PLACEHOLDERS = (SLACK_URL, ROUTING_KEY, HEARTBEAT_URL, PLATFORM_SLACK_URL, PLATFORM_ROUTING_KEY)
TEAM = "webhook-delivery"

MUTE_NIGHTS = {"name": "nights", "weekdays": ["monday:friday"], "times": ["00:00-07:00"]}
MUTE_WEEKEND = {"name": "weekend", "weekdays": ["saturday", "sunday"]}


def settings_for(environment: str, alerting: Optional[dict[str, Any]] = None) -> Settings:
    """Minimal settings; prod pages the ONCALL users unless `alerting` says otherwise."""
    return minimal_settings(environment, **({} if alerting is None else {"alerting": alerting}))


def placeholder_receivers(settings: Settings, heartbeat: bool = True, platform: bool = False) -> Receivers:
    return Receivers(
        slack_webhook_url=SLACK_URL,
        pagerduty_routing_key=ROUTING_KEY if settings.alerting.pagerduty.enabled else None,
        heartbeat_url=HEARTBEAT_URL if heartbeat else None,
        platform_slack_webhook_url=PLATFORM_SLACK_URL if platform else None,
        platform_pagerduty_routing_key=PLATFORM_ROUTING_KEY if platform else None,
    )


def write_config(directory: Path, config: dict[str, Any]) -> Path:
    path = directory / "alertmanager.yaml"
    path.write_text(render_yaml(config))
    return path


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary("amtool"), *args], capture_output=True, text=True, timeout=30)


def routed_receivers(config_file: Path, labels: dict[str, str]) -> list[str]:
    """Every receiver an alert with `labels` reaches, as amtool resolves the routing tree."""
    result = amtool("config", "routes", "test", f"--config.file={config_file}", *[f"{k}={v}" for k, v in labels.items()])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def verify_route(config_file: Path, receiver: str, labels: dict[str, str]) -> subprocess.CompletedProcess:
    return amtool(
        "config", "routes", "test", f"--config.file={config_file}", f"--verify.receivers={receiver}",
        *[f"{k}={v}" for k, v in labels.items()],
    )


def team_route(config: dict[str, Any]) -> dict[str, Any]:
    (route,) = [r for r in config["route"]["routes"] if r["matchers"] == [f'team="{TEAM}"']]
    return route


@pytest.fixture(scope="module")
def config_files(tmp_path_factory) -> dict[str, Path]:
    """Rendered configs: dev (PagerDuty off, no heartbeat URL), prod (with mute intervals), and prod
    with the platform's own Slack webhook and PagerDuty service."""
    dev = settings_for("dev")
    prod = settings_for(
        "prod",
        {
            "pagerduty": {"escalationUsers": ONCALL},
            "alertmanager": {"warningMuteIntervals": [MUTE_NIGHTS, MUTE_WEEKEND]},
        },
    )
    return {
        "dev": write_config(tmp_path_factory.mktemp("dev"), alertmanager_config(dev, placeholder_receivers(dev, False))),
        "prod": write_config(tmp_path_factory.mktemp("prod"), alertmanager_config(prod, placeholder_receivers(prod))),
        "prod-platform": write_config(tmp_path_factory.mktemp("platform"),
                                      alertmanager_config(prod, placeholder_receivers(prod, platform=True))),
    }


# ------------------------------------------------------------------------------ amtool


@pytest.mark.parametrize("stack", ["dev", "prod", "prod-platform"])
def test_rendered_config_passes_amtool_check_config(config_files, stack):
    result = amtool("check-config", str(config_files[stack]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_check_config_refuses_a_route_to_an_undefined_receiver(tmp_path):
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    team_route(config)["routes"][-1]["receiver"] = "nobody"
    result = amtool("check-config", str(write_config(tmp_path, config)))
    assert result.returncode != 0
    assert 'undefined receiver "nobody"' in result.stdout + result.stderr


# As the rules label them (the team label), and as the charts' alerts come (without it, except
# their Prometheus and Alertmanager groups; testkit/chart_intent.py routes every rendered one).
CRITICAL = {"alertname": "WebhookHighErrorRate", "severity": "critical", "cluster": "c1", "service": "webhook-delivery", "team": TEAM}
WARNING = {"alertname": "HighLatency", "severity": "warning", "cluster": "c1", "service": "webhook-delivery", "team": TEAM}
INFO = {"alertname": "KubeQuotaAlmostFull", "severity": "info", "namespace": "webhook-delivery"}
TEAM_INFO = {**WARNING, "severity": "info"}
TEAM_UNLABELLED = {"alertname": "WebhookSomethingNew", "team": TEAM}
WATCHDOG = {"alertname": "Watchdog", "severity": "info", "team": TEAM}
INFO_INHIBITOR = {"alertname": "InfoInhibitor", "severity": "none", "namespace": "webhook-delivery"}
CLUSTER_CRITICAL = {"alertname": "KubePersistentVolumeErrors", "severity": "critical", "namespace": "kube-system"}
CLUSTER_WARNING = {"alertname": "KubeNodeNotReady", "severity": "warning", "node": "ip-10-0-1-1"}
CHART_PIPELINE_CRITICAL = {"alertname": "PrometheusRuleFailures", "severity": "critical", "team": TEAM}
SLACK_FAILING = {"alertname": "AlertmanagerFailedToSendAlerts", "severity": "warning", "integration": "slack", "team": TEAM}
PAGERDUTY_FAILING = {"alertname": "AlertmanagerClusterFailedToSendAlerts", "severity": "critical",
                     "integration": "pagerduty", "team": TEAM}
UNLABELLED = {"alertname": "SomethingFromAnotherTeam"}


@pytest.mark.parametrize(
    "stack, labels, receiver",
    [
        ("prod", CRITICAL, "pagerduty"),
        ("prod", WARNING, "slack"),
        ("prod", TEAM_UNLABELLED, "slack"),
        ("prod", WATCHDOG, "heartbeat"),
        # Watchdog is matched first whatever its severity: it must never page.
        ("prod", {**WATCHDOG, "severity": "critical"}, "heartbeat"),
        # Info alerts are for dashboards, InfoInhibitor (severity none) exists only to inhibit them:
        # neither notifies anyone, the team's or not.
        ("prod", INFO, "null"),
        ("prod", TEAM_INFO, "null"),
        ("prod", INFO_INHIBITOR, "null"),
        ("prod", {**INFO_INHIBITOR, "team": TEAM}, "null"),
        ("prod", {"alertname": "Anything", "severity": "none"}, "null"),
        # The charts' alerts on the alerting pipeline are the team's.
        ("prod", CHART_PIPELINE_CRITICAL, "pagerduty"),
        # A notifier failing is told through the other one.
        ("prod", SLACK_FAILING, "pagerduty"),
        ("prod", PAGERDUTY_FAILING, "slack"),
        ("dev", SLACK_FAILING, "slack"),
        # The cluster's alerts are the platform's: its channel, never the team's PagerDuty.
        ("prod", CLUSTER_CRITICAL, "platform"),
        ("prod", CLUSTER_WARNING, "platform"),
        ("prod", UNLABELLED, "platform"),
        ("prod", {}, "platform"),
        ("prod", {**CLUSTER_CRITICAL, "team": "payments"}, "platform"),
        ("prod-platform", CLUSTER_CRITICAL, "platform-pagerduty"),
        ("prod-platform", CLUSTER_WARNING, "platform"),
        ("prod-platform", INFO, "null"),
        ("prod-platform", CRITICAL, "pagerduty"),
        ("dev", CRITICAL, "slack"),
        ("dev", WARNING, "slack"),
        ("dev", WATCHDOG, "null"),
        ("dev", INFO_INHIBITOR, "null"),
        ("dev", CLUSTER_CRITICAL, "platform"),
        ("dev", UNLABELLED, "platform"),
    ],
)
def test_amtool_routes_each_alert_to_exactly_one_receiver(config_files, stack, labels, receiver):
    result = verify_route(config_files[stack], receiver, labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert routed_receivers(config_files[stack], labels) == [receiver]


@pytest.mark.parametrize(
    "labels, wrong_receiver",
    [
        (CRITICAL, "slack"),  # PagerDuty on: a page is one receiver (its Slack copy is in it)
        (WARNING, "pagerduty"),
        (INFO, "pagerduty"),
        (INFO_INHIBITOR, "slack"),
        (INFO_INHIBITOR, "platform"),
        (CLUSTER_CRITICAL, "pagerduty"),
        (UNLABELLED, "slack"),
        (WATCHDOG, "slack"),
        (WATCHDOG, "pagerduty"),
        (SLACK_FAILING, "slack"),
    ],
)
def test_amtool_refuses_the_wrong_receiver(config_files, labels, wrong_receiver):
    result = verify_route(config_files["prod"], wrong_receiver, labels)
    assert result.returncode != 0
    assert "Expected receivers did not match" in result.stdout + result.stderr


# Who each of our rules must reach, by its owner (the `team` label) and severity, per config.
OWNER_RECEIVERS = {
    "dev": {("webhook-delivery", "critical"): "slack", ("webhook-delivery", "warning"): "slack",
            ("platform", "critical"): "platform", ("platform", "warning"): "platform"},
    "prod": {("webhook-delivery", "critical"): "pagerduty", ("webhook-delivery", "warning"): "slack",
             ("platform", "critical"): "platform", ("platform", "warning"): "platform"},
    "prod-platform": {("webhook-delivery", "critical"): "pagerduty", ("webhook-delivery", "warning"): "slack",
                      ("platform", "critical"): "platform-pagerduty", ("platform", "warning"): "platform"},
}


@pytest.mark.parametrize("config", sorted(OWNER_RECEIVERS))
def test_amtool_routes_every_team_alert_to_the_team_and_every_store_alert_to_the_platform(config_files, config):
    """Every alert rule of the rendered stack (dev's rules for dev, prod's for prod), routed by amtool
    with the labels its rule gives it: the team's (workloads, certificates, the service) to the team's
    receivers, the stores' internals (team `platform`) to the platform's. One amtool run per distinct
    (team, severity); the alert names of each are checked to be the ones expected there."""
    stack = config.split("-")[0]
    rules = [r for g in rule_groups(stack_settings(stack)) for r in g["rules"]
             if "alert" in r and r["alert"] != "Watchdog" and r["labels"]["severity"] != "info"]
    by_owner: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        by_owner.setdefault((rule["labels"]["team"], rule["labels"]["severity"]), set()).add(rule["alert"])
    assert set(by_owner) == set(OWNER_RECEIVERS[config])
    assert {"WorkloadCrashLooping", "WorkloadVolumeFillingUp", "GrafanaCertificateNotReady"} <= by_owner[("webhook-delivery", "warning")]
    assert {"WebhookDeliveriesStalled", "WebhookTargetDown", "WorkloadVolumeFillingUp"} <= by_owner[("webhook-delivery", "critical")]
    assert {"MimirCompactorNotCompacting", "LokiIngestionRefused"} <= by_owner[("platform", "warning")]
    assert by_owner[("platform", "critical")] == {"MimirIngesterWALFailing", "LokiIngesterWALFailing"}
    assert not any(name.startswith(("Mimir", "Loki")) for (team, _), names in by_owner.items()
                   if team == "webhook-delivery" for name in names)
    for (team, severity), names in sorted(by_owner.items()):
        labels = {"alertname": sorted(names)[0], "severity": severity, "team": team, "cluster": "c1",
                  "namespace": "monitoring", "service": "mimir"}
        assert routed_receivers(config_files[config], labels) == [OWNER_RECEIVERS[config][(team, severity)]], (team, severity)


# ------------------------------------------------------------------------------ config as data


def walk(value: Any, path: str = ""):
    """(path, key-or-None, value) for every node of a nested dict/list."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield f"{path}.{key}", key, child
            yield from walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield f"{path}[{i}]", None, child
            yield from walk(child, f"{path}[{i}]")


DEPRECATED_KEYS = {"match", "match_re", "source_match", "source_match_re", "target_match", "target_match_re", "service_key"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_deprecated_matchers_or_pagerduty_service_key(config_files, stack):
    config = yaml.safe_load(config_files[stack].read_text())
    used = {key for _, key, _ in walk(config) if key is not None}
    assert used & DEPRECATED_KEYS == set()
    assert {"matchers", "source_matchers", "target_matchers"} <= used


def test_inhibit_rules_silence_warnings_under_a_page_and_everything_under_a_down_target():
    settings = settings_for("prod")
    team = 'team="webhook-delivery"'
    assert alertmanager_config(settings, placeholder_receivers(settings))["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"', team],
            "target_matchers": ['severity="warning"', team, 'alertname!="Watchdog"'],
            "equal": ["cluster", "namespace", "service"],
        },
        {
            "source_matchers": ['alertname="WebhookTargetDown"', team],
            "target_matchers": ['alertname!="WebhookTargetDown"', team, 'alertname!="Watchdog"'],
            "equal": ["cluster", "namespace", "service"],
        },
        {
            "source_matchers": ['alertname="WebhookHighErrorRate"', team],
            "target_matchers": ['alertname="WebhookErrorBudgetBurn"', 'severity="critical"', team],
            "equal": ["cluster", "namespace", "service"],
        },
    ]
    # The team label comes from the settings: another team's alerts neither silence nor are silenced.
    other = minimal_settings("prod", teamLabel="payments")
    assert all('team="payments"' in rule["source_matchers"] for rule in inhibit_rules(other))


def test_grouping_and_timings_come_from_settings():
    settings = settings_for(
        "dev",
        {"alertmanager": {"groupWait": "45s", "groupInterval": "10m", "repeatInterval": "4h", "resolveTimeout": "15m"}},
    )
    config = alertmanager_config(settings, placeholder_receivers(settings))
    route = config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("45s", "10m", "4h")
    assert config["global"] == {"resolve_timeout": "15m"}
    assert route["group_by"] == ["alertname", "cluster", "service"]
    assert route["receiver"] == "platform"


def test_task_document_timings_are_the_defaults():
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    route = config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "12h")
    assert config["global"]["resolve_timeout"] == "5m"


def test_watchdog_is_repeated_often_enough_for_a_heartbeat():
    settings = settings_for("prod")
    watchdog = alertmanager_config(settings, placeholder_receivers(settings))["route"]["routes"][0]
    assert watchdog["matchers"] == ['alertname="Watchdog"']
    assert watchdog["group_wait"] == "0s"
    assert Duration(watchdog["repeat_interval"]).seconds <= 300
    assert Duration(watchdog["group_interval"]).seconds <= Duration(watchdog["repeat_interval"]).seconds


def test_warning_mute_intervals_apply_to_warnings_only():
    settings = settings_for(
        "prod",
        {"pagerduty": {"escalationUsers": ONCALL}, "alertmanager": {"warningMuteIntervals": [MUTE_NIGHTS, MUTE_WEEKEND]}},
    )
    config = alertmanager_config(settings, placeholder_receivers(settings))
    assert config["time_intervals"] == [
        {
            "name": "nights",
            "time_intervals": [{"weekdays": ["monday:friday"], "times": [{"start_time": "00:00", "end_time": "07:00"}]}],
        },
        {"name": "weekend", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]},
    ]
    by_severity = {r["matchers"][0]: r for r in team_route(config)["routes"]}
    assert by_severity['severity="warning"']["mute_time_intervals"] == ["nights", "weekend"]
    assert "mute_time_intervals" not in by_severity['severity="critical"']
    # A notifier failing is told at night too; the platform's alerts follow the platform's rules.
    muted = [path for path, key, _ in walk(config) if key == "mute_time_intervals"]
    assert muted == [".route.routes[3].routes[3].mute_time_intervals"]


def test_no_time_intervals_without_mute_settings():
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    assert "time_intervals" not in config
    assert all("mute_time_intervals" not in r for r in config["route"]["routes"])


def receiver(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [r for r in config["receivers"] if r["name"] == name]
    return found


def test_pagerduty_receiver_uses_events_api_v2_and_copies_pages_to_slack_in_prod():
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    pagerduty_receiver = receiver(config, "pagerduty")
    (pagerduty,) = pagerduty_receiver["pagerduty_configs"]
    assert pagerduty["routing_key"] == ROUTING_KEY
    assert "service_key" not in pagerduty and "url" not in pagerduty  # Events API v2, its default URL
    assert pagerduty["send_resolved"] is True
    # What a page says is asserted on what the real Alertmanager sends (below, and tests/e2e).
    (copy,) = pagerduty_receiver["slack_configs"]
    assert (copy["api_url"], copy["channel"]) == (SLACK_URL, "#webhook-alerts")
    assert copy == receiver(config, "slack")["slack_configs"][0]


def test_pages_are_copied_to_slack_only_where_set():
    dev_with_pagerduty = settings_for("dev", {"pagerduty": {"enabled": True, "escalationUsers": ONCALL}})
    config = alertmanager_config(dev_with_pagerduty, placeholder_receivers(dev_with_pagerduty))
    assert "slack_configs" not in receiver(config, "pagerduty")
    off = settings_for("prod", {"pagerduty": {"escalationUsers": ONCALL}, "alertmanager": {"copyPagesToSlack": False}})
    assert "slack_configs" not in receiver(alertmanager_config(off, placeholder_receivers(off)), "pagerduty")


def test_slack_receivers_post_to_the_team_and_the_platform_channels():
    settings = settings_for("dev", {"alertmanager": {"slackChannel": "#webhook-alerts-dev"},
                                    "platform": {"slackChannel": "#k8s-alerts"}})
    config = alertmanager_config(settings, placeholder_receivers(settings, platform=True))
    (team,) = receiver(config, "slack")["slack_configs"]
    (platform,) = receiver(config, "platform")["slack_configs"]
    assert (team["api_url"], team["channel"]) == (SLACK_URL, "#webhook-alerts-dev")
    # Each channel through its own webhook: a Slack app's webhook posts only to the channel it was made for.
    assert (platform["api_url"], platform["channel"]) == (PLATFORM_SLACK_URL, "#k8s-alerts")
    assert team["send_resolved"] is True and platform["send_resolved"] is True
    assert not platform["title"].startswith(PLATFORM_MARK)
    assert receiver(config, "platform-pagerduty")["pagerduty_configs"][0]["routing_key"] == PLATFORM_ROUTING_KEY


def test_without_a_channel_of_its_own_the_platform_posts_to_the_teams_marked_as_the_platforms():
    settings = settings_for("dev")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    (team,) = receiver(config, "slack")["slack_configs"]
    (platform,) = receiver(config, "platform")["slack_configs"]
    assert (platform["api_url"], platform["channel"]) == (SLACK_URL, team["channel"]) == (SLACK_URL, "#webhook-alerts")
    assert platform["title"] == PLATFORM_MARK + team["title"] and platform["fallback"].startswith(PLATFORM_MARK)
    assert not team["title"].startswith(PLATFORM_MARK)


def test_a_platform_channel_without_its_own_webhook_is_refused():
    secrets = {k: v for k, v in SECRET_VALUES.items() if k != "platformSlackWebhookUrl"}
    raw, secret_keys = raw_config("dev", {"alerting": {"platform": {"slackChannel": "#k8s-alerts"}}}, secrets)
    with pytest.raises(ConfigError) as refused:
        load(raw, secret_keys, lambda name: secrets[name])
    assert refused.value.problems == [
        "webhook-monitoring:platformSlackWebhookUrl: missing, expected a secret (Slack incoming-webhook URL of the "
        "platform channel (`alerting.platform.slackChannel`): a Slack app's webhook posts only to the channel it was "
        "made for.) run `pulumi config set --secret webhook-monitoring:platformSlackWebhookUrl <value>`"]
    # The team's own channel named again needs nothing more.
    raw, secret_keys = raw_config("dev", {"alerting": {"platform": {"slackChannel": "#webhook-alerts"}}}, secrets)
    assert load(raw, secret_keys, lambda name: secrets[name])[0].alerting.platform.slack_channel == "#webhook-alerts"


def test_pagerduty_off_means_no_pagerduty_receiver():
    settings = settings_for("dev")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    assert [r["name"] for r in config["receivers"]] == ["heartbeat", "null", "platform", "slack"]
    assert {"receiver": "slack", "matchers": ['severity="critical"']} in team_route(config)["routes"]


def test_alertmanager_links_open_in_grafana():
    settings = settings_for("prod")
    values = helm_values(settings, "alertmanager-config", "gp3", {})
    assert values["alertmanagerSpec"]["externalUrl"] == "https://grafana.example.com/alerting/groups?alertmanager=alertmanager"


def test_without_a_heartbeat_url_watchdog_goes_to_a_receiver_with_no_integrations():
    settings = settings_for("dev")
    config = alertmanager_config(settings, placeholder_receivers(settings, heartbeat=False))
    assert receiver(config, "null") == {"name": "null"}
    assert config["route"]["routes"][0]["receiver"] == "null"
    assert HEARTBEAT_URL not in render_yaml(config)


@pytest.mark.parametrize("stack, routing_key", [("prod", None), ("dev", ROUTING_KEY)])
def test_refuses_a_routing_key_that_disagrees_with_the_pagerduty_setting(stack, routing_key):
    with pytest.raises(ValueError, match="alerting.pagerduty.enabled"):
        alertmanager_config(settings_for(stack), Receivers(SLACK_URL, routing_key, HEARTBEAT_URL))


def test_secret_values_appear_only_in_receiver_credentials():
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    holding_secrets = sorted(path for path, _, value in walk(config) if value in PLACEHOLDERS)
    assert holding_secrets == [
        ".receivers[0].webhook_configs[0].url",
        ".receivers[2].pagerduty_configs[0].routing_key",
        ".receivers[2].slack_configs[0].api_url",
        ".receivers[3].slack_configs[0].api_url",
        ".receivers[4].slack_configs[0].api_url",
    ]


def test_render_is_deterministic():
    settings = settings_for("prod")
    first = render_yaml(alertmanager_config(settings, placeholder_receivers(settings)))
    assert first == render_yaml(alertmanager_config(settings, placeholder_receivers(settings)))
    assert "&id" not in first and "*id" not in first  # no YAML anchors from shared objects


# ------------------------------------------------------------------------------ Helm values


@pytest.mark.parametrize("stack, replicas", [("dev", 1), ("prod", 3)])
def test_helm_values_point_at_the_config_secret_and_keep_alerts_30_days(stack, replicas):
    values = helm_values(settings_for(stack), "alerting-alertmanager-config", "gp3", {})
    spec = values["alertmanagerSpec"]
    assert spec["configSecret"] == "alerting-alertmanager-config"
    assert spec["useExistingSecret"] is True
    assert {"config", "stringConfig", "tplConfig", "templateFiles"}.isdisjoint(values)
    assert spec["replicas"] == replicas
    assert spec["retention"] == "720h"
    claim = spec["storage"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == "5Gi"


def test_helm_values_spread_a_clustered_alertmanager():
    values = helm_values(settings_for("prod"), "cfg", "gp3", {})
    assert values["alertmanagerSpec"]["podAntiAffinity"] == "hard"
    assert values["alertmanagerSpec"]["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert values["podDisruptionBudget"] == {"enabled": True, "minAvailable": 2}


def test_helm_values_of_a_single_alertmanager_have_no_disruption_budget():
    values = helm_values(settings_for("dev"), "cfg", "gp3", {})
    assert values["podDisruptionBudget"]["enabled"] is False
    assert "podAntiAffinity" not in values["alertmanagerSpec"]
    assert "topologySpreadConstraints" not in values["alertmanagerSpec"]


def test_retention_is_given_in_hours():
    values = helm_values(settings_for("prod", {"pagerduty": {"escalationUsers": ONCALL},
                                               "alertmanager": {"retention": "60d"}}), "cfg", "gp3", {})
    assert values["alertmanagerSpec"]["retention"] == "1440h"


def test_helm_values_hold_no_secret():
    settings = settings_for("prod")
    text = json.dumps(helm_values(settings, "cfg", "gp3", {}))
    assert not any(secret in text for secret in PLACEHOLDERS)
    assert "api_url" not in text and "routing_key" not in text


# ------------------------------------------------------------------------------ component (mocks)


def run_alerting(settings: Settings, heartbeat: bool = True) -> tuple[AlertingMocks, dict[str, Any]]:
    """Instantiate Alerting under mocks; returns what was registered and the resolved outputs."""
    mocks = AlertingMocks()
    monitor = MockMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    async def program():
        alerting = Alerting(
            "alerting",
            AlertingArgs(
                settings=settings,
                namespace="monitoring",
                slack_webhook_url=pulumi.Output.secret(SLACK_URL),
                heartbeat_url=pulumi.Output.secret(HEARTBEAT_URL) if heartbeat else None,
                pagerduty_token=pulumi.Output.secret("pagerduty-token"),
                pagerduty_user_token=pulumi.Output.secret("pagerduty-user-token"),
            ),
        )
        outputs["config_secret_name"] = await alerting.config_secret_name.future()
        if alerting.pagerduty_integration_key is not None:
            outputs["integration_key"] = await alerting.pagerduty_integration_key.future()
            outputs["integration_key_is_secret"] = await alerting.pagerduty_integration_key.is_secret()
            outputs["service_id"] = await alerting.pagerduty_service_id.future()

    program()
    # A component built outside the mocks registers nothing, and every check below would pass.
    assert mocks.of_type(SECRET), "the Alerting component registered no Secret"
    outputs["urns"] = sorted(monitor.resources)
    return mocks, outputs


SECRET = "kubernetes:core/v1:Secret"
POLICY = "pagerduty:index/escalationPolicy:EscalationPolicy"
SERVICE = "pagerduty:index/service:Service"
INTEGRATION = "pagerduty:index/serviceIntegration:ServiceIntegration"
SLACK_CONNECTION = "pagerduty:index/slackConnection:SlackConnection"


def secret_config(mocks: AlertingMocks) -> dict[str, Any]:
    """The Alertmanager config in the registered Secret, which must be marked secret."""
    string_data = secret_value(mocks.one(SECRET).inputs["stringData"])
    assert list(string_data) == ["alertmanager.yaml"]
    return yaml.safe_load(string_data["alertmanager.yaml"])


def test_component_feeds_the_integration_key_into_the_secret():
    mocks, outputs = run_alerting(settings_for("prod"))
    config = secret_config(mocks)
    (pagerduty,) = receiver(config, "pagerduty")["pagerduty_configs"]
    assert pagerduty["routing_key"] == INTEGRATION_KEY
    assert receiver(config, "slack")["slack_configs"][0]["api_url"] == SLACK_URL
    assert receiver(config, "heartbeat")["webhook_configs"][0]["url"] == HEARTBEAT_URL
    assert outputs["integration_key"] == INTEGRATION_KEY
    assert outputs["integration_key_is_secret"] is True


def test_component_secret_is_named_for_the_helm_values_and_labelled():
    mocks, outputs = run_alerting(settings_for("prod"))
    secret = mocks.one(SECRET)
    assert secret.inputs["metadata"]["name"] == "alerting-alertmanager-config"
    assert secret.inputs["metadata"]["namespace"] == "monitoring"
    assert secret.inputs["metadata"]["labels"]["team"] == "webhook-delivery"
    assert secret.inputs["type"] == "Opaque"
    assert outputs["config_secret_name"] == "alerting-alertmanager-config"


def test_component_escalation_policy_targets_the_looked_up_users_in_turn():
    mocks, _ = run_alerting(settings_for("prod"))
    assert [(c.token, c.args["email"]) for c in mocks.calls] == [(GET_USER, email) for email in ONCALL]
    rules = mocks.one(POLICY).inputs["rules"]
    assert [rule["targets"] for rule in rules] == [
        [{"type": "user_reference", "id": user_id(email)}] for email in ONCALL
    ]
    assert {rule["escalationDelayInMinutes"] for rule in rules} == {30}


def test_component_service_pages_with_high_urgency_and_integration_is_events_api_v2():
    mocks, outputs = run_alerting(settings_for("prod"))
    service = mocks.one(SERVICE)
    assert service.inputs["escalationPolicy"] == "alerting-escalation-policy-id"
    assert service.inputs["incidentUrgencyRule"] == {"type": "constant", "urgency": "high"}
    assert service.inputs["acknowledgementTimeout"] == "1800"
    assert service.inputs["autoResolveTimeout"] == "null"
    integration = mocks.one(INTEGRATION)
    assert integration.inputs["type"] == "events_api_v2_inbound_integration"
    assert integration.inputs["service"] == "alerting-pagerduty-service-id"
    assert outputs["service_id"] == "alerting-pagerduty-service-id"
    assert mocks.of_type(SLACK_CONNECTION) == []


def test_component_children_are_parented_and_named_after_it():
    mocks, outputs = run_alerting(
        settings_for("prod", {"pagerduty": {"escalationUsers": ONCALL, "slackWorkspaceId": "T1", "slackChannelId": "C1"}})
    )
    children = [urn for urn in outputs["urns"] if not urn.endswith("webhook-monitoring:alerting:Alerting::alerting")]
    # Provider, escalation policy, service, integration, Slack connection and the config Secret.
    assert len(children) == 6
    assert any("$pulumi:providers:pagerduty::alerting-pagerduty" in urn for urn in children)
    for urn in children:
        assert urn.split("::")[2].startswith("webhook-monitoring:alerting:Alerting$"), urn
        assert urn.split("::")[3].startswith("alerting-"), urn


def test_component_with_pagerduty_off_registers_no_pagerduty_resource():
    mocks, outputs = run_alerting(settings_for("dev"), heartbeat=False)
    assert [r.typ for r in mocks.resources if r.typ.startswith("pagerduty:")] == []
    assert mocks.calls == []
    config = secret_config(mocks)
    assert [r["name"] for r in config["receivers"]] == ["null", "platform", "slack"]
    assert config["route"]["routes"][0]["receiver"] == "null"  # Watchdog, without a heartbeat URL
    assert "integration_key" not in outputs


def test_component_uses_an_existing_escalation_policy_without_lookups():
    mocks, _ = run_alerting(settings_for("prod", {"pagerduty": {"escalationPolicyId": "PEXIST1"}}))
    assert mocks.of_type(POLICY) == []
    assert mocks.calls == []
    assert mocks.one(SERVICE).inputs["escalationPolicy"] == "PEXIST1"


def test_component_pages_schedules_then_users_and_connects_slack():
    mocks, _ = run_alerting(
        settings_for(
            "prod",
            {
                "pagerduty": {
                    "escalationSchedules": ["Webhook Primary"],
                    "escalationUsers": ["lead@example.com"],
                    "escalationDelay": "15m",
                    "acknowledgementTimeout": None,
                    "autoResolveTimeout": "4h",
                    "slackWorkspaceId": "T0123",
                    "slackChannelId": "C0456",
                }
            },
        )
    )
    assert {(c.token, c.args.get("name") or c.args.get("email")) for c in mocks.calls} == {
        (GET_SCHEDULE, "Webhook Primary"),
        (GET_USER, "lead@example.com"),
    }
    rules = mocks.one(POLICY).inputs["rules"]
    assert [rule["targets"] for rule in rules] == [
        [{"type": "schedule_reference", "id": schedule_id("Webhook Primary")}],
        [{"type": "user_reference", "id": user_id("lead@example.com")}],
    ]
    assert {rule["escalationDelayInMinutes"] for rule in rules} == {15}
    service = mocks.one(SERVICE)
    assert service.inputs["autoResolveTimeout"] == "14400"
    assert service.inputs["acknowledgementTimeout"] == "null"
    connection = mocks.one(SLACK_CONNECTION)
    assert connection.inputs["sourceId"] == "alerting-pagerduty-service-id"
    assert connection.inputs["sourceType"] == "service_reference"
    assert (connection.inputs["workspaceId"], connection.inputs["channelId"]) == ("T0123", "C0456")
    assert "incident.triggered" in connection.inputs["configs"][0]["events"]


@pytest.mark.parametrize("timeout, expected", [(None, "null"), (Duration("30m"), "1800"), (Duration("4h"), "14400")])
def test_pagerduty_timeouts_are_seconds_or_null(timeout, expected):
    assert pagerduty_timeout(timeout) == expected


# ------------------------------------------------------------------------------ real Alertmanager


RUNBOOKS = "https://runbooks.example.com/"
GRAFANA = "https://grafana.example.com"
# What the rules attach (team), and Prometheus (external labels).
SERVICE_LABELS = {"cluster": "c1", "environment": "prod", "namespace": "webhook-delivery", "service": "webhook-delivery", "team": TEAM}


def alert(labels: dict[str, str], summary: str = "", description: str = "", value: str = "") -> dict[str, Any]:
    annotations = {"summary": summary, "description": description, "value": value,
                   "runbook_url": f"{RUNBOOKS}{labels['alertname']}.md"}
    return {"labels": labels, "annotations": annotations}


PAGE = alert({**SERVICE_LABELS, "alertname": "WebhookHighErrorRate", "severity": "critical"},
             "High webhook error rate detected", "Webhook error rate is 7.5%", "0.075")
BURNS = [alert({**SERVICE_LABELS, "service": "webhook-worker", "alertname": "WebhookErrorBudgetBurn", "severity": "critical",
                "slo_window": window}, "Webhook delivery error budget burning", f"Burning over {window}", "0.02")
         for window in ("1h", "6h")]


delivered_while_firing: dict[int, list] = {}


@pytest.fixture(scope="module")
def delivered(tmp_path_factory) -> Iterator[CaptureServer]:
    """The deployed Alertmanager version running the prod config, as the Operator starts it (its
    external URL from the Helm values), fed one of each kind of alert, then the page resolved."""
    capture = CaptureServer()
    settings = settings_for("prod", {"pagerduty": {"escalationUsers": ONCALL},
                                     "alertmanager": {"groupWait": "1s", "groupInterval": "1s"},
                                     "platform": {"slackChannel": "#platform-alerts"}})
    config = alertmanager_config(settings, Receivers(
        f"{capture.url}/slack", ROUTING_KEY, f"{capture.url}/heartbeat", platform_slack_webhook_url=f"{capture.url}/platform"))
    # Only the test redirects PagerDuty; production uses the Events API v2 default URL.
    receiver(config, "pagerduty")["pagerduty_configs"][0]["url"] = f"{capture.url}/pagerduty"
    external_url = helm_values(settings, "alertmanager-config", "gp3", {})["alertmanagerSpec"]["externalUrl"]
    directory = tmp_path_factory.mktemp("alertmanager")
    port = free_port()
    process = Process(
        [
            binary("alertmanager"),
            f"--config.file={write_config(directory, config)}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url={external_url}",
            "--web.route-prefix=/",
            "--cluster.listen-address=",
        ],
        directory / "alertmanager.log",
    )
    try:
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: responds(f"{api}/-/ready"), what="Alertmanager ready")
        alerts = [
            PAGE,
            # Inhibited: the same service already pages.
            alert({**SERVICE_LABELS, "alertname": "HighLatency", "severity": "warning"},
                  "High webhook delivery latency", "P95 latency is 0.9s", "0.9"),
            alert({**SERVICE_LABELS, "service": "webhook-api", "alertname": "HighLatency", "severity": "warning"},
                  "High webhook delivery latency", "P95 latency is 0.7s", "0.7"),
            *BURNS,
            alert({"cluster": "c1", "environment": "prod", "alertname": "Watchdog", "severity": "info", "team": TEAM}),
            # The chart's: InfoInhibitor notifies no one; a node alert goes to the platform channel.
            alert({"cluster": "c1", "environment": "prod", "namespace": "webhook-delivery", "alertname": "InfoInhibitor",
                   "severity": "none"}),
            alert({"cluster": "c1", "environment": "prod", "alertname": "KubeNodeNotReady", "severity": "warning",
                   "node": "ip-10-0-1-1"}, "Node is not ready.", "ip-10-0-1-1 has been unready for more than 15 minutes."),
        ]
        assert post_json(f"{api}/api/v2/alerts", alerts) == 200
        wait_until(lambda: all(capture.received(p) for p in ("/pagerduty", "/slack", "/heartbeat", "/platform"))
                   and len(capture.received("/pagerduty")) == 2)
        time.sleep(1.5)  # a late, wrong post (an inhibited warning) would be here by now
        delivered_while_firing[id(capture)] = list(capture.posts)
        # The page resolves: the same incident closes, and its Slack copy says so.
        resolved = {**PAGE, "endsAt": "2000-01-01T00:00:00Z"}
        assert post_json(f"{api}/api/v2/alerts", [resolved]) == 200
        wait_until(lambda: any(p["event_action"] == "resolve" for p in capture.received("/pagerduty")))
        time.sleep(1.5)
        yield capture
    finally:
        process.stop()
        capture.shutdown()


def page_of(delivered: CaptureServer, alertname: str, action: str = "trigger") -> dict[str, Any]:
    (page,) = [p for p in delivered.received("/pagerduty")
               if p["payload"]["class"] == alertname and p["event_action"] == action]
    return page


def slack_of(delivered: CaptureServer, path: str, alertname: str, status: str = "FIRING", service: str = "") -> dict[str, Any]:
    found = [(m, a) for m in delivered.received(path) for a in m["attachments"]
             if {"title": "Alert", "value": alertname, "short": True} in a["fields"] and a["title"].startswith(f"[{status}")
             and f"] {service}:" in a["title"]]
    (message, attachment), = found
    return {**message, "attachment": attachment}


@pytest.mark.live
def test_a_page_says_where_what_and_where_to_look(delivered):
    page = page_of(delivered, "WebhookHighErrorRate")
    assert page["routing_key"] == ROUTING_KEY
    assert len(page["dedup_key"]) == 64  # hash of the group key: one incident per group
    payload = page["payload"]
    assert payload["summary"] == "[prod/c1] webhook-delivery: High webhook error rate detected"
    assert (payload["severity"], payload["class"], payload["group"], payload["component"]) == (
        "critical", "WebhookHighErrorRate", "c1", "webhook-delivery")
    details = payload["custom_details"]
    assert details["descriptions"] == ["Webhook error rate is 7.5%"]
    assert details["values"] == ["0.075"]
    assert (details["cluster"], details["environment"], details["namespace"]) == ("c1", "prod", "webhook-delivery")
    assert details["labels"] == {k: v for k, v in PAGE["labels"].items()}
    # Alertmanager's own: every alert of the group, labels and annotations.
    assert (details["num_firing"], details["num_resolved"]) == (1, 0)
    (firing,) = details["firing"]
    assert (firing["labels"], firing["annotations"]) == (PAGE["labels"], PAGE["annotations"])
    dashboard = f"{GRAFANA}/d/webhook-overview?var-namespace=webhook-delivery&var-service=webhook-delivery"
    assert details["runbook_url"] == f"{RUNBOOKS}WebhookHighErrorRate.md"
    assert details["dashboard_url"] == dashboard
    assert [(link["text"], link["href"]) for link in page["links"]] == [
        ("Runbook", f"{RUNBOOKS}WebhookHighErrorRate.md"), ("Dashboard", dashboard), ("Logs", details["logs_url"])]
    # The Explore link opens the service's logs in Loki for the last hour.
    logs = urllib.parse.urlparse(details["logs_url"])
    assert f"{logs.scheme}://{logs.netloc}{logs.path}" == f"{GRAFANA}/explore"
    pane = json.loads(urllib.parse.parse_qs(logs.query)["panes"][0])["logs"]
    assert pane["queries"][0]["expr"] == '{namespace="webhook-delivery", app="webhook-delivery"}'
    assert pane["queries"][0]["datasource"] == {"type": "loki", "uid": "loki"}
    # Where a person opens the alert group: Grafana's view of this Alertmanager, not a cluster address.
    assert page["client_url"] == f"{GRAFANA}/alerting/groups?alertmanager=alertmanager"


@pytest.mark.live
def test_one_incident_per_alert_group(delivered):
    page = page_of(delivered, "WebhookErrorBudgetBurn")
    assert page["payload"]["summary"] == "[prod/c1] webhook-worker: Webhook delivery error budget burning (2 alerts)"
    assert page["payload"]["custom_details"]["num_firing"] == 2
    assert page["payload"]["custom_details"]["descriptions"] == ["Burning over 1h", "Burning over 6h"]
    assert page["payload"]["custom_details"]["labels"]["service"] == "webhook-worker"
    assert "slo_window" not in page["payload"]["custom_details"]["labels"]  # not common to the group
    assert page["dedup_key"] != page_of(delivered, "WebhookHighErrorRate")["dedup_key"]


@pytest.mark.live
def test_a_resolved_page_closes_the_same_incident_and_says_so_in_slack(delivered):
    trigger, resolve = page_of(delivered, "WebhookHighErrorRate"), page_of(delivered, "WebhookHighErrorRate", "resolve")
    assert resolve["dedup_key"] == trigger["dedup_key"]
    copy = slack_of(delivered, "/slack", "WebhookHighErrorRate", "RESOLVED", "webhook-delivery")["attachment"]
    assert copy["title"] == "[RESOLVED] [prod/c1] webhook-delivery: High webhook error rate detected"
    assert copy["color"] == "good"
    assert copy["text"].startswith("Resolved: Webhook error rate is 7.5%\n")


@pytest.mark.live
def test_prod_copies_each_page_to_the_team_channel(delivered):
    message = slack_of(delivered, "/slack", "WebhookHighErrorRate", service="webhook-delivery")
    assert message["channel"] == "#webhook-alerts"
    attachment = message["attachment"]
    assert attachment["title"] == "[FIRING:1] [prod/c1] webhook-delivery: High webhook error rate detected"
    assert attachment["color"] == "danger"
    assert {"title": "Severity", "value": "critical", "short": True} in attachment["fields"]


@pytest.mark.live
def test_a_warning_posts_to_slack_with_description_and_links(delivered):
    message = slack_of(delivered, "/slack", "HighLatency", service="webhook-api")
    assert message["channel"] == "#webhook-alerts"
    attachment = message["attachment"]
    assert attachment["title"] == "[FIRING:1] [prod/c1] webhook-api: High webhook delivery latency"
    assert attachment["fallback"] == attachment["title"]  # what a push notification shows
    dashboard = f"{GRAFANA}/d/webhook-overview?var-namespace=webhook-delivery&var-service=webhook-api"
    assert attachment["title_link"] == dashboard
    assert attachment["color"] == "warning"
    assert {"title": "Severity", "value": "warning", "short": True} in attachment["fields"]
    description, links = attachment["text"].split("\n")
    assert description == "P95 latency is 0.7s"
    assert re.fullmatch(
        re.escape(f"<{RUNBOOKS}HighLatency.md|Runbook> | <{dashboard}|Dashboard> | <{GRAFANA}/explore?") + r"[^|]+"
        + re.escape(f"|Logs> | <{GRAFANA}/alerting/groups?alertmanager=alertmanager|Alertmanager>"), links), links


@pytest.mark.live
def test_alertmanager_inhibits_the_warning_of_a_service_that_pages(delivered):
    def latency_warnings(posts):
        return [a["title"] for path, body, _ in posts if path == "/slack" for a in body["attachments"]
                if "webhook-delivery: High webhook delivery latency" in a["title"]]

    assert latency_warnings(delivered_while_firing[id(delivered)]) == []
    # Once the page resolved, nothing inhibits the warning any more: it is sent.
    assert latency_warnings(delivered.posts) == ["[FIRING:1] [prod/c1] webhook-delivery: High webhook delivery latency"]


@pytest.mark.live
def test_the_clusters_alerts_reach_the_platform_channel_only(delivered):
    message = slack_of(delivered, "/platform", "KubeNodeNotReady", service="")
    assert message["channel"] == "#platform-alerts"
    attachment = message["attachment"]
    assert attachment["title"] == "[FIRING:1] [prod/c1] : Node is not ready."
    # No webhook service to show: the runbook and the alert group only.
    assert "Dashboard" not in attachment["text"] and "|Alertmanager>" in attachment["text"]
    assert [a["title"] for m in delivered.received("/platform") for a in m["attachments"]] == [attachment["title"]]


@pytest.mark.live
def test_info_inhibitor_notifies_no_one(delivered):
    everything = json.dumps([body for _, body, _ in delivered.posts])
    assert "InfoInhibitor" not in everything


@pytest.mark.live
def test_alertmanager_sends_watchdog_to_the_heartbeat_only(delivered):
    (beat,) = delivered.received("/heartbeat")
    assert [a["labels"]["alertname"] for a in beat["alerts"]] == ["Watchdog"]
    assert beat["externalURL"] == f"{GRAFANA}/alerting/groups?alertmanager=alertmanager"
    assert all(page["payload"]["class"] != "Watchdog" for page in delivered.received("/pagerduty"))
