"""The foundation under the mock runtime: what is registered, and the storage invariants."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from monitoring.logging.loki import loki_values
from monitoring.volumes import attributes_class
from tests.support import rendered_stack, run_stack, stack_settings
from testkit.k8s import validation_problems
from tools.stacks import stacks

STACKS = stacks()
COMPONENT_PREFIX = "webhook-monitoring:"


def by_type(run, typ):
    return [r for r in run.resources if r.type == typ]


def children(run, component):
    return [r for r in run.resources if r.parent == component.urn]


def bucket_part(run, bucket_component, typ):
    found = [r for r in children(run, bucket_component) if r.type == typ]
    assert len(found) == 1, (bucket_component.name, typ, found)
    return found[0]


@pytest.mark.parametrize("stack", STACKS)
def test_program_registers_the_foundation(stack):
    run = run_stack(stack)
    assert run.error is None
    types = {r.type for r in run.resources}
    assert {
        "kubernetes:core/v1:Namespace",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "aws:s3/bucket:Bucket",
        "aws:iam/role:Role",
        "webhook-monitoring:archive_bucket:ArchiveBucket",
        "webhook-monitoring:storage_class:Gp3StorageClass",
    } <= types
    assert sorted(r.name for r in by_type(run, "webhook-monitoring:archive_bucket:ArchiveBucket")) == ["logs", "metrics"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_child_is_parented_to_its_component_and_named_after_it(stack):
    run = run_stack(stack)
    components = [r for r in run.resources if r.type.startswith(COMPONENT_PREFIX)]
    assert components
    for component in components:
        kids = children(run, component)
        assert kids, f"{component.type} {component.name} has no children"
        for kid in kids:
            assert kid.name.startswith(component.name + "-"), (component.name, kid.name)
    urns = {r.urn for r in run.resources}
    for r in run.resources:
        assert r.parent is None or r.parent in urns or r.parent.endswith(f"webhook-monitoring-{stack}")


@pytest.mark.parametrize("stack", STACKS)
def test_storage_class_is_encrypted_gp3_waiting_for_its_consumer(stack):
    settings = stack_settings(stack)
    (sc,) = by_type(run_stack(stack), "kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc.inputs["provisioner"] == "ebs.csi.aws.com"
    assert sc.inputs["metadata"]["name"] == "gp3"
    assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc.inputs["allowVolumeExpansion"] is True
    assert sc.inputs["reclaimPolicy"] == {"dev": "Delete", "prod": "Retain"}[stack]
    # Only what every volume shares: performance is per workload (the attributes classes below).
    assert sc.inputs["parameters"] == {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}
    assert settings.storage.class_name == "gp3"


def test_storage_class_takes_a_kms_key():
    run = run_stack("dev", {"storage": {"kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"}})
    (sc,) = by_type(run, "kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc.inputs["parameters"]["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("bucket, retention_key", [("metrics", "longTermStorage"), ("logs", "logging")])
def test_bucket_is_private_encrypted_tls_only_and_expires(stack, bucket, retention_key):
    run = run_stack(stack)
    settings = stack_settings(stack)
    (component,) = [r for r in by_type(run, "webhook-monitoring:archive_bucket:ArchiveBucket") if r.name == bucket]

    block = bucket_part(run, component, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert [block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")] == [True] * 4

    sse = bucket_part(run, component, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    default = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    if stack == "prod":
        assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": settings.buckets.kms_key_arn}
    else:
        assert default == {"sseAlgorithm": "AES256"}

    policy = json.loads(bucket_part(run, component, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    bucket_arn = f"arn:aws:s3:::{bucket}-bucket-0000000"
    assert deny["Resource"] == [bucket_arn, f"{bucket_arn}/*"]

    lifecycle = bucket_part(run, component, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    (rule,) = lifecycle.inputs["rules"]
    store = settings.long_term_storage if retention_key == "longTermStorage" else settings.logging
    assert rule["expiration"] == {"days": store.bucket_expiration.days}
    assert rule["expiration"]["days"] == {"metrics": 97, "logs": 16}[bucket]
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 2}
    if stack == "prod":
        assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
        versioning = bucket_part(run, component, "aws:s3/bucketVersioning:BucketVersioning")
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    else:
        assert "noncurrentVersionExpiration" not in rule
        assert not [r for r in children(run, component) if r.type == "aws:s3/bucketVersioning:BucketVersioning"]


def test_lifecycle_follows_the_configured_expiry():
    run = run_stack("dev", {"longTermStorage": {"retention": "180d", "bucketExpiration": "200d"}})
    (component,) = [r for r in by_type(run, "webhook-monitoring:archive_bucket:ArchiveBucket") if r.name == "metrics"]
    lifecycle = bucket_part(run, component, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 200}


@pytest.mark.parametrize("stack", STACKS)
def test_stateful_resources_are_protected_in_prod_only(stack):
    run = run_stack(stack)
    buckets = by_type(run, "aws:s3/bucket:Bucket")
    assert len(buckets) == 2
    for b in buckets:
        assert (b.protect, b.retain_on_delete) == ((True, True) if stack == "prod" else (False, False))
        assert b.inputs["forceDestroy"] is (stack == "dev")


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("bucket, account", [("metrics", "mimir"), ("logs", "loki")])
def test_irsa_role_trusts_exactly_the_named_service_account(stack, bucket, account):
    run = run_stack(stack)
    (component,) = [r for r in by_type(run, "webhook-monitoring:archive_bucket:ArchiveBucket") if r.name == bucket]
    role = bucket_part(run, component, "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    issuer = {
        "dev": "oidc.eks.us-east-1.amazonaws.com/id/DEV0EXAMPLE",
        "prod": "oidc.eks.us-east-1.amazonaws.com/id/RENDER",
    }[stack]
    assert statement["Principal"] == {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{issuer}"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": [f"system:serviceaccount:monitoring:{account}"],
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }

    policy = json.loads(bucket_part(run, component, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    bucket_arn = f"arn:aws:s3:::{bucket}-bucket-0000000"
    resources = sorted(r for s in policy["Statement"] for r in s["Resource"])
    expected = [bucket_arn, f"{bucket_arn}/*"]
    if stack == "prod":
        expected.append(stack_settings("prod").buckets.kms_key_arn)
    assert resources == sorted(expected)
    actions = sorted(a for s in policy["Statement"] for a in s["Action"])
    assert all(not a.endswith("*") for a in actions), "no wildcard actions"
    assert "s3:DeleteBucket" not in actions and "s3:PutBucketPolicy" not in actions


def test_trust_policy_refuses_other_subjects():
    from components.archive_bucket import trust_policy

    policy = json.loads(trust_policy("arn:p", "https://oidc.example/id/1", ["system:serviceaccount:monitoring:loki"]))
    subjects = policy["Statement"][0]["Condition"]["StringEquals"]["oidc.example/id/1:sub"]
    assert subjects == ["system:serviceaccount:monitoring:loki"]
    assert "StringLike" not in policy["Statement"][0]["Condition"], "no wildcard subjects"


@pytest.mark.parametrize("stack", STACKS)
def test_kubernetes_objects_the_program_creates_validate_strictly(stack):
    """Built-in kinds here; the custom resources against the CRDs in the chart check."""
    manifests = [m for m in rendered_stack(stack).manifests() if "monitoring.coreos.com" not in m["apiVersion"]]
    assert {m["kind"] for m in manifests} >= {"Namespace", "StorageClass", "Secret", "Role", "ClusterRole"}
    assert list(validation_problems(manifests, {})) == []


def test_strict_validation_catches_a_bad_object():
    bad = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gp3"},
           "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": "yes"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.33", strict=True)


def test_prod_gives_prometheus_volumes_the_fast_profiles_attributes_class_and_no_other():
    run = run_stack("prod")
    (attributes,) = run.of_type("kubernetes:storage.k8s.io/v1:VolumeAttributesClass")
    assert attributes.inputs["metadata"]["name"] == "gp3-fast-6000iops-250mibps"
    assert (attributes.inputs["driverName"], attributes.inputs["parameters"]) == (
        "ebs.csi.aws.com", {"iops": "6000", "throughput": "250"})
    # A claim may still name it once the program no longer does: prod keeps it in the cluster.
    assert (attributes.protect, attributes.retain_on_delete) == (True, True)
    rendered = rendered_stack("prod")
    claim = rendered.prometheus_spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert (claim["storageClassName"], claim["volumeAttributesClassName"]) == ("gp3", "gp3-fast-6000iops-250mibps")
    # Alertmanager's 5Gi volumes keep the baseline: 6,000 IOPS is more than EC2 allows them.
    assert "volumeAttributesClassName" not in rendered.alertmanager_spec["storage"]["volumeClaimTemplate"]["spec"]
    assert run_stack("dev").of_type("kubernetes:storage.k8s.io/v1:VolumeAttributesClass") == []


def test_a_profile_with_other_numbers_is_another_attributes_class():
    """An attributes class' parameters cannot change: new numbers, new name (docs/operations/volumes.md)."""
    settings = stack_settings("prod", {"storage": {"profiles": [{"name": "fast", "iops": 8000}]}})
    (profile,) = settings.storage.profiles
    assert attributes_class(settings.storage, profile)["metadata"]["name"] == "gp3-fast-8000iops"
    assert attributes_class(settings.storage, profile)["parameters"] == {"iops": "8000"}


def test_loki_volumes_take_the_profile_logging_names():
    settings = stack_settings("prod", {"storage": {"profiles": [{"name": "fast", "iops": 6000},
                                                                {"name": "logs", "iops": 4000}]},
                                       "logging": {"volumeProfile": "logs"}})
    values = loki_values(settings, bucket_name="b", region="us-east-1", role_arn="arn", storage_class="gp3",
                         attributes_classes={"logs": "gp3-logs-4000iops"}, alertmanager_url="http://am",
                         rules_config_map="rules")
    assert values["write"]["persistence"]["volumeAttributesClassName"] == "gp3-logs-4000iops"
    assert values["backend"]["persistence"]["volumeAttributesClassName"] == "gp3-logs-4000iops"
