"""The rules (policy/rules/) as a CrossGuard policy pack: one stack policy each, mandatory.

A stack policy sees every resource of the preview at once, as the offline runner does, so each rule
runs on the same `StackView` there and here. What Pulumi cannot know before deploying reads as
`UNKNOWN`, which the rules skip; secrets are plain values to a policy pack.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy

from policy.model import UNKNOWN, Resource, Rule, StackView
from policy.rules import RULES

# Pulumi's markers of values unknown during a preview.
_UNKNOWNS = {value for name, value in vars(proxy).items() if name.startswith("UNKNOWN_") and isinstance(value, str)}


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWNS else value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def resource_of(resource: PolicyResource) -> Resource:
    """A policy resource as the rules take it: its properties with the preview's unknowns marked
    (read beneath the proxy, which would raise on the first unknown)."""
    try:
        props = resource.props["__target"]
    except KeyError:  # a plain mapping, not the engine's proxy
        props = resource.props
    protect = bool(getattr(resource.opts, "protect", False))
    return Resource(resource.resource_type, resource.name, _plain(dict(props)), protect, resource.urn)


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        view = StackView.of(resource_of(r) for r in args.resources)
        for violation in rule.run(view):
            report_violation(f"{violation.subject}: {violation.message}", violation.urn or None)

    return StackValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY)


def policies() -> list[StackValidationPolicy]:
    """Every rule not judged across stacks (a preview sees one), as a policy."""
    return [stack_policy(rule) for rule in RULES if not rule.account_wide]
