"""The values of prometheus-operator-crds 31.0.1: the Prometheus Operator's CRDs, kept.

The chart renders the CRDs as templates, so Helm upgrades them with the release (the copy in
kube-prometheus-stack's `crds/` folder is installed once and never upgraded by Helm). Helm leaves an
object annotated `helm.sh/resource-policy: keep` in place when the release is uninstalled or stops
rendering it: deleting a CRD deletes every object of its kind (each Prometheus, Alertmanager,
ServiceMonitor and rule of the cluster), which no release of ours may take with it.
"""

from __future__ import annotations

KEEP = {"helm.sh/resource-policy": "keep"}


def values() -> dict:
    return {"crds": {"annotations": KEEP}}
