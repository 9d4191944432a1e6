"""testkit/load_bench.py without Prometheus: the synthetic exposition, and the config built from the render."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import run_stack
from testkit import load_bench
from testkit.k8s import label_selector_matches
from tools.render import write_files
from tools.rendered import RenderedStack

ENDPOINTS = 3
# Per endpoint: 2 delivery counters, 12 buckets, _sum, _count; per pod: the queue depth, 3 retry counters.
SERIES_PER_POD = ENDPOINTS * (2 + 12 + 2) + 1 + 3


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of one exposition; fails on a malformed one."""
    parsed = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in parsed, f"{key} exposed twice"
            parsed[key] = sample.value
    return parsed


@pytest.fixture
def exporter():
    exporter = load_bench.Exporter("webhook-api", pods=2, endpoints=ENDPOINTS, interval=3600)
    exporter.start()
    yield exporter
    exporter.close()


def test_each_pod_serves_the_task_documents_series(exporter):
    for address, pod in exporter.targets():
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            exposed = samples(response.read())
        assert len(exposed) == SERIES_PER_POD, pod
        endpoints = {dict(labels)["endpoint"] for name, labels in exposed if name == "webhook_deliveries_total"}
        assert endpoints == {"ep_00000_example_com", "ep_00001_example_com", "ep_00002_example_com"}
        assert {dict(labels)["status"] for name, labels in exposed if name == "webhook_deliveries_total"} == {"success", "error"}


def test_histogram_buckets_are_cumulative_and_inf_is_the_count():
    pod = load_bench.SyntheticPod("webhook-api-0", ENDPOINTS, seed=0)
    exposed = samples(pod.body)
    for e in range(ENDPOINTS):
        endpoint = load_bench.endpoint_label(e)
        buckets = [exposed[("webhook_delivery_duration_seconds_bucket", (("endpoint", endpoint), ("le", le)))]
                   for le in load_bench.LE]
        assert len(buckets) == 12 and load_bench.LE[-1] == "+Inf"
        assert buckets == sorted(buckets)
        assert buckets[-1] == exposed[("webhook_delivery_duration_seconds_count", (("endpoint", endpoint),))] > 0


def test_counters_advance_between_regenerations():
    pod = load_bench.SyntheticPod("webhook-api-0", ENDPOINTS, seed=0)
    before = samples(pod.body)
    pod.regenerate()
    after = samples(pod.body)
    assert before.keys() == after.keys()
    for key, value in before.items():
        if key[0] != "webhook_queue_depth":
            assert after[key] >= value, key
    for name in ("webhook_delivery_duration_seconds_count", "webhook_delivery_duration_seconds_sum"):
        advanced = [after[key] > value for key, value in before.items() if key[0] == name]
        assert advanced == [True] * ENDPOINTS, name


def test_the_service_of_the_synthetic_pods_is_the_one_the_first_monitor_selects(tmp_path):
    """The Operator's configuration discovers the pods through this Service: the monitor must select
    it by its labels, in its namespace, by its port's name."""
    directory = tmp_path / "prod"
    write_files(RenderedStack.from_run("prod", run_stack("prod")), directory)
    stack = load_bench.Stack.load(directory)
    monitor, service = stack.monitor["spec"], stack.service
    assert label_selector_matches(monitor["selector"], service["metadata"]["labels"])
    assert service["metadata"]["namespace"] in monitor["namespaceSelector"]["matchNames"]
    assert [p["name"] for p in service["spec"]["ports"]] == [monitor["endpoints"][0]["port"]]
    assert service["metadata"]["name"] == stack.monitor_name == "webhook-api"
    assert (stack.cpu_limit, stack.memory_limit) == (1.0, 4000 * 2**20)
    prometheus = {"kind": "Prometheus", "spec": {"remoteWrite": [{"url": "http://mimir"}], "replicas": 2,
                                                 "additionalScrapeConfigs": {"name": "federation", "key": "k"}}}
    assert load_bench.without_what_is_absent(prometheus) == {"kind": "Prometheus", "spec": {"replicas": 2}}
    assert load_bench.without_what_is_absent(service) is service


def test_prometheus_gets_the_highest_cpus_the_exporter_the_rest():
    assert load_bench.split_cpus(1.0, [0, 1]) == ([1], [0])
    assert load_bench.split_cpus(1.5, [0, 1, 2, 3]) == ([2, 3], [0, 1])
    assert load_bench.split_cpus(4, [0, 1]) == ([0, 1], [0, 1])
