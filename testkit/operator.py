"""The Prometheus Operator's scrape jobs, emulated once for the live harness and the load benchmark.

What the Operator (v0.93, `pkg/prometheus/promcfg.go`) writes for a ServiceMonitor, for the parts a
test on loopback depends on: one job per endpoint, named `serviceMonitor/<namespace>/<name>/<index>`,
with the endpoint's path, interval, timeout, honorLabels, relabelings and metricRelabelings, and the
monitor's sampleLimit and labelLimit. Kubernetes discovery is the caller's (file or static targets
carrying the labels the Operator's own relabelling gives a target: namespace, service, pod,
container, endpoint); the job label is the Service's name, as the Operator sets it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

# The port name of Prometheus' own Service in kube-prometheus-stack 88.5.3
# (templates/prometheus/service.yaml), which its self-scraping ServiceMonitor names.
PROMETHEUS_PORT_NAME = "http-web"
# The Operator's relabelling: the Service's name is the target's `job`.
JOB_FROM_SERVICE = {"source_labels": ["service"], "target_label": "job"}


def prometheus_file_format(value: Any) -> Any:
    """Prometheus Operator spec fields (camelCase, YAML numbers read as floats) in Prometheus'
    own file format: snake_case keys, whole numbers as ints (queue sizes must be integers)."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), k): prometheus_file_format(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [prometheus_file_format(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def job_name(monitor: dict[str, Any], index: int) -> str:
    return f"serviceMonitor/{monitor['metadata']['namespace']}/{monitor['metadata']['name']}/{index}"


def service_monitor_jobs(monitor: dict[str, Any], discovery: Callable[[int], dict[str, Any]],
                         scrape_interval: str, duration: Callable[[str], str] = str) -> list[dict[str, Any]]:
    """The scrape jobs of a ServiceMonitor: `discovery(index)` gives each endpoint's service discovery
    (`file_sd_configs` or `static_configs`), `scrape_interval` is the global one (for an endpoint
    without its own), and `duration` maps every duration (the live suite scales time)."""
    spec = monitor["spec"]
    jobs = []
    for index, endpoint in enumerate(spec["endpoints"]):
        job = {
            "job_name": job_name(monitor, index),
            "honor_labels": endpoint.get("honorLabels", False),
            "metrics_path": endpoint.get("path", "/metrics"),
            "scrape_interval": duration(endpoint.get("interval", scrape_interval)),
            **({"scrape_timeout": duration(endpoint["scrapeTimeout"])} if "scrapeTimeout" in endpoint else {}),
            **discovery(index),
            "relabel_configs": [JOB_FROM_SERVICE, *prometheus_file_format(endpoint.get("relabelings") or [])],
            "metric_relabel_configs": prometheus_file_format(endpoint.get("metricRelabelings") or []),
        }
        for field, key in (("sampleLimit", "sample_limit"), ("labelLimit", "label_limit")):
            if field in spec:
                job[key] = int(spec[field])
        jobs.append(job)
    return jobs
