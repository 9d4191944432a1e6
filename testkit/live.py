"""Helpers shared by the live tests: loopback ports, child processes, capture servers, polling.

Everything binds 127.0.0.1 but what the API server must list as a pod's endpoint (it refuses
loopback addresses: testkit/apiserver.py `host_address`). Child processes run in their own process
group so that a teardown (also after a failed test) takes down anything they spawned.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    """A threaded HTTP server for `handler` on a free loopback port, serving in the background until
    `stop(server)`. It looks for the stop every 10 ms: the default half second is a test's wait at
    every stop."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


def stop(server: http.server.ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy (which is returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def post_json(url: str, body: Any, timeout: float = 5.0) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def responds(url: str) -> bool:
    """True once `url` answers 200 (readiness endpoints)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def counter_value(metrics_url: str, name: str) -> float:
    """Sum of a counter's samples in a Prometheus text exposition."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
               or line.startswith(name + " "))


class Process:
    """A child process in its own process group, its output kept in a log file for post-mortems."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.args = list(args)
        self.log = log
        self.killed = False
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def running(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, not a shutdown (no goodbye to cluster peers)."""
        self.killed = True
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after `timeout` s."""
        if self.running():
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def listen_addresses(self) -> list[str]:
        """host:port of every `--*listen-address=` flag the process was started with."""
        return [arg.split("=", 1)[1] for arg in self.args if re.match(r"--[\w.-]*listen-address=.", arg)]

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class CaptureServer:
    """Stands in for Slack, PagerDuty and the heartbeat service: records every POST by path,
    with the monotonic time it arrived (detection latency is measured against it); `fail` makes a
    path answer 500 for a while."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any, float]] = []
        self.refused: list[tuple[str, Any, float]] = []
        """POSTs answered 500 while their path was failing (`fail`)."""
        self._failing_until: dict[str, float] = {}
        self._lock = threading.Lock()
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrived = time.monotonic()
                with capture._lock:
                    if arrived < capture._failing_until.get(self.path, 0.0):
                        capture.refused.append((self.path, json.loads(body), arrived))
                        self.send_response(500)
                        self.end_headers()
                        return
                    capture.posts.append((self.path, json.loads(body), arrived))
                # PagerDuty's Events API v2 answers 202 with a JSON status; Slack and webhooks accept any 2xx.
                self.send_response(202 if self.path.startswith("/pagerduty") else 200)
                self.end_headers()
                self.wfile.write(b'{"status": "success"}' if self.path.startswith("/pagerduty") else b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, path: str, where: Optional[Callable[[Any], bool]] = None) -> list[Any]:
        return [body for body, _ in self.timed(path, where)]

    def timed(self, path: str, where: Optional[Callable[[Any], bool]] = None) -> list[tuple[Any, float]]:
        """(body, arrival time) of every POST to `path` that satisfies `where`, in arrival order."""
        with self._lock:
            posts = list(self.posts)
        return [(body, at) for p, body, at in posts if p == path and (where is None or where(body))]

    def fail(self, path: str, seconds: float) -> float:
        """Answer 500 to every POST to `path` for `seconds` from now (an outage); returns its end."""
        with self._lock:
            self._failing_until[path] = time.monotonic() + seconds
            return self._failing_until[path]

    def last_arrival(self) -> float:
        """The monotonic time the latest POST arrived (0 when none did)."""
        with self._lock:
            return max((at for _, _, at in self.posts), default=0.0)

    def shutdown(self) -> None:
        stop(self.server)
