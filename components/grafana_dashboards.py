"""Grafana folders, their permissions and the dashboards, through Grafana's API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumiverse_grafana as grafana

from config.settings import FolderPermission
from monitoring.dashboards import Dashboard


@dataclass(frozen=True)
class GrafanaDashboardsArgs:
    url: str
    """Grafana's public URL (https://<host>), which Pulumi calls."""
    admin_user: str
    """Admin account the provider authenticates as."""
    admin_password: Any
    """Pulumi secret with the admin password."""
    folders: Mapping[str, str]
    """Folder UID -> title."""
    folder_permissions: Sequence[FolderPermission]
    """Who may view or edit every folder (roles or teams); the same on each folder."""
    dashboards: Sequence[Dashboard]
    """Dashboards, each placed in the folder its `folder` key names."""


def permission_items(permissions: Sequence[FolderPermission], team_id) -> list[grafana.oss.FolderPermissionPermissionArgs]:
    """Folder permission items; a team is named in config and found by name through `team_id`."""
    return [
        grafana.oss.FolderPermissionPermissionArgs(permission=p.permission, role=p.role)
        if p.role
        else grafana.oss.FolderPermissionPermissionArgs(permission=p.permission, team_id=team_id(p.team))
        for p in permissions
    ]


class GrafanaDashboards(pulumi.ComponentResource):
    folder_uids: list[pulumi.Output[str]]
    dashboard_uids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: GrafanaDashboardsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:grafana_dashboards:GrafanaDashboards", name, None, opts)
        provider = grafana.Provider(
            f"{name}-provider",
            url=args.url,
            auth=pulumi.Output.secret(pulumi.Output.concat(args.admin_user, ":", args.admin_password)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_grafana = pulumi.ResourceOptions(parent=self, provider=provider)

        def team_id(team: str) -> pulumi.Output[str]:
            found = grafana.oss.get_team_output(name=team, opts=pulumi.InvokeOutputOptions(provider=provider))
            return found.team_id.apply(str)

        folders = {}
        for uid, title in args.folders.items():
            folders[uid] = grafana.oss.Folder(f"{name}-folder-{uid}", uid=uid, title=title, opts=on_grafana)
            grafana.oss.FolderPermission(
                f"{name}-folder-{uid}-permissions",
                folder_uid=folders[uid].uid,
                permissions=permission_items(args.folder_permissions, team_id),
                opts=on_grafana,
            )
        dashboards = [
            grafana.oss.Dashboard(
                f"{name}-{dashboard.uid}",
                folder=folders[dashboard.folder].uid,
                config_json=dashboard.to_json(),
                overwrite=True,
                opts=on_grafana,
            )
            for dashboard in args.dashboards
        ]
        self.folder_uids = [f.uid for f in folders.values()]
        self.dashboard_uids = [d.uid for d in dashboards]
        self.register_outputs({"folder_uids": self.folder_uids, "dashboard_uids": self.dashboard_uids})
