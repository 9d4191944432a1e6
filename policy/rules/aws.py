"""The stack's S3 buckets and IRSA roles, judged by AWS' rules (policy/aws.py)."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

from policy.aws import (
    AWS_AUTONAME_LENGTH,
    UNIQUE_SUFFIX_LENGTH,
    bucket_name_problem,
    duration_seconds,
    lifecycle_outlives_retention,
    trust_policy_problems,
    trusted_service_accounts,
)
from policy.model import RELEASE, Rule, StackView, Violation, is_unknown

BUCKET = "aws:s3/bucket:Bucket"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ROLE = "aws:iam/role:Role"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"

# Where each store's values name its bucket and its retention (None: the store keeps data forever,
# Mimir's and Loki's default).
STORES = {
    "mimir-distributed": ("mimir.structuredConfig.blocks_storage.s3.bucket_name",
                          "mimir.structuredConfig.limits.compactor_blocks_retention_period"),
    "loki": ("loki.storage.bucketNames.chunks", "loki.limits_config.retention_period"),
}


def _at(values: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(values, Mapping):
            return None
        values = values.get(part)
    return values


def bucket_names(view: StackView) -> Iterator[Violation]:
    for bucket in view.of_type(BUCKET):
        name = bucket.inputs.get("bucket")
        if name is None and bucket.inputs.get("bucketPrefix") is None:
            # Pulumi names it: the resource name, '-' and 7 random characters.
            name = bucket.name + "-" + "x" * (AWS_AUTONAME_LENGTH - 1)
            how = f"{name!r} (Pulumi's name for it: the resource name and {AWS_AUTONAME_LENGTH} characters)"
        elif name is None:
            # pulumi-aws names it: the prefix and its unique suffix.
            prefix = bucket.inputs["bucketPrefix"]
            name = prefix + "0" * UNIQUE_SUFFIX_LENGTH
            how = f"{prefix!r} and pulumi-aws's {UNIQUE_SUFFIX_LENGTH}-character suffix"
        else:
            how = repr(name)
        if is_unknown(name):
            continue
        if (problem := bucket_name_problem(name)) is not None:
            yield Violation(f"S3 bucket {bucket.name}", f"name {how}: {problem}", bucket.urn)


def lifecycles(view: StackView) -> Iterator[Violation]:
    expiry: dict[str, tuple[int, str]] = {}
    for lifecycle in view.of_type(LIFECYCLE):
        for rule in lifecycle.inputs.get("rules") or []:
            days = (rule.get("expiration") or {}).get("days")
            if rule.get("status", "Enabled") == "Enabled" and isinstance(days, int):
                expiry[lifecycle.inputs.get("bucket")] = (days, lifecycle.urn)
    for release in view.of_type(RELEASE):
        paths = STORES.get(release.inputs.get("chart"))
        values = release.inputs.get("values")
        if paths is None or not isinstance(values, Mapping):
            continue
        bucket, retention = _at(values, paths[0]), _at(values, paths[1])
        if bucket not in expiry or is_unknown(retention):
            continue
        days, urn = expiry[bucket]
        seconds: Optional[float] = duration_seconds(retention) if retention else 0
        if seconds is None:
            yield Violation(f"S3 bucket {bucket}", f"retention {retention!r} of {release.inputs.get('chart')} "
                            f"({paths[1]}) is not a duration", urn)
        elif not seconds or not lifecycle_outlives_retention(days, seconds):
            kept = f"keeps data {retention}" if seconds else "keeps data forever (no retention set)"
            yield Violation(f"S3 bucket {bucket}", f"objects expire after {days} days, but "
                            f"{release.inputs.get('chart')} {kept} ({paths[1]}): S3 would delete data the store "
                            "still serves; the expiry must be longer than the retention", urn)


def irsa(view: StackView) -> Iterator[Violation]:
    accounts = {((o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name")): o
                for o in view.kind("ServiceAccount")}
    for role in view.of_type(ROLE):
        document = role.inputs.get("assumeRolePolicy")
        if document is None or is_unknown(document):
            continue
        for problem in trust_policy_problems(document):
            yield Violation(f"IAM role {role.name}", problem, role.urn)
        if not view.charts_templated:
            continue
        for namespace, name in trusted_service_accounts(document):
            account = accounts.get((namespace, name))
            if account is None:
                yield Violation(f"IAM role {role.name}", f"trusts service account {namespace}/{name}, which the stack "
                                "does not create: no pod gets the role", role.urn)
            elif ROLE_ARN_ANNOTATION not in ((account.get("metadata") or {}).get("annotations") or {}):
                yield Violation(f"IAM role {role.name}", f"service account {namespace}/{name} has no {ROLE_ARN_ANNOTATION} "
                                "annotation: EKS' webhook gives its pods no web identity", role.urn)


RULES = (
    Rule("s3-bucket-names", "S3 bucket names follow S3's naming rules.", bucket_names,
         ("https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html",)),
    Rule("s3-lifecycle-outlives-retention",
         "A bucket's lifecycle expiry is longer than the retention of the store writing to it.", lifecycles,
         ("https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html",)),
    Rule("irsa-trust-policies",
         "Web-identity roles trust the cluster's OIDC provider, exactly named service accounts and the STS "
         "audience, and those service accounts exist with the role annotation.", irsa,
         ("awsdocs/amazon-eks-user-guide latest/ug/manage-access/aws-access/service-accounts.adoc",)),
)
