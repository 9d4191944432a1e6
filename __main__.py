"""webhook-monitoring: wiring only. Settings -> providers -> components -> exports."""

import pulumi
import pulumi_kubernetes as k8s

from components.alerting import Alerting, AlertingArgs
from components.archive_bucket import ArchiveBucket, ArchiveBucketArgs, ServiceAccountRef
from components.grafana_access import GrafanaAccess, GrafanaAccessArgs
from components.grafana_dashboards import GrafanaDashboards, GrafanaDashboardsArgs
from components.logging import Logging, LoggingArgs
from components.metrics import FEDERATION_PASSWORD, MetricsStack, MetricsStackArgs
from components.network_policies import NetworkPolicies, NetworkPoliciesArgs
from components.storage_class import Gp3StorageClass, Gp3StorageClassArgs
from components.web_auth import WebAuth, WebAuthArgs
from config import ConfigError, naming
from config.stack import load_stack_config
from connection import connect
from monitoring import dashboards, rules
from monitoring.checks import content_problems
from monitoring.helm import kube_prometheus_stack
from monitoring.helm.mimir import MIMIR_SERVICE_ACCOUNT
from monitoring.network import network_policies
from monitoring.logging.loki import LOKI_SERVICE_ACCOUNT
from monitoring.security import PRIVILEGED, RESTRICTED, pod_security_labels
from monitoring.versions import GRAFANA_SIDECAR_IMAGE
from monitoring.web_auth import FEDERATION_CLIENT, PROMETHEUS

try:
    settings, secrets = load_stack_config()
    if problems := content_problems(settings):
        raise ConfigError(problems)
except ConfigError as err:
    raise pulumi.RunError(str(err)) from None

conn = connect(settings)
tags = tuple(sorted(settings.tags.items()))

namespace, agents_namespace = (
    k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels={"team": settings.team_label, **pod_security_labels(level)}),
        opts=pulumi.ResourceOptions(provider=conn.kubernetes, protect=settings.protect),
    )
    for resource_name, name, level in (
        ("monitoring-namespace", settings.namespace, RESTRICTED),
        # node-exporter and the log agent need the host: its network, processes and paths.
        ("agents-namespace", settings.agents_namespace, PRIVILEGED),
    )
)
# Children register after their component, and a component after what it depends on.
in_namespace = pulumi.ResourceOptions(providers=[conn.kubernetes], depends_on=[namespace, agents_namespace])
on_aws = pulumi.ResourceOptions(providers=[conn.aws])

storage_class = Gp3StorageClass(
    "gp3",
    Gp3StorageClassArgs(storage=settings.storage, protect=settings.protect),
    opts=pulumi.ResourceOptions(providers=[conn.kubernetes], protect=settings.protect),
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
            bucket_prefix=naming.bucket_prefix(settings, name),
            role_prefix=naming.role_prefix(settings, name),
        ),
        opts=on_aws,
    )


metrics_bucket = archive_bucket("metrics", settings.long_term_storage.bucket_expiration.days, MIMIR_SERVICE_ACCOUNT)
logs_bucket = archive_bucket("logs", settings.logging.bucket_expiration.days, LOKI_SERVICE_ACCOUNT)

alerting = Alerting(
    "alerting",
    AlertingArgs(
        settings=settings,
        namespace=namespace.metadata.name,
        slack_webhook_url=secrets.slack_webhook_url,
        heartbeat_url=secrets.heartbeat_url,
        pagerduty_token=secrets.pagerduty_token,
        pagerduty_user_token=secrets.pagerduty_user_token,
        platform_slack_webhook_url=secrets.platform_slack_webhook_url,
        platform_pagerduty_routing_key=secrets.platform_pagerduty_routing_key,
        receiver_secrets=secrets.receiver_secrets,
    ),
    opts=in_namespace,
)

network = NetworkPolicies("network", NetworkPoliciesArgs(policies=tuple(network_policies(settings))), opts=in_namespace)

web_auth = WebAuth(
    "web-auth", WebAuthArgs(namespace=namespace.metadata.name, labels={"team": settings.team_label}), opts=in_namespace
)

grafana_access = GrafanaAccess(
    "grafana",
    GrafanaAccessArgs(
        namespace=namespace.metadata.name,
        oauth_client_secret=secrets.grafana_oauth_client_secret if settings.grafana.sso else None,
        password_rotation=settings.grafana.admin_password_rotation,
    ),
    opts=in_namespace,
)

metrics = MetricsStack(
    "metrics",
    MetricsStackArgs(
        settings=settings,
        storage_class=storage_class.class_name,
        attributes_classes=storage_class.attributes_classes,
        metrics_bucket_name=metrics_bucket.bucket_name,
        region=settings.cluster.region,
        role_arn=metrics_bucket.role_arn,
        alertmanager_config_secret=alerting.config_secret_name,
        grafana_admin_secret=grafana_access.admin_secret_name,
        grafana_oauth_secret=grafana_access.oauth_secret_name,
        grafana_sidecar_role=grafana_access.sidecar_role_name,
        rule_groups=tuple(rules.rule_groups(settings)),
        federation_credentials=secrets.federation_credentials,
    ),
    # The pods mount the proxies' Secrets and ConfigMaps.
    opts=pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=[web_auth])),
)

logs = Logging(
    "logging",
    LoggingArgs(
        settings=settings,
        namespace=settings.namespace,
        agent_namespace=settings.agents_namespace,
        storage_class=storage_class.class_name,
        attributes_classes=storage_class.attributes_classes,
        bucket_name=logs_bucket.bucket_name,
        bucket_region=settings.cluster.region,
        role_arn=logs_bucket.role_arn,
        alertmanager_url=metrics.alertmanager_url,
        agent_role_name=naming.alloy_cluster_role(settings),
    ),
    # Loki and the agents ship ServiceMonitors, admitted by the Operator kube-prometheus-stack runs.
    opts=pulumi.ResourceOptions(providers=[conn.kubernetes],
                                depends_on=[namespace, agents_namespace, metrics.kube_prometheus_stack]),
)

GrafanaDashboards(
    "dashboards",
    GrafanaDashboardsArgs(
        namespace=settings.namespace,
        grafana_url=kube_prometheus_stack.grafana_url(settings),
        grafana_deployment=f"{settings.namespace}/{kube_prometheus_stack.grafana_name(settings)}",
        admin_secret=grafana_access.admin_secret_name,
        image=GRAFANA_SIDECAR_IMAGE,
        folders=dashboards.FOLDERS,
        folder_permissions=settings.grafana.folder_permissions,
        dashboards=dashboards.dashboards(settings),
        labels={"team": settings.team_label},
    ),
    # The folder Job calls Grafana once the release running it is up, through the flow its policy opens.
    opts=pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(
        depends_on=[metrics.kube_prometheus_stack, network])),
)

pulumi.export("namespace", namespace.metadata.name)
pulumi.export("agentsNamespace", agents_namespace.metadata.name)
pulumi.export("storageClass", storage_class.class_name)
pulumi.export("metricsBucket", metrics_bucket.bucket_name)
pulumi.export("logsBucket", logs_bucket.bucket_name)
pulumi.export("grafanaUrl", f"https://{settings.grafana.host}")
pulumi.export("prometheusUrl", metrics.prometheus_url)
pulumi.export("alertmanagerUrl", metrics.alertmanager_url)
pulumi.export("mimirQueryUrl", metrics.mimir_query_url)
pulumi.export("lokiQueryUrl", logs.loki_query_url)
pulumi.export("grafanaAdminPassword", grafana_access.admin_password)
pulumi.export("criticalAlertsGoTo", "pagerduty" if settings.alerting.pagerduty.enabled else "slack")
if settings.metrics.federation_endpoint:
    # What the stacks of other clusters federating from this one read (metrics.federation[].stack).
    pulumi.export("federationUrl", f"https://{settings.metrics.federation_endpoint.host}")
    pulumi.export(FEDERATION_PASSWORD, web_auth.passwords[(PROMETHEUS.name, FEDERATION_CLIENT)])
