"""Values of kube-prometheus-stack's Grafana: hardened, SSO-ready, credentials by reference."""

from __future__ import annotations

from config import Settings
from config.settings import SsoSettings
from monitoring.helm import small_resources
from monitoring.web_auth import ALERTMANAGER, PROMETHEUS, SECRETS_MOUNT, client_mount
from monitoring.scrape import team_labels

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


def grafana_values(
    settings: Settings,
    *,
    storage_class: str,
    admin_secret: str,
    oauth_secret: str | None,
    sidecar_role: str,
    datasources: list[dict],
) -> dict:
    """The `grafana:` section of the kube-prometheus-stack values.

    Secrets are referenced by name, never inlined: the admin credentials from `admin_secret`,
    the OAuth client secret from `oauth_secret`. Data sources are ours alone, with stable UIDs
    that the dashboards reference, so the chart's defaults are switched off. The sidecars that load
    data sources and the chart's dashboards read ConfigMaps of Grafana's namespace only, through
    `sidecar_role` (a Role granting exactly that): the chart's own role would let Grafana read
    every Secret (a ClusterRole, as kube-prometheus-stack has the dashboard sidecar watch all
    namespaces).
    """
    g = settings.grafana
    ingress_annotations = {CLUSTER_ISSUER_ANNOTATION: g.cluster_issuer} if g.cluster_issuer else {}
    values = {
        "admin": {"existingSecret": admin_secret, "userKey": ADMIN_USER_KEY, "passwordKey": ADMIN_PASSWORD_KEY},
        # SQLite on a ReadWriteOnce gp3 volume: one replica, and the volume keeps users and preferences.
        "replicas": 1,
        # The chart's RollingUpdate starts the new pod before stopping the old: it cannot attach the
        # volume the old pod holds (on another node), never becomes ready, and the release times out.
        "deploymentStrategy": {"type": "Recreate"},
        "rbac": {"namespaced": True, "useExistingRole": sidecar_role},
        # Pod Security `restricted`: the pod's fsGroup gives the volume to Grafana's user, so the
        # chart's root init container that chowns it is not needed; Helm tests never run under Pulumi.
        "initChownData": {"enabled": False},
        "testFramework": {"enabled": False},
        "persistence": {
            "enabled": True,
            "type": "pvc",
            "storageClassName": storage_class,
            "size": g.volume_size.text,
            "accessModes": ["ReadWriteOnce"],
        },
        "ingress": {
            "enabled": True,
            # cert-manager issues the host's certificate into the TLS Secret and renews it.
            **({"annotations": ingress_annotations} if ingress_annotations else {}),
            "ingressClassName": g.ingress_class,
            "hosts": [g.host],
            "path": "/",
            "pathType": "Prefix",
            "tls": [{"secretName": g.tls_secret, "hosts": [g.host]}],
        },
        "grafana.ini": grafana_ini(settings, oauth_secret),
        # Secrets as files, read by `$__file{}` references (data source passwords, the SSO client secret).
        "extraSecretMounts": [client_mount(server, "grafana") for server in (PROMETHEUS, ALERTMANAGER)]
        + ([oauth_mount(oauth_secret)] if oauth_secret else []),
        "sidecar": {
            "resources": small_resources("10m", "64Mi", "128Mi"),
            "datasources": {"defaultDatasourceEnabled": False, "resource": "configmap"},
            # Grafana's own namespace, where the chart's dashboards are (kube-prometheus-stack says ALL).
            "dashboards": {"searchNamespace": settings.namespace, "resource": "configmap"},
        },
        "additionalDataSources": datasources,
        # The subchart's monitor does not get the parent chart's common labels: without the
        # team label Prometheus would not select it.
        "serviceMonitor": {"labels": team_labels(settings)},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }
    return {"grafana": values}
