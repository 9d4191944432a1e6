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
import difflib
import json
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

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION_RE = re.compile(r"^(?:(\d+)(ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


@dataclass(frozen=True)
class Duration:
    """A Prometheus-style duration (`30s`, `5m`, `15d`, `1h30m`), kept as written."""

    text: str

    @property
    def seconds(self) -> float:
        return sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(self.text))

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
        if not isinstance(raw, str) or not _DURATION_RE.match(raw) or cls(raw).seconds <= 0:
            raise ValueError("a duration such as 30s, 5m, 12h, 15d or 720h")
        return cls(raw)


_SIZE_UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)(B|KB|MB|GB|TB|Ki|Mi|Gi|Ti)$")


@dataclass(frozen=True)
class Size:
    """A storage size as written: decimal (`50GB`, as Prometheus takes) or binary (`100Gi`)."""

    text: str

    @property
    def bytes(self) -> int:
        number, unit = _SIZE_RE.match(self.text).groups()
        return int(float(number) * _SIZE_UNITS[unit])

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, raw: Any) -> "Size":
        if not isinstance(raw, str) or not _SIZE_RE.match(raw) or cls(raw).bytes <= 0:
            raise ValueError("a size such as 50GB or 100Gi (units B, KB, MB, GB, TB, Ki, Mi, Gi, Ti)")
        return cls(raw)


_CPU_RE = re.compile(r"^(\d+m|\d+(\.\d+)?)$")
_MEMORY_RE = re.compile(r"^\d+(Ki|Mi|Gi|Ti|K|M|G|T)?$")


class Cpu(str):
    """A Kubernetes CPU quantity: `200m`, `1`, `1.5`."""

    @classmethod
    def parse(cls, raw: Any) -> "Cpu":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str) or not _CPU_RE.match(raw):
            raise ValueError("a CPU quantity such as 200m or 1")
        return cls(raw)


class Memory(str):
    """A Kubernetes memory quantity: `512Mi`, `4Gi`."""

    @classmethod
    def parse(cls, raw: Any) -> "Memory":
        if not isinstance(raw, str) or not _MEMORY_RE.match(raw):
            raise ValueError("a memory quantity such as 512Mi or 4Gi")
        return cls(raw)


_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/[^\s]*)?$")


class Url(str):
    """An http(s) URL."""

    @classmethod
    def parse(cls, raw: Any) -> "Url":
        if not isinstance(raw, str) or not _URL_RE.match(raw):
            raise ValueError("an http:// or https:// URL")
        return cls(raw)


_EMAIL_RE = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class Email(str):
    """An e-mail address."""

    @classmethod
    def parse(cls, raw: Any) -> "Email":
        if not isinstance(raw, str) or not _EMAIL_RE.match(raw):
            raise ValueError("an e-mail address such as oncall@example.com")
        return cls(raw)


_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class DnsLabel(str):
    """A Kubernetes name (RFC 1123 label): lower case, digits and `-`, at most 63 characters."""

    @classmethod
    def parse(cls, raw: Any) -> "DnsLabel":
        if not isinstance(raw, str) or not _DNS_LABEL_RE.match(raw):
            raise ValueError("a Kubernetes name: lower-case letters, digits and '-', 1 to 63 characters")
        return cls(raw)


_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$")


class Hostname(str):
    """A fully qualified host name, no scheme or path: `grafana.example.com`."""

    @classmethod
    def parse(cls, raw: Any) -> "Hostname":
        if not isinstance(raw, str) or not _HOSTNAME_RE.match(raw):
            raise ValueError("a host name such as grafana.example.com (no scheme, port or path)")
        return cls(raw)


_LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def label_value(v: Any) -> Optional[str]:
    """A Kubernetes label value: at most 63 characters, alphanumeric at both ends."""
    return None if _LABEL_VALUE_RE.match(v) else "a Kubernetes label value (letters, digits, '-', '_', '.'; 63 at most)"


_VALUE_TYPES = (Duration, Size, Cpu, Memory, Url, Email, DnsLabel, Hostname)


def _optional_inner(tp: Any) -> Any:
    """`Optional[X]` -> X; anything else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)][0]
    return tp


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
    text = json.dumps(raw) if not isinstance(raw, str) else repr(raw)
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
        return tp.__name__.lower().replace("dnslabel", "name")
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
            if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw):
                return int(raw)
            if not isinstance(raw, int) or isinstance(raw, bool):
                self.problem(key, raw, "a whole number")
                return None
            return raw
        if tp is float:
            if isinstance(raw, str):
                try:
                    return float(raw)
                except ValueError:
                    pass
            if not isinstance(raw, (int, float)) or isinstance(raw, bool):
                self.problem(key, raw, "a number")
                return None
            return float(raw)
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
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.problem(key, raw, "an object")
            return None
        fields = {camel(f.name): f for f in dataclasses.fields(cls)}
        for unknown in sorted(set(raw) - set(fields)):
            self.unknown_key(join_key(key, unknown), unknown, fields)
        hints = typing.get_type_hints(cls)
        before = len(self.problems)
        values = {
            f.name: self.field(f, hints[f.name], raw, name, join_key(key, name))
            for name, f in fields.items()
        }
        return cls(**values) if len(self.problems) == before else None

    def field(self, f: dataclasses.Field, tp: Any, raw: Mapping, name: str, full: str) -> Any:
        meta = f.metadata
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
