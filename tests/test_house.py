"""The house: which room may import which (the layers the README draws), and no module importing
itself back through others. Read from the source's import statements (ast): every import, also
one inside a function, so that a cycle cannot hide in a late import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

# The rooms, and what each may import. The platform's rules are the ground; the program is
# config -> monitoring -> components -> __main__; the commands a person runs (tools) stand on the
# program's content; the test kit on the commands; the tests on anything.
ALLOWED = {
    "policy": set(),
    "config": {"policy"},
    "monitoring": {"config", "policy"},
    "components": {"config", "monitoring", "policy"},
    "__main__": {"config", "monitoring", "components"},
    "tools": {"config", "monitoring", "policy"},
    "testkit": {"config", "monitoring", "components", "policy", "tools"},
    "tests": {"config", "monitoring", "components", "policy", "tools", "testkit"},
}


def modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every Python file of the rooms under `root`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] not in ALLOWED and relative != Path("__main__.py"):
            continue
        parts = relative.with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the house it imports."""
    found = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from package import module` imports the module; `from module import name`, the module.
                targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in found else base for alias in node.names}
        graph[name] = {t for t in targets if t in found and t != name}
    return graph


def forbidden(graph: dict[str, set[str]]) -> list[str]:
    """`a imports b` for each import that runs against ALLOWED."""
    return sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets
                  if a.split(".")[0] != b.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.fixture(scope="module")
def house() -> dict[str, set[str]]:
    return imports(ROOT)


def test_every_import_keeps_to_the_layers(house):
    graph = house
    assert {"tools.render", "testkit.bench", "components.metrics", "__main__"} <= set(graph)
    assert "tools.program" in graph["tools.render"]  # the reader sees imports at all
    assert forbidden(graph) == []


def test_no_module_imports_itself_back(house):
    assert cycles(house) == []


def test_the_checks_find_a_circle_and_an_import_against_the_layers(tmp_path):
    """The negative case, on a small tree: tools importing the test kit, two modules importing each
    other (one of the imports inside a function, one relative)."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "testkit").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("")
    (tmp_path / "testkit" / "__init__.py").write_text("")
    (tmp_path / "tools" / "a.py").write_text("from . import b\n")
    (tmp_path / "tools" / "b.py").write_text("def late():\n    import tools.a\n    from testkit import kit\n")
    (tmp_path / "testkit" / "kit.py").write_text("")
    graph = imports(tmp_path)
    assert graph["tools.a"] == {"tools.b"}
    assert forbidden(graph) == ["tools.b imports testkit.kit"]
    assert cycles(graph) == [["tools.a", "tools.b"]]
