"""Grafana's own configuration: grafana.ini (hardened, SSO-ready, the client secret read from a file)
and the keys of its Secrets. Its chart values: monitoring/helm/kube_prometheus_stack.py."""

from __future__ import annotations

from config import Settings
from config.settings import SsoSettings
from monitoring.web_auth import SECRETS_MOUNT

ADMIN_USER_KEY = "admin-user"
ADMIN_PASSWORD_KEY = "admin-password"
OAUTH_CLIENT_SECRET_KEY = "client-secret"
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
# What Grafana's sidecars read: the ConfigMaps holding data sources and the chart's dashboards.
SIDECAR_RULES = ({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},)


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
