"""Read the running stack's configuration through the Pulumi SDK, once."""

from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config

from config.checks import warnings
from config.loader import load
from config.schema import NAMESPACE
from config.secrets import Secrets
from config.settings import Settings


def load_stack_config() -> tuple[Settings, Secrets]:
    """Settings and secrets of the stack being run, its warnings logged; raises ConfigError listing every problem.

    Pulumi offers no public call listing every key that is set, and a misspelled key must be
    an error, so the raw map is read where the SDK keeps it: the engine's environment, or the
    map a test or the offline render set.
    """
    raw = {**pulumi.runtime.get_config_env(), **runtime_config.CONFIG.get()}
    env_secret_keys = set(pulumi.runtime.get_config_secret_keys_env())
    secret_keys = {k for k in raw if k in env_secret_keys or pulumi.runtime.is_config_secret(k)}
    stack_config = pulumi.Config(NAMESPACE)
    settings, secrets = load(raw, secret_keys, stack_config.require_secret, stack=pulumi.get_stack())
    # What renders but is likely not meant: `pulumi preview` shows each line, as `make render` does.
    for line in warnings(settings):
        pulumi.log.warn(line)
    return settings, secrets
