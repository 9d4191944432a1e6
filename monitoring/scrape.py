"""What Prometheus scrapes: ServiceMonitors, blackbox Probes, and federation of other clusters.

The objects are plain dicts in the Prometheus Operator's `monitoring.coreos.com/v1` schema; the
federation jobs are raw Prometheus scrape configs (`additionalScrapeConfigs`).
"""

from __future__ import annotations

import re
from typing import Sequence
from urllib.parse import urlsplit

from config import naming
from config.settings import ProbeTarget, ScrapeTarget, Settings
from monitoring import web_auth
from monitoring.ha_tracker import REPLICA_LABEL

MONITORING_API = "monitoring.coreos.com/v1"
# The target label naming the ServiceMonitor a configured service is scraped by: what the absence
# alerts select (the `job` is the Service's name, which the configuration does not know).
MONITOR_LABEL = "monitor"


# kube-prometheus-stack names the `app` label of its Services after the chart (no nameOverride).
KUBE_PROMETHEUS_STACK_CHART = "kube-prometheus-stack"


def kube_prometheus_stack_fullname(settings: Settings) -> str:
    """kube-prometheus-stack's fullname, its release name too (config/naming.py): the stem of its
    Services' names and the `release` label of its objects."""
    return naming.kube_prometheus_stack(settings)


BLACKBOX_PORT = 9115


def team_labels(settings: Settings) -> dict[str, str]:
    """The label Prometheus selects the team's monitors and rules by."""
    return {"team": settings.team_label}


LATENCY_BUCKET = "webhook_delivery_duration_seconds_bucket"
_KEPT = "__tmp_kept_bucket"


def latency_bucket_filter(settings: Settings) -> list[dict]:
    """Metric relabelings that drop the latency buckets `metrics.latencyBuckets` does not keep.

    RE2 has no negative lookahead: the kept buckets are marked, then the unmarked ones dropped.
    Prometheus 3 hands relabelling the `le` value normalized as a float (`1` as `1.0`).
    """
    kept = "|".join(re.escape(repr(float(bound))) for bound in settings.metrics.latency_buckets) + r"|\+Inf"
    return [
        {"action": "replace", "sourceLabels": ["__name__", "le"], "regex": f"{LATENCY_BUCKET};({kept})",
         "targetLabel": _KEPT, "replacement": "yes"},
        {"action": "drop", "sourceLabels": ["__name__", _KEPT], "regex": f"{LATENCY_BUCKET};"},
        {"action": "labeldrop", "regex": _KEPT},
    ]


def service_monitor(settings: Settings, target: ScrapeTarget) -> dict:
    """A ServiceMonitor, kept in the monitoring namespace, for the service `target` describes.

    `honorLabels`: the Operator sets the target label `endpoint` to the port name, which would
    overwrite the application's own `endpoint` label (the webhook destination) on every series.
    `sampleLimit`/`labelLimit` fail a scrape that explodes in cardinality instead of letting it
    flood the TSDB; the failure shows as the target being down. `podTargetLabels` copies the
    pods' canary/stable label onto their series, which the A/B dashboard compares by. The latency
    histogram keeps the buckets of `metrics.latencyBuckets` only.
    """
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": str(target.name), "namespace": str(settings.namespace), "labels": team_labels(settings)},
        "spec": {
            "selector": {"matchLabels": dict(sorted(target.selector.items()))},
            "namespaceSelector": {"matchNames": [str(target.namespace)]},
            "endpoints": [
                {
                    "port": target.port,
                    "path": target.path,
                    "interval": target.interval.text,
                    "scrapeTimeout": target.scrape_timeout.text,
                    "honorLabels": True,
                    "relabelings": [{"action": "replace", "targetLabel": MONITOR_LABEL, "replacement": str(target.name)}],
                    "metricRelabelings": latency_bucket_filter(settings),
                }
            ],
            "podTargetLabels": [settings.metrics.track_label],
            "sampleLimit": target.sample_limit,
            "labelLimit": target.label_limit,
        },
    }


def self_monitor(settings: Settings, server: web_auth.ProtectedServer) -> dict:
    """The ServiceMonitor of Prometheus' or Alertmanager's own metrics, through the authenticating
    proxy with Prometheus' credentials (the chart's cannot authenticate, and is off).

    It selects the chart's Service of the server and its `http-web` port, as the chart's would (by its
    `app` label, which the chart names after itself, and its release): the series keep
    job="<fullname>-<server>" and endpoint="http-web", which the pipeline alerts read.
    """
    release = kube_prometheus_stack_fullname(settings)
    service = f"{release}-{server.name}"
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": service, "namespace": str(settings.namespace), "labels": team_labels(settings)},
        "spec": {
            "selector": {"matchLabels": {"app": f"{KUBE_PROMETHEUS_STACK_CHART}-{server.name}", "release": release}},
            "namespaceSelector": {"matchNames": [str(settings.namespace)]},
            "endpoints": [{
                "port": "http-web",
                "path": "/metrics",
                "interval": settings.prometheus.scrape_interval.text,
                "basicAuth": web_auth.basic_auth_refs(server, "prometheus"),
            }],
        },
    }


# Modules offered by the blackbox exporter; config/settings.py ProbeTarget.module names them.
def _http(**extra: str) -> dict:
    return {"valid_http_versions": ["HTTP/1.1", "HTTP/2.0"], "follow_redirects": True, "preferred_ip_protocol": "ip4", **extra}


BLACKBOX_MODULES = {
    "http_2xx": {"prober": "http", "timeout": "5s", "http": _http()},
    "http_post_2xx": {"prober": "http", "timeout": "5s", "http": _http(method="POST")},
    "tcp_connect": {"prober": "tcp", "timeout": "5s", "tcp": {"preferred_ip_protocol": "ip4"}},
}


def blackbox_prober_url(release_name: str, namespace: str) -> str:
    """The blackbox exporter inside the cluster; its fullname is the release name, which contains the chart name."""
    return f"http://{release_name}.{namespace}.svc.cluster.local:{BLACKBOX_PORT}"


def probe(settings: Settings, target: ProbeTarget, prober_url: str) -> dict:
    """A Probe: the blackbox exporter at `prober_url` (http://host:port) checks `target.url`."""
    prober = urlsplit(prober_url)
    return {
        "apiVersion": MONITORING_API,
        "kind": "Probe",
        "metadata": {"name": str(target.name), "namespace": str(settings.namespace), "labels": team_labels(settings)},
        "spec": {
            "jobName": str(target.name),
            "interval": target.interval.text,
            "module": target.module,
            "prober": {"url": prober.netloc, "scheme": prober.scheme, "path": prober.path or "/probe"},
            "targets": {"staticConfig": {"static": [str(target.url)]}},
        },
    }


def federation_scrape_configs(settings: Settings, match: Sequence[str]) -> list[dict]:
    """One scrape job per federation source, pulling only the series `match` selects.

    `match` is the list of `match[]` selectors, the aggregated recorded series
    (`monitoring.rules.federation_match`): federating raw series would copy a whole cluster.
    `honor_labels` keeps the labels the source exported (its own `cluster` external label among
    them); the static `cluster` label names the source when it has no such label.
    """
    if settings.metrics.federation and not match:
        raise ValueError("federation sources are configured but no match[] selectors were given")
    jobs = []
    for source in settings.metrics.federation:
        url = urlsplit(source.url)
        job = {
            "job_name": f"federate-{source.cluster}",
            "metrics_path": url.path.rstrip("/") + "/federate",
            "scheme": url.scheme,
            "honor_labels": True,
            "params": {"match[]": list(match)},
            "static_configs": [{"targets": [url.netloc], "labels": {"cluster": str(source.cluster)}}],
            # The source's replicas each add their own replica label: kept, every federated series
            # would change with the replica the source's Service picked.
            "metric_relabel_configs": [{"action": "labeldrop", "regex": REPLICA_LABEL}],
        }
        if source.credentials_secret:
            # Read from the Secret the Prometheus custom resource mounts (federation_secrets).
            mounted = f"{MOUNTED_SECRETS}/{source.credentials_secret}"
            job["basic_auth"] = {"username_file": f"{mounted}/username", "password_file": f"{mounted}/password"}
        jobs.append(job)
    return jobs


# Where the Prometheus Operator mounts the Secrets listed in the Prometheus spec's `secrets`.
MOUNTED_SECRETS = "/etc/prometheus/secrets"


def federation_secrets(settings: Settings) -> list[str]:
    """The Secrets Prometheus must mount for the federation jobs' credentials."""
    return sorted({str(s.credentials_secret) for s in settings.metrics.federation if s.credentials_secret})
