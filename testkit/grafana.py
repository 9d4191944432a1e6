"""A stand-in for the part of Grafana's HTTP API the stack configures and checks folders through.

No Grafana binary can be had here (AGPL), so its protocol is emulated, as documented in Grafana's
HTTP API reference (docs/sources/developers/http_api/: folder.md, folder_permissions.md, team.md,
dashboard.md, other.md): basic authentication as the admin (401 otherwise); `GET /api/health`;
`GET /api/folders` (a list of {uid, title}); `POST /api/folders` ({uid, title}; 409 when the UID or
title is taken); `GET`/`POST /api/folders/<uid>/permissions` (the POST replaces every item: role, team
by id, or user; levels 1 View, 2 Edit, 4 Admin); `GET /api/teams/search?name=` (exact name);
`GET /api/dashboards/uid/<uid>`. The folder Job (monitoring/grafana_folders.py) and `make verify`'s
Grafana checks are tested against it.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from testkit import live

PERMISSION_NAMES = {1: "View", 2: "Edit", 4: "Admin"}


@dataclass
class GrafanaApi:
    admin: tuple[str, str]
    folders: dict[str, str] = field(default_factory=dict)
    """UID -> title."""
    permissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Folder UID -> its items as `GET .../permissions` lists them."""
    teams: dict[str, int] = field(default_factory=dict)
    """Name -> id."""
    dashboards: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every authenticated call."""

    def grant(self, uid: str, items: list[dict[str, Any]]) -> None:
        """Set a folder's permissions as the POST does, from items of the request's shape."""
        by_id = {i: n for n, i in self.teams.items()}
        self.permissions[uid] = [
            {**({"role": i["role"]} if "role" in i else {"teamId": i["teamId"], "team": by_id[i["teamId"]]}),
             "permission": i["permission"], "permissionName": PERMISSION_NAMES[i["permission"]], "inherited": False}
            for i in items]

    def _valid(self, item: dict[str, Any]) -> bool:
        """One grantee (a role or a known team) and a level."""
        if item.get("permission") not in PERMISSION_NAMES or ("role" in item) == ("teamId" in item):
            return False
        return "role" in item or item["teamId"] in self.teams.values()

    def answer(self, method: str, target: str, body: Any, authorization: str) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(target)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        if path == "/api/health":
            return 200, {"commit": "0000000", "database": "ok", "version": "13.2.0"}
        if authorization != "Basic " + base64.b64encode(":".join(self.admin).encode()).decode():
            return 401, {"message": "Unauthorized"}
        self.calls.append((method, path))
        if path == "/api/folders" and method == "GET":
            return 200, [{"id": n, "uid": uid, "title": title} for n, (uid, title) in enumerate(sorted(self.folders.items()))]
        if path == "/api/folders" and method == "POST":
            if not isinstance(body, dict) or not body.get("title"):
                return 400, {"message": "bad request data"}
            uid = body.get("uid") or f"generated-{len(self.folders)}"
            if uid in self.folders or body["title"] in self.folders.values():
                return 409, {"message": "a folder with the same name already exists"}
            self.folders[uid] = body["title"]
            return 200, {"uid": uid, "title": body["title"]}
        if found := re.fullmatch(r"/api/folders/([^/]+)/permissions", path):
            uid = urllib.parse.unquote(found[1])
            if uid not in self.folders:
                return 404, {"message": "folder not found"}
            if method == "GET":
                return 200, self.permissions.get(uid, [])
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or not all(self._valid(i) for i in items):
                return 400, {"message": "invalid permission items"}
            self.grant(uid, items)
            return 200, {"message": "Folder permissions updated"}
        if found := re.fullmatch(r"/api/folders/([^/]+)", path):
            uid = urllib.parse.unquote(found[1])
            return (200, {"uid": uid, "title": self.folders[uid]}) if uid in self.folders \
                else (404, {"message": "folder not found"})
        if path == "/api/teams/search":
            name = (query.get("name") or [""])[0]
            teams = [{"id": i, "name": n} for n, i in self.teams.items() if n == name]
            return 200, {"totalCount": len(teams), "teams": teams, "page": 1, "perPage": 1000}
        if found := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path):
            return (200, {"dashboard": {"uid": found[1], "title": found[1].title()}}) if found[1] in self.dashboards \
                else (404, {"message": "Dashboard not found"})
        return 404, {"message": "Not found"}


@contextmanager
def serve(api: GrafanaApi) -> Iterator[str]:
    """`api` on a loopback port while the context lasts; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, answer = api.answer(self.command, self.path, json.loads(raw) if raw else None,
                                        self.headers.get("Authorization", ""))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args: Any) -> None:
            pass

    server = live.serve(Handler)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        live.stop(server)
