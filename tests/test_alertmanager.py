"""Alertmanager configuration (amtool), its Helm values, and the Alerting component (mocks)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor
import yaml

from components.alerting import Alerting, AlertingArgs, pagerduty_timeout
from config import Duration, Settings
from tests.support import ONCALL, minimal_settings
from monitoring.alertmanager import Receivers, alertmanager_config, helm_values, inhibit_rules, render_yaml
from tests.live import CaptureServer, Process, free_port, post_json, responds, wait_until
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
PLACEHOLDERS = (SLACK_URL, ROUTING_KEY, HEARTBEAT_URL)

MUTE_NIGHTS = {"name": "nights", "weekdays": ["monday:friday"], "times": ["00:00-07:00"]}
MUTE_WEEKEND = {"name": "weekend", "weekdays": ["saturday", "sunday"]}


def settings_for(environment: str, alerting: Optional[dict[str, Any]] = None) -> Settings:
    """Minimal settings; prod pages the ONCALL users unless `alerting` says otherwise."""
    return minimal_settings(environment, **({} if alerting is None else {"alerting": alerting}))


def placeholder_receivers(settings: Settings, heartbeat: bool = True) -> Receivers:
    return Receivers(
        slack_webhook_url=SLACK_URL,
        pagerduty_routing_key=ROUTING_KEY if settings.alerting.pagerduty.enabled else None,
        heartbeat_url=HEARTBEAT_URL if heartbeat else None,
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


@pytest.fixture(scope="module")
def config_files(tmp_path_factory) -> dict[str, Path]:
    """Rendered configs: dev (PagerDuty off, no heartbeat URL) and prod (with mute intervals)."""
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
    }


# ------------------------------------------------------------------------------ amtool


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rendered_config_passes_amtool_check_config(config_files, stack):
    result = amtool("check-config", str(config_files[stack]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_check_config_refuses_a_route_to_an_undefined_receiver(tmp_path):
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    config["route"]["routes"][1]["receiver"] = "nobody"
    result = amtool("check-config", str(write_config(tmp_path, config)))
    assert result.returncode != 0
    assert 'undefined receiver "nobody"' in result.stdout + result.stderr


CRITICAL = {"alertname": "WebhookHighErrorRate", "severity": "critical", "cluster": "c1", "service": "webhook-delivery"}
WARNING = {"alertname": "HighLatency", "severity": "warning", "cluster": "c1", "service": "webhook-delivery"}
INFO = {"alertname": "KubeQuotaAlmostFull", "severity": "info", "namespace": "webhook-delivery"}
WATCHDOG = {"alertname": "Watchdog", "severity": "info"}
UNLABELLED = {"alertname": "SomethingFromAnotherTeam"}


@pytest.mark.parametrize(
    "stack, labels, receiver",
    [
        ("prod", CRITICAL, "pagerduty"),
        ("prod", WARNING, "slack"),
        ("prod", WATCHDOG, "heartbeat"),
        ("prod", UNLABELLED, "slack"),
        ("prod", {}, "slack"),
        # Info alerts are for dashboards: they notify no one.
        ("prod", INFO, "null"),
        ("dev", INFO, "null"),
        # Watchdog is matched first whatever its severity: it must never page.
        ("prod", {**WATCHDOG, "severity": "critical"}, "heartbeat"),
        ("dev", CRITICAL, "slack"),
        ("dev", WARNING, "slack"),
        ("dev", WATCHDOG, "null"),
        ("dev", UNLABELLED, "slack"),
    ],
)
def test_amtool_routes_each_alert_to_exactly_one_receiver(config_files, stack, labels, receiver):
    result = verify_route(config_files[stack], receiver, labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert routed_receivers(config_files[stack], labels) == [receiver]


@pytest.mark.parametrize(
    "labels, wrong_receiver",
    [
        (CRITICAL, "slack"),  # PagerDuty on: a page is not also a Slack message
        (WARNING, "pagerduty"),
        (INFO, "pagerduty"),
        (UNLABELLED, "pagerduty"),
        (WATCHDOG, "slack"),
        (WATCHDOG, "pagerduty"),
    ],
)
def test_amtool_refuses_the_wrong_receiver(config_files, labels, wrong_receiver):
    result = verify_route(config_files["prod"], wrong_receiver, labels)
    assert result.returncode != 0
    assert "Expected receivers did not match" in result.stdout + result.stderr


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
    assert route["receiver"] == "slack"


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
    by_severity = {r["matchers"][0]: r for r in config["route"]["routes"]}
    assert by_severity['severity="warning"']["mute_time_intervals"] == ["nights", "weekend"]
    assert "mute_time_intervals" not in by_severity['severity="critical"']
    assert "mute_time_intervals" not in config["route"]


def test_no_time_intervals_without_mute_settings():
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    assert "time_intervals" not in config
    assert all("mute_time_intervals" not in r for r in config["route"]["routes"])


def receiver(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [r for r in config["receivers"] if r["name"] == name]
    return found


def test_pagerduty_receiver_uses_events_api_v2():
    settings = settings_for("prod")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    (pagerduty,) = receiver(config, "pagerduty")["pagerduty_configs"]
    assert pagerduty["routing_key"] == ROUTING_KEY
    assert pagerduty["severity"] == "critical"
    assert pagerduty["class"] == "{{ .CommonLabels.alertname }}"
    assert pagerduty["group"] == "{{ .CommonLabels.cluster }}"
    assert pagerduty["component"] == "{{ .CommonLabels.service }}"
    assert ".Annotations.summary" in pagerduty["description"]
    assert pagerduty["details"]["runbook_url"] == "{{ (index .Alerts 0).Annotations.runbook_url }}"
    assert pagerduty["send_resolved"] is True


def test_slack_receiver_matches_the_task_document():
    settings = settings_for("dev", {"alertmanager": {"slackChannel": "#webhook-alerts-dev"}})
    config = alertmanager_config(settings, placeholder_receivers(settings))
    (slack,) = receiver(config, "slack")["slack_configs"]
    assert slack["api_url"] == SLACK_URL
    assert slack["channel"] == "#webhook-alerts-dev"
    assert slack["title"] == "Webhook Delivery Alert"
    assert slack["text"].startswith("{{ range .Alerts }}")
    assert "{{ . }}{{ else }}{{ .Annotations.summary }}" in slack["text"]
    assert "{{ with .Annotations.description }}" in slack["text"]
    assert "Runbook: {{ . }}" in slack["text"]
    assert slack["send_resolved"] is True


def test_pagerduty_off_means_no_pagerduty_receiver():
    settings = settings_for("dev")
    config = alertmanager_config(settings, placeholder_receivers(settings))
    assert [r["name"] for r in config["receivers"]] == ["heartbeat", "null", "slack"]
    assert config["route"]["routes"][1] == {"receiver": "slack", "matchers": ['severity="critical"']}


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
        ".receivers[3].slack_configs[0].api_url",
    ]


def test_render_is_deterministic():
    settings = settings_for("prod")
    first = render_yaml(alertmanager_config(settings, placeholder_receivers(settings)))
    assert first == render_yaml(alertmanager_config(settings, placeholder_receivers(settings)))
    assert "&id" not in first and "*id" not in first  # no YAML anchors from shared objects


# ------------------------------------------------------------------------------ Helm values


@pytest.mark.parametrize("stack, replicas", [("dev", 1), ("prod", 3)])
def test_helm_values_point_at_the_config_secret_and_keep_alerts_30_days(stack, replicas):
    values = helm_values(settings_for(stack), "alerting-alertmanager-config", "gp3")
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
    values = helm_values(settings_for("prod"), "cfg", "gp3")
    assert values["alertmanagerSpec"]["podAntiAffinity"] == "hard"
    assert values["alertmanagerSpec"]["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert values["podDisruptionBudget"] == {"enabled": True, "minAvailable": 2}


def test_helm_values_of_a_single_alertmanager_have_no_disruption_budget():
    values = helm_values(settings_for("dev"), "cfg", "gp3")
    assert values["podDisruptionBudget"]["enabled"] is False
    assert "podAntiAffinity" not in values["alertmanagerSpec"]
    assert "topologySpreadConstraints" not in values["alertmanagerSpec"]


def test_retention_is_given_in_hours():
    values = helm_values(settings_for("prod", {"pagerduty": {"escalationUsers": ONCALL},
                                               "alertmanager": {"retention": "60d"}}), "cfg", "gp3")
    assert values["alertmanagerSpec"]["retention"] == "1440h"


def test_helm_values_hold_no_secret():
    settings = settings_for("prod")
    text = json.dumps(helm_values(settings, "cfg", "gp3"))
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
    assert [r["name"] for r in config["receivers"]] == ["null", "slack"]
    assert config["route"]["routes"][1]["receiver"] == "slack"
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


def alert(labels: dict[str, str], summary: str = "", description: str = "") -> dict[str, Any]:
    annotations = {"summary": summary, "description": description, "runbook_url": f"{RUNBOOKS}{labels['alertname']}.md"}
    return {"labels": labels, "annotations": annotations}


@pytest.fixture(scope="module")
def delivered(tmp_path_factory) -> Iterator[CaptureServer]:
    """The deployed Alertmanager version running the prod config, fed one of each kind of alert."""
    capture = CaptureServer()
    settings = settings_for("prod", {"pagerduty": {"escalationUsers": ONCALL}, "alertmanager": {"groupWait": "1s"}})
    config = alertmanager_config(
        settings, Receivers(f"{capture.url}/slack", ROUTING_KEY, f"{capture.url}/heartbeat")
    )
    # Only the test redirects PagerDuty; production uses the Events API v2 default URL.
    receiver(config, "pagerduty")["pagerduty_configs"][0]["url"] = f"{capture.url}/pagerduty"
    directory = tmp_path_factory.mktemp("alertmanager")
    port = free_port()
    process = Process(
        [
            binary("alertmanager"),
            f"--config.file={write_config(directory, config)}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        directory / "alertmanager.log",
    )
    try:
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: responds(f"{api}/-/ready"), what="Alertmanager ready")
        # As the rules label them: inhibition applies to the team's own alerts.
        service = {"cluster": "c1", "namespace": "webhook-delivery", "service": "webhook-delivery", "team": "webhook-delivery"}
        other = {**service, "service": "webhook-api"}
        alerts = [
            alert({**service, "alertname": "WebhookHighErrorRate", "severity": "critical"},
                  "High webhook error rate detected", "Webhook error rate is 7.5%"),
            # Inhibited: the same service already pages.
            alert({**service, "alertname": "HighLatency", "severity": "warning"},
                  "High webhook delivery latency", "P95 latency is 0.9s"),
            alert({**other, "alertname": "HighLatency", "severity": "warning"},
                  "High webhook delivery latency", "P95 latency is 0.7s"),
            alert({"cluster": "c1", "alertname": "Watchdog", "severity": "info"}),
        ]
        assert post_json(f"{api}/api/v2/alerts", alerts) == 200
        wait_until(lambda: all(capture.received(p) for p in ("/pagerduty", "/slack", "/heartbeat")))
        # Every group flushes after the same group_wait: give a late, wrong Slack post time to show.
        time.sleep(1.5)
        yield capture
    finally:
        process.stop()
        capture.shutdown()


@pytest.mark.live
def test_alertmanager_pages_pagerduty_with_the_routing_key_and_runbook(delivered):
    (page,) = delivered.received("/pagerduty")
    assert page["routing_key"] == ROUTING_KEY
    assert page["event_action"] == "trigger"
    assert len(page["dedup_key"]) == 64  # hash of the group key: one incident per group
    payload = page["payload"]
    assert payload["summary"] == "High webhook error rate detected"
    assert payload["severity"] == "critical"
    assert (payload["class"], payload["group"], payload["component"]) == ("WebhookHighErrorRate", "c1", "webhook-delivery")
    assert payload["custom_details"]["runbook_url"] == f"{RUNBOOKS}WebhookHighErrorRate.md"
    assert payload["custom_details"]["descriptions"] == "Webhook error rate is 7.5%\n"


@pytest.mark.live
def test_alertmanager_posts_warnings_to_slack_with_description_and_runbook(delivered):
    (message,) = delivered.received("/slack")
    assert message["channel"] == "#webhook-alerts"
    (attachment,) = message["attachments"]
    assert attachment["title"] == "Webhook Delivery Alert"
    assert attachment["text"] == (
        "[FIRING] *HighLatency* (warning, webhook-api): P95 latency is 0.7s\n"
        f"Runbook: {RUNBOOKS}HighLatency.md\n"
    )


@pytest.mark.live
def test_alertmanager_inhibits_the_warning_of_a_service_that_pages(delivered):
    texts = [attachment["text"] for message in delivered.received("/slack") for attachment in message["attachments"]]
    assert not any("webhook-delivery" in text for text in texts)
    assert not any("WebhookHighErrorRate" in text for text in texts)


@pytest.mark.live
def test_alertmanager_sends_watchdog_to_the_heartbeat_only(delivered):
    (beat,) = delivered.received("/heartbeat")
    assert [a["labels"]["alertname"] for a in beat["alerts"]] == ["Watchdog"]
    assert all(page["payload"]["class"] != "Watchdog" for page in delivered.received("/pagerduty"))
