"""Every rule of the policy pack, in the order `make policy` and the pack report them."""

from __future__ import annotations

from policy.model import Rule, StackView, Violation
from policy.rules import alerting, aws, names, references, storage

RULES: tuple[Rule, ...] = (*storage.RULES, *references.RULES, *names.RULES, *aws.RULES, *alerting.RULES)


def violations(view: StackView, rules: tuple[Rule, ...] = RULES) -> list[Violation]:
    return [v for rule in rules for v in rule.run(view)]
