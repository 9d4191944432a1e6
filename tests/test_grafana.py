"""Grafana configured from inside the cluster, at the boundaries that run here.

No Grafana binary can be had (AGPL), so what runs in the cluster runs here against stand-ins:
- the folder Job: its container's command and environment, exactly as rendered (the admin Secret's
  keys resolved as the kubelet would), against the stand-in of Grafana's folder, team and permission
  API (testkit/grafana.py);
- the admin password reset: the init container's script, exactly as rendered, with a stand-in for
  Grafana's CLI (`grafana cli admin reset-admin-password --password-from-stdin`) that updates the
  admin's hash in a SQLite `user` table as Grafana does (pbkdf2-sha256, 10,000 rounds, 50 bytes,
  hex: pkg/util/encoding.go EncodePassword), given a database whose admin password differs from the
  Secret's. What cannot run here: Grafana's own CLI against Grafana's own schema and migrations.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.grafana import ADMIN_PASSWORD_KEY, ADMIN_RESET_CONTAINER, ADMIN_USER_KEY, ROTATION_ANNOTATION
from monitoring.helm.kube_prometheus_stack import grafana_name
from monitoring.versions import GRAFANA_IMAGE
from testkit.grafana import GrafanaApi, serve
from tests.support import rendered_stack, stack_settings

ADMIN = ("admin", "the-admin-password-in-the-secret")
SECRET = {ADMIN_USER_KEY: ADMIN[0], ADMIN_PASSWORD_KEY: ADMIN[1]}


# ------------------------------------------------------------------------------ the folder Job


# A team and a role, and a rotated admin password: the variant the tests below share (one mock run).
TEAM_AND_ROLE = {"grafana": {"folderPermissions": [{"team": "sre", "permission": "Admin"},
                                                   {"role": "Viewer", "permission": "View"}],
                             "adminPasswordRotation": 3}}


def folder_job(overrides: dict | None = None) -> dict:
    (job,) = rendered_stack("dev", overrides).manifests("Job")
    return job


def run_job(job: dict, url: str, root: Path, wait: str = "5") -> subprocess.CompletedProcess:
    """The Job's container as the kubelet starts it: its command, its environment, the admin Secret's
    keys as files where it mounts the Secret (under `root` here)."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "grafana-admin"
    for key, value in SECRET.items():
        (root / mount["mountPath"].lstrip("/")).mkdir(parents=True, exist_ok=True)
        (root / mount["mountPath"].lstrip("/") / key).write_text(value)
    env = {v["name"]: v["value"] for v in container["env"]}
    env = {name: str(root / value.lstrip("/")) if name.endswith("_FILE") else value for name, value in env.items()}
    env.update(GRAFANA_URL=url, READY_WAIT_SECONDS=wait, PATH=os.environ["PATH"])
    assert container["command"][:2] == ["python", "-c"]
    return subprocess.run([sys.executable, *container["command"][1:]], env=env, capture_output=True, text=True, timeout=60)


def test_the_job_makes_missing_folders_and_gives_each_its_permissions(tmp_path):
    job = folder_job()
    api = GrafanaApi(ADMIN)
    with serve(api) as url:
        done = run_job(job, url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert api.folders == {"webhook-delivery": "Webhook Delivery", "business": "Business", "infrastructure": "Infrastructure"}
    for uid in api.folders:
        assert [(p["role"], p["permissionName"]) for p in api.permissions[uid]] == [("Viewer", "View"), ("Editor", "Edit")]
    assert done.stdout.splitlines()[0] == "folder 'Webhook Delivery' (webhook-delivery): 2 permissions set"


def test_the_job_uses_the_folders_the_dashboard_sidecar_made_and_finds_teams_by_name(tmp_path):
    job = folder_job(TEAM_AND_ROLE)
    made = {"a1b2c3": "Webhook Delivery", "d4e5f6": "Business", "g7h8i9": "Infrastructure"}
    api = GrafanaApi(ADMIN, folders=dict(made), teams={"sre": 7, "sre-oncall": 8})
    with serve(api) as url:
        done = run_job(job, url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert api.folders == made, "no folder created beside the sidecar's"
    assert ("POST", "/api/folders") not in api.calls
    for uid in made:
        assert api.permissions[uid] == [
            {"teamId": 7, "team": "sre", "permission": 4, "permissionName": "Admin", "inherited": False},
            {"role": "Viewer", "permission": 1, "permissionName": "View", "inherited": False}]


def test_a_team_that_does_not_exist_fails_the_job_saying_what_to_do_and_sets_nothing(tmp_path):
    job = folder_job(TEAM_AND_ROLE)
    api = GrafanaApi(ADMIN, teams={"sre-oncall": 8})
    with serve(api) as url:
        done = run_job(job, url, tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == ("team 'sre' does not exist in Grafana: create it (Administration > Teams) or take it "
                                   "out of webhook-monitoring:grafana.folderPermissions")
    assert api.permissions == {}


def test_an_admin_password_grafana_refuses_fails_the_job_naming_the_restart_that_fixes_it(tmp_path):
    job = folder_job()
    api = GrafanaApi(("admin", "the-password-of-a-restored-database"))
    with serve(api) as url:
        done = run_job(job, url, tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Grafana refused the admin credentials of Secret grafana-admin: its database holds another password. Restart "
        f"Grafana (kubectl -n monitoring rollout restart deployment/{grafana_name(stack_settings('dev'))}); its init "
        "container resets the "
        "password from the Secret (docs/operations/grafana-admin.md)")


def test_grafana_not_answering_fails_the_job_once_the_wait_is_over(tmp_path):
    done = run_job(folder_job(), "http://127.0.0.1:9", tmp_path, wait="0")
    assert done.returncode == 1
    assert done.stderr.startswith("Grafana at http://127.0.0.1:9 is not ready: ")


def test_a_team_is_passed_to_the_job_by_name():
    (container,) = folder_job(TEAM_AND_ROLE)["spec"]["template"]["spec"]["containers"]
    permissions = next(e["value"] for e in container["env"] if e["name"] == "PERMISSIONS")
    assert json.loads(permissions) == [{"team": "sre", "permission": "Admin"}, {"role": "Viewer", "permission": "View"}]


# ------------------------------------------------------------------------------ the admin password reset


@pytest.mark.parametrize("overrides, rotation", [(None, 0), (TEAM_AND_ROLE, 3)])
def test_the_admin_password_is_reset_from_its_secret_and_a_rotation_restarts_grafana(overrides, rotation):
    rendered = rendered_stack("dev", overrides)
    grafana = rendered.kube_prometheus_stack.values["grafana"]
    (reset,) = grafana["extraInitContainers"]
    assert reset["image"] == GRAFANA_IMAGE == "{registry}/{repository}:{tag}".format(**grafana["image"])
    assert reset["env"][0] == {"name": "GF_SECURITY_ADMIN_PASSWORD",
                               "valueFrom": {"secretKeyRef": {"name": "grafana-admin", "key": "admin-password"}}}
    assert grafana["podAnnotations"] == {ROTATION_ANNOTATION: str(rotation)}
    (password,) = [r for r in rendered.resources if r["type"] == "random:index/randomPassword:RandomPassword"
                   and r["name"] == "grafana-admin-password"]
    # A stack deployed before rotations keeps its password: no keepers until the first.
    assert password["inputs"].get("keepers") == ({"rotation": str(rotation)} if rotation else None)


GRAFANA_CLI = '''#!/usr/bin/env python3
"""Stand-in for `grafana cli ... admin reset-admin-password --password-from-stdin`: user 1's hash."""
import hashlib, json, os, sqlite3, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAIL"):
    print("Error: could not read user from database. Error: user not found", file=sys.stderr)
    sys.exit(1)
args = sys.argv[1:]
assert args[:1] == ["cli"] and args[-2:] == ["reset-admin-password", "--password-from-stdin"], args
password = sys.stdin.readline().rstrip("\\n")
db = sqlite3.connect(os.path.join(os.environ["GF_PATHS_DATA"], "grafana.db"))
(salt,) = db.execute("SELECT salt FROM user WHERE id = 1").fetchone()
digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000, 50).hex()
db.execute("UPDATE user SET password = ? WHERE id = 1", (digest,))
db.commit()
print("Admin password changed successfully")
'''


def grafana_hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000, 50).hex()


@pytest.fixture
def reset(tmp_path: Path):
    """Run the rendered init container's script with the stand-in CLI; returns (run, data folder, calls file)."""
    grafana = rendered_stack("dev").kube_prometheus_stack.values["grafana"]
    (container,) = [c for c in grafana["extraInitContainers"] if c["name"] == ADMIN_RESET_CONTAINER]
    assert container["command"][:2] == ["sh", "-c"]
    bin_dir, data = tmp_path / "bin", tmp_path / "data"
    bin_dir.mkdir()
    data.mkdir()
    cli = bin_dir / "grafana"
    cli.write_text(GRAFANA_CLI)
    cli.chmod(0o755)
    calls = tmp_path / "calls"

    def run(**extra: str) -> subprocess.CompletedProcess:
        env = {e["name"]: e.get("value", SECRET[ADMIN_PASSWORD_KEY]) for e in container["env"]}
        assert env["GF_SECURITY_ADMIN_PASSWORD"] == ADMIN[1], "the password comes from the Secret"
        env.update(GF_PATHS_DATA=str(data), GF_PATHS_HOME="/usr/share/grafana", CALLS=str(calls),
                   PATH=f"{bin_dir}:{os.environ['PATH']}", **extra)
        return subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=30)

    return run, data, calls


def database(data: Path, password: str, salt: str = "Fq0uw9Qwhv") -> sqlite3.Connection:
    db = sqlite3.connect(data / "grafana.db")
    db.execute("CREATE TABLE user (id INTEGER PRIMARY KEY, login TEXT, password TEXT, salt TEXT)")
    db.execute("INSERT INTO user VALUES (1, 'admin', ?, ?)", (grafana_hash(password, salt), salt))
    db.commit()
    return db


def test_a_restored_database_gets_the_secrets_admin_password_back(reset):
    run, data, calls = reset
    db = database(data, "the-password-before-the-restore")
    done = run()
    assert done.returncode == 0, done.stderr
    (stored, salt) = db.execute("SELECT password, salt FROM user WHERE id = 1").fetchone()
    assert stored == grafana_hash(ADMIN[1], salt) != grafana_hash("the-password-before-the-restore", salt)
    # Grafana's CLI with its home and configuration, the password on stdin, never on the command line.
    (args,) = [json.loads(line) for line in calls.read_text().splitlines()]
    assert args == ["cli", "--homepath", "/usr/share/grafana", "--config", "/etc/grafana/grafana.ini",
                    "admin", "reset-admin-password", "--password-from-stdin"]
    assert ADMIN[1] not in " ".join(args)


def test_a_new_volume_is_left_to_grafana_which_creates_the_admin_from_the_secret(reset):
    run, data, calls = reset
    done = run()
    assert done.returncode == 0
    assert done.stdout.strip() == "no database yet: Grafana creates the admin from the Secret"
    assert not calls.exists() and not (data / "grafana.db").exists()


def test_a_failed_reset_stops_the_pod(reset):
    run, data, calls = reset
    database(data, "whatever")
    done = run(FAIL="1")
    assert done.returncode != 0
    assert "could not read user from database" in done.stderr
