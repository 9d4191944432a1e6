"""Shared test helpers: stack settings without Pulumi, and whole-program runs under mocks."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
from pathlib import Path
from typing import Any, Mapping

import yaml

from config import Secrets, Settings, load
from config.schema import NAMESPACE
from tools import render
from tools.mock_runtime import ROOT, Run, encode_config, run_program
from tools.rendered import RenderedStack

# Distinctive secret values: a test that finds one outside a secret has found a leak.
SECRET_VALUES = {
    "slackWebhookUrl": "https://hooks.slack.com/services/TLEAK/BLEAK/slack-secret-canary",
    "pagerdutyToken": "pagerduty-token-canary",
    "pagerdutyUserToken": "pagerduty-user-token-canary",
    "heartbeatUrl": "https://hc-ping.example.com/heartbeat-secret-canary",
    "grafanaOauthClientSecret": "oauth-client-secret-canary",
    "platformSlackWebhookUrl": "https://hooks.slack.com/services/TLEAK/BPLATFORM/platform-slack-secret-canary",
    "federationCredentials": json.dumps({"webhook-prod-euw1": {"username": "federation",
                                                              "password": "federation-password-canary"}}),
}


def stack_values(stack: str) -> dict[str, Any]:
    """The `config:` map of Pulumi.<stack>.yaml, keys without the namespace."""
    values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in values.items()}


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` deep-merged into `base`; a None value removes the key."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def raw_config(stack: str, overrides: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None):
    """(raw config as Pulumi passes it, secret keys) for a stack file with overrides applied."""
    values = merged(stack_values(stack), overrides or {})
    secrets = SECRET_VALUES if secrets is None else secrets
    raw = encode_config(NAMESPACE, values)
    raw.update({f"{NAMESPACE}:{k}": v for k, v in secrets.items()})
    return raw, [f"{NAMESPACE}:{k}" for k in secrets]


def stack_settings(stack: str, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Validated settings of a stack file (with overrides), without running Pulumi."""
    raw, secret_keys = raw_config(stack, overrides)
    return load(raw, secret_keys, lambda name: SECRET_VALUES[name], stack=stack)[0]


MINIMAL_CLUSTER = {
    "name": "webhook-test-use1",
    "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
    "oidcIssuerUrl": "https://oidc.eks.us-east-1.amazonaws.com/id/X",
}
ONCALL = ["first@example.com", "second@example.com"]
# The shipped stacks' runbook location (alerting.runbookBaseUrl is required).
RUNBOOKS = "https://git.example.com/sre/webhook-monitoring/blob/main/docs/runbooks/"
# The tenancy of the deployed stacks (dev, prod): they own their clusters and keep the names they were
# deployed with. Tests of joining a platform, or of derived names, say so.
OWN_LEGACY = {"mode": "own", "naming": "legacy"}


def minimal_settings(environment: str = "dev", **sections: Any) -> Settings:
    """Settings from the least a stack must say, plus `sections` (top-level keys, camelCase).

    A section given replaces the minimal one, except `grafana` and `alerting`, which keep their required
    host and runbook URL. Prod pages the ONCALL users unless `alerting` says otherwise. Every secret is set.
    The tenancy is the deployed stacks' (OWN_LEGACY) unless `tenancy` says otherwise.
    """
    raw: dict[str, Any] = {"environment": environment, "cluster": MINIMAL_CLUSTER, "grafana": {"host": "grafana.example.com"},
                           "tenancy": OWN_LEGACY, "alerting": {}}
    if environment == "prod":
        raw["alerting"] = {"pagerduty": {"escalationUsers": ONCALL}}
    raw.update(sections)
    raw["grafana"] = {"host": "grafana.example.com", **raw["grafana"]}
    raw["alerting"] = {"runbookBaseUrl": RUNBOOKS, **raw["alerting"]}
    encoded = encode_config(NAMESPACE, raw)
    encoded.update({f"{NAMESPACE}:{k}": v for k, v in SECRET_VALUES.items()})
    return load(encoded, [f"{NAMESPACE}:{k}" for k in SECRET_VALUES], lambda name: SECRET_VALUES[name])[0]


def stack_secrets(stack: str) -> Secrets:
    raw, secret_keys = raw_config(stack)
    return load(raw, secret_keys, lambda name: SECRET_VALUES[name], stack=stack)[1]


def run_stack(stack: str, overrides: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None) -> Run:
    """Run the whole program under mocks; cached per arguments (a run is read-only)."""
    key = json.dumps([stack, overrides or {}, secrets], sort_keys=True)
    return _run_cached(key)


def rendered_stack(stack: str, overrides: Mapping[str, Any] | None = None,
                   secrets: Mapping[str, str] | None = None) -> RenderedStack:
    """The view of a whole-program run (tools/rendered.py), as `make render` writes it."""
    return RenderedStack.from_run(stack, run_stack(stack, overrides, secrets))


@functools.lru_cache(maxsize=None)
def _run_cached(key: str) -> Run:
    stack, overrides, secrets = json.loads(key)
    raw, secret_keys = raw_config(stack, overrides, secrets)
    run = run_program(stack, raw, secret_keys)
    if run.error is None:
        # Guard against the vacuous pass: a program built outside the mocks registers nothing.
        assert run.resources, f"the program registered nothing for stack {stack}"
    return run


GROUP_FILES = "groups"


def write_rules(groups: list[dict], directory: Path) -> tuple[Path, list[str]]:
    """Rule groups as the `prometheus-rules.yaml` of a promtool test, and their names in order
    (promtool's `group_eval_order`: otherwise it evaluates groups in a random order). Each group is
    also written alone, as `groups/<name>.yaml`: a unit test that names only the groups it exercises
    does not evaluate every other rule at each of its steps."""
    path = directory / "prometheus-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    (directory / GROUP_FILES).mkdir(exist_ok=True)
    for group in groups:
        (directory / GROUP_FILES / f"{group['name']}.yaml").write_text(yaml.safe_dump({"groups": [group]}, sort_keys=False))
    return path, [g["name"] for g in groups]


def render_in(folder: Path, stack: str) -> tuple[int, str, str]:
    """`make render STACK=<stack>` for Pulumi.<stack>.yaml of `folder`, into its build/: exit code, what it
    printed, what it refused with."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = render.render(stack, root=folder, out_root=folder / "build")
    return code, out.getvalue(), err.getvalue()
