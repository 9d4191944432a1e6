"""Rules that tie settings keys together, checked once every key parsed: one line per problem,
each naming the full key, the value and what is expected."""

from __future__ import annotations

import re
from typing import Any, Mapping

from config import naming, sizing
from config.schema import NAMESPACE
from config.settings import Settings, VolumeProfile
from config.types import Size
from policy.aws import lifecycle_outlives_retention
from policy.ebs import gp3_performance_problem, gp3_volume, round_up_gib


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

    names = [t.name for t in s.metrics.services]
    for i, t in enumerate(s.metrics.services):
        need(t.scrape_timeout.seconds <= t.interval.seconds, f"metrics.services[{i}].scrapeTimeout",
             t.scrape_timeout.text, f"at most metrics.services[{i}].interval ({t.interval.text})")
        need(names.count(t.name) == 1, f"metrics.services[{i}].name", t.name, "a name no other service has")
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
