"""Fault scenarios on the deployed Alertmanager version with the rendered prod configuration, two
clustered as the Operator runs them, time scaled as in the live pipeline (tests/e2e/harness.py):

- a silence created before a restart of every Alertmanager still holds after it (their storage
  keeps it, as the StatefulSet's volumes do);
- PagerDuty and Slack answering 500 for a while: every notification is retried and delivered once
  they recover, none lost, none doubled.

Alerts are posted to the Alertmanager API directly (as Prometheus does); the routing, grouping,
timings and receivers are the rendered ones.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.e2e.harness import (
    FACTOR,
    PAGERDUTY,
    PEER_TIMEOUT_FLOOR,
    SLACK,
    AlertmanagerCluster,
    alertmanager_for_test,
    render_stacks,
    slack_about,
)
from config.types import duration_ms
from testkit.live import CaptureServer, Process, http_json, post_json, responds, wait_until
from tools.rendered import RenderedStack

pytestmark = pytest.mark.live

TEAM = {"cluster": "webhook-prod-use1", "environment": "prod", "namespace": "webhook-delivery", "team": "webhook-delivery"}


def alert(service: str, alertname: str, severity: str) -> dict[str, Any]:
    return {"labels": {**TEAM, "service": service, "alertname": alertname, "severity": severity},
            "endsAt": "2099-01-01T00:00:00Z",
            "annotations": {"summary": f"{alertname} of {service}", "description": f"{alertname} of {service}.",
                            "value": "1", "runbook_url": f"https://runbooks.example.com/{alertname}.md"}}


class Cluster:
    """The rendered prod Alertmanager configuration on a two-member cluster, notifying `capture`."""

    def __init__(self, rendered: RenderedStack, workdir: Path, capture: CaptureServer) -> None:
        self.config = alertmanager_for_test(rendered.alertmanager, capture.url, FACTOR)
        path = workdir / "alertmanager.yaml"
        path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.cluster = AlertmanagerCluster(path, workdir, rendered.alertmanager_spec, PEER_TIMEOUT_FLOOR)
        self.processes: dict[str, Process] = {}

    def seconds(self, key: str) -> float:
        return duration_ms(self.config["route"][key]) / 1000

    def start(self) -> None:
        self.processes = self.cluster.start()
        for url in self.processes:
            wait_until(lambda: responds(f"{url}/-/ready"), timeout=30, what=url)
        # Alertmanager sends nothing until its gossip has settled.
        wait_until(lambda: all(status["status"] == "ready" and len(status["peers"]) == 2 for status in
                               (http_json(f"{u}/api/v2/status")["cluster"] for u in self.processes)),
                   timeout=60, interval=0.2, what="Alertmanager cluster settled")

    def stop(self) -> None:
        """SIGTERM, as a rollout does: each writes its silences and notification log to its storage."""
        for process in self.processes.values():
            process.stop()

    @property
    def api(self) -> str:
        return next(iter(self.processes))

    def post(self, *alerts: dict[str, Any]) -> None:
        # Prometheus sends every firing alert to every Alertmanager.
        for url in self.processes:
            assert post_json(f"{url}/api/v2/alerts", list(alerts)) == 200


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> RenderedStack:
    return RenderedStack.load(render_stacks(tmp_path_factory.mktemp("rendered"), ("prod",)) / "prod")


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer()
    yield server
    server.shutdown()


@pytest.fixture
def cluster(rendered, tmp_path, capture) -> Iterator[Cluster]:
    running = Cluster(rendered, tmp_path, capture)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def pages(capture: CaptureServer, service: str, action: str = "trigger") -> list[dict[str, Any]]:
    return capture.received(PAGERDUTY, lambda b: b["payload"]["component"] == service and b["event_action"] == action)


def test_a_silence_outlives_a_restart_of_every_alertmanager(cluster, capture):
    silence = {"matchers": [{"name": "service", "value": "silenced", "isRegex": False, "isEqual": True}],
               "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
               "createdBy": "oncall@example.com", "comment": "planned maintenance"}
    request = urllib.request.Request(f"{cluster.api}/api/v2/silences", json.dumps(silence).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        silence_id = json.load(response)["silenceID"]
    # The peer has it too before the restart (gossip), then both go down together.
    wait_until(lambda: all(any(s["id"] == silence_id for s in http_json(f"{u}/api/v2/silences"))
                           for u in cluster.processes), timeout=10, what="the silence on both")
    cluster.stop()
    cluster.start()
    for url in cluster.processes:
        (restored,) = [s for s in http_json(f"{url}/api/v2/silences") if s["id"] == silence_id]
        assert restored["status"]["state"] == "active" and restored["createdBy"] == "oncall@example.com", url
    cluster.post(alert("silenced", "WebhookHighErrorRate", "critical"), alert("loud", "WebhookHighErrorRate", "critical"))
    wait_until(lambda: pages(capture, "loud"), timeout=30, what="the page of the service not silenced")
    time.sleep(cluster.seconds("group_wait") + 1)
    assert pages(capture, "silenced") == []
    (held,) = http_json(f"{cluster.api}/api/v2/alerts?" + urllib.parse.urlencode({"filter": 'service="silenced"'}))
    assert held["status"]["state"] == "suppressed" and held["status"]["silencedBy"] == [silence_id]


def test_notifications_failing_for_a_while_are_all_delivered_when_the_receivers_recover(cluster, capture):
    """Alertmanager's clustering promises each notification at least once. While a receiver fails,
    the first peer retries, the second stops waiting for it after the peer timeout and retries too;
    once the receiver is back, both deliver. PagerDuty merges the two by their dedup key (one
    incident); Slack shows the message once per peer. Nothing is lost, and nothing more than that."""
    outage = 3 * cluster.seconds("group_wait") + 2
    recovered = max(capture.fail(PAGERDUTY, outage), capture.fail(SLACK, outage))
    # Firing until told otherwise, as Prometheus keeps them (it re-sends them; here they never end).
    cluster.post(alert("flaky", "WebhookHighErrorRate", "critical"), alert("flaky-too", "HighLatency", "warning"))
    # Delivered once the receivers answer again: the page, its Slack copy (prod) and the warning.
    wait_until(lambda: pages(capture, "flaky") and {a["fields"][0]["value"] for a in slack_posts(capture)} == {
        "WebhookHighErrorRate", "HighLatency"}, timeout=outage + 2 * cluster.seconds("group_interval") + 10,
        interval=0.2, what="delivery after the outage")
    assert min(at for path, _, at in capture.posts if path in (PAGERDUTY, SLACK)) >= recovered
    # They were tried during the outage, again and again (retried, not given up).
    refused = [path for path, _, _ in capture.refused]
    assert refused.count(PAGERDUTY) >= 2 and refused.count(SLACK) >= 2, refused
    # Past the next group flushes, nothing more than one delivery per peer.
    time.sleep(2 * cluster.seconds("group_interval") + 1)
    triggers = pages(capture, "flaky")
    assert 1 <= len(triggers) <= len(cluster.processes) and len({p["dedup_key"] for p in triggers}) == 1
    assert pages(capture, "flaky", "resolve") == []
    delivered = [a["fields"][0]["value"] for a in slack_posts(capture)]
    for alertname in ("WebhookHighErrorRate", "HighLatency"):
        assert 1 <= delivered.count(alertname) <= len(cluster.processes), delivered
    assert all(a["title"].startswith("[FIRING:1]") for a in slack_posts(capture))


def slack_posts(capture: CaptureServer) -> list[dict[str, Any]]:
    return [a for m in capture.received(SLACK) for a in m["attachments"]
            if slack_about(a, "flaky") or slack_about(a, "flaky-too")]
