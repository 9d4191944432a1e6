"""An S3 bucket for long-term monitoring data, and the IRSA role that may use it.

Instantiated for metrics (Mimir blocks, 90 days) and logs (Loki chunks, 14 days). The bucket is
private, encrypted and TLS-only; objects expire after the configured days (a safety net behind
the store's own retention). The role may be assumed only by the named Kubernetes service
accounts through the cluster's OIDC provider, and may touch only this bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class ServiceAccountRef:
    namespace: str
    """Namespace of the Kubernetes service account."""
    name: str
    """Name of the Kubernetes service account."""

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class ArchiveBucketArgs:
    expiration_days: int
    """Days after which objects expire (lifecycle rule)."""
    service_accounts: tuple[ServiceAccountRef, ...]
    """Kubernetes service accounts allowed to assume the bucket's role; at least one."""
    oidc_provider_arn: pulumi.Input[str]
    """ARN of the cluster's IAM OIDC provider."""
    oidc_issuer_url: pulumi.Input[str]
    """Issuer URL of the cluster's OIDC provider (https://oidc.eks...)."""
    versioning: bool = False
    """Keep noncurrent versions (for `noncurrent_expiration_days`)."""
    noncurrent_expiration_days: int = 7
    """Days a noncurrent version is kept when versioning is on."""
    kms_key_arn: Optional[str] = None
    """KMS key for SSE-KMS; None: SSE-S3 (AES256)."""
    force_destroy: bool = False
    """Whether `pulumi destroy` may delete a non-empty bucket."""
    protect: bool = False
    """Protect the bucket and what secures it (access block, encryption, policy, versioning,
    lifecycle), and keep them in AWS if they leave the program; protect the role (prod)."""
    abort_multipart_days: int = 2
    """Days after which incomplete multipart uploads are aborted."""
    tags: tuple[tuple[str, str], ...] = ()
    """Tags on the bucket and role."""
    bucket_prefix: Optional[str] = None
    """Start of the bucket's name (S3 adds a unique suffix); None: Pulumi's auto-name from the
    resource name. A bucket's name is fixed at creation: changing it replaces the bucket."""
    role_prefix: Optional[str] = None
    """Start of the role's name (IAM adds a unique suffix); None: Pulumi's auto-name."""


def trust_policy(provider_arn: str, issuer_url: str, subjects: list[str]) -> str:
    """Web-identity trust bound to the OIDC provider, exactly `subjects`, and the STS audience."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:sub": sorted(subjects),
                            f"{issuer}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def access_policy(bucket_arn: str, kms_key_arn: Optional[str]) -> str:
    """Read, write and delete objects in this bucket alone (stores compact and delete blocks)."""
    statements = [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]},
        {
            "Sid": "Objects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [f"{bucket_arn}/*"],
        },
    ]
    if kms_key_arn:
        statements.append(
            {"Sid": "Kms", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [kms_key_arn]}
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def tls_only_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        },
        sort_keys=True,
    )


class ArchiveBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ArchiveBucketArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("webhook-monitoring:archive_bucket:ArchiveBucket", name, None, opts)
        if not args.service_accounts:
            raise ValueError(f"ArchiveBucket {name}: at least one service account must be allowed to use it")
        # The bucket, and what keeps it private, encrypted and expiring: a retained bucket keeps them.
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        # The role goes with the program (a role nobody uses that may read the data is a risk), but
        # never by accident: without it the store cannot write.
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        tags = dict(args.tags)

        bucket = aws.s3.Bucket(f"{name}-bucket", bucket_prefix=args.bucket_prefix, force_destroy=args.force_destroy,
                               tags=tags, opts=kept)
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=kept,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms" if args.kms_key_arn else "AES256",
                        kms_master_key_id=args.kms_key_arn,
                    ),
                    # Fewer KMS requests (and less cost) for stores that write many small objects.
                    bucket_key_enabled=bool(args.kms_key_arn),
                )
            ],
            opts=kept,
        )
        # The policy is written once public access is blocked: both change who may reach the bucket.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[public_access])),
        )
        versioning = None
        if args.versioning:
            versioning = aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
                opts=kept,
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.expiration_days),
                    noncurrent_version_expiration=(
                        aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=args.noncurrent_expiration_days
                        )
                        if args.versioning
                        else None
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=args.abort_multipart_days
                    ),
                )
            ],
            # A lifecycle rule on a versioned bucket must follow the versioning setting.
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[versioning] if versioning else [])),
        )

        subjects = [sa.subject for sa in args.service_accounts]
        role = aws.iam.Role(
            f"{name}-role",
            name_prefix=args.role_prefix,
            description=f"IRSA role of {', '.join(subjects)} for the {name} bucket",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer_url).apply(
                lambda pair: trust_policy(pair[0], pair[1], subjects)
            ),
            tags=tags,
            opts=guarded,
        )
        aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=bucket.arn.apply(lambda arn: access_policy(arn, args.kms_key_arn)),
            opts=guarded,
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.role_arn = role.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn, "role_arn": self.role_arn})
