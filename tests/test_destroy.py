"""What `pulumi destroy` would do to each kind of resource the program registers, in dev and in prod.

Pulumi refuses to delete a protected resource (`protect`), and leaves a `retain_on_delete` one in
place when it is deleted from the stack. Dev can be torn down and rebuilt at will; prod keeps its
data: the buckets and what keeps them private, encrypted and expiring stay in AWS; the releases
whose pods hold data, the namespaces, the storage class, the IAM roles and PagerDuty's service and
escalation policy (whose deletion takes the incident history) must be unprotected first. Every
resource type the program registers has its line here: a new one fails until it is decided.
"""

from __future__ import annotations

import pytest

from tests.support import run_stack

DELETED = "deleted"
REFUSED = "refused until unprotected"
KEPT = "refused until unprotected, then left in AWS"

# resource type -> (dev, prod)
OUTCOMES = {
    # Data, and what secures it.
    "aws:s3/bucket:Bucket": (DELETED, KEPT),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (DELETED, KEPT),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (DELETED, KEPT),
    "aws:s3/bucketPolicy:BucketPolicy": (DELETED, KEPT),
    "aws:s3/bucketVersioning:BucketVersioning": (DELETED, KEPT),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (DELETED, KEPT),
    # Without them the stores cannot write; a retained role nobody uses would be a risk.
    "aws:iam/role:Role": (DELETED, REFUSED),
    "aws:iam/rolePolicy:RolePolicy": (DELETED, REFUSED),
    # Deleting a namespace deletes every volume claim in it.
    "kubernetes:core/v1:Namespace": (DELETED, REFUSED),
    "kubernetes:storage.k8s.io/v1:StorageClass": (DELETED, REFUSED),
    # A claim may still name an attributes class the program no longer has: prod keeps it in the cluster.
    "kubernetes:storage.k8s.io/v1:VolumeAttributesClass": (DELETED, KEPT),
    "webhook-monitoring:storage_class:Gp3StorageClass": (DELETED, REFUSED),
    # Deleting a PagerDuty service deletes its incidents.
    "pagerduty:index/service:Service": (DELETED, REFUSED),
    "pagerduty:index/escalationPolicy:EscalationPolicy": (DELETED, REFUSED),
    # Rebuilt from code, or regenerated, at will.
    "pagerduty:index/serviceIntegration:ServiceIntegration": (DELETED, DELETED),
    "kubernetes:core/v1:Secret": (DELETED, DELETED),
    "kubernetes:core/v1:ConfigMap": (DELETED, DELETED),
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": (DELETED, DELETED),
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": (DELETED, DELETED),
    "kubernetes:monitoring.coreos.com/v1:Probe": (DELETED, DELETED),
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": (DELETED, DELETED),
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole": (DELETED, DELETED),
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": (DELETED, DELETED),
    "kubernetes:rbac.authorization.k8s.io/v1:Role": (DELETED, DELETED),
    "kubernetes:apps/v1:Deployment": (DELETED, DELETED),
    "kubernetes:core/v1:Service": (DELETED, DELETED),
    "kubernetes:batch/v1:Job": (DELETED, DELETED),
    "random:index/randomPassword:RandomPassword": (DELETED, DELETED),
    # The HA tracker's CA and certificates: regenerated, the Secrets and the distributors follow.
    "tls:index/privateKey:PrivateKey": (DELETED, DELETED),
    "tls:index/selfSignedCert:SelfSignedCert": (DELETED, DELETED),
    "tls:index/certRequest:CertRequest": (DELETED, DELETED),
    "tls:index/locallySignedCert:LocallySignedCert": (DELETED, DELETED),
    "pulumi:providers:aws": (DELETED, DELETED),
    "pulumi:providers:kubernetes": (DELETED, DELETED),
    "pulumi:providers:pagerduty": (DELETED, DELETED),
    "pulumi:pulumi:StackReference": (DELETED, DELETED),
    "webhook-monitoring:alerting:Alerting": (DELETED, DELETED),
    "webhook-monitoring:archive_bucket:ArchiveBucket": (DELETED, DELETED),
    "webhook-monitoring:grafana_access:GrafanaAccess": (DELETED, DELETED),
    "webhook-monitoring:grafana_dashboards:GrafanaDashboards": (DELETED, DELETED),
    "webhook-monitoring:logging:Logging": (DELETED, DELETED),
    "webhook-monitoring:metrics:MetricsStack": (DELETED, DELETED),
    "webhook-monitoring:network_policies:NetworkPolicies": (DELETED, DELETED),
    "webhook-monitoring:web_auth:WebAuth": (DELETED, DELETED),
}
# Releases whose pods hold data (Prometheus, Alertmanager and Grafana; Mimir; Loki), by chart, and the
# CRDs every custom resource of the cluster hangs on.
STATEFUL_RELEASES = {"kube-prometheus-stack", "mimir-distributed", "loki", "prometheus-operator-crds"}


def outcome(resource) -> str:
    if resource.protect:
        return KEPT if resource.retain_on_delete else REFUSED
    assert not resource.retain_on_delete, f"{resource.name}: retained but not protected"
    return DELETED


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_destroy_does_what_is_decided_for_every_resource_type(stack):
    run = run_stack(stack)
    registered = {r.type for r in run.resources}
    assert registered - set(OUTCOMES) - {"kubernetes:helm.sh/v3:Release"} == set(), "decide what destroy does to it"
    column = 0 if stack == "dev" else 1
    for resource in run.resources:
        if resource.type == "kubernetes:helm.sh/v3:Release":
            continue
        assert outcome(resource) == OUTCOMES[resource.type][column], (stack, resource.type, resource.name)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_destroy_refuses_the_releases_whose_pods_hold_data_in_prod(stack):
    releases = {r.inputs["chart"]: outcome(r) for r in run_stack(stack).of_type("kubernetes:helm.sh/v3:Release")}
    assert STATEFUL_RELEASES <= set(releases)
    expected = REFUSED if stack == "prod" else DELETED
    assert {chart: result for chart, result in releases.items() if chart in STATEFUL_RELEASES} == dict.fromkeys(
        STATEFUL_RELEASES, expected)
    # The agents and the blackbox exporter hold nothing: replaced or removed freely.
    assert {result for chart, result in releases.items() if chart not in STATEFUL_RELEASES} <= {DELETED}


@pytest.mark.parametrize("stack, reclaim, force_destroy", [("dev", "Delete", True), ("prod", "Retain", False)])
def test_volumes_and_objects_outlive_what_holds_them_in_prod(stack, reclaim, force_destroy):
    """Beyond Pulumi: the volumes of the StatefulSets are the storage class's (kept in prod when their
    claims go, with the namespace or a scale-down), and a bucket with objects is deleted in dev only."""
    run = run_stack(stack)
    (storage_class,) = run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage_class.inputs["reclaimPolicy"] == reclaim
    assert {b.inputs["forceDestroy"] for b in run.of_type("aws:s3/bucket:Bucket")} == {force_destroy}
