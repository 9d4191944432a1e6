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
import functools
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping, Optional

from config.types import VALUE_TYPES

# The project (Pulumi.yaml `name`): the namespace of its config keys, and what its objects are part of.
PROJECT = "webhook-monitoring"
NAMESPACE = PROJECT

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


def _optional_inner(tp: Any) -> Any:
    """`Optional[X]` -> X; anything else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)][0]
    return tp


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict[str, Any]:
    """A settings class's field types (resolving them is most of a parse's time otherwise)."""
    return typing.get_type_hints(cls)


@functools.lru_cache(maxsize=None)
def keyed_fields(cls: type) -> dict[str, dataclasses.Field]:
    """A settings class's fields by their config key (the camelCase form of the field name)."""
    return {camel(f.name): f for f in dataclasses.fields(cls)}


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and tp not in VALUE_TYPES


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
    if tp in VALUE_TYPES:
        return tp.type_name
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
        if tp in VALUE_TYPES:
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
        fields = keyed_fields(cls)
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
            # A section's default (a partial object, or one per environment) sits under what the stack
            # sets; a section left out takes the defaults of all its keys.
            base = meta.get("default")
            base = base.pick(self.environment) if isinstance(base, PerEnvironment) else base
            base = base if isinstance(base, dict) else {}
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


_UNSET = object()


def describe(cls: type, prefix: str, overrides: Mapping[str, Any] | None = None) -> Iterator[KeyDoc]:
    """Every key of `cls`, depth first, as documented in docs/configuration.md."""
    hints = typing.get_type_hints(cls)
    overrides = overrides or {}
    for name, f in keyed_fields(cls).items():
        tp = hints[f.name]
        key = join_key(prefix, name)
        item_tp = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None
        example = f.metadata.get("example")
        inner = _optional_inner(tp)
        section = _is_section(inner)
        default = overrides.get(name, f.metadata.get("default", _REQUIRED))
        if isinstance(default, PerEnvironment) and _UNSET in (default.dev, default.prod):
            own = f.metadata.get("default", _REQUIRED)
            default = PerEnvironment(own if default.dev is _UNSET else default.dev,
                                     own if default.prod is _UNSET else default.prod)
        yield KeyDoc(
            key=key,
            type=_type_name(tp),
            default="" if section else _default_text(default),
            unit=f.metadata.get("unit", ""),
            doc=f.metadata.get("doc", ""),
            example="" if example is None else _json(example),
        )
        if section:
            if isinstance(default, PerEnvironment):  # a partial object per environment: per key
                default = {k: PerEnvironment(default.dev.get(k, _UNSET), default.prod.get(k, _UNSET))
                           for k in {*default.dev, *default.prod}}
            yield from describe(inner, key, default if isinstance(default, dict) else None)
        elif item_tp is not None and _is_section(item_tp):
            yield from describe(item_tp, key + "[]")
