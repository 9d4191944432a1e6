"""The typed-settings engine: frozen dataclasses are the schema.

Each settings field is declared with `setting(...)`, which records its documentation, unit,
default (one value, or one per environment) and any extra check. `parse` walks a dataclass
against raw stack configuration, collects every problem as one line naming the full key, the
bad value and what is expected, and only returns when there are none. `describe` walks the same
dataclasses to produce the configuration reference, so docs and code cannot disagree.

Pure Python: no Pulumi imports, so it is tested directly.
"""

from __future__ import annotations

import dataclasses
import decimal
import difflib
import functools
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping, Optional

NAMESPACE = "webhook-monitoring"

_REQUIRED = object()


@dataclass(frozen=True)
class PerEnvironment:
    """A default that differs between environments: `prod` for production, `dev` for the rest."""

    dev: Any
    prod: Any

    def pick(self, environment: str) -> Any:
        return self.prod if environment == "prod" else self.dev


# A check takes the parsed value and returns what is expected, or None when the value is fine.
Check = Callable[[Any], Optional[str]]


def setting(
    doc: str,
    *,
    default: Any = _REQUIRED,
    unit: str = "",
    example: Any = None,
    check: Check | None = None,
) -> Any:
    """Declare a settings field. Without `default` the key is required."""
    return dataclasses.field(
        metadata={"doc": doc, "default": default, "unit": unit, "example": example, "check": check}
    )


class ConfigError(Exception):
    """Every problem found in the stack configuration, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


# ---------------------------------------------------------------------------- value types
#
# Every pattern is matched whole with `re.fullmatch` and spells its digits `[0-9]`: `$` would
# accept a trailing newline and `\d` any Unicode digit, both of which the tools downstream refuse.

# Prometheus' duration grammar: units in this order, each at most once (`1h30m`, not `30m1h`).
_DURATION_UNITS_MS = {"y": 31536000000, "w": 604800000, "d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}
_DURATION_RE = re.compile("".join(f"(?:([0-9]+){unit})?" for unit in _DURATION_UNITS_MS))
# Prometheus keeps a duration in an int64 of nanoseconds: about 292 years.
_DURATION_MAX_MS = (2**63 - 1) // 10**6
_DURATION_EXPECTED = "a duration such as 30s, 5m, 12h, 15d or 1h30m (units y w d h m s ms, in that order, each at most once)"


def _duration_ms(text: str) -> Optional[int]:
    """Milliseconds of a duration in Prometheus' grammar, or None when it is not one."""
    m = _DURATION_RE.fullmatch(text) if text else None
    if m is None:
        return None
    return sum(int(n) * ms for n, ms in zip(m.groups(), _DURATION_UNITS_MS.values()) if n is not None)


@dataclass(frozen=True)
class Duration:
    """A Prometheus-style duration (`30s`, `5m`, `15d`, `1h30m`), kept as written."""

    text: str

    @property
    def seconds(self) -> float:
        ms = _duration_ms(self.text)
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
        ms = _duration_ms(raw) if isinstance(raw, str) else None
        if ms is None or ms <= 0:
            raise ValueError(_DURATION_EXPECTED)
        if ms > _DURATION_MAX_MS:
            raise ValueError("a duration of at most 292y (Prometheus' limit)")
        return cls(raw)


_SIZE_UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(B|KB|MB|GB|TB|Ki|Mi|Gi|Ti)")
# The largest gp3 volume; every size is a volume or a part of one.
_SIZE_MAX = 16 * 2**40


@dataclass(frozen=True)
class Size:
    """A storage size as written: decimal (`50GB`, as Prometheus takes) or binary (`100Gi`)."""

    text: str

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
            raise ValueError("a size of at most 16Ti (the largest gp3 volume)")
        return cls(raw)


_CPU_RE = re.compile(r"([0-9]+)m|[0-9]+(?:\.[0-9]+)?")
_CPU_MAX_CORES = 1000


class Cpu(str):
    """A Kubernetes CPU quantity: `200m`, `1`, `1.5`."""

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

    @classmethod
    def parse(cls, raw: Any) -> "Url":
        if _url_parts(raw) is None:
            raise ValueError(f"an http:// or https:// URL: {_URL_EXPECTED}")
        return cls(raw)


class HttpsUrl(Url):
    """An https URL: credentials or tokens travel over it."""

    @classmethod
    def parse(cls, raw: Any) -> "HttpsUrl":
        parts = _url_parts(raw)
        if parts is None or parts[0] != "https":
            raise ValueError(f"an https:// URL (credentials travel over it): {_URL_EXPECTED}")
        return cls(raw)


_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


class Email(str):
    """An e-mail address."""

    @classmethod
    def parse(cls, raw: Any) -> "Email":
        if not isinstance(raw, str) or not _EMAIL_RE.fullmatch(raw):
            raise ValueError("an e-mail address such as oncall@example.com")
        return cls(raw)


_DNS_LABEL_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")


class DnsLabel(str):
    """A Kubernetes name (RFC 1123 label): lower case, digits and `-`, at most 63 characters."""

    @classmethod
    def parse(cls, raw: Any) -> "DnsLabel":
        if not isinstance(raw, str) or not _DNS_LABEL_RE.fullmatch(raw):
            raise ValueError("a Kubernetes name: lower-case letters, digits and '-', 1 to 63 characters")
        return cls(raw)


class Hostname(str):
    """A fully qualified host name, no scheme or path: `grafana.example.com`."""

    @classmethod
    def parse(cls, raw: Any) -> "Hostname":
        labels = raw.split(".") if isinstance(raw, str) else []
        if not (
            len(labels) >= 2
            and len(raw) <= 253
            and all(_DNS_LABEL_RE.fullmatch(label) for label in labels)
            and not labels[-1].isdigit()
        ):
            raise ValueError("a host name such as grafana.example.com (no scheme, port or path)")
        return cls(raw)


# Region names: us-east-1, eu-west-2, ap-southeast-1, us-gov-west-1, us-isob-east-1, cn-north-1.
_REGION = r"[a-z]{2,4}(?:-[a-z]{2,4})?-(?:central|north|south|east|west|northeast|northwest|southeast|southwest)-[1-9][0-9]?"
_REGION_RE = re.compile(_REGION)
_PARTITION = r"aws(?:-[a-z]+)*"
_ACCOUNT = r"[0-9]{12}"


class AwsRegion(str):
    """An AWS region name: `us-east-1`."""

    @classmethod
    def parse(cls, raw: Any) -> "AwsRegion":
        if not isinstance(raw, str) or not _REGION_RE.fullmatch(raw):
            raise ValueError("an AWS region such as us-east-1, eu-west-2, ap-southeast-1 or us-gov-west-1")
        return cls(raw)


_KMS_KEY_ARN_RE = re.compile(
    rf"arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
)


class KmsKeyArn(str):
    """The ARN of one KMS key: the roles are granted that key, so no wildcard and no alias."""

    @classmethod
    def parse(cls, raw: Any) -> "KmsKeyArn":
        if not isinstance(raw, str) or not _KMS_KEY_ARN_RE.fullmatch(raw):
            raise ValueError(
                "the ARN of one KMS key, arn:aws:kms:<region>:<12-digit account>:key/<key id>, such as "
                "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555 "
                "(no wildcard, no alias)"
            )
        return cls(raw)


_OIDC_PROVIDER_ARN_RE = re.compile(
    rf"arn:{_PARTITION}:iam::{_ACCOUNT}:oidc-provider/"
    r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)+(?:/[A-Za-z0-9._~-]+)*"
)


class OidcProviderArn(str):
    """The ARN of an IAM OIDC identity provider (the EKS cluster's)."""

    @classmethod
    def parse(cls, raw: Any) -> "OidcProviderArn":
        if not isinstance(raw, str) or not _OIDC_PROVIDER_ARN_RE.fullmatch(raw):
            raise ValueError(
                "an IAM OIDC provider ARN, arn:aws:iam::<12-digit account>:oidc-provider/<issuer host and path>, "
                "such as arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
            )
        return cls(raw)


_LABEL_VALUE_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def label_value(v: Any) -> Optional[str]:
    """A Kubernetes label value: at most 63 characters, alphanumeric at both ends."""
    return None if _LABEL_VALUE_RE.fullmatch(v) else "a Kubernetes label value (letters, digits, '-', '_', '.'; 63 at most)"


_VALUE_TYPES = (
    Duration, Size, Cpu, Memory, Url, HttpsUrl, Email, DnsLabel, Hostname, AwsRegion, KmsKeyArn, OidcProviderArn,
)
# How the configuration reference names each value type.
_VALUE_TYPE_NAMES = {
    Duration: "duration", Size: "size", Cpu: "cpu", Memory: "memory", Url: "url", HttpsUrl: "https url",
    Email: "email", DnsLabel: "name", Hostname: "hostname", AwsRegion: "AWS region", KmsKeyArn: "KMS key ARN",
    OidcProviderArn: "IAM OIDC provider ARN",
}


def _optional_inner(tp: Any) -> Any:
    """`Optional[X]` -> X; anything else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)][0]
    return tp


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict[str, Any]:
    """A settings class's field types (resolving them is most of a parse's time otherwise)."""
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and tp not in _VALUE_TYPES


# ---------------------------------------------------------------------------- checks


def between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"a number from {low} to {high}"


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"a number of at least {low}"


def non_empty(v: Any) -> Optional[str]:
    return None if len(v) > 0 else "a non-empty list"


# ---------------------------------------------------------------------------- parsing


def join_key(prefix: str, name: str) -> str:
    """`webhook-monitoring:` + `prometheus` -> `webhook-monitoring:prometheus`; then dotted paths."""
    if not prefix or prefix.endswith(":"):
        return prefix + name
    return f"{prefix}.{name}"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _show(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() > 256:
        # Python turns no more than 4300 digits into text; count them instead.
        digits = int(math.log10(abs(raw))) + 1
        digits += (abs(raw) >= 10**digits) - (abs(raw) < 10 ** (digits - 1))
        return f"a {digits}-digit number"
    # Values that are not JSON (a date or a set from a YAML file read elsewhere) show as text.
    text = json.dumps(raw, default=str) if not isinstance(raw, str) else repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "string"
    if tp is bool:
        return "boolean"
    if tp is int:
        return "integer"
    if tp is float:
        return "number"
    if tp in _VALUE_TYPES:
        return _VALUE_TYPE_NAMES[tp]
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return _type_name(_optional_inner(tp)) + " (optional)"
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "map of string to string"
    if _is_section(tp):
        return "object"
    return str(tp)


# Whole numbers: a 32-bit signed integer at most, which every consumer (Kubernetes int32 fields,
# Prometheus and Alertmanager settings, the Pulumi wire format's doubles) carries exactly.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_INT_RE = re.compile(r"-?[0-9]+")
# Numbers as text: ASCII digits only (Python's float() also takes Unicode digits, `inf`, `1_0`).
_FLOAT_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class _Parser:
    def __init__(self, environment: str):
        self.environment = environment
        self.problems: list[str] = []

    def problem(self, key: str, raw: Any, expected: str) -> None:
        self.problems.append(f"{key}: got {_show(raw)}, expected {expected}")

    def value(self, tp: Any, raw: Any, key: str) -> Any:
        """Parse one raw value; on a problem, record it and return None."""
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            return None if raw is None else self.value(_optional_inner(tp), raw, key)
        if _is_section(tp):
            return self.section(tp, raw, key)
        if origin is tuple:
            if not isinstance(raw, list):
                self.problem(key, raw, f"a list of {_type_name(typing.get_args(tp)[0])}")
                return None
            item_tp = typing.get_args(tp)[0]
            items = [self.value(item_tp, item, f"{key}[{i}]") for i, item in enumerate(raw)]
            return tuple(items)
        if origin is dict:
            if not isinstance(raw, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
            ):
                self.problem(key, raw, "a map of string keys to string values")
                return None
            return dict(sorted(raw.items()))
        if origin is Literal:
            allowed = typing.get_args(tp)
            if raw not in allowed:
                self.problem(key, raw, "one of " + ", ".join(repr(a) for a in allowed))
                return None
            return raw
        if tp is bool:
            if isinstance(raw, str) and raw in ("true", "false"):
                return raw == "true"
            if not isinstance(raw, bool):
                self.problem(key, raw, "true or false")
                return None
            return raw
        if tp is int:
            number = raw
            if isinstance(raw, str) and _INT_RE.fullmatch(raw):
                # A string of thousands of digits is out of range before Python is asked to read it.
                number = int(raw) if len(raw) <= 20 else _INT_MAX + 1
            if not isinstance(number, int) or isinstance(number, bool):
                self.problem(key, raw, "a whole number")
                return None
            if not _INT_MIN <= number <= _INT_MAX:
                self.problem(key, raw, f"a whole number from {_INT_MIN} to {_INT_MAX}")
                return None
            return number
        if tp is float:
            number = float(raw) if isinstance(raw, str) and _FLOAT_RE.fullmatch(raw) else raw
            if not isinstance(number, (int, float)) or isinstance(number, bool):
                self.problem(key, raw, "a number")
                return None
            # float() of an integer past 1e308 raises instead of giving infinity.
            number = float(number) if isinstance(number, float) or abs(number) < 10**300 else math.inf
            if not math.isfinite(number):
                self.problem(key, raw, "a finite number")
                return None
            return number
        if tp is str:
            if not isinstance(raw, str) or not raw:
                self.problem(key, raw, "a non-empty string")
                return None
            return raw
        if tp in _VALUE_TYPES:
            try:
                return tp.parse(raw)
            except ValueError as err:
                self.problem(key, raw, str(err))
                return None
        raise TypeError(f"settings type {tp!r} of {key} is not supported")

    def section(self, cls: type, raw: Any, key: str) -> Any:
        if not isinstance(raw, dict):
            self.problem(key, raw, "an object")
            return None
        fields = {camel(f.name): f for f in dataclasses.fields(cls)}
        for unknown in sorted(set(raw) - set(fields), key=str):
            self.unknown_key(join_key(key, str(unknown)), str(unknown), fields)
        hints = _type_hints(cls)
        before = len(self.problems)
        values = {
            f.name: self.field(f, hints[f.name], raw, name, join_key(key, name))
            for name, f in fields.items()
        }
        return cls(**values) if len(self.problems) == before else None

    def field(self, f: dataclasses.Field, tp: Any, raw: Mapping, name: str, full: str) -> Any:
        meta = f.metadata
        if name in raw and raw[name] is None and _optional_inner(tp) is tp:
            # null is no value: it neither unsets a key that cannot be unset nor takes its default.
            self.value(tp, None, full)
            if _is_section(tp):
                hint = "leave the key out to take the defaults"
            elif meta.get("default", _REQUIRED) is _REQUIRED:
                hint = "the key is required"
            else:
                hint = "leave the key out to take the default"
            self.problems[-1] += f" ({hint})"
            return None
        if _is_section(tp):
            # A section's default (a partial object) sits under what the stack sets; a section
            # left out takes the defaults of all its keys.
            base = meta.get("default") if isinstance(meta.get("default"), dict) else {}
            given = raw.get(name, {})
            return self.section(tp, {**base, **given} if isinstance(given, dict) else given, full)
        if name in raw:
            before = len(self.problems)
            value = self.value(tp, raw[name], full)
            if len(self.problems) == before and value is not None and meta.get("check"):
                expected = meta["check"](value)
                if expected:
                    self.problem(full, raw[name], expected)
            return value
        default = meta.get("default", _REQUIRED)
        if isinstance(default, PerEnvironment):
            default = default.pick(self.environment)
        if default is _REQUIRED:
            self.problems.append(f"{full}: missing, expected {_type_name(tp)} ({meta.get('doc', '')})")
            return None
        if default is None:
            return None
        # Defaults are written as raw config would be, so they go through the same parser.
        return self.value(tp, default, full)

    def unknown_key(self, full: str, name: str, fields: Mapping) -> None:
        close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        self.problems.append(f"{full}: unknown key{hint} (valid keys: {', '.join(sorted(fields))})")


def parse(cls: type, raw: Mapping[str, Any], environment: str, prefix: str) -> tuple[Any, list[str]]:
    """Parse `raw` (key -> decoded JSON value) into `cls`; returns (settings or None, problems)."""
    parser = _Parser(environment)
    result = parser.section(cls, dict(raw), prefix)
    return result, parser.problems


# ---------------------------------------------------------------------------- documentation


@dataclass(frozen=True)
class KeyDoc:
    key: str
    type: str
    default: str
    unit: str
    doc: str
    example: str


def _default_text(default: Any) -> str:
    if default is _REQUIRED:
        return "required"
    if isinstance(default, PerEnvironment):
        return f"{_json(default.dev)} (dev), {_json(default.prod)} (prod)"
    return "none" if default is None else _json(default)


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def describe(cls: type, prefix: str, overrides: Mapping[str, Any] | None = None) -> Iterator[KeyDoc]:
    """Every key of `cls`, depth first, as documented in docs/configuration.md."""
    hints = typing.get_type_hints(cls)
    overrides = overrides or {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = join_key(prefix, camel(f.name))
        item_tp = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None
        example = f.metadata.get("example")
        inner = _optional_inner(tp)
        section = _is_section(inner)
        default = overrides.get(camel(f.name), f.metadata.get("default", _REQUIRED))
        yield KeyDoc(
            key=key,
            type=_type_name(tp),
            default="" if section else _default_text(default),
            unit=f.metadata.get("unit", ""),
            doc=f.metadata.get("doc", ""),
            example="" if example is None else _json(example),
        )
        if section:
            yield from describe(inner, key, default if isinstance(default, dict) else None)
        elif item_tp is not None and _is_section(item_tp):
            yield from describe(item_tp, key + "[]")
