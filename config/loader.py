"""Turn a stack's raw configuration into validated `Settings`, or fail with every problem."""

from __future__ import annotations

import json
from typing import Any, Callable, Collection, Mapping

from config.schema import NAMESPACE, ConfigError, parse
from config.secrets import SECRET_KEYS, Secrets, secret_field
from config.checks import cross_field_problems, naming_problems
from config.naming import resolve
from config.settings import Settings


def decode(value: Any) -> Any:
    """Pulumi hands structured config over as JSON text and scalars as plain text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def load(
    raw: Mapping[str, Any],
    secret_keys: Collection[str],
    read_secret: Callable[[str], Any],
    check_secrets: bool = True,
    stack: str = "",
) -> tuple[Settings, Secrets]:
    """Validate `raw` (full key -> value, e.g. `webhook-monitoring:prometheus` -> JSON text).

    Keys of other namespaces (`aws:region`, `pulumi:...`) belong to providers and are left
    alone. `read_secret(name)` returns the secret value of a key known to be set. Without
    `check_secrets`, the secrets' values are not judged (the offline render's placeholders). `stack`:
    the Pulumi stack's name, which derived names start with (config/naming.py; unknown: the
    environment's).
    """
    prefix = NAMESPACE + ":"
    ours = {k[len(prefix):]: decode(v) for k, v in raw.items() if k.startswith(prefix)}
    secret_names = {k.name for k in SECRET_KEYS}
    plain = {k: v for k, v in ours.items() if k not in secret_names}
    environment = plain.get("environment")
    settings, problems = parse(Settings, plain, environment if isinstance(environment, str) else "dev", prefix)
    problems += naming_problems(plain)
    if settings is not None:
        settings = resolve(settings, stack)
        problems += cross_field_problems(settings)
    values = {}
    for key in SECRET_KEYS:
        full = prefix + key.name
        if key.name in ours and full not in secret_keys:
            problems.append(
                f"{full}: is set in plain text, expected a secret: "
                f"run `pulumi config set --secret {full} <value>`"
            )
        elif key.name not in ours and settings is not None and key.required(settings):
            problems.append(
                f"{full}: missing, expected a secret ({key.doc}) "
                f"run `pulumi config set --secret {full} <value>`"
            )
        elif key.name in ours and settings is not None and key.check is not None and check_secrets:
            text = raw[full] if isinstance(raw[full], str) else json.dumps(raw[full])
            problems += [f"{full}: {problem}" for problem in key.check(settings, text)]
        values[secret_field(key)] = read_secret(key.name) if key.name in ours else None
    if problems:
        raise ConfigError(problems)
    return settings, Secrets(**values)
