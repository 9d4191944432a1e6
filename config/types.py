"""The value types of the settings: each parses raw configuration or says, in one phrase, what it expects.

Every pattern is matched whole with `re.fullmatch` and spells its digits `[0-9]`: `$` would accept a
trailing newline and `\\d` any Unicode digit, both of which the tools downstream refuse. `type_name`
is how the configuration reference names the type.

Pure Python: no Pulumi imports.
"""

from __future__ import annotations

import decimal
import difflib
import functools
import json
import re
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any, ClassVar, Optional

from policy.duration import parse_duration_ms
from policy.ebs import GIB, GP3
from policy.kubernetes import DNS1123_LABEL, label_value_problem

# ---------------------------------------------------------------------------- durations

# The grammar is Prometheus' (policy/duration.py); Prometheus keeps a duration in an int64 of
# nanoseconds: about 292 years.
_DURATION_MAX_MS = (2**63 - 1) // 10**6
_DURATION_EXPECTED = "a duration such as 30s, 5m, 12h, 15d or 1h30m (units y w d h m s ms, in that order, each at most once)"


def duration_ms(text: str) -> int:
    """Milliseconds of a Prometheus duration (`90s`, `1h30m`, `500ms`, `0`); ValueError otherwise.
    The one duration parser of the project: settings, the live harness and the tests read it."""
    ms = parse_duration_ms(text) if isinstance(text, str) else None
    if ms is None:
        raise ValueError(f"not a Prometheus duration: {text!r}: expected {_DURATION_EXPECTED}")
    return ms


@dataclass(frozen=True)
class Duration:
    """A Prometheus-style duration (`30s`, `5m`, `15d`, `1h30m`), kept as written."""

    text: str
    type_name: ClassVar[str] = "duration"

    @property
    def seconds(self) -> float:
        ms = duration_ms(self.text)
        return ms // 1000 if ms % 1000 == 0 else ms / 1000

    @property
    def hours(self) -> str:
        """Whole hours, for tools that take no days (Alertmanager, Loki): `720h`."""
        return f"{int(self.seconds // 3600)}h"

    @property
    def days(self) -> int:
        return int(self.seconds // 86400)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, raw: Any) -> "Duration":
        ms = parse_duration_ms(raw) if isinstance(raw, str) else None
        if ms is None or ms <= 0:
            raise ValueError(_DURATION_EXPECTED)
        if ms > _DURATION_MAX_MS:
            raise ValueError("a duration of at most 292y (Prometheus' limit)")
        return cls(raw)


# ---------------------------------------------------------------------------- quantities

_SIZE_UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(B|KB|MB|GB|TB|Ki|Mi|Gi|Ti)")
# The largest gp3 volume (policy/ebs.py); every size is a volume or a part of one.
_SIZE_MAX = GP3.max_size_gib * GIB


@dataclass(frozen=True)
class Size:
    """A storage size as written: decimal (`50GB`, as Prometheus takes) or binary (`100Gi`)."""

    text: str
    type_name: ClassVar[str] = "size"

    @property
    def bytes(self) -> int:
        number, unit = _SIZE_RE.fullmatch(self.text).groups()
        return int(decimal.Decimal(number) * _SIZE_UNITS[unit])

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, raw: Any) -> "Size":
        if not isinstance(raw, str) or not _SIZE_RE.fullmatch(raw) or cls(raw).bytes <= 0:
            raise ValueError("a size such as 50GB or 100Gi (units B, KB, MB, GB, TB, Ki, Mi, Gi, Ti)")
        if cls(raw).bytes > _SIZE_MAX:
            raise ValueError(f"a size of at most {GP3.max_size_gib // 1024}Ti (the largest gp3 volume)")
        return cls(raw)


_CPU_RE = re.compile(r"([0-9]+)m|[0-9]+(?:\.[0-9]+)?")
_CPU_MAX_CORES = 1000


class Cpu(str):
    """A Kubernetes CPU quantity: `200m`, `1`, `1.5`."""

    type_name: ClassVar[str] = "cpu"

    @classmethod
    def parse(cls, raw: Any) -> "Cpu":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = str(raw)
        m = _CPU_RE.fullmatch(raw) if isinstance(raw, str) else None
        if m is None:
            raise ValueError("a CPU quantity such as 200m or 1")
        value = cls(raw)
        if value.cores > _CPU_MAX_CORES:
            raise ValueError(f"a CPU quantity of at most {_CPU_MAX_CORES} cores")
        return value

    @property
    def cores(self) -> float:
        m = _CPU_RE.fullmatch(self)
        return int(m[1]) / 1000 if m[1] is not None else float(self)


# Kubernetes spells the decimal kilo `k`; `K` is not a quantity suffix.
_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_MEMORY_RE = re.compile(r"([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_MEMORY_MAX = 16 * 2**40


class Memory(str):
    """A Kubernetes memory quantity: `512Mi`, `4Gi`."""

    type_name: ClassVar[str] = "memory"

    @classmethod
    def parse(cls, raw: Any) -> "Memory":
        m = _MEMORY_RE.fullmatch(raw) if isinstance(raw, str) else None
        if m is None:
            raise ValueError("a memory quantity such as 512Mi or 4Gi (units k, M, G, T, Ki, Mi, Gi, Ti)")
        value = cls(raw)
        if value.bytes > _MEMORY_MAX:
            raise ValueError("a memory quantity of at most 16Ti")
        return value

    @property
    def bytes(self) -> int:
        m = _MEMORY_RE.fullmatch(self)
        return int(m[1]) * _MEMORY_UNITS[m[2] or ""]


# ---------------------------------------------------------------------------- pattern-checked strings


class PatternString(str):
    """A string the whole of which matches `pattern`; otherwise `expected` says what would."""

    pattern: ClassVar[re.Pattern]
    expected: ClassVar[str]
    type_name: ClassVar[str]

    @classmethod
    def parse(cls, raw: Any) -> "PatternString":
        if not isinstance(raw, str) or not cls.pattern.fullmatch(raw):
            raise ValueError(cls.expected)
        return cls(raw)


class Email(PatternString):
    """An e-mail address."""

    pattern = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
    expected = "an e-mail address such as oncall@example.com"
    type_name = "email"


DNS_LABEL_RE = DNS1123_LABEL


class DnsLabel(PatternString):
    """A Kubernetes name (RFC 1123 label): lower case, digits and `-`, at most 63 characters."""

    pattern = DNS_LABEL_RE
    expected = "a Kubernetes name: lower-case letters, digits and '-', 1 to 63 characters"
    type_name = "name"


# Region names: us-east-1, eu-west-2, ap-southeast-1, us-gov-west-1, us-isob-east-1, cn-north-1.
_REGION = r"[a-z]{2,4}(?:-[a-z]{2,4})?-(?:central|north|south|east|west|northeast|northwest|southeast|southwest)-[1-9][0-9]?"
_PARTITION = r"aws(?:-[a-z]+)*"
_ACCOUNT = r"[0-9]{12}"


@functools.lru_cache(maxsize=None)
def aws_regions() -> frozenset[str]:
    """Every region of every AWS partition, as the endpoint data of the pinned botocore lists them (the
    data the AWS SDKs resolve endpoints from). Each partition's `regions` table is decoded alone: the
    services' endpoints around them are most of the file, and decoding it whole is most of a render's
    configuration time."""
    text = resources.files("botocore").joinpath("data", "endpoints.json").read_text()
    decoder, regions, at = json.JSONDecoder(), set(), text.find('"regions"')
    while at != -1:
        table, _ = decoder.raw_decode(text, text.index("{", at))
        regions.update(table)
        at = text.find('"regions"', at + 1)
    return frozenset(regions)


class AwsRegion(PatternString):
    """An AWS region name that exists: `us-east-1`."""

    pattern = re.compile(_REGION)
    expected = "an AWS region such as us-east-1, eu-west-2, ap-southeast-1 or us-gov-west-1"
    type_name = "AWS region"

    @classmethod
    def parse(cls, raw: Any) -> "AwsRegion":
        region = super().parse(raw)
        if region not in aws_regions():
            close = difflib.get_close_matches(region, sorted(aws_regions()), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"a region AWS has (none of the partitions in botocore {metadata.version('botocore')}'s "
                             f"endpoint data lists it){hint}")
        return region


class KmsKeyArn(PatternString):
    """The ARN of one KMS key: the roles are granted that key, so no wildcard and no alias."""

    pattern = re.compile(
        rf"arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/"
        r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
    )
    expected = ("the ARN of one KMS key, arn:aws:kms:<region>:<12-digit account>:key/<key id>, such as "
                "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555 (no wildcard, no alias)")
    type_name = "KMS key ARN"


class OidcProviderArn(PatternString):
    """The ARN of an IAM OIDC identity provider (the EKS cluster's)."""

    pattern = re.compile(
        rf"arn:{_PARTITION}:iam::{_ACCOUNT}:oidc-provider/"
        r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)+(?:/[A-Za-z0-9._~-]+)*"
    )
    expected = ("an IAM OIDC provider ARN, arn:aws:iam::<12-digit account>:oidc-provider/<issuer host and path>, "
                "such as arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE")
    type_name = "IAM OIDC provider ARN"


# ---------------------------------------------------------------------------- host names and URLs

_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?")
_URL_RE = re.compile(r"(https?)://([^/?#:@\s]*)(?::([0-9]{1,5}))?(?:[/?#][!-~]*)?")


def _is_url_host(host: str) -> bool:
    """A DNS name (one label or more) or an IPv4 address: `example.com`, `prometheus`, `10.0.0.1`."""
    labels = host.split(".")
    if all(label.isascii() and label.isdigit() for label in labels):
        return len(labels) == 4 and all(int(label) <= 255 for label in labels)
    return (
        len(host) <= 253
        and all(_HOST_LABEL_RE.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # `1.2.3` is neither a name nor an address
    )


def _url_parts(raw: Any) -> Optional[tuple[str, str, Optional[str]]]:
    """(scheme, host, port) of an http(s) URL with a valid host and port, else None."""
    m = _URL_RE.fullmatch(raw) if isinstance(raw, str) else None
    if m is None or not _is_url_host(m[2]) or (m[3] is not None and not 1 <= int(m[3]) <= 65535):
        return None
    return m[1], m[2], m[3]


_URL_EXPECTED = "a host name or IPv4 address, an optional port from 1 to 65535, then an optional path"


class Url(str):
    """An http(s) URL: a host name or IPv4 address, an optional port, an optional path; no user info."""

    type_name: ClassVar[str] = "url"

    @classmethod
    def parse(cls, raw: Any) -> "Url":
        if _url_parts(raw) is None:
            raise ValueError(f"an http:// or https:// URL: {_URL_EXPECTED}")
        return cls(raw)


class HttpsUrl(Url):
    """An https URL: credentials or tokens travel over it."""

    type_name: ClassVar[str] = "https url"

    @classmethod
    def parse(cls, raw: Any) -> "HttpsUrl":
        parts = _url_parts(raw)
        if parts is None or parts[0] != "https":
            raise ValueError(f"an https:// URL (credentials travel over it): {_URL_EXPECTED}")
        return cls(raw)


class Hostname(str):
    """A fully qualified host name, no scheme or path: `grafana.example.com`."""

    type_name: ClassVar[str] = "hostname"

    @classmethod
    def parse(cls, raw: Any) -> "Hostname":
        labels = raw.split(".") if isinstance(raw, str) else []
        if not (
            len(labels) >= 2
            and len(raw) <= 253
            and all(DNS_LABEL_RE.fullmatch(label) for label in labels)
            and not labels[-1].isdigit()
        ):
            raise ValueError("a host name such as grafana.example.com (no scheme, port or path)")
        return cls(raw)


class SlackChannel(PatternString):
    """A Slack channel by name, `#` first: Slack's rule for channel names (conversations.create: lower-case
    letters, digits, `-` and `_`, at most 80 characters)."""

    pattern = re.compile(r"#[a-z0-9_-]{1,80}")
    expected = "a Slack channel such as #webhook-alerts: '#', then lower-case letters, digits, '-' and '_' (80 at most)"
    type_name = "Slack channel"


class PortName(PatternString):
    """A Service port's name (Kubernetes' IANA_SVC_NAME): 1 to 15 lower-case letters, digits and `-`, at least
    one letter, no `-` at either end nor two in a row. A ServiceMonitor selects the port by it."""

    pattern = re.compile(r"(?=.{1,15}\Z)(?=[a-z0-9-]*[a-z])[a-z0-9](?:-?[a-z0-9])*")
    expected = ("a Service port name such as metrics: 1 to 15 lower-case letters, digits and '-', at least one "
                "letter, no '-' at either end nor two in a row (a port number is not a name)")
    type_name = "port name"


class HelmValues(dict):
    """Helm values per chart: a chart name, then an object of its values (any depth)."""

    type_name: ClassVar[str] = "map of chart name to Helm values"

    @classmethod
    def parse(cls, raw: Any) -> "HelmValues":
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in raw.items()):
            raise ValueError("an object of chart names, each holding an object of that chart's values")
        return cls(sorted(raw.items()))


def label_value(v: Any) -> Optional[str]:
    """A Kubernetes label value (the API server's rule, policy/kubernetes.py), not empty."""
    return None if v and label_value_problem(v) is None else "a Kubernetes label value (letters, digits, '-', '_', '.'; 63 at most)"


VALUE_TYPES = (
    Duration, Size, Cpu, Memory, Url, HttpsUrl, Email, DnsLabel, Hostname, AwsRegion, KmsKeyArn, OidcProviderArn,
    SlackChannel, PortName, HelmValues,
)
