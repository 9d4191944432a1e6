"""`make policy [STACK=<name>] [BASE=<rev>]`: the policy pack's rules, offline, over a stack's render and
what its charts make of it.

The same rule functions `pulumi preview --policy-pack policy` runs (policy/rules/), over every
resource the program registers (tools/render.py) and, where the charts are available, every object
each Helm release templates to (tools/templating.py): the claims, pods and names the charts and the
Operator make, which a preview sees only as release values. Without a stack, every stack, and the
account-wide rules (PagerDuty names) over all of them together. With BASE, the changes from that
revision's render are judged too (`change-safety`): the base revision's stack is rendered with its
own code (a temporary git worktree, `python -m tools.render` there) and templated where the charts
of its pinned versions are available; a change to an immutable field (policy/immutable.py) fails
unless a migration there carries it, and so does a change that makes Pulumi replace a protected
resource (`pulumi up` refuses to).

    python -m tools.policy [<stack>] [--base <git revision>]

One line per violation, `<rule>: <subject>: <what, the value and the limit>`; exit status 1 when any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Optional

from policy.immutable import REFUSED, carried_by, changes, uncarried
from policy.model import RELEASE, Resource, StackView, Violation, prometheus_objects
from policy.rules import RULES
from tools.program import CheckoutError, RenderError, render_revision, render_stack
from tools.stacks import stacks
from tools.rendered import RenderedStack, reveal
from tools.templating import template_rendered


def resources_of(registered: Iterable[dict[str, Any]]) -> list[Resource]:
    """The resources of a render (`RenderedStack.resources`) as the rules take them, secrets revealed."""
    return [Resource(r["type"], r["name"], reveal(r["inputs"]), bool((r.get("options") or {}).get("protect")))
            for r in registered]


def chart_objects(rendered: RenderedStack, settings) -> tuple[Optional[list[dict]], list[str]]:
    """What the releases template to (CRDs aside), and a note per release that could not be templated;
    None when no chart could be (the view then holds what the values tell)."""
    try:
        output = template_rendered(rendered, settings)
    except (FileNotFoundError, RuntimeError, AssertionError) as err:
        return None, [f"charts not templated: {err}"]
    notes = [f"{name}: not templated: {reason}" for name, reason in output.skipped.items()]
    if len(output.skipped) == len(output.releases):
        return None, notes
    objects = [o for release in output.releases.values() for o in release.objects
               if o.get("kind") != "CustomResourceDefinition"]
    # A release whose chart is missing: what its values tell, as under a preview.
    for release in rendered.resources:
        if release["type"] == RELEASE and reveal(release["inputs"]).get("chart") in output.skipped:
            objects += prometheus_objects(reveal(release["inputs"]))
    return objects, notes


def stack_view(stack: str) -> tuple[StackView, list[str]]:
    settings, rendered = render_stack(stack)
    objects, notes = chart_objects(rendered, settings)
    return StackView.of(resources_of(rendered.resources), objects), notes


RULE = "change-safety"


def protected_replacements(base: StackView, head: StackView, stack: str = "") -> list[Violation]:
    """Protected program objects that the head renames or changes in a field the API server refuses
    to update: Pulumi would replace them, which protection forbids (unless a migration carries the
    change: its runbook releases the resource first)."""
    refused = {(c.kind, c.namespace, c.name) for c in uncarried(stack, changes(base.objects, head.objects))
               if c.effect == REFUSED}
    heads = {(r.type, r.name): r for r in head.resources}
    found = []
    for resource in base.resources:
        new = heads.get((resource.type, resource.name))
        old_object, new_object = resource.manifest(), new.manifest() if new else None
        if not resource.protect or old_object is None or new_object is None:
            continue
        old_meta, new_meta = old_object.get("metadata") or {}, new_object.get("metadata") or {}
        key = (old_object["kind"], str(old_meta.get("namespace") or ""), str(old_meta.get("name")))
        renamed = (old_meta.get("name"), old_meta.get("namespace")) != (new_meta.get("name"), new_meta.get("namespace"))
        if renamed or key in refused:
            why = "renames it" if renamed else "changes a field it cannot update"
            found.append(Violation(f"{key[0]} {key[2]} ({resource.type} {resource.name})",
                                   f"protected, and the change {why}: Pulumi would replace it, and `pulumi up` refuses "
                                   "to replace a protected resource (docs/operations/volumes.md)", rule=RULE))
    return found


def base_changes(stack: str, revision: str, head: StackView) -> tuple[list[Violation], list[str]]:
    """The violations of change safety from `revision` to `head`, and a note per change a migration carries."""
    with tempfile.TemporaryDirectory(prefix="policy-base-") as tmp:
        rendered = render_revision(stack, revision, Path(tmp))
    if rendered is None:
        return [], [f"{revision} has no stack {stack}: nothing to compare"]
    objects, _ = chart_objects(rendered, None)
    base = StackView.of(resources_of(rendered.resources), objects)
    if base.charts_templated != head.charts_templated:
        # Compare like with like: the Operator's resources as the values tell, on both sides.
        base, head = StackView.of(base.resources), StackView.of(head.resources)
    found = changes(base.objects, head.objects)
    notes = [f"carried by migration {migration.name} ({migration.runbook}): {change}"
             for change in found if (migration := carried_by(stack, change)) is not None]
    violations = [Violation(change.subject, str(change).split(": ", 1)[1], rule=RULE)
                  for change in uncarried(stack, found)]
    return violations + protected_replacements(base, head, stack), notes


# ------------------------------------------------------------------------------ the run


def judge(view: StackView, account_wide: bool = False) -> list[Violation]:
    return [v for rule in RULES if rule.account_wide == account_wide for v in rule.run(view)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.policy", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", nargs="?", help="one stack (default: every stack)")
    parser.add_argument("--base", help="a git revision: also judge the changes from its render")
    args = parser.parse_args(argv)
    chosen = [args.stack] if args.stack else stacks()
    found: list[Violation] = []
    views = []
    for stack in chosen:
        try:
            view, notes = stack_view(stack)
        except RenderError as err:
            print(err, file=sys.stderr)
            return 2
        views.append(view)
        stack_found = judge(view) + judge(view, account_wide=True)
        print(f"== stack {stack}: {len(RULES)} rules, {len(view.resources)} resources, {len(view.objects)} objects"
              f"{'' if view.charts_templated else ' (no chart output: releases judged by their values)'}")
        for note in notes:
            print(f"  {note}")
        if args.base:
            try:
                changed, carried = base_changes(stack, args.base, view)
            except CheckoutError as err:
                print(f"BASE {args.base}: cannot be checked out: {err}", file=sys.stderr)
                return 2
            except RenderError as err:
                print(err, file=sys.stderr)
                return 2
            stack_found += changed
            for note in carried:
                print(f"  {note}")
        for violation in stack_found:
            print(f"  {violation}")
        found += stack_found
    if len(views) > 1:
        union = StackView(tuple(r for v in views for r in v.resources), ())
        across = [v for v in judge(union, account_wide=True) if str(v) not in {str(f) for f in found}]
        if across:
            print(f"== every stack together ({', '.join(chosen)})")
            for violation in across:
                print(f"  {violation}")
        found += across
    print(f"{len(found)} violation{'s' if len(found) != 1 else ''}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
