"""Grafana's dashboard folders and who may use them, set through Grafana's HTTP API from inside the cluster.

The program the folder Job runs (components/grafana_dashboards.py), as `python -c <this file>`, in the
image Grafana's own sidecars run (k8s-sidecar: Python, nothing but the standard library used here).
It talks to Grafana's Service, never to its public URL: a first `pulumi up` needs no DNS record, no
certificate and no route from the machine running it. The dashboards themselves come from ConfigMaps
through Grafana's dashboard sidecar, which creates a folder named after each one's folder annotation
when it is missing; this program finds each folder by title (creating it with the program's UID when
the sidecar has not yet), then replaces its permissions with exactly those configured.

Environment: GRAFANA_URL; GRAFANA_USER_FILE and GRAFANA_PASSWORD_FILE (files of the mounted admin
Secret); FOLDERS, a
JSON list of {"uid", "title"}; PERMISSIONS, a JSON list of {"role" or "team", "permission"} (View,
Edit, Admin) for every folder; ADMIN_SECRET and GRAFANA_DEPLOYMENT (`namespace/name`), named in
errors; READY_WAIT_SECONDS, how long to wait for Grafana to answer (default 300). Exit status 0 when
every folder has its permissions, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

# Grafana's permission levels (its API's `permission` field).
LEVELS = {"View": 1, "Edit": 2, "Admin": 4}
# Helm has waited for Grafana to be ready; its database may still be migrating after a restart.
READY_WAIT_SECONDS = 300
ENVIRONMENT = ("GRAFANA_URL", "GRAFANA_USER_FILE", "GRAFANA_PASSWORD_FILE", "FOLDERS", "PERMISSIONS", "ADMIN_SECRET",
               "GRAFANA_DEPLOYMENT")


class Problem(Exception):
    """What stops the folders being set, in one line that says what to do."""


class Grafana:
    def __init__(self, url: str, user: str, password: str, admin_secret: str, deployment: str):
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.admin_secret, self.deployment = admin_secret, deployment

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text.decode(errors="replace")
        if status == 401:
            namespace, name = self.deployment.split("/")
            raise Problem(f"Grafana refused the admin credentials of Secret {self.admin_secret}: its database holds "
                          f"another password. Restart Grafana (kubectl -n {namespace} rollout restart deployment/{name}); "
                          "its init container resets the password from the Secret (docs/operations/grafana-admin.md)")
        return status, answer

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        if status != 200:
            raise Problem(f"{method} {path}: HTTP {status}: {answer}")
        return answer


def wait_until_ready(grafana: Grafana, deadline: float) -> None:
    while True:
        try:
            status, health = grafana.call("GET", "/api/health")
            if status == 200 and isinstance(health, dict) and health.get("database") == "ok":
                return
            reason = f"HTTP {status} {health}"
        except OSError as error:  # not answering yet
            reason = str(error)
        if time.monotonic() >= deadline:
            raise Problem(f"Grafana at {grafana.url} is not ready: {reason}")
        time.sleep(2)


def folder_uids(grafana: Grafana, folders: list[dict]) -> dict[str, str]:
    """Title -> UID of every configured folder, creating the missing ones with the configured UID."""
    found = {f["title"]: f["uid"] for f in grafana.ok("GET", "/api/folders?limit=1000")}
    for folder in folders:
        if folder["title"] in found:
            continue
        status, answer = grafana.call("POST", "/api/folders", {"uid": folder["uid"], "title": folder["title"]})
        if status == 200:
            found[folder["title"]] = answer["uid"]
        elif status in (409, 412):  # the dashboard sidecar made it meanwhile
            found.update({f["title"]: f["uid"] for f in grafana.ok("GET", "/api/folders?limit=1000")})
        else:
            raise Problem(f"cannot create folder '{folder['title']}': HTTP {status}: {answer}")
    return {folder["title"]: found[folder["title"]] for folder in folders}


def permission_items(grafana: Grafana, permissions: list[dict]) -> list[dict]:
    """Grafana's permission items; a team is named in config and found by its exact name."""
    items, missing = [], []
    for p in permissions:
        if p.get("role"):
            items.append({"role": p["role"], "permission": LEVELS[p["permission"]]})
            continue
        teams = grafana.ok("GET", "/api/teams/search?" + urllib.parse.urlencode({"name": p["team"]}))["teams"]
        match = [t for t in teams if t["name"] == p["team"]]
        if not match:
            missing.append(p["team"])
            continue
        items.append({"teamId": match[0]["id"], "permission": LEVELS[p["permission"]]})
    if missing:
        raise Problem("; ".join(f"team '{t}' does not exist in Grafana: create it (Administration > Teams) or take it "
                                "out of webhook-monitoring:grafana.folderPermissions" for t in missing))
    return items


def apply(grafana: Grafana, folders: list[dict], permissions: list[dict]) -> list[str]:
    """Set every folder's permissions; a line per folder done."""
    items = permission_items(grafana, permissions)
    done = []
    for title, uid in folder_uids(grafana, folders).items():
        grafana.ok("POST", f"/api/folders/{urllib.parse.quote(uid)}/permissions", {"items": items})
        done.append(f"folder '{title}' ({uid}): {len(items)} permissions set")
    return done


def main(environ: Optional[dict[str, str]] = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    missing = [name for name in ENVIRONMENT if not environ.get(name)]
    if missing:
        print(f"missing environment: {', '.join(missing)}", file=sys.stderr)
        return 1
    user, password = (Path(environ[name]).read_text() for name in ("GRAFANA_USER_FILE", "GRAFANA_PASSWORD_FILE"))
    grafana = Grafana(environ["GRAFANA_URL"], user, password, environ["ADMIN_SECRET"], environ["GRAFANA_DEPLOYMENT"])
    try:
        wait_until_ready(grafana, time.monotonic() + float(environ.get("READY_WAIT_SECONDS", READY_WAIT_SECONDS)))
        for line in apply(grafana, json.loads(environ["FOLDERS"]), json.loads(environ["PERMISSIONS"])):
            print(line)
    except Problem as problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
