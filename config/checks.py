"""Rules that tie settings keys together, checked once every key parsed: one line per problem,
each naming the full key, the value and what is expected."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Any, Iterator, Mapping

from config import naming, sizing
from config.schema import NAMESPACE, keyed_fields
from config.settings import MetricsSettings, Settings, VolumeProfile
from config.types import Size
from policy.aws import TAGS_PER_RESOURCE, lifecycle_outlives_retention, tag_problem
from policy.ebs import gp3_performance_problem, gp3_volume, round_up_gib
from policy.kubernetes import label_key_problem, label_value_problem


def naming_problems(raw: Mapping[str, Any]) -> list[str]:
    """Keys that say how a name is derived, checked on the raw configuration (with the keys' own
    problems, before the names are derived: config/naming.py)."""
    grafana = raw.get("grafana")
    if not isinstance(grafana, dict):
        return []  # the parser reports it
    given = {key for key in ("host", "domain") if grafana.get(key) is not None}
    if not given:
        return [f"{NAMESPACE}:grafana.host: missing, expected a host name, or grafana.domain to derive one from"]
    if len(given) == 2:
        return [f"{NAMESPACE}:grafana.domain: got {grafana['domain']!r}, expected no domain when grafana.host is "
                "set (the host is derived from it otherwise)"]
    return []


def cross_field_problems(s: Settings) -> list[str]:
    """Rules that tie keys together, one line per problem, each naming the full key."""
    ns = NAMESPACE + ":"
    problems: list[str] = []

    def need(ok: bool, key: str, value: object, expected: str) -> None:
        if not ok:
            problems.append(f"{ns}{key}: got {value!r}, expected {expected}")

    c = s.cluster
    explicit = (c.oidc_provider_arn, c.oidc_issuer_url)
    if c.infra_stack is None:
        need(all(explicit), "cluster.oidcProviderArn", c.oidc_provider_arn,
             "both cluster.oidcProviderArn and cluster.oidcIssuerUrl when cluster.infraStack is unset")
    else:
        need(not any(explicit), "cluster.infraStack", c.infra_stack,
             "either cluster.infraStack or cluster.oidcProviderArn/oidcIssuerUrl, not both")
        need(c.kube_context is None, "cluster.kubeContext", c.kube_context,
             "unset when cluster.infraStack is set: the kubeconfig, its context included, comes from that stack")
    # KMS keys are regional: a bucket or volume is encrypted with a key of its own region.
    for key, arn in (("storage.kmsKeyId", s.storage.kms_key_id), ("buckets.kmsKeyArn", s.buckets.kms_key_arn)):
        need(arn is None or arn.split(":")[3] == c.region, key, arn,
             f"a key of cluster.region ({c.region}): AWS encrypts with a KMS key of the resource's own region")
    for key, value in (("cluster.oidcProviderArn", c.oidc_provider_arn), ("cluster.oidcIssuerUrl", c.oidc_issuer_url)):
        issuer_region = re.fullmatch(r".*oidc\.eks\.([a-z0-9-]+)\.amazonaws\.com.*", value or "")
        need(issuer_region is None or issuer_region[1] == c.region, key, value,
             f"the OIDC issuer of an EKS cluster in cluster.region ({c.region})")
    for tag, value in s.tags.items():
        problem = tag_problem(tag, value)
        need(problem is None, "tags", {tag: value}, f"tags AWS takes: {problem}")
    need(len({"app", "environment", *s.tags}) <= TAGS_PER_RESOURCE, "tags", len(s.tags),
         f"at most {TAGS_PER_RESOURCE} tags with the program's own (app, environment): AWS's limit per resource")

    p = s.prometheus
    baseline_weeks = s.alerting.thresholds.anomaly_baseline_weeks
    need(p.retention.seconds >= baseline_weeks * 7 * 86400 + 3600, "alerting.thresholds.anomalyBaselineWeeks",
         baseline_weeks, f"a baseline Prometheus keeps: prometheus.retention ({p.retention.text}) must cover "
         f"{baseline_weeks} weeks and an hour")
    need(s.long_term_storage.retention.seconds > p.retention.seconds, "longTermStorage.retention",
         s.long_term_storage.retention.text, f"longer than prometheus.retention ({p.retention.text})")
    need(p.retention_size.bytes < p.volume_size.bytes, "prometheus.retentionSize", p.retention_size.text,
         f"less than prometheus.volumeSize ({p.volume_size.text}), leaving room for the WAL")
    memory = sizing.memory_limit_for(p.expected_series)
    need(p.resources.memory_limit.bytes >= memory, "prometheus.resources.memoryLimit", p.resources.memory_limit,
         f"at least {memory // sizing.MIB}Mi for prometheus.expectedSeries ({p.expected_series}): the measured "
         f"bytes per series with {sizing.MEMORY_HEADROOM:.0%} to spare (docs/operations/capacity.md)")
    cores = sizing.cpu_limit_for(p.expected_series)
    need(p.resources.cpu_limit is None or p.resources.cpu_limit.cores >= cores, "prometheus.resources.cpuLimit",
         p.resources.cpu_limit, f"unset or at least {cores:g} for prometheus.expectedSeries ({p.expected_series}): "
         f"{sizing.SERIES_PER_CORE} series per core (docs/operations/capacity.md)")
    q = p.remote_write_queue
    buckets = s.metrics.latency_buckets
    need(list(buckets) == sorted(set(buckets)) and all(b > 0 for b in buckets), "metrics.latencyBuckets",
         list(buckets), "positive bounds in increasing order, each once")
    need(s.alerting.thresholds.latency_p95 in buckets, "metrics.latencyBuckets", list(buckets),
         f"a list including alerting.thresholds.latencyP95 ({s.alerting.thresholds.latency_p95:g}), the bound "
         "HighLatency compares the P95 with")
    need(q.min_shards <= q.max_shards, "prometheus.remoteWriteQueue.minShards", q.min_shards,
         f"at most prometheus.remoteWriteQueue.maxShards ({q.max_shards})")

    for key, store in (("longTermStorage", s.long_term_storage), ("logging", s.logging)):
        need(lifecycle_outlives_retention(store.bucket_expiration.days, store.retention.seconds),
             f"{key}.bucketExpiration", store.bucket_expiration.text,
             f"whole days longer than {key}.retention ({store.retention.text}): S3 expires objects by the day")

    profiles = s.storage.profiles
    profile_names = [p.name for p in profiles]
    for i, p in enumerate(profiles):
        need(profile_names.count(p.name) == 1, f"storage.profiles[{i}].name", p.name, "a name no other profile has")
        need(p.iops is not None or p.throughput is not None, f"storage.profiles[{i}]", p.name, "iops, throughput or both")
        problem = gp3_performance_problem(p.iops, p.throughput)
        need(problem is None, f"storage.profiles[{i}]", {"iops": p.iops, "throughput": p.throughput},
             f"a performance a gp3 volume can have: {problem}")
    for key, profile_name, size in volume_profiles(s):
        chosen = profile(s, profile_name)
        if profile_name is None:
            continue
        if chosen is None:
            need(False, key, profile_name, f"one of storage.profiles ({', '.join(profile_names) or 'none is set'})")
            continue
        volume = gp3_volume(round_up_gib(size.bytes), chosen.iops, chosen.throughput)
        need(not volume.problems, key, profile_name,
             f"a profile a {size.text} gp3 volume can have: {'; '.join(volume.problems)}")

    names = [t.name for t in s.metrics.scraped_services]
    for key, t in service_keys(s):
        need(t.scrape_timeout.seconds <= t.interval.seconds, f"{key}.scrapeTimeout",
             t.scrape_timeout.text, f"at most {key}.interval ({t.interval.text})")
        need(names.count(t.name) == 1, f"{key}.name", t.name, "a name no other service has")
        for label, value in t.selector.items():
            problem = label_key_problem(label) or label_value_problem(value)
            need(problem is None, f"{key}.selector", {label: value},
                 f"Kubernetes label keys and values, which a label selector matches: {problem}")
    probe_names = [t.name for t in s.metrics.probes]
    for i, t in enumerate(s.metrics.probes):
        need(probe_names.count(t.name) == 1, f"metrics.probes[{i}].name", t.name, "a name no other probe has")
    for i, f in enumerate(s.metrics.federation):
        need(f.credentials_secret is None or f.url.startswith("https://"), f"metrics.federation[{i}].url", f.url,
             "an https:// URL when credentials are sent")
    for i, f in enumerate(s.metrics.federation):
        need(f.stack is None or f.credentials_secret is not None, f"metrics.federation[{i}].credentialsSecret", None,
             f"the Secret to hold the credentials read from metrics.federation[{i}].stack")
    clusters = [f.cluster for f in s.metrics.federation]
    for i, f in enumerate(s.metrics.federation):
        need(f.cluster != c.name and clusters.count(f.cluster) == 1, f"metrics.federation[{i}].cluster",
             f.cluster, "a cluster other than this one and than every other source")

    pd = s.alerting.pagerduty
    targets = bool(pd.escalation_users or pd.escalation_schedules)
    if pd.enabled:
        need(targets != (pd.escalation_policy_id is not None), "alerting.pagerduty.escalationUsers",
             list(pd.escalation_users), "escalation users or schedules, or alerting.pagerduty.escalationPolicyId "
             "(exactly one of the two) when PagerDuty is enabled")
    need((pd.slack_workspace_id is None) == (pd.slack_channel_id is None), "alerting.pagerduty.slackChannelId",
         pd.slack_channel_id, "set together with alerting.pagerduty.slackWorkspaceId")
    for i, t in enumerate(s.alerting.alertmanager.warning_mute_intervals):
        need(bool(t.weekdays or t.times), f"alerting.alertmanager.warningMuteIntervals[{i}]", t.name,
             "at least one of weekdays or times")
        for j, span in enumerate(t.times):
            need(_is_time_range(span), f"alerting.alertmanager.warningMuteIntervals[{i}].times[{j}]", span,
                 "a time range HH:MM-HH:MM with the start before the end")
        for j, day in enumerate(t.weekdays):
            need(_is_weekday_range(day), f"alerting.alertmanager.warningMuteIntervals[{i}].weekdays[{j}]", day,
                 "a weekday (monday ... sunday) or a range first:last in week order, such as monday:friday")
    need(s.alerting.platform.team_label != s.team_label, "alerting.platform.teamLabel", s.alerting.platform.team_label,
         f"a team other than teamLabel ({s.team_label}): the stores' alerts are the platform's")
    am = s.alerting.alertmanager
    need(am.retention.seconds % 3600 == 0, "alerting.alertmanager.retention", am.retention.text,
         "whole hours, such as 720h")
    # Alertmanager re-sends a notification only when it flushes the group, every group interval, and forgets
    # what it sent past its data retention (its configuration reference, `repeat_interval`).
    need(am.repeat_interval.seconds >= am.group_interval.seconds, "alerting.alertmanager.repeatInterval",
         am.repeat_interval.text, f"at least alerting.alertmanager.groupInterval ({am.group_interval.text}): "
         "Alertmanager repeats a notification only when it flushes the group, every group interval")
    need(am.repeat_interval.seconds <= am.retention.seconds, "alerting.alertmanager.repeatInterval",
         am.repeat_interval.text, f"at most alerting.alertmanager.retention ({am.retention.text}): past it "
         "Alertmanager has forgotten the notification and sends it again")
    interval_names = [t.name for t in am.warning_mute_intervals]
    for i, t in enumerate(am.warning_mute_intervals):
        need(interval_names.count(t.name) == 1, f"alerting.alertmanager.warningMuteIntervals[{i}].name", t.name,
             "a name no other interval has (Alertmanager refuses a time interval named twice)")

    alerting = s.alerting
    receiver_names = [r.name for r in alerting.receivers]
    for i, r in enumerate(alerting.receivers):
        need(receiver_names.count(r.name) == 1, f"alerting.receivers[{i}].name", r.name, "a name no other receiver has")
        need((r.slack_channel is None) == r.pagerduty, f"alerting.receivers[{i}]", r.name,
             "a slackChannel, or pagerduty: true (exactly one of the two)")
    routed: dict[str, int] = {}
    for i, route in enumerate(alerting.routes):
        for alert in route.alerts:
            need(alert not in routed, f"alerting.routes[{i}].alerts", alert,
                 f"an alert no earlier route sends (alerting.routes[{routed.get(alert)}] takes it first)")
            routed.setdefault(alert, i)
    overridden = [o.alert for o in alerting.alert_overrides]
    for i, o in enumerate(alerting.alert_overrides):
        need(overridden.count(o.alert) == 1, f"alerting.alertOverrides[{i}].alert", o.alert,
             "an alert no other override names")
        need(o.enabled or (o.severity, o.for_, o.threshold) == (None, None, None), f"alerting.alertOverrides[{i}]",
             o.alert, "enabled: false alone, or a severity, for or threshold for a rule that stays")
    problems += [f"{ns}helmValues.{path}: {problem}" for path, problem in helm_values_secrets(s.helm_values)]

    for i, perm in enumerate(s.grafana.folder_permissions):
        need((perm.role is None) != (perm.team is None), f"grafana.folderPermissions[{i}]",
             {"role": perm.role, "team": perm.team}, "exactly one of role or team")
    need(s.logging.retention.seconds % 86400 == 0, "logging.retention", s.logging.retention.text,
         "whole days, such as 14d")

    stem = naming.instance(s)
    need(len(stem) <= naming.INSTANCE_MAX and stem[:1].isalpha(), "tenancy.instance", stem,
         f"a name of at most {naming.INSTANCE_MAX} characters starting with a letter: kube-prometheus-stack cuts "
         "the names it derives from it there")
    zones = c.availability_zones
    need(not zones or (len(zones) == 3 and len(set(zones)) == 3), "cluster.availabilityZones", list(zones),
         "three different availability zones (one per copy of every series in the long-term store)")
    for i, zone in enumerate(zones):
        need(re.fullmatch(re.escape(c.region) + r"[a-z]", zone) is not None, f"cluster.availabilityZones[{i}]",
             zone, f"an availability zone of cluster.region ({c.region}), such as {c.region}a")
    return problems


# How the fleet names a stack: its environment first, then what sets it apart (`prod-euw1`, `staging`).
ENVIRONMENT_WORDS = {"dev": "dev", "development": "dev", "staging": "staging", "stage": "staging", "prod": "prod",
                     "production": "prod"}


def stack_name_problems(s: Settings, stack: str) -> list[str]:
    """A stack named for one environment that sets another: it would run with that one's defaults
    (replicas, protection, paging)."""
    named = ENVIRONMENT_WORDS.get(re.split(r"[-_.]", stack.lower(), maxsplit=1)[0]) if stack else None
    if named is None or named == s.environment:
        return []
    return [f"{NAMESPACE}:environment: got {s.environment!r}, expected {named!r} for stack {stack} (a stack is named "
            f"<environment>-<what sets it apart>): it would run with {s.environment}'s defaults, not {named}'s"]


def service_keys(s: Settings) -> list[tuple[str, Any]]:
    """(key, service) of every scraped service: `metrics.services[i]`, then `metrics.additionalServices[i]`."""
    return ([(f"metrics.services[{i}]", t) for i, t in enumerate(s.metrics.services)]
            + [(f"metrics.additionalServices[{i}]", t) for i, t in enumerate(s.metrics.additional_services)])


# Keys that hold a credential in the charts' values (Grafana's adminPassword and grafana.ini client_secret,
# Loki's and Mimir's secret_access_key, a Slack webhook's URL, ...): Helm keeps values in the release, in
# plain text for anyone who reads the namespace's Secrets or runs `helm get values`. Judged by a key's
# last words, so a chart's reference to a Secret (existingSecret, secretName, passwordKey) and an
# endpoint (token_url) are not credentials.
_SECRET_LAST_WORD = {"password", "passwd", "secret", "token", "credential", "credentials"}
_SECRET_LAST_WORDS = {("api", "key"), ("access", "key"), ("private", "key"), ("routing", "key"), ("service", "key"),
                      ("secret", "key"), ("webhook", "url")}


def _names_a_secret(key: str) -> bool:
    words = [w.lower() for part in re.split(r"[-_.]", key) for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", part)]
    return bool(words) and words[0] != "existing" and (
        words[-1] in _SECRET_LAST_WORD or tuple(words[-2:]) in _SECRET_LAST_WORDS)


# Values that are credentials whatever their key: a Slack webhook, user and password in a URL, a private
# key, an AWS access key ID.
_SECRET_VALUE = re.compile(r"hooks\.slack\.com/|://[^/@\s]+:[^/@\s]+@|-----BEGIN [A-Z ]*PRIVATE KEY-----|"
                           r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
# What Grafana and the charts read as a reference to a file, an environment variable or a Secret.
_REFERENCE_VALUE = re.compile(r"[$]__(?:file|env|vault)[{].*[}]|[$][{][A-Za-z_][A-Za-z0-9_]*[}]")


def helm_values_secrets(values: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, problem) of every value of `helmValues` that carries a secret."""
    if isinstance(values, dict):
        for key, inner in values.items():
            yield from helm_values_secrets(inner, f"{path}.{key}" if path else str(key))
            if isinstance(inner, str) and inner and _names_a_secret(str(key)) and not _REFERENCE_VALUE.fullmatch(inner):
                yield (f"{path}.{key}" if path else str(key),
                       "holds a secret (not shown), expected none in Helm values: Helm keeps them in plain text in the "
                       "release; give the chart's reference to a Secret (existingSecret, secretName, ...) instead")
    elif isinstance(values, list):
        for i, inner in enumerate(values):
            yield from helm_values_secrets(inner, f"{path}[{i}]")
    elif isinstance(values, str) and _SECRET_VALUE.search(values):
        yield path, ("holds a credential (not shown: a Slack webhook, a password in a URL, a private or access key), "
                     "expected none in Helm values: Helm keeps them in plain text in the release; reference a Secret "
                     "instead")


# ---------------------------------------------------------------------------- warnings

# Domains reserved for examples and tests (RFC 2606, RFC 6761): nothing answers there.
_EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
_EXAMPLE_TLDS = ("example", "test", "invalid", "localhost")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}")


def _host(value: str) -> str | None:
    """The host a setting's text names: of a URL, an e-mail address, or a bare domain."""
    if "://" in value:
        return urllib.parse.urlsplit(value).hostname
    if "@" in value:
        return value.rpartition("@")[2].lower()
    return value.lower() if _DOMAIN.fullmatch(value) else None


def is_example_host(host: str) -> bool:
    return (any(host == d or host.endswith("." + d) for d in _EXAMPLE_DOMAINS)
            or host.rpartition(".")[2] in _EXAMPLE_TLDS)


def _text_leaves(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """(full key, text) of every string in a settings tree."""
    if dataclasses.is_dataclass(value):
        for name, f in keyed_fields(type(value)).items():
            yield from _text_leaves(getattr(value, f.name), f"{key}.{name}" if key else name)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _text_leaves(k, key)
            yield from _text_leaves(v, f"{key}.{k}")
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _text_leaves(v, f"{key}[{i}]")
    elif isinstance(value, str):
        yield key, value


def warnings(s: Settings) -> list[str]:
    """What renders, but is likely not what the stack means: one line each, naming the full key."""
    ns = NAMESPACE + ":"
    found = []
    examples: dict[str, list[str]] = {}
    for key, text in _text_leaves(s, ""):
        host = _host(text)
        if host and is_example_host(host):
            examples.setdefault(key, []).append(text)
    for key, texts in examples.items():
        shown = ", ".join(repr(t) for t in dict.fromkeys(texts))
        found.append(f"{ns}{key}: {shown} is in a domain reserved for examples (RFC 2606): nothing answers there; "
                     "a sample value to replace")
    default_services = MetricsSettings.__dataclass_fields__["services"].metadata["default"]
    scraped_namespaces = {t.namespace for t in s.metrics.scraped_services}
    for dropped in default_services:
        if dropped["name"] not in {t.name for t in s.metrics.services} and dropped["namespace"] not in scraped_namespaces:
            found.append(f"{ns}metrics.services: replaces the default list, and no service of namespace "
                         f"{dropped['namespace']} is scraped any more (the default {dropped['name']} was): list it "
                         "again, or add services with metrics.additionalServices")
    pd = s.alerting.pagerduty
    if not pd.enabled and (pd.escalation_users or pd.escalation_schedules or pd.escalation_policy_id):
        found.append(f"{ns}alerting.pagerduty: escalation targets are set but alerting.pagerduty.enabled is false: "
                     "no one is paged (critical alerts go to Slack)")
    return found


def volume_profiles(s: Settings) -> list[tuple[str, str | None, Size]]:
    """(key, profile named, volume size) of each workload whose volumes can take a profile."""
    return [("prometheus.volumeProfile", s.prometheus.volume_profile, s.prometheus.volume_size),
            ("alerting.alertmanager.volumeProfile", s.alerting.alertmanager.volume_profile,
             s.alerting.alertmanager.volume_size),
            ("logging.volumeProfile", s.logging.volume_profile, s.logging.volume_size)]


def profile(s: Settings, name: str | None) -> VolumeProfile | None:
    """The `storage.profiles` entry of that name; None for None."""
    return next((p for p in s.storage.profiles if p.name == name), None) if name else None


def _is_time_range(span: str) -> bool:
    """`HH:MM-HH:MM` with the start before the end, as Alertmanager accepts it."""
    m = re.fullmatch(r"([0-9][0-9]):([0-9][0-9])-([0-9][0-9]):([0-9][0-9])", span)
    if not m or int(m[2]) >= 60 or int(m[4]) >= 60:
        return False
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    return start < end <= 24 * 60


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _is_weekday_range(span: str) -> bool:
    first, colon, last = span.partition(":")
    last = last if colon else first
    return first in WEEKDAYS and last in WEEKDAYS and WEEKDAYS.index(first) <= WEEKDAYS.index(last)
