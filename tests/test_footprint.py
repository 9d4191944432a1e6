"""Footprint from measurement: Prometheus' requests from the load benchmark's figures, Mimir's and
Loki's from their documented requirements (monitoring/capacity.py), Loki's limits from the log
volume, and the sum of a stack's requests (monitoring/footprint.py)."""

from __future__ import annotations

import math

import pytest

from config import sizing
from config.types import Cpu, Memory
from monitoring import capacity, footprint
from monitoring.helm.mimir import mimir_values
from monitoring.logging.loki import loki_values
from tests.support import minimal_settings, stack_settings
from tools.templating import template_stack
from tools.footprint import stack_footprint

GIB = 2**30


def test_prometheus_requests_default_to_the_measured_use_at_the_expected_series():
    """0.09 of a core and 1.42 GiB at 445,490 series (the load benchmark at 20 pods x 2,000 endpoints)."""
    assert math.isclose(sizing.CPU_PER_SERIES * 445_490, 0.09)
    # The model (its constants rounded up) is above the measured peak, 1,454 MiB, and close to it.
    assert 1454 * 2**20 < sizing.BASE_MEMORY + sizing.MEMORY_PER_SERIES * 445_490 < 1.5 * GIB
    for stack in ("dev", "prod"):
        p = stack_settings(stack).prometheus
        assert Cpu(p.resources.cpu_request).cores == sizing.cpu_request_for(p.expected_series), stack
        assert Memory(p.resources.memory_request).bytes == sizing.memory_request_for(p.expected_series), stack
    assert (sizing.cpu_request_for(600_000), sizing.memory_request_for(600_000) // 2**20) == (0.16, 1989)


def test_mimir_is_sized_by_its_documented_requirements_for_the_configured_series():
    settings = minimal_settings("prod", longTermStorage={"expectedSeries": 250_000})
    values = mimir_values(settings, bucket_name="b", region="us-east-1", role_arn="arn", storage_class="gp3",
                          ha_tracker_client_certificate="<certificate>")
    # 250,000 series x 3 copies in memory = 2.5 cores and 6.25 GB (+50 %) over three ingesters.
    assert values["ingester"]["replicas"] == 3
    assert values["ingester"]["resources"]["requests"] == {"cpu": "834m", "memory": "2981Mi"}
    # 8,333 samples a second: a third of a core over two distributors; memory at the chart's floor.
    assert values["distributor"]["replicas"] == 2
    assert values["distributor"]["resources"]["requests"] == {"cpu": "167m", "memory": "512Mi"}
    # A query a second: the floors.
    assert values["querier"]["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert values["query_scheduler"] == {"enabled": False}
    # Ten times the series: ten times the ingesters' requests.
    big = minimal_settings("prod", longTermStorage={"expectedSeries": 2_500_000})
    requests = capacity.mimir_requests(big, "ingester", 3, 3)
    assert math.isclose(requests.cpu, 25 / 3) and math.isclose(requests.memory, 25 / 3 * 2.5e9 * 1.5, rel_tol=1e-6)


def test_loki_is_sized_by_the_daily_volume_and_its_limits_follow_it():
    small = minimal_settings("prod")  # 20 GB a day: every target at the floor
    assert capacity.loki_requests(small, "write", 3) == capacity.Requests(0.1, 256 * 2**20)
    # The documented tier at its top, 3 TB a day: the tier's totals per target.
    tier = minimal_settings("prod", logging={"dailyVolume": "3TB"})
    write = capacity.loki_requests(tier, "write", 10)
    assert math.isclose(write.cpu * 10, 20) and math.isclose(write.memory * 10, 26 * GIB, rel_tol=1e-6)
    assert capacity.loki_limits(small) == {"ingestion_rate_mb": 4, "ingestion_burst_size_mb": 6,
                                           "max_global_streams_per_user": 6000}
    # 1 TB a day is 11.6 MB/s on average: the limit takes five times that.
    assert capacity.loki_limits(minimal_settings("prod", logging={"dailyVolume": "1TB"}))["ingestion_rate_mb"] == 58
    values = loki_values(small, bucket_name="b", region="r", role_arn="a", storage_class="gp3", attributes_classes={},
                         alertmanager_url="http://am", rules_config_map="rules")
    assert values["loki"]["limits_config"]["max_global_streams_per_user"] == 6000
    assert values["write"]["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert (values["write"]["replicas"], values["read"]["replicas"], values["backend"]["replicas"]) == (3, 2, 2)
    # Resources set in the stack file win.
    fixed = minimal_settings("prod", logging={"resources": {"cpuRequest": "300m", "memoryRequest": "1Gi", "memoryLimit": "2Gi"}})
    fixed_values = loki_values(fixed, bucket_name="b", region="r", role_arn="a", storage_class="gp3",
                               attributes_classes={}, alertmanager_url="http://am", rules_config_map="rules")
    assert fixed_values["read"]["resources"]["requests"] == {"cpu": "300m", "memory": "1Gi"}


def test_quantities_and_the_schedulers_sum_of_a_pods_requests():
    assert footprint.quantity("250m") == 0.25 and footprint.quantity("1Gi") == GIB and footprint.quantity("1.5") == 1.5
    assert footprint.quantity("2G") == 2e9 and footprint.quantity(3) == 3.0
    with pytest.raises(ValueError):
        footprint.quantity("12 cores")
    containers = [{"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                  {"resources": {"requests": {"cpu": "50m"}}}]
    cpu, memory = footprint.pod_requests(containers)
    assert math.isclose(cpu, 0.15) and memory == 64 * 2**20
    # An init container larger than the sum sets the request.
    init = [{"resources": {"requests": {"cpu": "500m", "memory": "32Mi"}}}]
    assert footprint.pod_requests(containers, init) == (0.5, 64 * 2**20)


def test_a_footprint_counts_replicas_volumes_operator_pods_and_agents_per_node():
    def pod(cpu: str, memory: str) -> dict:
        return {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}
    objects = [
        {"kind": "StatefulSet", "metadata": {"name": "store"}, "spec": {
            "replicas": 3, "template": pod("1", "2Gi"),
            "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"resources": {"requests": {"storage": "50Gi"}}}}]}},
        {"kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {"template": pod("50m", "128Mi")}},
        {"kind": "Prometheus", "metadata": {"name": "p"}, "spec": {
            "replicas": 2, "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}},
            "containers": [{"name": "prometheus", "resources": {"requests": {"cpu": "9"}}},  # changes the main one
                           {"name": "proxy", "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}}}],
            "storage": {"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "100Gi"}}}}}}},
        {"kind": "Job", "metadata": {"name": "hook"}, "spec": {"template": pod("1", "1Gi")}},
    ]
    found = footprint.footprint(objects, "ns")
    assert [(w.kind, w.name, w.pods) for w in found.workloads] == [("StatefulSet", "store", 3), ("DaemonSet", "agent", 1),
                                                                   ("Prometheus", "p", 2)]
    assert math.isclose(found.cpu, 3 + 2 * 0.22) and found.memory == 6 * GIB + 2 * (GIB + 32 * 2**20)
    assert found.storage == 150 * GIB + 200 * GIB
    assert (found.cpu_per_node, found.memory_per_node) == (0.05, 128 * 2**20)
    assert "total on 10 nodes" in found.table(10)


@pytest.mark.charts
def test_the_prod_footprint_is_what_the_documentation_says():
    """docs/operations/capacity.md's table, from the charts' output: prod requests 6.60 cores and 21.1
    GiB, Mimir 3.89 cores (9.65 before)."""
    output = template_stack("prod")
    if output.unavailable():
        pytest.skip(output.unavailable())
    found = stack_footprint(output)
    assert (round(found.cpu, 2), round(found.memory / GIB, 1)) == (6.60, 21.1)
    mimir_cpu, mimir_memory = found.by("mimir")
    assert (round(mimir_cpu, 2), round(mimir_memory / GIB, 1)) == (3.89, 12.5)
