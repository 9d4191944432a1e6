"""Helm values builders, one module per chart, and the merge they share."""

from __future__ import annotations

import copy
from typing import Any, Mapping


def deep_merge(*dicts: Mapping[str, Any]) -> dict:
    """The dicts merged left to right, recursing into nested dicts; a later non-dict value wins.

    Lists are values, not merged: a later list replaces an earlier one. The inputs are not changed.
    """
    merged: dict = {}
    for d in dicts:
        for key, value in d.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = deep_merge(merged[key], value)
            elif isinstance(value, Mapping):
                merged[key] = deep_merge(value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged
