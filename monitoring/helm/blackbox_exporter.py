"""The values of prometheus-blackbox-exporter 11.17.2: the probe modules, a pod `restricted` admits."""

from __future__ import annotations

from config.settings import Settings
from monitoring import versions
from monitoring.pods import RESTRICTED_CONTAINER, restricted_pod, small_resources
from monitoring.scrape import BLACKBOX_MODULES


def values(settings: Settings) -> dict:
    """Values of prometheus-blackbox-exporter 11.17.2: the probe modules and modest resources."""
    return {
        # The version whose `--config.check` the tests run on these modules (tools/go_tools.py).
        "image": {"tag": versions.BLACKBOX_EXPORTER_IMAGE_TAG},
        "config": {"modules": BLACKBOX_MODULES},
        "resources": small_resources("25m", "32Mi", "64Mi"),
        # The chart's container context, on a pod that `restricted` admits.
        "podSecurityContext": restricted_pod(65534),
        "securityContext": {**RESTRICTED_CONTAINER, "runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
    }
