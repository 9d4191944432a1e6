"""Grafana's own configuration: grafana.ini (hardened, SSO-ready, the client secret read from a file),
the keys of its Secrets, how its dashboards reach it (ConfigMaps its sidecar loads) and the init
container that keeps the admin password the Secret's. Its chart values:
monitoring/helm/kube_prometheus_stack.py."""

from __future__ import annotations

import json
from pathlib import Path

from config import Settings
from config.settings import SsoSettings
from monitoring import grafana_folders
from monitoring.pods import RESTRICTED_CONTAINER, restricted_pod, small_resources
from monitoring.web_auth import SECRETS_MOUNT

ADMIN_USER_KEY = "admin-user"
ADMIN_PASSWORD_KEY = "admin-password"
OAUTH_CLIENT_SECRET_KEY = "client-secret"
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
# What Grafana's sidecars read: the ConfigMaps holding data sources and dashboards.
SIDECAR_RULES = ({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},)
# A ConfigMap so labelled holds dashboards (one JSON file per key) for the dashboard sidecar, which puts
# them in the folder its annotation names (Grafana creates the folder from the directory's name).
DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE = "grafana_dashboard", "1"
FOLDER_ANNOTATION = "grafana_folder"
# Bumped with `grafana.adminPasswordRotation`: a new password, and Grafana restarted to take it.
ROTATION_ANNOTATION = "webhook-monitoring/admin-password-rotation"
# Where the chart mounts Grafana's volume and grafana.ini (its `storage` and `config` volumes).
DATA_PATH = "/var/lib/grafana"
CONFIG_PATH = "/etc/grafana/grafana.ini"
ADMIN_RESET_CONTAINER = "reset-admin-password"
# What the folder Job runs (`python -c`): the module's own text.
FOLDER_SCRIPT = Path(grafana_folders.__file__).read_text()
# Grafana applies GF_SECURITY_ADMIN_PASSWORD only when it creates its database: after a restore from
# a snapshot, a change in the UI or a new password in the Secret, the database keeps another one. On
# every start, before Grafana, its own CLI sets the admin's (user 1's) password to the Secret's,
# read from stdin (never an argument, which `ps` shows). A new volume has no database yet: Grafana
# creates the admin from the Secret itself, and the CLI would find no user to reset. A failed reset
# stops the pod, where the failure is seen, rather than serving with a password nobody knows.
ADMIN_RESET_SCRIPT = """set -eu
if [ ! -f "$GF_PATHS_DATA/grafana.db" ]; then
  echo "no database yet: Grafana creates the admin from the Secret"
  exit 0
fi
printf '%s\n' "$GF_SECURITY_ADMIN_PASSWORD" |
  grafana cli --homepath "$GF_PATHS_HOME" --config "$GF_PATHS_CONFIG" admin reset-admin-password --password-from-stdin
"""


def chart_image(reference: str) -> dict:
    """`registry/repository:tag` as the grafana chart's image values."""
    name, tag = reference.rsplit(":", 1)
    registry, repository = name.split("/", 1)
    return {"registry": registry, "repository": repository, "tag": tag}


def admin_reset_container(image: str, admin_secret: str) -> dict:
    """The init container that makes the database's admin password the Secret's (ADMIN_RESET_SCRIPT),
    in Grafana's image, on Grafana's volume and configuration."""
    return {
        "name": ADMIN_RESET_CONTAINER,
        "image": image,
        "command": ["sh", "-c", ADMIN_RESET_SCRIPT],
        "env": [
            {"name": "GF_SECURITY_ADMIN_PASSWORD",
             "valueFrom": {"secretKeyRef": {"name": admin_secret, "key": ADMIN_PASSWORD_KEY}}},
            {"name": "GF_PATHS_DATA", "value": DATA_PATH},
            {"name": "GF_PATHS_CONFIG", "value": CONFIG_PATH},
        ],
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_PATH, "subPath": "grafana.ini"},
            {"name": "storage", "mountPath": DATA_PATH},
        ],
        # The chart's own container context for Grafana, whose CLI this is.
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": small_resources("50m", "128Mi", "512Mi"),
    }


def role_attribute_path(sso: SsoSettings) -> str:
    """The JMESPath Grafana evaluates on the user's claims: the first role whose groups the user is
    in, Admin before Editor before Viewer; with strict mapping, nothing for a user in none (refused)."""
    claim = sso.groups_claim

    def member(groups: tuple[str, ...]) -> str:
        return " || ".join(f"contains({claim}[*], {_jmespath_literal(g)})" for g in groups)

    branches = [f"({member(groups)}) && '{role}'" for role, groups in
                (("Admin", sso.admin_groups), ("Editor", sso.editor_groups), ("Viewer", sso.viewer_groups)) if groups]
    if not sso.strict_role_mapping:
        branches.append("'Viewer'")
    return " || ".join(branches)


def _jmespath_literal(text: str) -> str:
    """A JMESPath raw string literal (group names hold no quote or backslash: the settings refuse them)."""
    return f"'{text}'"


def file_reference(path: str) -> str:
    """Grafana's syntax for a value read from a file at start (a mounted Secret)."""
    return f"$__file{{{path}}}"


def oauth_mount(oauth_secret: str) -> dict:
    return {"name": oauth_secret, "secretName": oauth_secret, "mountPath": f"{SECRETS_MOUNT}/{oauth_secret}", "readOnly": True}


def grafana_ini(settings: Settings, oauth_secret: str | None = None) -> dict:
    """grafana.ini; the SSO client secret is read from the mounted `oauth_secret`."""
    g = settings.grafana
    ini = {
        # Every request is logged with its user: logins and admin actions reach Loki (the audit trail).
        "server": {"domain": g.host, "root_url": f"https://{g.host}", "router_logging": True},
        "log": {"mode": "console", "level": "info"},
        "auth.anonymous": {"enabled": False},
        "users": {"allow_sign_up": False},
        "security": {"cookie_secure": True, "disable_gravatar": True, "strict_transport_security": True},
        "analytics": {"reporting_enabled": False, "check_for_updates": False},
    }
    if g.sso is not None:
        if oauth_secret is None:
            raise ValueError("grafana.sso is set but no OAuth client secret was given")
        sso = g.sso
        ini["auth.generic_oauth"] = {
            "enabled": True,
            "name": sso.name,
            "client_id": sso.client_id,
            "client_secret": file_reference(f"{oauth_mount(oauth_secret)['mountPath']}/{OAUTH_CLIENT_SECRET_KEY}"),
            "scopes": " ".join(sso.scopes),
            "auth_url": sso.auth_url,
            "token_url": sso.token_url,
            "api_url": sso.api_url,
            "allowed_domains": " ".join(sso.allowed_domains),
            "allow_sign_up": True,
            "use_pkce": True,
            "role_attribute_path": role_attribute_path(sso),
            # A user the mapping gives no role is refused rather than made a Viewer by default.
            "role_attribute_strict": sso.strict_role_mapping,
            # Roles follow the provider's groups at every login; nobody edits them in Grafana.
            "skip_org_role_sync": False,
        }
    return ini


# ------------------------------------------------------------------------------ dashboards and folders

# The folder Job's pods, which Grafana's NetworkPolicy lets in (monitoring/network.py).
FOLDER_JOB_LABELS = {"app.kubernetes.io/name": "grafana-folders"}


def dashboard_config_map(name: str, namespace: str, dashboard, folder_title: str, labels: dict) -> dict:
    """The ConfigMap through which Grafana's dashboard sidecar loads one dashboard into its folder."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
            "annotations": {FOLDER_ANNOTATION: folder_title},
        },
        "data": {f"{dashboard.uid}.json": dashboard.to_json()},
    }


def folder_job(name: str, namespace: str, grafana_url: str, grafana_deployment: str, admin_secret, folders: dict,
               permissions, image: str, labels: dict) -> dict:
    """The Job that gives every folder its permissions through Grafana's API from inside the cluster
    (monitoring/grafana_folders.py), as the admin of `admin_secret` (a name, or an output of one).
    A Job's pod template cannot change: each change replaces the Job, which runs again."""
    credentials = f"{SECRETS_MOUNT}/grafana-admin"
    env = {
        "GRAFANA_URL": {"value": grafana_url},
        # The admin's user and password as files of the mounted Secret, never in the environment.
        "GRAFANA_USER_FILE": {"value": f"{credentials}/{ADMIN_USER_KEY}"},
        "GRAFANA_PASSWORD_FILE": {"value": f"{credentials}/{ADMIN_PASSWORD_KEY}"},
        "FOLDERS": {"value": json.dumps([{"uid": uid, "title": title} for uid, title in folders.items()])},
        "PERMISSIONS": {"value": json.dumps([
            {"role": p.role, "permission": p.permission} if p.role else {"team": p.team, "permission": p.permission}
            for p in permissions])},
        "ADMIN_SECRET": {"value": admin_secret},
        "GRAFANA_DEPLOYMENT": {"value": grafana_deployment},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, **FOLDER_JOB_LABELS}},
        "spec": {
            # Each try waits up to five minutes for Grafana (monitoring/grafana_folders.py).
            "backoffLimit": 2,
            "activeDeadlineSeconds": 1200,
            "template": {
                "metadata": {"labels": {**labels, **FOLDER_JOB_LABELS}},
                "spec": {
                    "restartPolicy": "Never",
                    # It calls Grafana, not the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod(65534),
                    "volumes": [{"name": "admin", "secret": {"secretName": admin_secret}}],
                    "containers": [{
                        "name": "folders",
                        "image": image,
                        "command": ["python", "-c", FOLDER_SCRIPT],
                        "env": [{"name": name, **value} for name, value in env.items()],
                        "volumeMounts": [{"name": "admin", "mountPath": credentials, "readOnly": True}],
                        "securityContext": RESTRICTED_CONTAINER,
                        "resources": small_resources("10m", "32Mi", "64Mi"),
                    }],
                },
            },
        },
    }
