"""One way to install a pinned chart, shared by the components that install charts, and how each
release fails: without leaving a half-installed or half-upgraded release behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from monitoring.helm import deep_merge
from monitoring.versions import (
    ALLOY,
    BLACKBOX_EXPORTER,
    KUBE_PROMETHEUS_STACK,
    LOKI,
    MIMIR,
    PROMETHEUS_OPERATOR_CRDS,
    PROMTAIL,
    Chart,
)

# Revisions Helm keeps per release, each a Secret holding the release's whole manifest: the Helm
# CLI's own default for `helm upgrade --history-max` (pulumi-kubernetes keeps every one unless told),
# enough to roll back through a week of changes.
MAX_HISTORY = 10


@dataclass(frozen=True)
class ReleasePolicy:
    """How Helm installs and upgrades one chart's release."""

    timeout_seconds: int
    """How long Helm waits for the release's objects to become ready (and for its hooks), in seconds."""
    atomic: bool = True
    """A failed install is uninstalled, a failed upgrade rolled back to the last good revision (and the
    objects it created deleted), by Helm itself: the release is never left failed or half-applied."""
    take_ownership: bool = False
    """Adopt objects of the release's that exist in the cluster without belonging to it."""


RELEASE_POLICIES: dict[str, ReleasePolicy] = {
    # Not atomic: an automatic rollback would re-apply the previous revision's CRDs, a downgrade that
    # prunes the fields newer objects use; a CRD a failed upgrade added or changed stays, harmlessly.
    # Adopts the CRDs kube-prometheus-stack's `crds/` folder installed on stacks deployed before this
    # release owned them. No pods: Helm waits for the CRDs to be established only.
    PROMETHEUS_OPERATOR_CRDS.name: ReleasePolicy(120, atomic=False, take_ownership=True),
    # The Operator, kube-state-metrics, Grafana (Recreate: the old pod stops, its EBS volume moves to
    # the new pod's node), node-exporter rolling one node at a time, the webhook certificate jobs.
    # Prometheus and Alertmanager are the Operator's StatefulSets: Helm does not wait for them.
    KUBE_PROMETHEUS_STACK.name: ReleasePolicy(600),
    # Zone-aware StatefulSets roll one zone at a time.
    MIMIR.name: ReleasePolicy(900),
    # Prod's write and backend StatefulSets replace one pod at a time, each given 300 s (the chart's
    # terminationGracePeriodSeconds) to flush what it holds: three replicas take up to 15 minutes.
    LOKI.name: ReleasePolicy(1200),
    # DaemonSets roll one node at a time.
    ALLOY.name: ReleasePolicy(600),
    PROMTAIL.name: ReleasePolicy(600),
    # One Deployment: Helm's default.
    BLACKBOX_EXPORTER.name: ReleasePolicy(300),
}


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
    release_name: Optional[str] = None,
) -> k8s.helm.v3.Release:
    """A Helm release of `chart` at its pinned version, named `release_name` (default: after the chart),
    installed and upgraded as its `RELEASE_POLICIES` entry says; its `values` with the stack's own for the
    chart (`overrides`, the `helmValues` setting, by chart name) merged over them.

    The release name is fixed: service names, and so the in-cluster URLs other components
    are given, derive from it; `helm list` shows what runs, not a random suffix. A chart whose
    cluster-scoped objects are named after the release gets a name no other stack's release has
    (config/naming.py): Helm refuses to adopt objects of another release. `protect`: a
    release whose pods hold data (their volumes outlive it, but not its running state) is not
    deleted or replaced without first being unprotected.
    """
    own = overrides.get(chart.name)
    if own:
        values = pulumi.Output.from_input(values).apply(lambda built: deep_merge(built, own))
    policy = RELEASE_POLICIES[chart.name]
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name or chart.name,
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        namespace=namespace,
        values=values,
        timeout=policy.timeout_seconds,
        atomic=policy.atomic,
        cleanup_on_fail=policy.atomic,
        take_ownership=policy.take_ownership,
        max_history=MAX_HISTORY,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or [], protect=protect),
    )
