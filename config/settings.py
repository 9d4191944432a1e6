"""Every stack setting, as frozen dataclasses. These classes are the schema.

Keys are the camelCase form of the field names, under the `webhook-monitoring:` namespace:
`prometheus.retention_size` is `webhook-monitoring:prometheus.retentionSize`. Defaults are
production-grade; a `PerEnvironment` default differs between dev and prod. Secrets are not
here: they are top-level secret keys listed in `config/secrets.py`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal, Optional

from config.schema import PerEnvironment, at_least, between, non_empty, setting
from policy.ebs import GP3
from config.types import (
    AwsRegion,
    Cpu,
    DnsLabel,
    Duration,
    Email,
    HelmValues,
    Hostname,
    HttpsUrl,
    KmsKeyArn,
    Memory,
    OidcProviderArn,
    PortName,
    Size,
    SlackChannel,
    Url,
    label_value,
)

Environment = Literal["dev", "staging", "prod"]


def _cidrs(values: tuple[str, ...]) -> Optional[str]:
    """IPv4 or IPv6 CIDR blocks, host bits clear (what a NetworkPolicy ipBlock takes)."""
    for value in values:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:
            return f"CIDR blocks such as 10.0.0.0/16 (host bits clear); {value!r} is not one"
        if "/" not in value:
            return f"CIDR blocks with a prefix length, such as {value}/32"
    return None


@dataclass(frozen=True)
class ClusterSettings:
    name: str = setting(
        "Cluster name: the `cluster` label on every series and alert, and the prefix of AWS names.",
        example="webhook-prod-use1",
    )
    region: AwsRegion = setting("AWS region of the cluster and the buckets.", default="us-east-1")
    infra_stack: Optional[str] = setting(
        "Fully qualified name of the cluster's infrastructure stack (the Pulumi stack that made the EKS cluster) to read the kubeconfig and "
        "OIDC provider from. Leave unset to give them explicitly below.",
        default=None,
        example="acme/webhook-infra/prod",
    )
    kubeconfig_output: str = setting("Output of the infrastructure stack holding the kubeconfig.", default="kubeconfig")
    oidc_provider_arn_output: str = setting(
        "Output of the infrastructure stack holding the EKS OIDC provider ARN.", default="oidcProviderArn"
    )
    oidc_issuer_url_output: str = setting(
        "Output of the infrastructure stack holding the EKS OIDC issuer URL.", default="oidcIssuerUrl"
    )
    oidc_provider_arn: Optional[OidcProviderArn] = setting(
        "EKS OIDC provider ARN, when there is no infrastructure stack.",
        default=None,
        example="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
    )
    oidc_issuer_url: Optional[HttpsUrl] = setting(
        "EKS OIDC issuer URL, when there is no infrastructure stack.",
        default=None,
        example="https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
    )
    kube_context: Optional[str] = setting(
        "Context of the ambient kubeconfig to use when there is no infrastructure stack "
        "(unset: the kubeconfig's current context).",
        default=None,
        example="webhook-dev",
    )
    availability_zones: tuple[str, ...] = setting(
        "The cluster's availability zones, three of them: Mimir's replication zones (and so its three "
        "copies of every series) are pinned one to each, Loki's write replicas spread over them "
        "(empty: `<region>a`, `<region>b`, `<region>c`). docs/tenancy.md says how to pin the zones of "
        "a stack deployed before they were pinned.",
        default=[], example=["us-east-1a", "us-east-1b", "us-east-1c"],
    )


@dataclass(frozen=True)
class VolumeProfile:
    name: DnsLabel = setting("Name of the profile, which a workload's `volumeProfile` names.", example="fast")
    iops: Optional[int] = setting(
        "Provisioned IOPS of each volume (unset: the gp3 baseline, 3000).", default=None, unit="IOPS",
        check=between(GP3.baseline_iops, GP3.max_iops), example=6000,
    )
    throughput: Optional[int] = setting(
        "Provisioned throughput of each volume (unset: the gp3 baseline, 125).", default=None, unit="MiB/s",
        check=between(GP3.baseline_throughput, GP3.max_throughput), example=250,
    )


@dataclass(frozen=True)
class StorageSettings:
    class_name: Optional[DnsLabel] = setting(
        "Name of the gp3 StorageClass every volume uses: encrypted, at gp3's baseline performance (3000 IOPS, "
        "125 MiB/s); a workload's `volumeProfile` gives its volumes more (unset: `<instance>-gp3`, or `gp3` "
        "under the legacy naming; see `tenancy.naming`).",
        default=None, example="gp3",
    )
    kms_key_id: Optional[KmsKeyArn] = setting(
        "KMS key ARN for EBS encryption (unset: the account's default EBS key).",
        default=None,
        example="arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    )
    profiles: tuple[VolumeProfile, ...] = setting(
        "gp3 performance profiles, one VolumeAttributesClass each. A workload's volumes take the profile its "
        "`volumeProfile` names; the volume must be large enough for it (at most 500 IOPS per GiB, 0.25 MiB/s per "
        "IOPS), and a profile's numbers can be changed on existing volumes (docs/operations/volumes.md). Grafana's "
        "and Mimir's charts name no attributes class on their claims: their volumes keep the baseline.",
        default=[], example=[{"name": "fast", "iops": 6000, "throughput": 250}],
    )
    reclaim_policy: Literal["Retain", "Delete"] = setting(
        "What happens to a volume when its claim is deleted.", default=PerEnvironment("Delete", "Retain")
    )


@dataclass(frozen=True)
class BucketSettings:
    kms_key_arn: Optional[KmsKeyArn] = setting(
        "KMS key ARN for SSE-KMS on both buckets (unset: SSE-S3).",
        default=None,
        example="arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    )
    versioning: bool = setting(
        "Keep noncurrent object versions (expired after `noncurrentExpiration`).",
        default=PerEnvironment(False, True),
    )
    noncurrent_expiration: Duration = setting(
        "How long a noncurrent object version is kept when versioning is on.", default="7d", unit="days",
        check=lambda d: None if d.seconds >= 86400 else "at least 1d (S3 counts whole days)",
    )
    force_destroy: bool = setting(
        "Let `pulumi destroy` delete non-empty buckets.", default=PerEnvironment(True, False)
    )


@dataclass(frozen=True)
class Resources:
    cpu_request: Cpu = setting("CPU request.", default="100m", unit="cores")
    memory_request: Memory = setting("Memory request.", default="256Mi", unit="bytes")
    cpu_limit: Optional[Cpu] = setting("CPU limit (unset: none).", default=None, unit="cores", example="1")
    memory_limit: Memory = setting("Memory limit.", default="512Mi", unit="bytes")


@dataclass(frozen=True)
class RemoteWriteQueue:
    capacity: int = setting("Samples buffered per shard.", default=10000, unit="samples", check=at_least(1))
    min_shards: int = setting("Minimum shards.", default=1, check=at_least(1))
    max_shards: int = setting("Maximum shards.", default=50, check=at_least(1))
    max_samples_per_send: int = setting("Samples per request.", default=2000, unit="samples", check=at_least(1))
    batch_send_deadline: Duration = setting("Longest wait before a partial batch is sent.", default="5s")


@dataclass(frozen=True)
class PrometheusSettings:
    retention: Duration = setting("Hot retention on the Prometheus volume.", default="15d")
    retention_size: Size = setting(
        "Size cap of the hot TSDB; the oldest blocks go first past it.", default="50GB", unit="bytes"
    )
    volume_size: Size = setting("Size of each Prometheus volume (gp3).", default="100Gi", unit="bytes")
    volume_profile: Optional[DnsLabel] = setting(
        "`storage.profiles` entry giving each Prometheus volume its IOPS and throughput (unset: the gp3 baseline).",
        default=None, example="fast",
    )
    replicas: int = setting("Prometheus replicas.", default=PerEnvironment(1, 2), check=between(1, 10))
    expected_series: int = setting(
        "Series each replica is sized to hold in memory (its head): `resources.memoryLimit` must hold "
        "them at the measured bytes per series with 30% to spare (docs/operations/capacity.md), and "
        "PrometheusHeadSeriesAboveSizing warns past them.",
        default=PerEnvironment(200_000, 600_000), unit="series", check=between(1000, 100_000_000),
    )
    scrape_interval: Duration = setting("Default scrape interval.", default="30s")
    evaluation_interval: Duration = setting("Rule evaluation interval.", default="30s")
    resources: Resources = setting(
        "Requests and limits of each Prometheus pod. The requests default to the load benchmark's measured "
        "use at the default `expectedSeries` (docs/operations/capacity.md), the limits to 4000Mi and a core.",
        default=PerEnvironment(
            {"cpuRequest": "60m", "memoryRequest": "730Mi", "cpuLimit": "1000m", "memoryLimit": "4000Mi"},
            {"cpuRequest": "160m", "memoryRequest": "1989Mi", "cpuLimit": "1000m", "memoryLimit": "4000Mi"}),
    )
    remote_write_queue: RemoteWriteQueue = setting("Remote write queue to the long-term store.")
    remote_write_drop: tuple[str, ...] = setting(
        "Metric-name regexes not sent to the long-term store: high-cardinality series worth "
        "nothing after 15 days.",
        default=[
            "apiserver_request_duration_seconds_bucket",
            "apiserver_request_sli_duration_seconds_bucket",
            "etcd_request_duration_seconds_bucket",
            "apiserver_response_sizes_bucket",
            "rest_client_request_duration_seconds_bucket",
            "workqueue_.*",
            "go_gc_.*",
            "prometheus_.*",
            "scrape_.*",
            # The latency histogram per pod and customer endpoint: the long-term store keeps the
            # service's bucket rates (service_le:...) and quantiles instead.
            "webhook_delivery_duration_seconds_bucket",
            # The per-endpoint-and-outcome rates the other recorded series derive from.
            "service_endpoint_status:.*",
        ],
    )


@dataclass(frozen=True)
class LongTermStorageSettings:
    retention: Duration = setting(
        "How long the long-term store (Mimir compactor) keeps blocks.", default="90d", unit="days"
    )
    bucket_expiration: Duration = setting(
        "S3 lifecycle expiry of the metrics bucket: a safety net a little longer than `retention`.",
        default="97d",
        unit="days",
    )
    replicas: int = setting(
        "Replicas of Mimir's ingesters and store-gateways: 3 or more keep a copy of every series in each "
        "availability zone (replication factor 3); the stateless components run at most 2.",
        default=PerEnvironment(1, 3),
        check=between(1, 10),
    )
    expected_series: int = setting(
        "Active series the long-term store is sized for: what Prometheus remote-writes (its head series "
        "less `prometheus.remoteWriteDrop`), one replica's. The load benchmark's 20 pods x 2,000 endpoints "
        "send about 160,000 (docs/operations/capacity.md).",
        default=PerEnvironment(50_000, 250_000), unit="series", check=between(1000, 100_000_000),
    )
    queries_per_second: float = setting(
        "Queries the long-term store is sized to answer (dashboards over more than the hot tier's days).",
        default=1, unit="queries/s", check=between(0.1, 10_000),
    )
    ingester_volume_size: Size = setting("Volume of each Mimir ingester.", default=PerEnvironment("20Gi", "50Gi"))
    store_gateway_volume_size: Size = setting("Volume of each store-gateway.", default="20Gi")
    compactor_volume_size: Size = setting("Volume of the compactor.", default="20Gi")


def _url_path(path: str) -> Optional[str]:
    """The path Prometheus requests: one URL path (Prometheus escapes a `?` or `#` into it, so a query
    is never sent; query parameters are not supported here)."""
    if path.startswith("/") and not any(ch in path for ch in "?# "):
        return None
    return "a URL path: '/' first, such as /metrics, without '?', '#' or spaces (Prometheus escapes them into the path)"


@dataclass(frozen=True)
class ScrapeTarget:
    name: DnsLabel = setting("ServiceMonitor name.", example="webhook-api")
    namespace: DnsLabel = setting("Namespace of the service.", example="webhook-delivery")
    selector: dict[str, str] = setting(
        "Labels of the Kubernetes Service to scrape (at least one: an empty selector takes every Service).",
        example={"app.kubernetes.io/name": "webhook-api"},
        check=lambda v: None if v else "at least one label",
    )
    port: PortName = setting("Name of the Service port exposing metrics (its name, not its number).", default="metrics")
    path: str = setting("Metrics path.", default="/metrics", check=_url_path)
    interval: Duration = setting("Scrape interval.", default="30s")
    scrape_timeout: Duration = setting("Scrape timeout, shorter than the interval.", default="10s")
    sample_limit: int = setting(
        "Samples per scrape above which the whole scrape fails (a guard against a cardinality blow-up).",
        default=50000,
        check=at_least(1),
    )
    label_limit: int = setting("Labels per series above which the scrape fails.", default=30, check=at_least(1))


@dataclass(frozen=True)
class GraphiteExporterSettings:
    enabled: bool = setting(
        "Run graphite_exporter, turning the service's Graphite/StatsD-style metrics into the "
        "Prometheus metrics the rules use.",
        default=False,
    )
    replicas: int = setting("graphite_exporter replicas.", default=1, check=between(1, 5))
    namespace: DnsLabel = setting(
        "Namespace of the service whose Graphite metrics the exporter converts: its series, alerts "
        "and dashboards are that service's, not the exporter's.",
        default="webhook-delivery",
    )
    service: DnsLabel = setting("Name of that service (the `service` label).", default="webhook-delivery")


@dataclass(frozen=True)
class ProbeTarget:
    name: DnsLabel = setting("Probe name.", example="webhook-api-health")
    url: Url = setting("URL probed.", example="https://webhooks.example.com/healthz")
    module: Literal["http_2xx", "http_post_2xx", "tcp_connect"] = setting(
        "Blackbox exporter module.", default="http_2xx"
    )
    interval: Duration = setting("Probe interval.", default="30s")


@dataclass(frozen=True)
class FederationSource:
    cluster: str = setting("Cluster label of the federated Prometheus.", example="webhook-prod-euw1")
    url: Url = setting(
        "Base URL of the source Prometheus (its /federate is scraped).",
        example="https://prometheus.euw1.example.com",
    )
    credentials_secret: Optional[DnsLabel] = setting(
        "Name of the Secret (`username`, `password`) the program makes in the monitoring namespace for the "
        "source's basic auth, from the password `stack` exports or else the source's entry in the "
        "`federationCredentials` secret (unset: no auth, only for a source reached over a private network).",
        default=None,
        example="federation-euw1",
    )
    stack: Optional[str] = setting(
        "Fully qualified name of the source cluster's stack of this program: the program reads its "
        "`federationPassword` output (the `federation` client's credentials for the source's "
        "authenticating proxy) into `credentialsSecret` (docs/tenancy.md, \"Federation\").",
        default=None, example="acme/webhook-monitoring/prod-euw1",
    )


@dataclass(frozen=True)
class FederationEndpoint:
    host: Hostname = setting(
        "Host name other clusters federate from: an ingress (TLS, the Grafana ingress class) routes "
        "`/federate` alone to Prometheus' authenticating proxy.", example="prometheus.euw1.webhooks.example.com",
    )
    tls_secret: DnsLabel = setting("Secret holding the TLS certificate for the host.", default="prometheus-federation-tls")
    allowed_source_cidrs: tuple[str, ...] = setting(
        "Addresses the ingress controller accepts federation requests from (the other clusters' NAT "
        "gateways; empty: any, each request still needs the `federation` credentials). The controller must "
        "see clients' own addresses (the load balancer preserving them).",
        default=[], check=_cidrs, example=["203.0.113.10/32"],
    )


@dataclass(frozen=True)
class MetricsSettings:
    services: tuple[ScrapeTarget, ...] = setting(
        "Every service of the webhook delivery system to scrape.",
        default=[
            {
                "name": "webhook-delivery",
                "namespace": "webhook-delivery",
                "selector": {"app.kubernetes.io/part-of": "webhook-delivery"},
            }
        ],
        check=non_empty,
    )
    additional_services: tuple[ScrapeTarget, ...] = setting(
        "Services scraped besides `services` (its default included): a service added without restating "
        "the default list.",
        default=[],
        example=[{"name": "webhook-dispatcher", "namespace": "webhook-delivery",
                  "selector": {"app.kubernetes.io/name": "webhook-dispatcher"}}],
    )
    failure_statuses: tuple[str, ...] = setting(
        "Values of the `status` label of webhook_deliveries_total that count as a failed delivery.",
        default=["error"],
        check=non_empty,
    )
    track_label: str = setting(
        "Pod label that tells canary from stable: copied onto the services' series, and what the "
        "A/B dashboard compares by.",
        default="track",
    )
    latency_buckets: tuple[float, ...] = setting(
        "Upper bounds of the `webhook_delivery_duration_seconds` buckets kept at scrape time (with "
        "`+Inf`); the service's other buckets are dropped. Each bucket is one series per pod and "
        "customer endpoint: client_golang's twelve default buckets make the histogram most of Prometheus' "
        "memory. Must include `alerting.thresholds.latencyP95`, so HighLatency stays exact.",
        default=[0.05, 0.1, 0.25, 0.5, 1, 2.5],
        unit="seconds",
        check=non_empty,
    )
    graphite_exporter: GraphiteExporterSettings = setting("Graphite metrics exporter, for a service that still sends Graphite metrics.")
    probes: tuple[ProbeTarget, ...] = setting("HTTP endpoints checked by synthetic probes.", default=[])
    federation: tuple[FederationSource, ...] = setting(
        "Prometheus servers of other clusters whose recorded series this one federates.", default=[]
    )
    federation_endpoint: Optional[FederationEndpoint] = setting(
        "Serve `/federate` to other clusters through the ingress controller (unset: not served).",
        default=None, example={"host": "prometheus.euw1.webhooks.example.com"},
    )
    kube_state_metrics_job: str = setting(
        "`job` label of the kube-state-metrics series the workload alerts read (restarts, waiting "
        "reasons, pod phases, replicas): this stack's kube-state-metrics, or a platform's that this "
        "Prometheus scrapes (`tenancy.mode` join: its monitor gives the series this job).",
        default="kube-state-metrics", check=label_value,
    )

    @property
    def scraped_services(self) -> tuple[ScrapeTarget, ...]:
        """Every service scraped: `services`, then `additionalServices`."""
        return self.services + self.additional_services


@dataclass(frozen=True)
class AlertThresholds:
    error_ratio: float = setting(
        "Share of failed deliveries over 5m that pages (WebhookHighErrorRate).", default=0.05,
        unit="ratio", check=between(0.0001, 1),
    )
    error_ratio_for: Duration = setting("How long the error ratio must stay above the threshold.", default="2m")
    queue_depth: int = setting(
        "Queued webhooks, summed across replicas, that page (WebhookQueueBacklog).", default=10000,
        unit="messages", check=at_least(1),
    )
    queue_depth_for: Duration = setting(
        "How long the queue must be above the threshold within twice this window (so a sawtooth above "
        "it most of the time pages, a single spike does not).",
        default="5m", check=lambda d: None if d.seconds % 60 == 0 else "whole minutes (the queue is sampled each minute)",
    )
    queue_growth_horizon: Duration = setting(
        "Warn when the queue, at its growth over the last 30 minutes, would pass `queueDepth` within "
        "this long (WebhookQueueGrowing).",
        default="1h",
    )
    stall_queue_depth: int = setting(
        "Queued webhooks, summed across replicas, that with no delivery at all for 5 minutes page "
        "(WebhookDeliveriesStalled). Raise it for a service that holds webhooks waiting for a "
        "scheduled retry while nothing else is sent.",
        default=1, unit="messages", check=at_least(1),
    )
    latency_p95: float = setting(
        "P95 delivery latency that warns (HighLatency).", default=0.5, unit="seconds", check=at_least(0.001)
    )
    latency_p95_for: Duration = setting("How long P95 latency must stay above the threshold.", default="10m")
    slo_target: float = setting(
        "Delivery success SLA target over 30 days, for the burn-rate alerts.", default=0.999,
        unit="ratio", check=between(0.9, 0.99999),
    )
    anomaly_z_score: float = setting(
        "Standard deviations from the baseline (the same hour of the previous weeks) that count as "
        "anomalous traffic.",
        default=3.0, check=at_least(1),
    )
    anomaly_baseline_weeks: int = setting(
        "Weeks of history the traffic baseline is built from; Prometheus must keep them "
        "(prometheus.retention).",
        default=2, unit="weeks", check=between(1, 4),
    )
    keep_firing_for: Duration = setting(
        "How long a firing alert on a measurement (error ratio, latency, queue, targets, workloads, "
        "stores) keeps firing after its condition last held: scrape gaps and a value crossing its "
        "threshold back and forth neither resolve it nor page again.",
        default="5m",
    )
    workload_for: Duration = setting(
        "How long a workload problem of the team's namespaces (pods crash looping, waiting, Pending, "
        "replicas unavailable) lasts before it is told to the team.",
        default="15m",
    )


@dataclass(frozen=True)
class TimeInterval:
    name: DnsLabel = setting("Interval name.", example="weekend")
    weekdays: tuple[str, ...] = setting(
        "Weekdays or ranges, Alertmanager syntax (`monday:friday`, `saturday`).", default=[],
        example=["saturday", "sunday"],
    )
    times: tuple[str, ...] = setting(
        "Time ranges `HH:MM-HH:MM` (UTC), start before end (split a range that crosses midnight).",
        default=[], example=["00:00-08:00"],
    )


@dataclass(frozen=True)
class AlertmanagerSettings:
    replicas: int = setting("Alertmanager replicas (clustered).", default=PerEnvironment(1, 3), check=between(1, 7))
    retention: Duration = setting("How long alert and silence data is kept.", default="720h")
    volume_size: Size = setting("Volume of each Alertmanager.", default="5Gi")
    volume_profile: Optional[DnsLabel] = setting(
        "`storage.profiles` entry giving each Alertmanager volume its IOPS and throughput (unset: the gp3 baseline).",
        default=None, example="fast",
    )
    resources: Resources = setting(
        "Requests and limits of each Alertmanager pod.",
        default={"cpuRequest": "50m", "memoryRequest": "128Mi", "memoryLimit": "256Mi"},
    )
    group_wait: Duration = setting("Wait before the first notification of a group.", default="30s")
    group_interval: Duration = setting("Wait before notifying of new alerts in a group.", default="5m")
    repeat_interval: Duration = setting("Wait before repeating a notification.", default="12h")
    resolve_timeout: Duration = setting("When an alert without an end time counts as resolved.", default="5m")
    slack_channel: SlackChannel = setting("Slack channel for warnings.", default="#webhook-alerts")
    warning_mute_intervals: tuple[TimeInterval, ...] = setting(
        "Times when warnings are not sent to Slack (critical alerts always page).", default=[]
    )
    copy_pages_to_slack: bool = setting(
        "Post every page to the team's Slack channel too, so the team sees what on-call is handling.",
        default=PerEnvironment(False, True),
    )


@dataclass(frozen=True)
class PagerDutySettings:
    enabled: bool = setting(
        "Create PagerDuty resources and page on critical alerts (off: critical alerts go to Slack).",
        default=PerEnvironment(False, True),
    )
    service_name: Optional[str] = setting(
        "PagerDuty service (and escalation policy) name: PagerDuty refuses a second service of the same "
        "name (unset: `Webhook Delivery (<cluster.name>, <environment>)`, or `Webhook Delivery` under "
        "the legacy naming; see `tenancy.naming`).",
        default=None, example="Webhook Delivery",
    )
    escalation_users: tuple[Email, ...] = setting(
        "E-mails of PagerDuty users paged in turn.", default=[], example=["oncall@example.com"]
    )
    escalation_schedules: tuple[str, ...] = setting(
        "Names of PagerDuty schedules paged in turn.", default=[], example=["Webhook Primary"]
    )
    escalation_policy_id: Optional[str] = setting(
        "An existing escalation policy to use instead of creating one.", default=None, example="PABC123"
    )
    escalation_delay: Duration = setting(
        "Wait before escalating to the next level (PagerDuty counts whole minutes, at least 1).",
        default="30m", check=lambda d: None if d.seconds >= 60 else "at least 1m",
    )
    acknowledgement_timeout: Optional[Duration] = setting(
        "An acknowledged incident re-triggers after this long.", default="30m"
    )
    auto_resolve_timeout: Optional[Duration] = setting(
        "An open incident resolves itself after this long (unset: never).", default=None, example="4h"
    )
    slack_workspace_id: Optional[str] = setting(
        "Slack workspace for the PagerDuty Slack connection (unset: no connection).", default=None,
        example="T0123ABCD",
    )
    slack_channel_id: Optional[str] = setting(
        "Slack channel for the PagerDuty Slack connection.", default=None, example="C0123ABCD"
    )


@dataclass(frozen=True)
class PlatformSettings:
    slack_channel: Optional[SlackChannel] = setting(
        "Slack channel of the cluster's own alerts (the charts' Kubernetes, node and storage alerts), "
        "which the webhook team does not handle; with the `platformPagerdutyRoutingKey` secret set, "
        "the critical ones page that service instead. A channel other than the team's needs the "
        "`platformSlackWebhookUrl` secret: a Slack app's incoming webhook posts only to the channel it was "
        "made for. Unset: the team's channel, each message marked as the platform's.",
        default=None, example="#platform-alerts",
    )
    team_label: str = setting(
        "Value of the `team` label of the alerts on the stores' internals (Mimir, Loki), which the "
        "platform that runs them handles: they route like the cluster's alerts.",
        default="platform", check=label_value,
    )


@dataclass(frozen=True)
class NamedReceiver:
    name: DnsLabel = setting(
        "Name the routes give. Its secret is the entry of this name in the `receiverSecrets` secret. Not the "
        "name of one of the program's own receivers (slack, pagerduty, platform, platform-pagerduty, heartbeat, "
        "null).",
        example="payments-oncall",
    )
    slack_channel: Optional[SlackChannel] = setting(
        "Slack channel its incoming webhook posts to (a Slack app's webhook posts to one channel only); unset "
        "for a PagerDuty receiver.",
        default=None, example="#payments-alerts",
    )
    pagerduty: bool = setting(
        "Page a PagerDuty service through its Events API v2 routing key instead of posting to Slack.", default=False
    )


@dataclass(frozen=True)
class AlertRoute:
    alerts: tuple[str, ...] = setting(
        "Names of the stack's alerts this route sends (its alert rules, the log alerts, and the charts' "
        "Prometheus and Alertmanager alerts that guard the pipeline; Watchdog excepted).",
        check=non_empty, example=["WebhookQueueGrowing"],
    )
    receiver: DnsLabel = setting(
        "Where they go: a receiver of `alerting.receivers`, or one of the program's: slack (the team's "
        "channel), pagerduty (when on), platform, or null (nowhere).",
        example="payments-oncall",
    )
    continue_: bool = setting(
        "Also send them where they would go without this route (Alertmanager's `continue`).", default=False
    )


@dataclass(frozen=True)
class AlertOverride:
    alert: str = setting("Name of one of the stack's alert rules.", example="WebhookTrafficAnomaly")
    enabled: bool = setting("Deploy the rule; false: Prometheus does not evaluate it at all.", default=True)
    severity: Optional[Literal["critical", "warning", "info"]] = setting(
        "Severity instead of the rule's own, and with it where the alert goes (critical pages).",
        default=None, example="warning",
    )
    for_: Optional[Duration] = setting(
        "How long its condition must hold before it fires, instead of the rule's own (an alert whose `for` "
        "is a key of `alerting.thresholds` takes it there).",
        default=None, example="15m",
    )
    threshold: Optional[float] = setting(
        "Its threshold, for an alert that compares one number no other key holds (docs/alerting.md lists "
        "them; the others are keys of `alerting.thresholds`).",
        default=None, example=0.25,
    )


@dataclass(frozen=True)
class AlertingSettings:
    thresholds: AlertThresholds = setting("Alert thresholds and `for` durations.")
    alertmanager: AlertmanagerSettings = setting("Alertmanager.")
    pagerduty: PagerDutySettings = setting("PagerDuty.")
    platform: PlatformSettings = setting("Where the alerts that are not the webhook team's go.")
    receivers: tuple[NamedReceiver, ...] = setting(
        "Receivers of the stack's own besides the program's (the team's Slack channel, PagerDuty, the "
        "platform's), each with its secret in `receiverSecrets`: where `routes` send chosen alerts.",
        default=[], example=[{"name": "payments-oncall", "slackChannel": "#payments-alerts"}],
    )
    routes: tuple[AlertRoute, ...] = setting(
        "Alerts sent to a receiver other than their severity's, by name, before any other routing; the "
        "first route naming an alert takes it.",
        default=[], example=[{"alerts": ["WebhookQueueGrowing"], "receiver": "payments-oncall"}],
    )
    alert_overrides: tuple[AlertOverride, ...] = setting(
        "One alert rule turned off, or given another severity, `for` or threshold.",
        default=[], example=[{"alert": "WebhookTrafficAnomaly", "enabled": False}],
    )
    runbook_base_url: Url = setting(
        "Where this repository's `docs/runbooks/` is browsable (every page and Slack message links its alert's "
        "runbook there); each alert's runbook_url is this plus `<alert>.md`.",
        example="https://github.com/<owner>/webhook-monitoring/blob/main/docs/runbooks/",
    )


def _group_name(name: str) -> Optional[str]:
    """Group and claim names go into Grafana's JMESPath role mapping as quoted literals."""
    return "a name without quotes or backslashes" if any(ch in name for ch in "'\\\"") else None


def _group_names(names: tuple[str, ...]) -> Optional[str]:
    return next((problem for problem in map(_group_name, names) if problem), None)


@dataclass(frozen=True)
class SsoSettings:
    name: str = setting("Login button label.", default="SSO")
    client_id: str = setting("OAuth client ID.", example="0oa1exampleclientid")
    auth_url: HttpsUrl = setting("OAuth authorize URL.", example="https://example.okta.com/oauth2/v1/authorize")
    token_url: HttpsUrl = setting("OAuth token URL.", example="https://example.okta.com/oauth2/v1/token")
    api_url: HttpsUrl = setting("OAuth user-info URL.", example="https://example.okta.com/oauth2/v1/userinfo")
    scopes: tuple[str, ...] = setting(
        "OAuth scopes; `groups` asks the provider for the groups claim the roles are mapped from.",
        default=["openid", "email", "profile", "groups"],
    )
    allowed_domains: tuple[str, ...] = setting(
        "E-mail domains allowed to log in.", check=non_empty, example=["example.com"]
    )
    groups_claim: str = setting(
        "Claim of the ID token or user info that lists the user's groups.", default="groups", check=_group_name
    )
    admin_groups: tuple[str, ...] = setting("Groups whose members are Grafana Admins.", default=["sre"],
                                            check=_group_names)
    editor_groups: tuple[str, ...] = setting("Groups whose members are Editors.", default=["engineering"],
                                             check=_group_names)
    viewer_groups: tuple[str, ...] = setting(
        "Groups whose members are Viewers.", default=[], example=["support"], check=_group_names
    )
    strict_role_mapping: bool = setting(
        "Refuse the login of a user in none of the groups above (off: such a user becomes a Viewer).", default=True
    )


@dataclass(frozen=True)
class FolderPermission:
    role: Optional[Literal["Viewer", "Editor", "Admin"]] = setting(
        "Grafana basic role (set role or team).", default=None, example="Viewer"
    )
    team: Optional[str] = setting("Grafana team name (set role or team).", default=None, example="sre")
    permission: Literal["View", "Edit", "Admin"] = setting("What they may do.", default="View")


@dataclass(frozen=True)
class UnitCosts:
    cpu_core_hour: float = setting(
        "Price of one CPU core for an hour.", default=0.0416, unit="USD", check=at_least(0)
    )
    memory_gib_hour: float = setting(
        "Price of one GiB of memory for an hour.", default=0.0052, unit="USD", check=at_least(0)
    )
    storage_gib_month: float = setting(
        "Price of one GiB of gp3 for a month.", default=0.08, unit="USD", check=at_least(0)
    )
    iops_month: float = setting(
        "Price of one provisioned gp3 IOPS above the 3,000 included, for a month.", default=0.005, unit="USD",
        check=at_least(0),
    )
    throughput_mibps_month: float = setting(
        "Price of one MiB/s of provisioned gp3 throughput above the 125 included, for a month.", default=0.04,
        unit="USD", check=at_least(0),
    )
    s3_gib_month: float = setting(
        "Price of one GiB stored in S3 Standard for a month.", default=0.023, unit="USD", check=at_least(0)
    )
    s3_write_requests_per_1000: float = setting(
        "Price of a thousand S3 PUT, COPY, POST or LIST requests.", default=0.005, unit="USD", check=at_least(0)
    )
    s3_read_requests_per_1000: float = setting(
        "Price of a thousand S3 GET and other requests.", default=0.0004, unit="USD", check=at_least(0)
    )
    cross_zone_gib: float = setting(
        "Price of one GiB sent between availability zones of a region (both directions billed, "
        "0.01 USD each).", default=0.02, unit="USD", check=at_least(0)
    )


@dataclass(frozen=True)
class ExtraPanel:
    dashboard: str = setting("UID of the stack's dashboard the panel is added to.", example="webhook-overview")
    title: str = setting("Panel title.", example="Deliveries retried")
    expr: str = setting(
        "PromQL the panel graphs (over the data source the dashboard's `datasource` variable picks).",
        example="sum by (service) (rate(webhook_retries_total[5m]))",
    )
    legend: Optional[str] = setting("Legend of each series, Grafana's `{{label}}` syntax (unset: the series' labels).",
                                    default=None, example="{{service}}")
    unit: str = setting("Grafana unit id of the values (`short`, `s`, `percentunit`, `reqps`, `bytes`, ...).",
                        default="short")
    description: Optional[str] = setting("What the panel shows, in its info tooltip.", default=None,
                                         example="Retries per second, per service.")


@dataclass(frozen=True)
class GrafanaSettings:
    host: Optional[Hostname] = setting(
        "Host name Grafana is served on (ingress with TLS); set this or `domain`.", default=None,
        example="grafana.example.com",
    )
    domain: Optional[Hostname] = setting(
        "DNS domain under which each stack's Grafana is served as `<tenancy.instance>.<domain>`, when `host` "
        "is unset: stack files of a fleet differ in their cluster block only.", default=None,
        example="grafana.webhooks.example.com",
    )
    ingress_class: str = setting("Ingress class.", default="nginx")
    tls_secret: DnsLabel = setting("Secret holding the TLS certificate for the host.", default="grafana-tls")
    cluster_issuer: Optional[DnsLabel] = setting(
        "cert-manager ClusterIssuer that issues the host's certificate into `tlsSecret` (through the "
        "ingress annotation); null when the Secret is made by other means.",
        default="letsencrypt-prod",
    )
    volume_size: Size = setting("Grafana volume.", default="10Gi")
    sso: Optional[SsoSettings] = setting(
        "Generic OAuth SSO (unset: SSO off).", default=None, example={"clientId": "...", "allowedDomains": ["example.com"]}
    )
    admin_password_rotation: int = setting(
        "Raise by one to give the break-glass admin a new generated password: Grafana restarts and takes "
        "it from its Secret (docs/operations/grafana-admin.md).",
        default=0, check=at_least(0),
    )
    folder_permissions: tuple[FolderPermission, ...] = setting(
        "Who may see and change the dashboard folders (set by a Job inside the cluster).",
        default=[{"role": "Viewer", "permission": "View"}, {"role": "Editor", "permission": "Edit"}],
    )
    extra_panels: tuple[ExtraPanel, ...] = setting(
        "Graphs of the stack's own, each added to one of the stack's dashboards in a last row of its own "
        "(`Added by the stack`).",
        default=[], example=[{"dashboard": "webhook-overview", "title": "Deliveries retried",
                              "expr": "sum by (service) (rate(webhook_retries_total[5m]))"}],
    )
    revenue_per_delivery: float = setting(
        "Revenue attributed to one successful delivery, for the business dashboard.", default=0.002, unit="USD",
        check=at_least(0),
    )
    unit_costs: UnitCosts = setting("Unit prices for the cost dashboard.")


@dataclass(frozen=True)
class LoggingSettings:
    agent: Literal["alloy", "promtail"] = setting(
        "Log agent on every node. Promtail reached end of life on 2026-03-02.", default="alloy"
    )
    retention: Duration = setting("How long logs are kept (Loki compactor).", default="14d", unit="days")
    bucket_expiration: Duration = setting(
        "S3 lifecycle expiry of the logs bucket: a safety net a little longer than `retention`.",
        default="16d",
        unit="days",
    )
    mode: Literal["Monolithic", "SimpleScalable"] = setting(
        "Loki deployment mode: one binary (dev), or read/write/backend paths scaled apart (prod).",
        default=PerEnvironment("Monolithic", "SimpleScalable"),
    )
    replicas: int = setting("Replicas of each Loki component.", default=PerEnvironment(1, 3), check=between(1, 10))
    volume_size: Size = setting("Volume of each Loki pod that needs disk.", default="10Gi")
    volume_profile: Optional[DnsLabel] = setting(
        "`storage.profiles` entry giving each Loki volume its IOPS and throughput (unset: the gp3 baseline).",
        default=None, example="fast",
    )
    resources: Optional[Resources] = setting(
        "Requests and limits of each Loki pod (unset: sized from `dailyVolume` by Loki's documented "
        "requirements, docs/operations/capacity.md).",
        default=None, example={"cpuRequest": "200m", "memoryRequest": "512Mi", "memoryLimit": "2Gi"},
    )
    agent_resources: Resources = setting(
        "Requests and limits of the log agent on each node.",
        default={"cpuRequest": "50m", "memoryRequest": "128Mi", "memoryLimit": "512Mi"},
    )
    error_burst_lines: int = setting(
        "Error-level log lines of one service in 5 minutes that warn (WebhookLogErrorBurst).",
        default=50, unit="lines", check=at_least(1),
    )
    drop_paths: tuple[str, ...] = setting(
        "Request paths whose access-log lines are dropped as noise.",
        default=["/healthz", "/readyz", "/livez", "/metrics"],
    )
    namespaces: tuple[DnsLabel, ...] = setting(
        "Namespaces whose pods' logs the agent collects (empty: every pod when the stack owns the "
        "cluster, `tenancy.mode` own; the namespaces of `metrics.services`, the graphite exporter's "
        "and the stack's own when it joins a shared one).",
        default=[], example=["webhook-delivery"],
    )
    daily_volume: Size = setting(
        "Log volume the collected pods write in a day: Loki's ingestion limits (a push above them is "
        "refused with 429 and the lines dropped) and the size of its pods follow from it "
        "(docs/operations/capacity.md).",
        default=PerEnvironment("2GB", "20GB"), unit="bytes per day",
    )
    streams: int = setting(
        "Log streams (distinct label sets: pod, container, level...) the collected pods write at once: "
        "Loki refuses new streams past twice this.",
        default=PerEnvironment(1000, 3000), unit="streams", check=between(100, 1_000_000),
    )


@dataclass(frozen=True)
class NetworkPolicySettings:
    ingress_controller_namespace: DnsLabel = setting(
        "Namespace of the ingress controller that serves Grafana (the only way to Grafana).", default="ingress-nginx"
    )
    api_server_cidrs: tuple[str, ...] = setting(
        "Where the API server calls admission webhooks from (the Operator's): on EKS the control plane's "
        "network interfaces in the cluster's VPC; the VPC's CIDR narrows the default.",
        default=["0.0.0.0/0"], check=_cidrs, example=["10.0.0.0/16"],
    )
    federation_client_cidrs: tuple[str, ...] = setting(
        "Addresses of other clusters' Prometheus that federate from this one straight to its pods (through "
        "the authenticating proxy, as the `federation` client), on a private network that keeps their "
        "addresses. Through an ingress the pods see the ingress controller instead: use "
        "`metrics.federationEndpoint`.",
        default=[], check=_cidrs, example=["10.20.0.0/16"],
    )


@dataclass(frozen=True)
class TenancySettings:
    mode: Literal["own", "join"] = setting(
        "How the stack shares its cluster (docs/tenancy.md). `own`: it is the cluster's only monitoring "
        "stack and brings the Prometheus Operator, its CRDs, node-exporter (on the host's port 9100) and "
        "kube-state-metrics. `join`: the cluster's platform already runs them; the platform's Operator "
        "serves this stack's Prometheus and Alertmanager (`pulumi preview` checks that its CRDs are there "
        "at a compatible version), and node and object metrics are scraped from the platform's exporters.",
        default="join",
    )
    naming: Literal["derived", "legacy"] = setting(
        "Names in shared scopes (cluster-scoped objects, the Helm release cluster-scoped objects are named "
        "after, namespaces, the StorageClass, PagerDuty, S3 and IAM). `derived`: from `instance` and "
        "`cluster.name`, so that no two stacks share one. `legacy`: the fixed names of stacks deployed "
        "before names were derived (`kube-prometheus-stack`, `monitoring`, `gp3`, `Webhook Delivery`): "
        "renaming a deployed stack's release, volumes' class or buckets would replace them and lose their "
        "data.",
        default="derived",
    )
    instance: Optional[DnsLabel] = setting(
        "What the derived names start with: unique among the stacks of one cluster, at most 26 characters "
        "(kube-prometheus-stack cuts its names there; unset: `<teamLabel>-<stack>`, the Pulumi stack's "
        "name, a longer one cut and ended with a hash of the whole).",
        default=None, example="webhook-delivery-prod",
    )
    platform_namespace: DnsLabel = setting(
        "Namespace of the platform's kube-prometheus-stack (`join`): its kube-state-metrics and "
        "node-exporter are scraped there, across namespaces.",
        default="monitoring",
    )
    platform_release: DnsLabel = setting(
        "Helm release of the platform's kube-prometheus-stack (`join`): the `app.kubernetes.io/instance` "
        "label of its kube-state-metrics and node-exporter.",
        default="kube-prometheus-stack",
    )


@dataclass(frozen=True)
class Settings:
    environment: Environment = setting("Environment; picks per-environment defaults.", example="prod")
    namespace: Optional[DnsLabel] = setting(
        "Namespace of the monitoring stack; Pod Security `restricted` is enforced in it (unset: "
        "`<instance>-monitoring`, or `monitoring` under the legacy naming; see `tenancy.naming`).",
        default=None, example="monitoring",
    )
    agents_namespace: Optional[DnsLabel] = setting(
        "Namespace of the agents on every node (node-exporter, the log agent): they need the host's "
        "network, processes and paths, which `restricted` forbids, so they run apart at `privileged` "
        "(unset: `<instance>-agents`, or `monitoring-agents` under the legacy naming).",
        default=None, example="monitoring-agents",
    )
    team_label: str = setting(
        "Value of the `team` label that selects the webhook delivery team's monitors and rules.",
        default="webhook-delivery",
        check=label_value,
    )
    protect: bool = setting(
        "Protect stateful resources (buckets, volumes) from deletion.", default=PerEnvironment(False, True)
    )
    tags: dict[str, str] = setting("Tags added to every AWS resource.", default={}, example={"owner": "sre"})
    helm_values: HelmValues = setting(
        "Helm values per chart, merged over the program's (objects key by key; anything else, and `null`, "
        "replaces): an escape hatch for what no setting covers. Listed by `make render`; the chart check "
        "proves the pinned chart reads each. A secret is refused: name the chart's Secret reference instead.",
        default={}, example={"kube-prometheus-stack": {"grafana": {"replicas": 2}}},
    )
    cluster: ClusterSettings = setting("The EKS cluster.")
    storage: StorageSettings = setting("The gp3 StorageClass.")
    buckets: BucketSettings = setting("The S3 buckets of metrics and logs.")
    prometheus: PrometheusSettings = setting("Prometheus (hot tier).")
    long_term_storage: LongTermStorageSettings = setting("Grafana Mimir on S3 (cold tier).")
    metrics: MetricsSettings = setting("What is scraped.")
    alerting: AlertingSettings = setting("Alert rules, Alertmanager, PagerDuty and Slack.")
    grafana: GrafanaSettings = setting("Grafana.")
    logging: LoggingSettings = setting("Loki and the log agent.")
    network_policy: NetworkPolicySettings = setting("Who may reach the stack's pods (network policies).")
    tenancy: TenancySettings = setting("How the stack shares its cluster and accounts with other stacks.")

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"
