"""The node-rotation and zone-outage rule (testkit/rotation.py) on small made-up workloads: what it
admits and what it refuses. The stack's own workloads go through it in the chart check
(`every_replicated_workload_lets_a_node_rotation_proceed_and_survives_a_zone`)."""

from __future__ import annotations

from testkit import rotation

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
APART = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "store"}}}]}}


def spread(hard: bool) -> list[dict]:
    return [{"maxSkew": 1, "topologyKey": rotation.ZONE, "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app": "store"}}}]


def statefulset(name: str, replicas: int, affinity: dict | None = APART, hard_spread: bool = True,
                zone: str | None = None, app: str = "store") -> dict:
    pod = {"containers": [], **({"affinity": affinity} if affinity else {}),
           "topologySpreadConstraints": spread(hard_spread), **({"nodeSelector": {rotation.ZONE: zone}} if zone else {})}
    return {"kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": app}}, "spec": pod},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}


def budget(**spec) -> dict:
    return {"kind": "PodDisruptionBudget", "metadata": {"name": "store"},
            "spec": {"selector": {"matchLabels": {"app": "store"}}, **spec}}


def judged(*objects: dict, quorum: int = 2) -> list[str]:
    found = rotation.workloads([("ns", o) for o in objects])
    return rotation.problems(found, ZONES, {"ns/store": quorum})


def test_one_apart_per_zone_with_a_budget_of_one_rotates_and_survives_a_zone():
    """Required anti-affinity, AZ-bound volumes and a budget of one: the evicted pod comes back on a new
    node of its zone, so a rotation proceeds (what the stack's Prometheus, Alertmanager and Loki do)."""
    assert judged(statefulset("store", 3), budget(maxUnavailable=1)) == []
    assert judged(statefulset("store", 3), budget(minAvailable=2)) == []


def test_a_budget_that_admits_nothing_fails_the_drain():
    found = judged(statefulset("store", 3), budget(minAvailable=3))
    assert found == ["ns/store: its budget {'minAvailable': 3} admits no eviction: a drain fails (PodEvictionFailure)"]
    assert judged(statefulset("store", 3), budget(maxUnavailable="0%"))[0].endswith("(PodEvictionFailure)")


def test_a_budget_letting_the_quorum_go_is_refused():
    assert judged(statefulset("store", 3), budget(maxUnavailable=2)) == [
        "ns/store: its budget lets 2 of 3 go at once, leaving fewer than the 2 its quorum needs"]


def test_replicas_that_may_share_a_node_are_refused():
    found = judged(statefulset("store", 3, affinity=None), budget(maxUnavailable=1))
    assert found == ["ns/store: two pods may share a node (no required anti-affinity by node): draining it takes "
                     "more than the budget lets go, and losing it more than one replica"]


def test_stateful_replicas_a_soft_spread_may_crowd_into_one_zone_lose_it_with_the_quorum():
    found = judged(statefulset("store", 3, hard_spread=False), budget(maxUnavailable=1))
    assert "ns/store: one zone may hold 3 of its 3 pods, bound there by their volumes: losing it leaves fewer than " \
           "the 2 its quorum needs" in found
    # ... and then more of them than a rotation brings new nodes to that zone.
    assert any("a rotation brings 2 new nodes there" in line for line in found)


def test_logical_zones_may_share_an_availability_zone_pinned_ones_do_not():
    """Mimir's zone-aware ingesters: one StatefulSet per replication zone, one budget over all."""
    logical = [statefulset(f"ingester-zone-{z}", 1, affinity=None, hard_spread=False) for z in "abc"]
    assert any("losing it leaves fewer than the 2" in line for line in judged(*logical, budget(maxUnavailable=1)))
    pinned = [statefulset(f"ingester-zone-{z}", 1, affinity=None, hard_spread=False, zone=az)
              for z, az in zip("abc", ZONES)]
    assert judged(*pinned, budget(maxUnavailable=1)) == []


def test_more_bound_pods_in_a_zone_than_new_nodes_there_find_no_node():
    crowded = statefulset("store", 3, zone=ZONES[0])
    found = judged(crowded, budget(maxUnavailable=1), quorum=1)
    assert "ns/store: up to 3 pods bound to one zone, one per node, but a rotation brings 2 new nodes there: an " \
           "evicted pod finds no node" in found


def test_every_replicated_workload_needs_exactly_one_budget():
    found = rotation.problems(rotation.workloads([("ns", statefulset("store", 2))]), ZONES, {})
    assert found == ["ns/StatefulSet/store: 0 disruption budgets select its 2 pods, expected one"]
    two = judged(statefulset("store", 3), budget(maxUnavailable=1), {**budget(maxUnavailable=1), "metadata": {"name": "again"}})
    assert "ns/store: 2 disruption budgets select its 3 pods, expected one" in two
