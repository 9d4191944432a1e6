"""The metrics pipeline: Prometheus and Mimir values, scrape objects, graphite mapping, the component."""

from __future__ import annotations

import math
import re
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import kubernetes_validate
import prometheus_client
import pulumi
import pytest
import yaml

from config import ConfigError, Settings, load
from tests.support import SECRET_VALUES, minimal_settings, raw_config, run_stack
from config.types import Size
from monitoring import graphite, scrape
from monitoring.helm import blackbox_exporter, deep_merge
from monitoring.pods import kubernetes_quantity
from monitoring.helm.kube_prometheus_stack import fullname, prometheus_values, selection_values, service_urls
from monitoring.helm.mimir import MIMIR_SERVICE_ACCOUNT, mimir_urls, mimir_values
from monitoring.rules import federation_match
from monitoring.versions import BLACKBOX_EXPORTER, KUBE_PROMETHEUS_STACK, KUBERNETES_MINOR, MIMIR, PROMETHEUS_OPERATOR_CRDS
from testkit.live import Process, counter_value, free_port, http_json, wait_until
from tools.go_tools import binary
from tools.mock_runtime import resource_outputs
from testkit.k8s import label_selector_matches

NS = "webhook-monitoring:"
ROLE_ARN = "arn:aws:iam::123456789012:role/webhook-metrics"
BUCKET = "webhook-prod-use1-metrics"
CLIENT_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB (the distributors' certificate)\n-----END CERTIFICATE-----\n"
RECORDED = ("service:webhook_deliveries:rate5m", "service:webhook_delivery_errors:ratio_rate5m")


def kps_values(settings: Settings) -> dict:
    return prometheus_values(settings, "gp3", {})


def spec_of(values: dict) -> dict:
    return values["prometheus"]["prometheusSpec"]


# ------------------------------------------------------------------------------------- helpers


def relabel_file_format(configs: list[dict]) -> list[dict]:
    """Relabel configs of the Operator's spec (camelCase) in Prometheus' file format, for a
    Prometheus started here without the Operator (the live pipeline runs on the Operator's own)."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return [{names.get(key, key): value for key, value in config.items()} for config in configs]


def test_deep_merge_recurses_later_wins_lists_replace_inputs_untouched():
    a = {"x": {"y": 1, "z": [1, 2]}, "keep": True}
    b = {"x": {"y": 2, "z": [3]}, "new": {"n": 1}}
    merged = deep_merge(a, b)
    assert merged == {"x": {"y": 2, "z": [3]}, "keep": True, "new": {"n": 1}}
    assert a == {"x": {"y": 1, "z": [1, 2]}, "keep": True}
    merged["new"]["n"] = 5
    assert b["new"]["n"] == 1


@pytest.mark.parametrize("text,quantity", [("100Gi", "100Gi"), ("50GB", "50G"), ("500KB", "500k"), ("1.5TB", "1.5T")])
def test_kubernetes_quantity(text, quantity):
    assert kubernetes_quantity(Size(text)) == quantity


# ------------------------------------------------------------------------------- hot tier


@pytest.mark.parametrize("environment,replicas", [("dev", 1), ("prod", 2)])
def test_prometheus_hot_tier(environment, replicas):
    settings = minimal_settings(environment)
    values = kps_values(settings)
    spec = spec_of(values)
    assert spec["retention"] == "15d"  # the chart default is 10d
    assert spec["retentionSize"] == "50GB"
    assert spec["replicas"] == replicas
    assert values["prometheus"]["podDisruptionBudget"] == ({"enabled": True, "minAvailable": 1} if replicas > 1 else {"enabled": False})
    assert spec["scrapeInterval"] == "30s" and spec["evaluationInterval"] == "30s"
    assert spec["serviceDiscoveryRole"] == "EndpointSlice"
    assert spec["externalLabels"] == {"cluster": "webhook-test-use1", "environment": environment}
    assert spec["resources"] == {
        "requests": {"cpu": "160m", "memory": "1989Mi"} if environment == "prod" else {"cpu": "60m", "memory": "730Mi"},
        "limits": {"cpu": "1000m", "memory": "4000Mi"},
    }
    assert spec["storageSpec"] == {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": "gp3",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "100Gi"}},
            }
        }
    }


def test_binary_retention_size_gets_prometheus_spelling():
    settings = minimal_settings(prometheus={"retentionSize": "40Gi"})
    assert spec_of(kps_values(settings))["retentionSize"] == "40GiB"


def test_no_cpu_limit_when_unset():
    settings = minimal_settings(prometheus={"resources": {"cpuRequest": "500m", "memoryRequest": "1Gi", "cpuLimit": None, "memoryLimit": "2Gi"}})
    assert spec_of(kps_values(settings))["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"},
    }


def test_chart_watchdog_off_and_no_crds_of_its_own():
    values = kps_values(minimal_settings())
    # Only the chart's Watchdog goes (ours is the one); TargetDown and InfoInhibitor stay.
    assert values["defaultRules"]["disabled"] == {"Watchdog": True}
    # The chart's Prometheus and Alertmanager alerts are the team's; the guards have our runbooks.
    assert values["defaultRules"]["additionalRuleGroupLabels"] == {
        "prometheus": {"team": "webhook-delivery"}, "alertmanager": {"team": "webhook-delivery"}}
    assert values["defaultRules"]["additionalRuleAnnotations"]["PrometheusRuleFailures"] == {
        "runbook_url": "https://git.example.com/sre/webhook-monitoring/blob/main/docs/runbooks/PrometheusRuleFailures.md"}
    # The CRDs are the prometheus-operator-crds release's: no CRDs, no upgrade job, no image pulled for it.
    assert values["crds"] == {"enabled": False}
    assert "grafana" not in values and "alertmanager" not in values


def test_service_urls_follow_fullname_override():
    settings = minimal_settings(tenancy={"naming": "derived"})
    values = kps_values(settings)
    assert values["fullnameOverride"] == fullname(settings) == "webhook-delivery-dev"
    assert service_urls(settings) == (
        "http://webhook-delivery-dev-prometheus.webhook-delivery-dev-monitoring.svc.cluster.local:9090",
        "http://webhook-delivery-dev-alertmanager.webhook-delivery-dev-monitoring.svc.cluster.local:9093",
    )
    legacy = minimal_settings()
    assert service_urls(legacy)[0] == "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"


# ------------------------------------------------------------------------------- selection


def test_label_selector_matcher():
    assert label_selector_matches({}, {"a": "1"})
    assert not label_selector_matches({"matchLabels": {"a": "1"}}, {"a": "2"})
    assert label_selector_matches({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"})
    assert not label_selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {})


RELEASE = KUBE_PROMETHEUS_STACK.name


def chart_monitor_labels(values: dict) -> dict[str, dict[str, str]]:
    """Labels kube-prometheus-stack 88.5.3 puts on its own ServiceMonitors, given our values.

    Source (read from prometheus-community/helm-charts at tag kube-prometheus-stack-88.5.3 and its
    pinned subcharts): `templates/_helpers.tpl` "kube-prometheus-stack.labels" (managed-by,
    instance, version, part-of, chart, release, heritage, then `.Values.commonLabels`), used by
    `templates/exporters/{kubelet,kube-api-server,core-dns}/servicemonitor.yaml`,
    `templates/prometheus-operator/servicemonitor.yaml` and `templates/prometheus/servicemonitor.yaml`
    after an `app: kube-prometheus-stack-<component>` label; kube-state-metrics 8.4.0
    "kube-state-metrics.labels" (+ `release` as kube-prometheus-stack sets `releaseLabel: true`)
    then `prometheus.monitor.additionalLabels`; prometheus-node-exporter 4.56.1 the same.
    The kubelet ServiceMonitor is also the cAdvisor one (its `/metrics/cadvisor` endpoint).
    """
    parent = {
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/version": KUBE_PROMETHEUS_STACK.version,
        "app.kubernetes.io/part-of": "kube-prometheus-stack",
        "chart": f"kube-prometheus-stack-{KUBE_PROMETHEUS_STACK.version}",
        "release": RELEASE,
        "heritage": "Helm",
        **values.get("commonLabels", {}),
    }
    monitors = {
        component: {"app": f"kube-prometheus-stack-{component}", **parent}
        for component in ("kubelet", "apiserver", "coredns", "operator", "prometheus")
    }
    for subchart in ("kube-state-metrics", "prometheus-node-exporter"):
        monitors[subchart] = {
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/component": "metrics",
            "app.kubernetes.io/part-of": subchart,
            "app.kubernetes.io/name": subchart,
            "app.kubernetes.io/instance": RELEASE,
            "release": RELEASE,
            **values.get(subchart, {}).get("prometheus", {}).get("monitor", {}).get("additionalLabels", {}),
        }
    return monitors


def chart_rule_labels(values: dict) -> dict[str, str]:
    """Labels of the chart's PrometheusRules (templates/prometheus/rules-1.14/*.yaml): app + the chart labels."""
    return {**chart_monitor_labels(values)["kubelet"], "app": "kube-prometheus-stack"}


def test_selectors_pick_team_monitors_of_the_stacks_namespaces_and_the_charts_own():
    settings = minimal_settings()
    values = kps_values(settings)
    spec = spec_of(values)
    team_monitor = scrape.service_monitor(settings, settings.metrics.services[0])
    # Selected: the team's ServiceMonitor, in the stack's namespaces (not another stack's of the team).
    assert label_selector_matches(spec["serviceMonitorSelector"], team_monitor["metadata"]["labels"])
    for namespace_selector in ("serviceMonitorNamespaceSelector", "podMonitorNamespaceSelector",
                               "probeNamespaceSelector", "ruleNamespaceSelector"):
        for namespace in ("monitoring", "monitoring-agents"):
            assert label_selector_matches(spec[namespace_selector], {"kubernetes.io/metadata.name": namespace})
        assert not label_selector_matches(spec[namespace_selector], {"kubernetes.io/metadata.name": "staging-monitoring"})
    # ... and every ServiceMonitor the chart ships (the infrastructure metrics).
    for name, labels in chart_monitor_labels(values).items():
        assert label_selector_matches(spec["serviceMonitorSelector"], labels), name
    # Not selected: another team's monitor.
    assert not label_selector_matches(spec["serviceMonitorSelector"], {"team": "payments", "release": RELEASE})


def test_without_the_chart_labels_the_team_selector_would_lose_the_charts_monitors():
    """A selector of the team label alone: kubelet, node-exporter and kube-state-metrics drop out."""
    values = kps_values(minimal_settings())
    labelling = {"commonLabels", "kube-state-metrics", "prometheus-node-exporter"}
    assert set(selection_values(minimal_settings())) - {"prometheus"} == {"commonLabels"}
    assert all(values[sub]["prometheus"]["monitor"]["additionalLabels"] == {"team": "webhook-delivery"}
               for sub in labelling - {"commonLabels"})
    bare = {k: v for k, v in values.items() if k not in labelling}
    selector = spec_of(values)["serviceMonitorSelector"]
    assert not any(label_selector_matches(selector, labels) for labels in chart_monitor_labels(bare).values())


def test_rule_selector_picks_team_rules_and_the_charts_rules():
    from components.metrics import prometheus_rule

    settings = minimal_settings()
    values = kps_values(settings)
    ours = prometheus_rule(settings, {"name": "webhook.recording", "rules": []})["metadata"]["labels"]
    assert ours == {"team": "webhook-delivery", "role": "alert-rules", "app": "webhook-delivery"}
    assert label_selector_matches(spec_of(values)["ruleSelector"], ours)
    assert label_selector_matches(spec_of(values)["ruleSelector"], chart_rule_labels(values))
    assert not label_selector_matches(spec_of(values)["ruleSelector"], {"role": "alert-rules", "app": "webhook-delivery"})


def test_probe_and_pod_monitor_selectors_use_the_team_label():
    settings = minimal_settings(metrics={"probes": [{"name": "api-health", "url": "https://webhooks.example.com/healthz"}]})
    spec = spec_of(kps_values(settings))
    probe = scrape.probe(settings, settings.metrics.probes[0], "http://bb.monitoring.svc.cluster.local:9115")
    assert label_selector_matches(spec["probeSelector"], probe["metadata"]["labels"])
    assert spec["podMonitorSelector"] == {"matchLabels": {"team": "webhook-delivery"}}


# ---------------------------------------------------------------------------- remote write


def relabel_keeps(configs: list[dict], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus relabelling (drop/keep/labeldrop) of one series; None when dropped. Regexes are anchored."""
    labels = dict(labels)
    for c in configs:
        regex = re.compile(f"^(?:{c['regex']})$")
        value = ";".join(labels.get(name, "") for name in c.get("sourceLabels", []))
        if c["action"] == "drop" and regex.match(value):
            return None
        if c["action"] == "keep" and not regex.match(value):
            return None
        if c["action"] == "labeldrop":
            labels = {k: v for k, v in labels.items() if not regex.match(k)}
    return labels


def test_remote_write_goes_to_mimir_with_configured_queue():
    settings = minimal_settings(prometheus={"remoteWriteQueue": {"maxShards": 20, "capacity": 5000}})
    (rw,) = spec_of(kps_values(settings))["remoteWrite"]
    push_url, _ = mimir_urls(MIMIR.name, "monitoring")
    assert rw["url"] == push_url == "http://mimir-distributed-gateway.monitoring.svc.cluster.local:80/api/v1/push"
    assert rw["queueConfig"] == {
        "capacity": 5000, "minShards": 1, "maxShards": 20, "maxSamplesPerSend": 2000, "batchSendDeadline": "5s",
    }


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_write_relabelling_drops_noise_and_keeps_the_replica_label_for_mimir_to_deduplicate(environment):
    settings = minimal_settings(environment)
    spec = spec_of(kps_values(settings))
    (rw,) = spec["remoteWrite"]
    assert spec["replicaExternalLabelName"] == "__replica__"
    configs = rw["writeRelabelConfigs"]
    assert configs[0]["sourceLabels"] == ["__name__"] and configs[0]["action"] == "drop"
    replica = {"__replica__": "prometheus-kube-prometheus-stack-prometheus-1", "cluster": "c"}
    # The per-endpoint latency buckets and per-endpoint-and-outcome rates stay in the hot tier only.
    for dropped in ("workqueue_adds_total", "apiserver_request_duration_seconds_bucket", "go_gc_duration_seconds",
                    "prometheus_tsdb_head_series", "scrape_duration_seconds", "webhook_delivery_duration_seconds_bucket",
                    "service_endpoint_status:webhook_deliveries:rate5m"):
        assert relabel_keeps(configs, {"__name__": dropped, **replica}) is None, dropped
    # Prod's two replicas both write, labelled for Mimir's HA tracker; dev's one writes without it.
    written = replica if environment == "prod" else {"cluster": "c"}
    for kept in ("webhook_deliveries_total", "webhook_delivery_duration_seconds_count", "container_cpu_usage_seconds_total",
                 "apiserver_request_total", *(r for r in RECORDED if not r.startswith("service_endpoint_status:"))):
        assert relabel_keeps(configs, {"__name__": kept, **replica}) == {"__name__": kept, **written}, kept


@pytest.mark.parametrize("environment, tracked", [("dev", False), ("prod", True)])
def test_mimir_keeps_one_replicas_samples_through_its_ha_tracker(environment, tracked):
    settings = minimal_settings(environment)
    values = mimir_values(settings, bucket_name=BUCKET, region="us-east-1", role_arn=ROLE_ARN, storage_class="gp3",
                          ha_tracker_client_certificate=CLIENT_CERTIFICATE if tracked else None)
    config = values["mimir"]["structuredConfig"]
    if not tracked:
        assert "distributor" not in config and "accept_ha_samples" not in config["limits"]
        assert "extraVolumes" not in values["distributor"]
        return
    host = "mimir-ha-tracker-etcd.monitoring.svc.cluster.local"
    assert config["distributor"]["ha_tracker"] == {
        "enable_ha_tracker": True,
        # Over TLS, with the distributors' client certificate (etcd refuses a client without one).
        "kvstore": {"store": "etcd", "etcd": {
            "endpoints": [f"{host}:2379"], "tls_enabled": True, "tls_server_name": host,
            "tls_cert_path": "/etc/mimir/ha-tracker-etcd/tls.crt", "tls_key_path": "/etc/mimir/ha-tracker-etcd/tls.key",
            "tls_ca_path": "/etc/mimir/ha-tracker-etcd/ca.crt"}},
    }
    distributor = values["distributor"]
    assert distributor["extraVolumes"] == [{"name": "ha-tracker-etcd-tls",
                                            "secret": {"secretName": "mimir-ha-tracker-etcd-client-tls"}}]
    assert distributor["extraVolumeMounts"] == [{"name": "ha-tracker-etcd-tls", "mountPath": "/etc/mimir/ha-tracker-etcd",
                                                 "readOnly": True}]
    # A renewed certificate rolls the distributors, which read it at start; the annotation is a digest, not the PEM.
    renewed = mimir_values(settings, bucket_name=BUCKET, region="us-east-1", role_arn=ROLE_ARN, storage_class="gp3",
                           ha_tracker_client_certificate=CLIENT_CERTIFICATE.replace("MIIB", "MIIC"))
    annotation = "checksum/mimir-ha-tracker-etcd-client-tls"
    assert distributor["podAnnotations"][annotation] != renewed["distributor"]["podAnnotations"][annotation]
    assert "BEGIN CERTIFICATE" not in str(values)
    assert {k: config["limits"][k] for k in ("accept_ha_samples", "ha_cluster_label", "ha_replica_label")} == {
        "accept_ha_samples": True, "ha_cluster_label": "cluster", "ha_replica_label": "__replica__"}
    # The cluster label Mimir elects a replica per is the one every replica writes.
    assert "cluster" in spec_of(kps_values(settings))["externalLabels"]


# ------------------------------------------------------------------------------------- Mimir


def all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


@pytest.mark.parametrize("environment,ingesters,zone_aware", [("dev", 1, False), ("prod", 3, True)])
def test_mimir_values(environment, ingesters, zone_aware):
    settings = minimal_settings(environment)
    values = mimir_values(settings, bucket_name=BUCKET, region="us-east-1", role_arn=ROLE_ARN, storage_class="gp3",
                          ha_tracker_client_certificate=CLIENT_CERTIFICATE)
    config = values["mimir"]["structuredConfig"]
    assert config["blocks_storage"] == {
        "backend": "s3",
        "s3": {"bucket_name": BUCKET, "endpoint": "s3.us-east-1.amazonaws.com", "region": "us-east-1"},
    }
    assert config["limits"]["compactor_blocks_retention_period"] == "2160h"  # 90 days
    assert values["ingester"]["replicas"] == ingesters
    assert config["ingester"]["ring"]["replication_factor"] == ingesters
    # Each replication zone pinned to one of the cluster's availability zones (default <region>a..c).
    assert values["ingester"]["zoneAwareReplication"] == ({"enabled": True, "zones": [
        {"name": f"zone-{z}", "nodeSelector": {"topology.kubernetes.io/zone": f"us-east-1{z}"}} for z in "abc"]}
        if zone_aware else {"enabled": False})
    assert values["store_gateway"]["zoneAwareReplication"] == values["ingester"]["zoneAwareReplication"]
    assert values["rollout_operator"] == {"enabled": zone_aware}
    assert values["minio"] == {"enabled": False}
    assert not {k for k in all_keys(values) if "kafka" in k.lower() or "ingest_storage" in k}
    assert values["serviceAccount"] == {
        "create": True, "name": MIMIR_SERVICE_ACCOUNT, "annotations": {"eks.amazonaws.com/role-arn": ROLE_ARN},
    }
    for component in ("ingester", "store_gateway", "compactor"):
        assert values[component]["persistentVolume"]["storageClass"] == "gp3"
    assert values["ingester"]["persistentVolume"]["size"] == ("50Gi" if environment == "prod" else "20Gi")
    assert values["gateway"]["enabledNonEnterprise"] is True and values["nginx"] == {"enabled": False}
    monitor = values["metaMonitoring"]["serviceMonitor"]
    assert monitor["enabled"] is True and monitor["clusterLabel"] == "webhook-test-use1"
    assert label_selector_matches(spec_of(kps_values(settings))["serviceMonitorSelector"], monitor["labels"])


def test_mimir_retention_follows_settings():
    settings = minimal_settings(longTermStorage={"retention": "30d", "bucketExpiration": "35d"})
    values = mimir_values(settings, bucket_name=BUCKET, region="eu-west-1", role_arn=ROLE_ARN, storage_class="gp3")
    assert values["mimir"]["structuredConfig"]["limits"]["compactor_blocks_retention_period"] == "720h"


def test_mimir_urls_follow_the_charts_fullname_rule():
    assert mimir_urls("mimir-distributed", "monitoring") == (
        "http://mimir-distributed-gateway.monitoring.svc.cluster.local:80/api/v1/push",
        "http://mimir-distributed-gateway.monitoring.svc.cluster.local:80/prometheus",
    )
    assert mimir_urls("lts", "obs")[0] == "http://lts-mimir-gateway.obs.svc.cluster.local:80/api/v1/push"


# ---------------------------------------------------------------------------- what is scraped


def test_service_monitor_guards_and_endpoint_label():
    settings = minimal_settings(metrics={"services": [{
        "name": "webhook-api", "namespace": "webhooks", "selector": {"app": "api", "tier": "web"},
        "port": "http-metrics", "path": "/internal/metrics", "interval": "15s", "scrapeTimeout": "5s",
        "sampleLimit": 20000, "labelLimit": 20,
    }]})
    monitor = scrape.service_monitor(settings, settings.metrics.services[0])
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"] == {"name": "webhook-api", "namespace": "monitoring", "labels": {"team": "webhook-delivery"}}
    assert monitor["spec"] == {
        "selector": {"matchLabels": {"app": "api", "tier": "web"}},
        "namespaceSelector": {"matchNames": ["webhooks"]},
        "endpoints": [{"port": "http-metrics", "path": "/internal/metrics", "interval": "15s",
                       "scrapeTimeout": "5s", "honorLabels": True,
                       # What the absence alerts select the service's targets by.
                       "relabelings": [{"action": "replace", "targetLabel": "monitor", "replacement": "webhook-api"}],
                       # The latency buckets kept (on a real scrape: below).
                       "metricRelabelings": scrape.latency_bucket_filter(settings)}],
        "podTargetLabels": ["track"],
        "sampleLimit": 20000,
        "labelLimit": 20,
    }
    # The A/B dashboard's label follows the setting.
    relabelled = minimal_settings(metrics={"trackLabel": "rollout"})
    assert scrape.service_monitor(relabelled, relabelled.metrics.services[0])["spec"]["podTargetLabels"] == ["rollout"]


def test_scrape_timeout_longer_than_interval_is_refused():
    with pytest.raises(ConfigError, match="scrapeTimeout"):
        minimal_settings(metrics={"services": [{"name": "a", "namespace": "b", "selector": {"app": "a"},
                                            "interval": "10s", "scrapeTimeout": "30s"}]})


def test_probe_uses_the_blackbox_exporter():
    settings = minimal_settings(metrics={"probes": [{"name": "api-health", "url": "https://webhooks.example.com/healthz",
                                                 "module": "http_post_2xx", "interval": "1m"}]})
    prober = scrape.blackbox_prober_url(BLACKBOX_EXPORTER.name, "monitoring")
    probe = scrape.probe(settings, settings.metrics.probes[0], prober)
    assert probe["kind"] == "Probe" and probe["metadata"]["labels"] == {"team": "webhook-delivery"}
    assert probe["spec"] == {
        "jobName": "api-health",
        "interval": "1m",
        "module": "http_post_2xx",
        "prober": {"url": "prometheus-blackbox-exporter.monitoring.svc.cluster.local:9115", "scheme": "http",
                   "path": "/probe"},
        "targets": {"staticConfig": {"static": ["https://webhooks.example.com/healthz"]}},
    }
    assert probe["spec"]["module"] in blackbox_exporter.values(settings)["config"]["modules"]


def test_blackbox_modules_pass_the_exporters_own_check(tmp_path: Path):
    modules = blackbox_exporter.values(minimal_settings())["config"]
    assert sorted(modules["modules"]) == ["http_2xx", "http_post_2xx", "tcp_connect"]
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(yaml.safe_dump(modules))
    bad.write_text(yaml.safe_dump({"modules": {"broken": {"prober": "http", "http": {"no_such_option": 1}}}}))
    check = [binary("blackbox_exporter"), "--config.check"]
    assert subprocess.run([*check, f"--config.file={good}"], capture_output=True).returncode == 0
    assert subprocess.run([*check, f"--config.file={bad}"], capture_output=True).returncode != 0


# ------------------------------------------------------------------------------- federation

FEDERATION = [{"cluster": "webhook-prod-euw1", "url": "https://prometheus.euw1.example.com/prom"},
              {"cluster": "webhook-prod-apse1", "url": "http://prometheus.apse1.internal:9090"}]


def test_no_federation_without_sources():
    assert scrape.federation_scrape_configs(minimal_settings(), []) == []
    assert spec_of(kps_values(minimal_settings()))["additionalScrapeConfigs"] == []


def test_federation_jobs_pull_only_recorded_series():
    settings = minimal_settings("prod", metrics={"federation": FEDERATION})
    jobs = scrape.federation_scrape_configs(settings, list(RECORDED))
    assert jobs == [
        {"job_name": "federate-webhook-prod-euw1", "metrics_path": "/prom/federate", "scheme": "https",
         "honor_labels": True, "params": {"match[]": list(RECORDED)},
         "static_configs": [{"targets": ["prometheus.euw1.example.com"], "labels": {"cluster": "webhook-prod-euw1"}}],
         "metric_relabel_configs": [{"action": "labeldrop", "regex": "__replica__"}]},
        {"job_name": "federate-webhook-prod-apse1", "metrics_path": "/federate", "scheme": "http",
         "honor_labels": True, "params": {"match[]": list(RECORDED)},
         "static_configs": [{"targets": ["prometheus.apse1.internal:9090"], "labels": {"cluster": "webhook-prod-apse1"}}],
         "metric_relabel_configs": [{"action": "labeldrop", "regex": "__replica__"}]},
    ]
    # The release federates what the recording rules mark as federated.
    assert spec_of(kps_values(settings))["additionalScrapeConfigs"] == scrape.federation_scrape_configs(
        settings, federation_match(settings))


def test_federation_sends_credentials_from_a_mounted_secret():
    sources = [{**FEDERATION[0], "credentialsSecret": "federation-euw1"}, FEDERATION[1]]
    settings = minimal_settings("prod", metrics={"federation": sources})
    with_auth, without_auth = scrape.federation_scrape_configs(settings, list(RECORDED))
    assert with_auth["basic_auth"] == {
        "username_file": "/etc/prometheus/secrets/federation-euw1/username",
        "password_file": "/etc/prometheus/secrets/federation-euw1/password",
    }
    assert "basic_auth" not in without_auth
    # The operator mounts exactly the Secrets the jobs read; without credentials, none.
    assert spec_of(kps_values(settings))["secrets"] == ["federation-euw1"]
    plain = minimal_settings("prod", metrics={"federation": FEDERATION})
    assert spec_of(kps_values(plain))["secrets"] == []


def test_federation_credentials_over_plain_http_are_refused():
    with pytest.raises(ConfigError, match=r"metrics.federation\[0\].url: got 'http://prometheus.apse1.internal:9090'"):
        minimal_settings("prod", metrics={"federation": [{**FEDERATION[1], "credentialsSecret": "apse1"}]})


def test_federation_without_match_selectors_is_refused():
    settings = minimal_settings("prod", metrics={"federation": FEDERATION})
    with pytest.raises(ValueError, match="match"):
        scrape.federation_scrape_configs(settings, [])


def test_federation_and_remote_write_pass_promtool(tmp_path: Path):
    settings = minimal_settings("prod", metrics={"federation": FEDERATION})
    spec = spec_of(kps_values(settings))
    (rw,) = spec["remoteWrite"]
    config = {
        "global": {"external_labels": spec["externalLabels"]},
        "scrape_configs": spec["additionalScrapeConfigs"],
        "remote_write": [{"url": rw["url"], "write_relabel_configs": relabel_file_format(rw["writeRelabelConfigs"]),
                          "queue_config": {"capacity": rw["queueConfig"]["capacity"],
                                           "max_shards": rw["queueConfig"]["maxShards"]}}],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([binary("promtool"), "check", "config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    config["remote_write"][0]["write_relabel_configs"][0]["regex"] = "(unclosed"
    path.write_text(yaml.safe_dump(config))
    assert subprocess.run([binary("promtool"), "check", "config", str(path)], capture_output=True).returncode != 0


# ------------------------------------------------------------------------------ graphite


def map_graphite_line(mapping: dict, line: str) -> tuple[str, dict[str, str]] | None:
    """What graphite_exporter (strict match) makes of a plaintext line: first matching regex mapping wins."""
    path = line.split()[0]
    for m in mapping["mappings"]:
        assert m["match_type"] == "regex"
        found = re.match(m["match"], path)
        if found:
            return m["name"], {k: re.sub(r"\$(\d+)", lambda g: found.group(int(g.group(1))), v)
                               for k, v in m["labels"].items()}
    return None


MAPPING = graphite.graphite_mapping(minimal_settings())


@pytest.mark.parametrize("line,metric,labels", [
    ("webhook.pod-a.delivery.api_example_com.error 7 1700000000", "webhook_deliveries_total",
     {"replica": "pod-a", "endpoint": "api_example_com", "status": "error"}),
    ("webhook.pod-b.delivery.hooks_acme_io.success 1200 1700000000", "webhook_deliveries_total",
     {"replica": "pod-b", "endpoint": "hooks_acme_io", "status": "success"}),
    ("webhook.pod-a.delivery_duration.api_example_com.sum 12.5 1700000000", "webhook_delivery_duration_seconds_sum",
     {"replica": "pod-a", "endpoint": "api_example_com"}),
    ("webhook.pod-a.delivery_duration.api_example_com.count 40 1700000000", "webhook_delivery_duration_seconds_count",
     {"replica": "pod-a", "endpoint": "api_example_com"}),
    ("webhook.pod-a.queue_depth 321 1700000000", "webhook_queue_depth", {"replica": "pod-a"}),
    ("webhook.pod-a.retries.3 9 1700000000", "webhook_retries_total", {"replica": "pod-a", "attempt_number": "3"}),
])
def test_graphite_lines_map_to_task_metrics(line, metric, labels):
    assert map_graphite_line(MAPPING, line) == (metric, labels)


@pytest.mark.parametrize("bound", [*graphite.DEF_BUCKETS, math.inf])
def test_histogram_buckets_round_trip_through_graphite_paths(bound):
    line = f"webhook.pod-a.delivery_duration.api_example_com.bucket.{graphite.bucket_segment(bound)} 3 1700000000"
    metric, labels = map_graphite_line(MAPPING, line)
    assert metric == "webhook_delivery_duration_seconds_bucket"
    assert float(labels["le"]) == bound
    assert labels == {"replica": "pod-a", "endpoint": "api_example_com", "le": labels["le"]}


@pytest.mark.parametrize("line", [
    "webhook.pod-a.delivery.api_example_com 7 1700000000",          # status missing
    "webhook.pod-a.delivery.api.example.com.error 7 1700000000",     # endpoint with dots is ambiguous
    "webhook.pod-a.delivery_duration.api_example_com.bucket.le_x 1 1700000000",
    "webhook.queue_depth 5 1700000000",                              # replica missing
    "other.service.requests 5 1700000000",
])
def test_unexpected_graphite_paths_map_to_nothing(line):
    assert map_graphite_line(MAPPING, line) is None


def test_exporter_drops_unmapped_paths_and_reads_the_mapping_it_is_given():
    settings = minimal_settings(metrics={"graphiteExporter": {"enabled": True, "replicas": 2}})
    deployment = graphite.deployment(settings)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--graphite.mapping-strict-match" in container["args"]
    assert f"--graphite.mapping-config={graphite.CONFIG_DIR}/{graphite.MAPPING_FILE}" in container["args"]
    assert container["image"].startswith("quay.io/prometheus/graphite-exporter:v")
    assert deployment["spec"]["replicas"] == 2
    assert yaml.safe_load(graphite.config_map(settings)["data"][graphite.MAPPING_FILE]) == graphite.graphite_mapping(settings)
    security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_graphite_service_exposes_tcp_udp_and_metrics():
    ports = graphite.service(minimal_settings())["spec"]["ports"]
    assert {(p["port"], p["protocol"]) for p in ports} == {(9109, "TCP"), (9109, "UDP"), (9108, "TCP")}
    monitor = graphite.graphite_service_monitor(minimal_settings())
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # The relayed series are the webhook service's (its rules, alerts and dashboards), not the exporter's.
    relayed = minimal_settings(metrics={"graphiteExporter": {"enabled": True, "namespace": "webhooks", "service": "webhook-worker"}})
    assert graphite.graphite_service_monitor(relayed)["spec"]["endpoints"][0]["relabelings"] == [
        {"action": "replace", "targetLabel": "namespace", "replacement": "webhooks"},
        {"action": "replace", "targetLabel": "service", "replacement": "webhook-worker"},
    ]
    assert monitor["spec"]["selector"]["matchLabels"] == graphite.deployment(minimal_settings())["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("build", [graphite.deployment, graphite.service, graphite.config_map])
def test_graphite_objects_are_valid_kubernetes(build):
    kubernetes_validate.validate(build(minimal_settings()), KUBERNETES_MINOR, strict=True)


def test_kubernetes_validation_catches_a_broken_object():
    broken = graphite.deployment(minimal_settings())
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9109"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_MINOR, strict=True)
    unknown_field = graphite.service(minimal_settings())
    unknown_field["spec"]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown_field, KUBERNETES_MINOR, strict=True)


# ------------------------------------------------------------------------- the component


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[tuple[str, str, dict]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append((args.typ, args.name, args.inputs))
        return f"{args.name}-id", resource_outputs(args.typ, args.name, args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, typ: str) -> list[tuple[str, dict]]:
        return [(name, inputs) for t, name, inputs in self.resources if t == typ]


RULE_GROUPS = ({"name": "webhook.recording", "rules": [{"record": RECORDED[0], "expr": "sum(rate(x[5m]))"}]},
               {"name": "webhook_alerts", "rules": [{"alert": "Watchdog", "expr": "vector(1)"}]})


def run_component(settings: Settings, **extra: Any) -> RecordingMocks:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="webhook-monitoring", stack="test", preview=False)
    from components.metrics import MetricsStack, MetricsStackArgs

    @pulumi.runtime.test
    def build():
        stack = MetricsStack("metrics", MetricsStackArgs(
            settings=settings,
            storage_class=pulumi.Output.from_input("gp3"),
            attributes_classes=pulumi.Output.from_input({}),
            metrics_bucket_name=pulumi.Output.from_input(BUCKET),
            region="us-east-1",
            role_arn=pulumi.Output.from_input(ROLE_ARN),
            alertmanager_config_secret=pulumi.Output.from_input("alerting-config-1a2b"),
            grafana_admin_secret=pulumi.Output.from_input("grafana-admin-3c4d"),
            grafana_oauth_secret=None,
            grafana_sidecar_role=pulumi.Output.from_input("grafana-sidecar-5e6f"),
            rule_groups=RULE_GROUPS,
            **extra,
        ))
        return pulumi.Output.all(stack.prometheus_url, stack.mimir_push_url, stack.alertmanager_url)

    build()
    assert mocks.resources, "the component registered nothing"
    return mocks


RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"


def test_component_registers_pinned_releases_with_values_from_inputs():
    mocks = run_component(minimal_settings("prod"))
    releases = {inputs["chart"]: inputs for _, inputs in mocks.of_type(RELEASE_TYPE)}
    assert set(releases) == {PROMETHEUS_OPERATOR_CRDS.name, KUBE_PROMETHEUS_STACK.name, MIMIR.name}
    for chart in (PROMETHEUS_OPERATOR_CRDS, KUBE_PROMETHEUS_STACK, MIMIR):
        assert releases[chart.name]["version"] == chart.version
        assert releases[chart.name]["repositoryOpts"]["repo"] == chart.repo
        assert releases[chart.name]["name"] == chart.name
    mimir = releases[MIMIR.name]["values"]
    assert mimir["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE_ARN
    assert mimir["mimir"]["structuredConfig"]["blocks_storage"]["s3"]["bucket_name"] == BUCKET
    kps = releases[KUBE_PROMETHEUS_STACK.name]["values"]
    # The pods reference the objects other components create, by the names those components output.
    assert kps["alertmanager"]["alertmanagerSpec"]["configSecret"] == "alerting-config-1a2b"
    assert kps["grafana"]["admin"]["existingSecret"] == "grafana-admin-3c4d"
    assert kps["grafana"]["rbac"]["useExistingRole"] == "grafana-sidecar-5e6f"
    assert kps["prometheus"]["prometheusSpec"]["remoteWrite"][0]["url"] == mimir_urls(MIMIR.name, "monitoring")[0]
    assert kps["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "gp3"


def test_component_creates_one_prometheus_rule_per_group_and_a_monitor_per_service():
    mocks = run_component(minimal_settings())
    rules = mocks.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    # Registration order is the runtime's, not the program's: compared by name.
    assert sorted(inputs["metadata"]["name"] for _, inputs in rules) == ["webhook-alerts", "webhook-recording"]
    assert sorted((inputs["spec"]["groups"] for _, inputs in rules), key=lambda g: g[0]["name"]) == sorted(
        ([g] for g in RULE_GROUPS), key=lambda g: g[0]["name"])
    assert all(inputs["metadata"]["labels"] == {"team": "webhook-delivery", "role": "alert-rules", "app": "webhook-delivery"}
               for _, inputs in rules)
    monitors = mocks.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    # The team's service, and Prometheus and Alertmanager themselves, through their authenticating proxies.
    assert sorted(inputs["metadata"]["name"] for _, inputs in monitors) == [
        "kube-prometheus-stack-alertmanager", "kube-prometheus-stack-prometheus", "webhook-delivery"]
    # Off by default: no blackbox exporter, no probes, no graphite exporter.
    assert not mocks.of_type("kubernetes:monitoring.coreos.com/v1:Probe")
    assert not mocks.of_type("kubernetes:apps/v1:Deployment")
    assert len(mocks.of_type(RELEASE_TYPE)) == 3


def test_component_adds_blackbox_probes_and_graphite_exporter_when_configured():
    settings = minimal_settings(metrics={
        "probes": [{"name": "api-health", "url": "https://webhooks.example.com/healthz"}],
        "graphiteExporter": {"enabled": True},
    })
    mocks = run_component(settings)
    charts = sorted(inputs["chart"] for _, inputs in mocks.of_type(RELEASE_TYPE))
    assert charts == sorted([PROMETHEUS_OPERATOR_CRDS.name, KUBE_PROMETHEUS_STACK.name, MIMIR.name, BLACKBOX_EXPORTER.name])
    (probe,) = mocks.of_type("kubernetes:monitoring.coreos.com/v1:Probe")
    assert probe[1]["spec"]["prober"]["url"] == "prometheus-blackbox-exporter.monitoring.svc.cluster.local:9115"
    assert [i["metadata"]["name"] for _, i in mocks.of_type("kubernetes:apps/v1:Deployment")] == ["graphite-exporter"]
    assert [i["metadata"]["name"] for _, i in mocks.of_type("kubernetes:core/v1:Service")] == ["graphite-exporter"]
    assert [i["metadata"]["name"] for _, i in mocks.of_type("kubernetes:core/v1:ConfigMap")] == ["graphite-exporter"]
    monitors = sorted(i["metadata"]["name"] for _, i in mocks.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor"))
    assert monitors == ["graphite-exporter", "kube-prometheus-stack-alertmanager", "kube-prometheus-stack-prometheus",
                        "webhook-delivery"]


def test_recorded_series_reach_the_long_term_store_and_each_group_gets_a_valid_object_name():
    from components.metrics import kubernetes_name
    from monitoring.rules import rule_groups

    settings = minimal_settings("prod")
    groups = rule_groups(settings)
    (rw,) = spec_of(kps_values(settings))["remoteWrite"]
    replica = {"__replica__": "prometheus-kube-prometheus-stack-prometheus-0"}
    records = [rule["record"] for group in groups for rule in group["rules"] if "record" in rule]
    assert records
    # Every one but the per-endpoint-and-outcome rates the others derive from (hot tier only).
    kept = {record for record in records if relabel_keeps(rw["writeRelabelConfigs"], {"__name__": record, **replica})}
    assert set(records) - kept == {"service_endpoint_status:webhook_deliveries:rate5m"}
    names = [kubernetes_name(group["name"]) for group in groups]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name) for name in names)


# ------------------------------------------------------------- live: real remote write on loopback


REPLICAS = ("prometheus-kube-prometheus-stack-prometheus-0", "prometheus-kube-prometheus-stack-prometheus-1")


@pytest.fixture(scope="module")
def remote_written(tmp_path_factory) -> Iterator[dict]:
    """Two Prometheus replicas with our remote write section, a third Prometheus receiving it.

    The replicas scrape a synthetic exporter with one webhook series and one series of the drop
    list; their replica labels are the ones the Operator gives pods 0 and 1, under the name of the
    rendered spec. The receiver keeps everything it gets (Mimir's HA tracker would keep one replica).
    """
    tmp = tmp_path_factory.mktemp("remote-write")
    registry = prometheus_client.CollectorRegistry()
    deliveries = prometheus_client.Counter("webhook_deliveries", "d", ["endpoint", "status"], registry=registry)
    deliveries.labels("api_example_com", "success").inc(5)
    prometheus_client.Counter("workqueue_adds", "w", registry=registry).inc()
    exporter_port = free_port()
    server, thread = prometheus_client.start_http_server(exporter_port, addr="127.0.0.1", registry=registry)

    settings = minimal_settings("prod")
    receiver_port = free_port()
    (rw,) = spec_of(kps_values(settings))["remoteWrite"]
    processes: list[Process] = []
    senders = []
    try:
        (tmp / "receiver.yml").write_text("global: {}\n")
        processes.append(Process(
            [binary("prometheus"), f"--config.file={tmp / 'receiver.yml'}", f"--storage.tsdb.path={tmp / 'receiver'}",
             f"--web.listen-address=127.0.0.1:{receiver_port}", "--web.enable-remote-write-receiver"],
            tmp / "receiver.log"))
        for ordinal in (0, 1):
            port = free_port()
            config = {
                "global": {"scrape_interval": "1s", "external_labels": {
                    **spec_of(kps_values(settings))["externalLabels"],
                    spec_of(kps_values(settings))["replicaExternalLabelName"]: REPLICAS[ordinal]}},
                "scrape_configs": [{"job_name": "webhook", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
                "remote_write": [{"url": f"http://127.0.0.1:{receiver_port}/api/v1/write",
                                  "write_relabel_configs": relabel_file_format(rw["writeRelabelConfigs"]),
                                  "queue_config": {"batch_send_deadline": "1s"}}],
            }
            (tmp / f"replica-{ordinal}.yml").write_text(yaml.safe_dump(config))
            processes.append(Process(
                [binary("prometheus"), f"--config.file={tmp / f'replica-{ordinal}.yml'}",
                 f"--storage.tsdb.path={tmp / f'replica-{ordinal}'}", f"--web.listen-address=127.0.0.1:{port}"],
                tmp / f"replica-{ordinal}.log"))
            senders.append(f"http://127.0.0.1:{port}")
        query = f"http://127.0.0.1:{receiver_port}/api/v1/query?query="

        def received() -> bool:
            try:
                return bool(http_json(query + "webhook_deliveries_total")["data"]["result"])
            except OSError:
                return False

        wait_until(received, timeout=60, interval=0.5, what="the first remote-written sample")
        time.sleep(3)  # several more scrapes and sends from both replicas
        yield {"query": query, "senders": senders, "target": f"127.0.0.1:{exporter_port}"}
    finally:
        # Senders first: a sender whose receiver is gone waits out its remote-write flush deadline.
        for process in reversed(processes):
            process.stop()
        server.shutdown()


@pytest.mark.live
def test_remote_write_sends_webhook_series_from_each_replica_labelled_for_deduplication(remote_written):
    result = http_json(remote_written["query"] + "webhook_deliveries_total")["data"]["result"]
    assert sorted((r["metric"] for r in result), key=lambda m: m["__replica__"]) == [{
        "__name__": "webhook_deliveries_total", "endpoint": "api_example_com", "status": "success",
        "instance": remote_written["target"], "job": "webhook",
        "cluster": "webhook-test-use1", "environment": "prod", "__replica__": replica,
    } for replica in REPLICAS]
    assert {float(r["value"][1]) for r in result} == {5}
    assert http_json(remote_written["query"] + "workqueue_adds_total")["data"]["result"] == []


@pytest.mark.live
def test_every_replica_sends(remote_written):
    sent = [counter_value(f"{sender}/metrics", "prometheus_remote_storage_samples_total")
            for sender in remote_written["senders"]]
    assert all(count > 0 for count in sent), sent


@pytest.mark.live
def test_the_deployed_prometheus_keeps_only_the_configured_latency_buckets(tmp_path):
    """The rendered metric relabelling on a real scrape of a client-library histogram (the task
    document's default buckets): the kept bounds, +Inf, _sum and _count stay; the rest is dropped."""
    registry = prometheus_client.CollectorRegistry()
    histogram = prometheus_client.Histogram("webhook_delivery_duration_seconds", "d", ["endpoint"], registry=registry)
    histogram.labels("api_example_com").observe(0.3)
    exporter_port, port = free_port(), free_port()
    server, _ = prometheus_client.start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    settings = minimal_settings("prod", metrics={"latencyBuckets": [0.1, 0.5, 2.5]})
    endpoint = scrape.service_monitor(settings, settings.metrics.services[0])["spec"]["endpoints"][0]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "webhook", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                            "metric_relabel_configs": relabel_file_format(endpoint["metricRelabelings"])}],
    }))
    features = [f"--enable-feature={f}" for f in spec_of(kps_values(settings))["enableFeatures"]]
    process = Process([binary("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}", *features,
                       f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                      tmp_path / "prometheus.log")
    try:
        query = f"http://127.0.0.1:{port}/api/v1/query?query="

        def names() -> list[dict]:
            try:
                return http_json(query + urllib.parse.quote('{__name__=~"webhook_delivery_duration_seconds.*"}'))["data"]["result"]
            except OSError:
                return []

        series = wait_until(names, timeout=30, what="the scraped histogram")
        buckets = sorted(float(r["metric"]["le"]) for r in series if r["metric"]["__name__"].endswith("_bucket"))
        assert buckets == [0.1, 0.5, 2.5, float("inf")]
        assert {r["metric"]["__name__"] for r in series} == {f"webhook_delivery_duration_seconds_{part}"
                                                              for part in ("bucket", "sum", "count")}
        assert not any("__tmp_kept_bucket" in r["metric"] for r in series)
    finally:
        process.stop()
        server.shutdown()



def test_the_federation_credentials_become_the_secret_prometheus_mounts():
    """The Secret prod's source names is the program's, from the `federationCredentials` secret, before
    the release whose Prometheus mounts it."""
    run = run_stack("prod")
    (secret,) = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == "federation-euw1"]
    assert secret.as_json()["inputs"]["stringData"] == {
        "__secret__": {"username": "federation", "password": "federation-password-canary"}}
    assert secret.inputs["metadata"]["namespace"] == "monitoring"
    (release,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "kube-prometheus-stack"]
    assert secret.urn in release.depends_on
    assert [r for r in run_stack("dev").of_type("kubernetes:core/v1:Secret")
            if r.inputs["metadata"]["name"].startswith("federation")] == []


@pytest.mark.parametrize("credentials, problem", [
    ('{"webhook-prod-euw2": {"username": "federation", "password": "p"}}',
     "no entry for cluster 'webhook-prod-euw1' (its metrics.federation entry names a credentialsSecret), expected "
     '{"<cluster>": {"username": "...", "password": "..."}}'),
    ("federation:p4ss", 'not a JSON object of that shape, expected {"<cluster>": {"username": "...", "password": "..."}}'),
])
def test_federation_credentials_without_the_sources_entry_are_refused_without_showing_them(credentials, problem):
    secrets = {**SECRET_VALUES, "federationCredentials": credentials}
    raw, secret_keys = raw_config("prod", secrets=secrets)
    with pytest.raises(ConfigError) as refused:
        load(raw, secret_keys, lambda name: secrets[name])
    assert refused.value.problems == [f"webhook-monitoring:federationCredentials: {problem}"]
    assert "p4ss" not in str(refused.value)
