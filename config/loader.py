"""Turn a stack's raw configuration into validated `Settings`, or fail with every problem."""

from __future__ import annotations

import difflib
import json
from typing import Any, Callable, Collection, Mapping

from config.schema import NAMESPACE, ConfigError, parse
from config.secrets import SECRET_KEYS, Secrets, secret_field
from config.checks import cross_field_problems, naming_problems, stack_name_problems
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


# The providers the program makes itself, from its own keys: a provider made in the program reads its
# arguments, never the stack's `<provider>:` keys, which only configure a provider Pulumi makes by
# default (https://www.pulumi.com/docs/iac/concepts/resources/providers/#default-provider-configuration).
EXPLICIT_PROVIDERS = {
    "aws": "its AWS provider from cluster.region (credentials from the environment)",
    "kubernetes": "its Kubernetes provider from cluster.infraStack or cluster.kubeContext",
    "pagerduty": "its PagerDuty provider from the pagerdutyToken secret",
}
# Namespaces read by something: Pulumi itself, and the providers Pulumi makes by default for the program's
# passwords (random) and certificates (tls).
READ_NAMESPACES = {"pulumi", "random", "tls"}
PROVIDER_KEY_INSTEAD = {"aws:region": "cluster.region", "kubernetes:context": "cluster.kubeContext",
                        "kubernetes:kubeconfig": "cluster.infraStack (its kubeconfig output)"}


def namespace_problems(keys: Collection[str]) -> list[str]:
    """Keys the program would silently ignore: of a provider it makes itself, or of a namespace nothing reads
    (a misspelled `webhook-monitoring:`)."""
    problems = []
    for key in sorted(keys):
        namespace, colon, name = key.partition(":")
        if not colon or namespace == NAMESPACE or namespace in READ_NAMESPACES:
            continue
        if namespace in EXPLICIT_PROVIDERS:
            instead = PROVIDER_KEY_INSTEAD.get(key)
            fix = f"set {NAMESPACE}:{instead} instead" if instead else "remove it"
            problems.append(f"{key}: ignored, expected no `{namespace}:` key: the program makes "
                            f"{EXPLICIT_PROVIDERS[namespace]}, which reads no stack key of its own; {fix}")
            continue
        close = difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.6)
        hint = f"; did you mean '{NAMESPACE}:{name}'?" if close else ""
        problems.append(f"{key}: unknown namespace '{namespace}'{hint} (the program reads {NAMESPACE}: keys, "
                        f"and Pulumi {', '.join(sorted(READ_NAMESPACES))}: keys)")
    return problems


def load(
    raw: Mapping[str, Any],
    secret_keys: Collection[str],
    read_secret: Callable[[str], Any],
    check_secrets: bool = True,
    stack: str = "",
) -> tuple[Settings, Secrets]:
    """Validate `raw` (full key -> value, e.g. `webhook-monitoring:prometheus` -> JSON text).

    Keys of other namespaces are refused where nothing would read them (`namespace_problems`).
    `read_secret(name)` returns the secret value of a key known to be set. Without `check_secrets`, the
    secrets' values are not judged (the offline render's placeholders). `stack`: the Pulumi stack's name,
    which derived names start with (config/naming.py; unknown: the environment's) and which must not name
    another environment than `environment` (unknown: not checked).
    """
    prefix = NAMESPACE + ":"
    ours = {k[len(prefix):]: decode(v) for k, v in raw.items() if k.startswith(prefix)}
    secret_names = {k.name for k in SECRET_KEYS}
    plain = {k: v for k, v in ours.items() if k not in secret_names}
    environment = plain.get("environment")
    settings, problems = parse(Settings, plain, environment if isinstance(environment, str) else "dev", prefix)
    problems += naming_problems(plain) + namespace_problems(raw)
    if settings is not None:
        settings = resolve(settings, stack)
        problems += cross_field_problems(settings) + stack_name_problems(settings, stack)
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
