"""webhook-monitoring: wiring only. Settings -> providers -> components -> exports."""

import pulumi
import pulumi_kubernetes as k8s

from components.archive_bucket import ArchiveBucket, ArchiveBucketArgs, ServiceAccountRef
from components.storage_class import Gp3StorageClass, Gp3StorageClassArgs
from config import ConfigError
from config.stack import load_stack_config
from connection import connect

try:
    settings, secrets = load_stack_config()
except ConfigError as err:
    raise pulumi.RunError(str(err)) from None

conn = connect(settings)
on_cluster = pulumi.ResourceOptions(providers=[conn.kubernetes])
on_aws = pulumi.ResourceOptions(providers=[conn.aws])
tags = tuple(sorted(settings.tags.items()))

namespace = k8s.core.v1.Namespace(
    "monitoring-namespace",
    metadata=k8s.meta.v1.ObjectMetaArgs(
        name=settings.namespace,
        labels={
            "team": settings.team_label,
            # node-exporter needs the host's network and PID namespaces.
            "pod-security.kubernetes.io/enforce": "privileged",
        },
    ),
    opts=pulumi.ResourceOptions(provider=conn.kubernetes, protect=settings.protect),
)

storage_class = Gp3StorageClass(
    "gp3",
    Gp3StorageClassArgs(
        class_name=settings.storage.class_name,
        reclaim_policy=settings.storage.reclaim_policy,
        kms_key_id=settings.storage.kms_key_id,
        iops=settings.storage.iops,
        throughput=settings.storage.throughput,
    ),
    opts=on_cluster,
)


def archive_bucket(name: str, expiration_days: int, service_account: str) -> ArchiveBucket:
    buckets = settings.buckets
    return ArchiveBucket(
        name,
        ArchiveBucketArgs(
            expiration_days=expiration_days,
            service_accounts=(ServiceAccountRef(settings.namespace, service_account),),
            oidc_provider_arn=conn.oidc_provider_arn,
            oidc_issuer_url=conn.oidc_issuer_url,
            versioning=buckets.versioning,
            noncurrent_expiration_days=buckets.noncurrent_expiration.days,
            kms_key_arn=buckets.kms_key_arn,
            force_destroy=buckets.force_destroy,
            protect=settings.protect,
            tags=tags,
        ),
        opts=on_aws,
    )


metrics_bucket = archive_bucket("metrics", settings.long_term_storage.bucket_expiration.days, "mimir")
logs_bucket = archive_bucket("logs", settings.logging.bucket_expiration.days, "loki")

pulumi.export("namespace", namespace.metadata.name)
pulumi.export("storageClass", storage_class.class_name)
pulumi.export("metricsBucket", metrics_bucket.bucket_name)
pulumi.export("logsBucket", logs_bucket.bucket_name)
