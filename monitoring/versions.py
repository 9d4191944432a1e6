"""Every Helm chart and image version the program deploys, pinned in this one place.

The servers whose behaviour the tests depend on (Prometheus, Alertmanager, the blackbox exporter)
are pinned here by version: the chart values set their image tags from these constants, and
`make tools` builds the same versions from source for the tests (tools/go_tools.py). A chart
bump therefore cannot change what runs without changing what is tested.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str


# The Kubernetes minor the stack targets (EKS): charts are templated, objects validated and Pod
# Security pinned for it.
KUBERNETES_VERSION = "1.34"

PROMETHEUS_COMMUNITY = "https://prometheus-community.github.io/helm-charts"
GRAFANA = "https://grafana.github.io/helm-charts"
# The OSS Loki chart moved here on 2026-03-16; the copy in grafana/loki is maintenance-only.
GRAFANA_COMMUNITY = "https://grafana-community.github.io/helm-charts"

KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "88.5.3", PROMETHEUS_COMMUNITY)
# The Operator's CRDs as a release of their own, at the version of the Operator kube-prometheus-stack
# 88.5.3 deploys (v0.93.1, the appVersion of both charts): installed before it, upgraded with it.
PROMETHEUS_OPERATOR_CRDS = Chart("prometheus-operator-crds", "31.0.1", PROMETHEUS_COMMUNITY)
# 5.x: chart 6 turns on Kafka-based ingest storage by default; we run the classic architecture.
MIMIR = Chart("mimir-distributed", "5.7.0", GRAFANA)
BLACKBOX_EXPORTER = Chart("prometheus-blackbox-exporter", "11.17.2", PROMETHEUS_COMMUNITY)
LOKI = Chart("loki", "18.11.0", GRAFANA_COMMUNITY)
ALLOY = Chart("alloy", "1.11.1", GRAFANA)
PROMTAIL = Chart("promtail", "6.17.1", GRAFANA)

# The minor release of the Prometheus Operator kube-prometheus-stack 88.5.3 runs, whose CRDs it brings:
# the schemas the stack's custom resources are checked against. Joining a platform's monitoring, its
# Operator must be of this minor release or a later one (monitoring/tenancy.py). It moves with the
# chart (tests/test_tenancy.py compares it with the chart's appVersion), not on its own.
PROMETHEUS_OPERATOR_MINOR = (0, 93)

# The default image tags of the charts above (kube-prometheus-stack 88.5.3, blackbox exporter
# 11.17.2), pinned explicitly.
PROMETHEUS_VERSION = "3.14.0"
ALERTMANAGER_VERSION = "0.34.0"
BLACKBOX_EXPORTER_VERSION = "0.28.0"
# The busybox-based flavour of the Prometheus image (the chart defaults to the distroless one): it
# listens on localhost only, behind the authenticating proxy, and the Operator then probes it with
# sh and wget inside the container.
PROMETHEUS_IMAGE_TAG = f"v{PROMETHEUS_VERSION}"
ALERTMANAGER_IMAGE_TAG = f"v{ALERTMANAGER_VERSION}"
BLACKBOX_EXPORTER_IMAGE_TAG = f"v{BLACKBOX_EXPORTER_VERSION}"

GRAPHITE_EXPORTER_IMAGE = "quay.io/prometheus/graphite-exporter:v0.16.0"
# Grafana and its sidecars (the defaults of kube-prometheus-stack 88.5.3's grafana chart 12.11.1),
# pinned: the init container that resets the admin password runs Grafana's own CLI, which must be the
# server's version, and the folder Job runs in the sidecars' image (Python), already on the node.
GRAFANA_IMAGE = "docker.io/grafana/grafana:13.2.0"
GRAFANA_SIDECAR_IMAGE = "quay.io/kiwigrid/k8s-sidecar:2.10.1"
# The key-value store of Mimir's HA tracker (monitoring/ha_tracker.py).
ETCD_IMAGE = "gcr.io/etcd-development/etcd:v3.6.16"
# The authenticating proxy in front of Prometheus and Alertmanager (monitoring/web_auth.py): the image
# the Loki chart's gateway runs too, pinned by digest, as every image the program defines itself.
AUTH_PROXY_IMAGE = "docker.io/nginxinc/nginx-unprivileged:1.29.4-alpine@sha256:a6c4f61f456b85b8fdf7ec7ab28cc3e299440e6fb4a9dea520e5fd8fd440025e"
# Not deployed: Sloth generates the reference SLO alerts the tests compare ours with (tests/test_slo.py).
SLOTH_VERSION = "0.16.0"
