"""One way to install a pinned chart, shared by the components that install charts."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from monitoring.helm import deep_merge
from monitoring.versions import Chart

# Charts that start many pods (Mimir's zone-aware StatefulSets roll one zone at a time) need
# longer than Helm's default five minutes to become ready.
RELEASE_TIMEOUT_SECONDS = 900


def helm_release(
    resource_name: str,
    chart: Chart,
    namespace: str,
    values: pulumi.Input[dict],
    parent: pulumi.Resource,
    *,
    overrides: Mapping[str, Mapping[str, Any]],
    depends_on: Optional[list[pulumi.Resource]] = None,
    protect: bool = False,
) -> k8s.helm.v3.Release:
    """A Helm release of `chart` at its pinned version, named after the chart, its `values` with the
    stack's own for the chart (`overrides`, the `helmValues` setting, by chart name) merged over them.

    The release name is fixed: service names, and so the in-cluster URLs other components
    are given, derive from it; `helm list` shows what runs, not a random suffix. `protect`: a
    release whose pods hold data (their volumes outlive it, but not its running state) is not
    deleted or replaced without first being unprotected.
    """
    own = overrides.get(chart.name)
    if own:
        values = pulumi.Output.from_input(values).apply(lambda built: deep_merge(built, own))
    return k8s.helm.v3.Release(
        resource_name,
        name=chart.name,
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        namespace=namespace,
        values=values,
        timeout=RELEASE_TIMEOUT_SECONDS,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or [], protect=protect),
    )
