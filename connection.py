"""How the program reaches the cluster and AWS: explicit providers handed to every component."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from config import Settings
from config.schema import PROJECT


@dataclass(frozen=True)
class Connection:
    kubernetes: k8s.Provider
    aws: aws.Provider
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]


def connect(settings: Settings) -> Connection:
    """Kubeconfig and OIDC provider from the cluster's infrastructure stack, or from explicit config."""
    cluster = settings.cluster
    if cluster.infra_stack:
        infra = pulumi.StackReference(cluster.infra_stack)
        kubernetes = k8s.Provider(
            "cluster",
            kubeconfig=pulumi.Output.secret(infra.require_output(cluster.kubeconfig_output)),
        )
        oidc_arn = infra.require_output(cluster.oidc_provider_arn_output)
        oidc_url = infra.require_output(cluster.oidc_issuer_url_output)
    else:
        kubernetes = k8s.Provider("cluster", context=cluster.kube_context)
        oidc_arn = pulumi.Output.from_input(cluster.oidc_provider_arn)
        oidc_url = pulumi.Output.from_input(cluster.oidc_issuer_url)
    tags = {"app": PROJECT, "environment": settings.environment, **settings.tags}
    cloud = aws.Provider("aws", region=cluster.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    return Connection(kubernetes, cloud, oidc_arn, oidc_url)
