"""The sections other concerns contribute to the kube-prometheus-stack values.

The chart runs Alertmanager and Grafana too: their sections come from the alerting and Grafana
content, referencing by name the Secrets the alerting and Grafana components create.
"""

from __future__ import annotations

from typing import Optional

from config import Settings
from monitoring import alertmanager, grafana
from monitoring.dashboards import DatasourceUrls, datasources
from monitoring.helm import deep_merge
from monitoring.helm.kube_prometheus_stack import service_urls
from monitoring.helm.mimir import mimir_urls
from monitoring.logging.loki import gateway_url
from monitoring.versions import MIMIR


def datasource_urls(settings: Settings) -> DatasourceUrls:
    """Where Grafana reaches each backend inside the cluster (release names are fixed)."""
    prometheus_url, alertmanager_url = service_urls(settings.namespace)
    return DatasourceUrls(
        prometheus=prometheus_url,
        mimir=mimir_urls(MIMIR.name, settings.namespace)[1],
        loki=gateway_url(settings.namespace),
        alertmanager=alertmanager_url,
    )


def alertmanager_and_grafana_values(
    settings: Settings,
    *,
    storage_class: str,
    alertmanager_config_secret: str,
    grafana_admin_secret: str,
    grafana_oauth_secret: Optional[str],
    grafana_sidecar_role: str,
) -> dict:
    """The `alertmanager:` and `grafana:` sections of the kube-prometheus-stack values."""
    return deep_merge(
        {"alertmanager": alertmanager.helm_values(settings, alertmanager_config_secret, storage_class)},
        grafana.grafana_values(
            settings,
            storage_class=storage_class,
            admin_secret=grafana_admin_secret,
            oauth_secret=grafana_oauth_secret,
            sidecar_role=grafana_sidecar_role,
            datasources=datasources(settings, datasource_urls(settings)),
        ),
    )
