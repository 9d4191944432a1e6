"""The authenticating proxies live: the rendered nginx configuration in front of the real Prometheus
and Alertmanager of the deployed versions, with bcrypt users as the program makes them.

An unauthenticated or wrongly authenticated request is refused, the health endpoint answers
without credentials, clients with their own credentials get through (Grafana's queries,
Prometheus' alerts to Alertmanager), and every request is logged with its user: the audit trail
of silences.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import bcrypt
import pytest
import yaml

from monitoring.web_auth import ALERTMANAGER, HEALTH_PATH, PROMETHEUS, ProtectedServer, htpasswd, nginx_config
from testkit.live import Process, free_port, responds, wait_until
from tools.go_tools import binary

pytestmark = pytest.mark.live

PASSWORDS = {"grafana": "grafana-test-password", "prometheus": "prometheus-test-password",
             "loki": "loki-test-password", "federation": "federation-test-password"}


def request(url: str, user: Optional[str] = None, password: Optional[str] = None, body: Optional[dict] = None,
            method: str = "GET") -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclasses.dataclass
class Proxied:
    server: ProtectedServer
    """The protected server with the test's ports."""
    proxy: Process
    url: str

    def audit_lines(self) -> list[str]:
        return [line for line in self.proxy.log.read_text().splitlines() if line.startswith("auth_proxy=")]

    def audited(self, entry: str) -> str:
        """The access log line containing `entry`; nginx writes it just after the response (a loaded
        machine may take seconds to schedule it). The lines seen are in the failure message."""
        try:
            return wait_until(lambda: next((line for line in self.audit_lines() if entry in line), None), timeout=15)
        except AssertionError:
            raise AssertionError(f"no audit line {entry!r} among {self.audit_lines()}") from None


def start_proxy(server: ProtectedServer, directory: Path) -> Proxied:
    """nginx with the rendered configuration of `server` (its ports chosen here), and the users file
    of the server's clients with these tests' passwords."""
    users = directory / f"{server.name}-users"
    users.mkdir()
    (users / "htpasswd").write_text(htpasswd({client: bcrypt.hashpw(PASSWORDS[client].encode(), bcrypt.gensalt(4)).decode()
                                             for client in server.clients}))
    config = directory / f"{server.name}-nginx.conf"
    config.write_text(nginx_config(server, users_directory=str(users)))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    # Started as root (CI), nginx would run its workers as `nobody`, who cannot enter pytest's directories.
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    proxy = Process([nginx, "-e", "stderr", "-p", str(directory), "-c", str(config), "-g", directives],
                    directory / f"{server.name}-proxy.log")
    url = f"http://127.0.0.1:{server.proxy_port}"
    wait_until(lambda: responds(url + HEALTH_PATH), timeout=15, what=f"{server.name} proxy")
    return Proxied(server, proxy, url)


@pytest.fixture(scope="module")
def proxies(tmp_path_factory):
    directory = tmp_path_factory.mktemp("auth")
    prometheus = dataclasses.replace(PROMETHEUS, upstream_port=free_port(), proxy_port=free_port())
    alertmanager = dataclasses.replace(ALERTMANAGER, upstream_port=free_port(), proxy_port=free_port())
    processes = []
    try:
        (directory / "alertmanager.yaml").write_text(yaml.safe_dump({
            "route": {"receiver": "null", "group_wait": "0s"}, "receivers": [{"name": "null"}]}))
        processes.append(Process(
            [binary("alertmanager"), f"--config.file={directory / 'alertmanager.yaml'}",
             f"--storage.path={directory / 'am'}", f"--web.listen-address=127.0.0.1:{alertmanager.upstream_port}",
             "--cluster.listen-address="], directory / "alertmanager.log"))
        am_proxy = start_proxy(alertmanager, directory)
        processes.append(am_proxy.proxy)
        wait_until(lambda: responds(f"http://127.0.0.1:{alertmanager.upstream_port}/-/ready"), timeout=30, what="Alertmanager")
        # Alerts go to Alertmanager's proxy with Prometheus' own credentials, as the Operator renders
        # the `basicAuth` of the alerting endpoint.
        (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "g", "interval": "1s", "rules": [
            {"alert": "ProxyCheck", "expr": "vector(1)", "labels": {"severity": "info"}}]}]}))
        (directory / "prometheus.yaml").write_text(yaml.safe_dump({
            "global": {"evaluation_interval": "1s"},
            "rule_files": [str(directory / "rules.yaml")],
            "alerting": {"alertmanagers": [{
                "api_version": "v2",
                "basic_auth": {"username": "prometheus", "password": PASSWORDS["prometheus"]},
                "static_configs": [{"targets": [f"127.0.0.1:{alertmanager.proxy_port}"]}]}]},
        }))
        processes.append(Process(
            [binary("prometheus"), f"--config.file={directory / 'prometheus.yaml'}",
             f"--storage.tsdb.path={directory / 'prometheus'}", f"--web.listen-address=127.0.0.1:{prometheus.upstream_port}",
             # A send that fails (the proxy not yet through to Alertmanager on a loaded machine) is
             # retried at the next resend, by default a minute later: past the test's wait.
             "--rules.alert.resend-delay=1s"],
            directory / "prometheus.log"))
        wait_until(lambda: responds(f"http://127.0.0.1:{prometheus.upstream_port}/-/ready"), timeout=30, what="Prometheus")
        prom_proxy = start_proxy(prometheus, directory)
        processes.append(prom_proxy.proxy)
        yield {"prometheus": prom_proxy, "alertmanager": am_proxy}
    finally:
        for process in reversed(processes):
            process.stop()


@pytest.mark.parametrize("server", ["prometheus", "alertmanager"])
def test_an_unauthenticated_request_is_refused(proxies, server):
    proxy = proxies[server]
    path = "/api/v1/query?query=up" if server == "prometheus" else "/api/v2/alerts"
    status, body = request(proxy.url + path)
    assert status == 401, body
    assert request(proxy.url + path, "grafana", "not-the-password")[0] == 401
    assert request(proxy.url + path, "intruder", PASSWORDS["grafana"])[0] == 401
    # A client of the other server is no client of this one.
    stranger = {"prometheus": "loki", "alertmanager": "federation"}[server]
    assert request(proxy.url + path, stranger, PASSWORDS[stranger])[0] == 401


@pytest.mark.parametrize("server", ["prometheus", "alertmanager"])
def test_the_health_endpoint_needs_no_credentials(proxies, server):
    assert request(proxies[server].url + HEALTH_PATH) == (200, b"ok\n")


def test_every_client_of_prometheus_gets_through_with_its_own_credentials(proxies):
    for client in PROMETHEUS.clients:
        status, body = request(proxies["prometheus"].url + "/api/v1/query?query=vector(7)", client, PASSWORDS[client])
        assert status == 200, (client, body)
        assert json.loads(body)["data"]["result"][0]["value"][1] == "7"


def test_prometheus_delivers_alerts_through_alertmanagers_proxy(proxies):
    def delivered():
        status, body = request(proxies["alertmanager"].url + "/api/v2/alerts", "grafana", PASSWORDS["grafana"])
        return status == 200 and [a["labels"]["alertname"] for a in json.loads(body)] == ["ProxyCheck"]

    wait_until(delivered, timeout=30, interval=0.5, what="the alert at Alertmanager through its proxy")
    proxies["alertmanager"].audited('user="prometheus" method=POST path="/api/v2/alerts" status=200')


def test_silence_changes_are_logged_with_their_user(proxies):
    """The audit trail: who created and expired which silence (the agent ships these lines to Loki)."""
    proxy = proxies["alertmanager"]
    silence = {"matchers": [{"name": "alertname", "value": "ProxyCheck", "isRegex": False}],
               "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
               "createdBy": "grafana", "comment": "maintenance"}
    status, body = request(proxy.url + "/api/v2/silences", "grafana", PASSWORDS["grafana"], silence, "POST")
    assert status == 200, body
    silence_id = json.loads(body)["silenceID"]
    assert request(proxy.url + f"/api/v2/silence/{silence_id}", "grafana", PASSWORDS["grafana"], method="DELETE")[0] == 200
    assert request(proxy.url + "/api/v2/silences", body=silence, method="POST")[0] == 401
    proxy.audited('user="grafana" method=POST path="/api/v2/silences" status=200')
    proxy.audited(f'user="grafana" method=DELETE path="/api/v2/silence/{silence_id}" status=200')
    proxy.audited('user="-" method=POST path="/api/v2/silences" status=401')
    # Passwords never reach the log.
    assert not any(password in proxy.proxy.log.read_text() for password in PASSWORDS.values())
