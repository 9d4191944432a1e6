"""Every recipe of docs/cookbook.md, done as it says: its YAML merged into a copy of the stack file, the stack
rendered before and after, and every line the recipe says the render shows found in what it printed (the
summary and the changes since the previous render); a recipe that shows a refusal is refused with its lines.

Each recipe renders the whole program (the stack as shipped once, then once per recipe): the serial phase runs them.
"""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT, render_in

pytestmark = pytest.mark.variants

COOKBOOK = ROOT / "docs" / "cookbook.md"
_FENCE = re.compile(r"```(yaml|text)\n(.*?)```", re.S)
_TARGET = re.compile(r"# (Pulumi\.([a-z0-9-]+)\.yaml)(?:, a copy of (Pulumi\.([a-z0-9-]+)\.yaml))?.*")


@dataclass(frozen=True)
class Recipe:
    title: str
    stack: str
    """The stack the edit is made to."""
    source: str
    """The shipped stack file it starts from (its own, or the one a new stack is copied from)."""
    edit: dict
    shows: tuple[str, ...]
    """Lines the render prints (`...` in the cookbook elides what varies: paths and times)."""
    refused: tuple[str, ...] = ()
    """Lines a copy left as it was is refused with (a new stack's recipe)."""


def recipes() -> list[Recipe]:
    found = []
    for section in re.split(r"^## ", COOKBOOK.read_text(), flags=re.M)[1:]:
        title = section.splitlines()[0]
        if not re.match(r"[0-9]+\. ", title):
            continue  # not a recipe
        fences = _FENCE.findall(section)
        edit = next(body for kind, body in fences if kind == "yaml")
        target = _TARGET.fullmatch(edit.splitlines()[0])
        assert target, f"{title}: the YAML starts with the stack file it edits"
        texts = [tuple(line.rstrip() for line in body.splitlines() if line.strip() and line.strip() != "...")
                 for kind, body in fences if kind == "text"]
        found.append(Recipe(title, target[2], target[4] or target[2], yaml.safe_load(edit)["config"], texts[0],
                            texts[1] if len(texts) > 1 else ()))
    return found


def merged(config: dict, edit: dict) -> dict:
    """`edit` merged into a stack file's `config:`: objects key by key, anything else replaced."""
    out = copy.deepcopy(config)
    for key, value in edit.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "secure" not in value:
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def shipped(stack: str) -> dict:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())


@pytest.fixture(scope="module")
def shipped_renders(tmp_path_factory) -> dict[str, Path]:
    """Each shipped stack rendered once, alone in a folder: the render every recipe starts from."""
    renders = {}
    for stack in {r.source for r in recipes() if r.stack == r.source}:
        folder = tmp_path_factory.mktemp(f"shipped-{stack}")
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", folder)
        assert render_in(folder, stack)[0] == 0
        renders[stack] = folder / "build" / stack
    return renders


def test_the_cookbook_has_the_ten_commonest_changes():
    titles = [r.title for r in recipes()]
    assert len(titles) == 10, titles
    for words in ("service", "threshold", "mute", "probe", "retention", "volume", "stack", "panel", "secret",
                  "receiver"):
        assert any(words in t.lower() for t in titles), words


@pytest.mark.parametrize("recipe", recipes(), ids=lambda r: r.title)
def test_a_recipe_does_what_the_cookbook_says_the_render_shows(recipe, shipped_renders, tmp_path):
    document = shipped(recipe.source)
    if recipe.stack == recipe.source:
        # The stack as shipped was rendered last: `make render` compares with it.
        shutil.copytree(shipped_renders[recipe.stack], tmp_path / "build" / recipe.stack)
    else:
        # A new stack beside the one it is copied from: a copy left as it was is refused.
        shutil.copy(ROOT / f"Pulumi.{recipe.source}.yaml", tmp_path)
        (tmp_path / f"Pulumi.{recipe.stack}.yaml").write_text(yaml.safe_dump(document))
        code, _, err = render_in(tmp_path, recipe.stack)
        assert code == 2 and recipe.refused, err
        assert [line for line in recipe.refused if line not in err.splitlines()] == []
    document["config"] = merged(document["config"], recipe.edit)
    (tmp_path / f"Pulumi.{recipe.stack}.yaml").write_text(yaml.safe_dump(document))
    code, out, err = render_in(tmp_path, recipe.stack)
    assert code == 0, err
    printed = [line.rstrip() for line in out.splitlines()]
    assert [line for line in recipe.shows if line not in printed] == [], out
