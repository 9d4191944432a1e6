"""Values of kube-prometheus-stack's Grafana: hardened, SSO-ready, credentials by reference."""

from __future__ import annotations

from config import Settings
from monitoring.scrape import team_labels

ADMIN_USER_KEY = "admin-user"
ADMIN_PASSWORD_KEY = "admin-password"
OAUTH_CLIENT_SECRET_KEY = "client-secret"
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
# What Grafana's sidecars read: the ConfigMaps holding data sources and the chart's dashboards.
SIDECAR_RULES = ({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},)


def grafana_ini(settings: Settings) -> dict:
    g = settings.grafana
    ini = {
        "server": {"domain": g.host, "root_url": f"https://{g.host}"},
        "auth.anonymous": {"enabled": False},
        "users": {"allow_sign_up": False},
        "security": {"cookie_secure": True, "disable_gravatar": True, "strict_transport_security": True},
        "analytics": {"reporting_enabled": False, "check_for_updates": False},
    }
    if g.sso is not None:
        sso = g.sso
        ini["auth.generic_oauth"] = {
            "enabled": True,
            "name": sso.name,
            "client_id": sso.client_id,
            # The client secret arrives as GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET from a Secret.
            "scopes": " ".join(sso.scopes),
            "auth_url": sso.auth_url,
            "token_url": sso.token_url,
            "api_url": sso.api_url,
            "allowed_domains": " ".join(sso.allowed_domains),
            "allow_sign_up": True,
            "use_pkce": True,
            "role_attribute_path": sso.role_attribute_path,
            # A user the mapping gives no role is refused rather than made a Viewer by default.
            "role_attribute_strict": True,
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
        "grafana.ini": grafana_ini(settings),
        "sidecar": {
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
    if oauth_secret is not None:
        values["envValueFrom"] = {
            "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": {
                "secretKeyRef": {"name": oauth_secret, "key": OAUTH_CLIENT_SECRET_KEY}
            }
        }
    return {"grafana": values}
