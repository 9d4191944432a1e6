"""Grafana's dashboards, in their folders, with the folders' permissions: all from inside the cluster.

Each dashboard is a ConfigMap that Grafana's dashboard sidecar loads into the folder its annotation
names (creating the folder); a Job gives every folder its permissions through Grafana's API, at
Grafana's Service, as the admin (monitoring/grafana_folders.py). Nothing calls Grafana's public URL:
the first `pulumi up` needs neither its DNS record nor its certificate, nor a route from the machine
running it to an ingress that may be internal. Pulumi waits for the Job to complete, so an `up` whose
permissions cannot be applied (a team that does not exist, a refused admin password) fails saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from config.settings import FolderPermission
from monitoring.dashboards import Dashboard
from monitoring.grafana import dashboard_config_map, folder_job

# Three tries of up to five minutes' wait for Grafana each, and the calls (the Job's deadline).
JOB_TIMEOUT = "20m"


@dataclass(frozen=True)
class GrafanaDashboardsArgs:
    namespace: str
    """Grafana's namespace: its sidecar loads the dashboard ConfigMaps of this namespace only."""
    grafana_url: str
    """Grafana's Service inside the cluster (http://host:port), which the folder Job calls."""
    grafana_deployment: str
    """Grafana's Deployment, `namespace/name`: what to restart when the Job finds the admin password refused."""
    admin_secret: pulumi.Input[str]
    """Name of the Secret holding Grafana's admin user and password, which the Job authenticates with."""
    image: str
    """Image of the folder Job (Python): the one Grafana's sidecars run."""
    folders: Mapping[str, str]
    """Folder UID -> title; the title is the folder's identity in Grafana (the sidecar creates it by name)."""
    folder_permissions: Sequence[FolderPermission]
    """Who may view or edit every folder (roles or teams); the same on each folder."""
    dashboards: Sequence[Dashboard]
    """Dashboards, each placed in the folder its `folder` key names."""
    labels: Mapping[str, str]
    """Labels of every object (the team's)."""


class GrafanaDashboards(pulumi.ComponentResource):
    config_maps: list[k8s.core.v1.ConfigMap]
    """One per dashboard."""
    folder_job: k8s.batch.v1.Job

    def __init__(self, name: str, args: GrafanaDashboardsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:grafana_dashboards:GrafanaDashboards", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = dict(args.labels)
        self.config_maps = []
        for dashboard in args.dashboards:
            manifest = dashboard_config_map(f"{name}-{dashboard.uid}", args.namespace, dashboard,
                                            args.folders[dashboard.folder], labels)
            self.config_maps.append(
                k8s.core.v1.ConfigMap(manifest["metadata"]["name"], metadata=manifest["metadata"], data=manifest["data"],
                                      opts=child))
        job: dict[str, Any] = folder_job(f"{name}-folders", args.namespace, args.grafana_url, args.grafana_deployment,
                                         args.admin_secret, dict(args.folders), args.folder_permissions, args.image,
                                         labels)
        # A changed Job is a new one under the same name: the old one goes first.
        self.folder_job = k8s.batch.v1.Job(
            f"{name}-folders", metadata=job["metadata"], spec=job["spec"],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True,
                                        custom_timeouts=pulumi.CustomTimeouts(create=JOB_TIMEOUT)))
        self.register_outputs({"config_maps": self.config_maps, "folder_job": self.folder_job})
