"""The house rules, enforced: bootstrap > flows > adapters > decisions, and no import cycle.

Read from the source with `ast` (nothing is imported), so a rule breaks here before it ships.
Imports under TYPE_CHECKING and inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.support import ROOT

PACKAGE = ROOT / "lib" / "facteur"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

# Which facteur rooms each room may import, and which third-party packages.
ALLOWED: dict[str, tuple[frozenset[str], frozenset[str] | None]] = {
    "errors": (frozenset(), frozenset()),
    "decisions": (frozenset({"decisions", "errors"}), frozenset({"pydantic"})),
    "adapters": (
        frozenset({"adapters", "decisions", "errors", "logs", "telemetry"}),
        None,  # adapters are where the clients live
    ),
    "flows": (frozenset({"flows", "decisions", "errors", "logs", "telemetry"}), frozenset()),
    "config": (frozenset({"decisions", "errors"}), None),
    "telemetry": (frozenset(), None),
    "logs": (frozenset({"telemetry"}), frozenset()),
    "health": (frozenset(), frozenset()),
    "web": (frozenset({"errors", "health"}), None),
    "asgi": (frozenset({"health"}), None),
    "callers": (frozenset(), None),
    "serving": (frozenset(), None),
    "bootstrap": (
        frozenset({"adapters", "flows", "decisions", "errors", "config", "health", "logs"})
        | {"telemetry"},
        None,
    ),
    # The CLI plays each caller, so it may read what callers.py checks (the tick's event type).
    "cli": (
        frozenset({"cli", "bootstrap", "config", "decisions", "errors", "adapters", "callers"}),
        None,
    ),
    "__init__": (frozenset(), frozenset()),
    "__main__": (frozenset({"cli"}), frozenset()),
}


def room(module: str) -> str:
    """facteur.decisions.render -> decisions; facteur.config -> config; facteur -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str) -> Iterator[str]:
    """Every module named by an import statement, resolved to an absolute name."""
    package = module if module.count(".") == 0 else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base == "facteur":  # `from facteur import logs, bootstrap`
                yield from (f"facteur.{alias.name}" for alias in node.names)
            else:
                yield base


def violations(module: str, source: str) -> list[str]:
    """What module `module` (with this source) imports against the house rules."""
    here = room(module)
    rooms, third_party = ALLOWED[here]
    found = []
    for name in imports(source, module):
        top = name.split(".")[0]
        if top == "facteur":
            there = room(name)
            if there != here and there not in rooms:
                found.append(f"{module} ({here}) imports {name} ({there})")
        elif top not in STDLIB and third_party is not None and top not in third_party:
            found.append(f"{module} ({here}) imports third-party {name}")
    return found


def sources() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield module_name(path), path.read_text()


def test_every_module_keeps_to_its_room() -> None:
    found = [problem for module, source in sources() for problem in violations(module, source)]
    assert found == []


def test_every_room_has_a_rule() -> None:
    assert {room(module) for module, _ in sources()} <= set(ALLOWED)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("facteur.decisions.render", "from facteur.adapters.argo import ArgoClient\n"),
        ("facteur.decisions.render", "import requests\n"),
        ("facteur.decisions.render", "def f():\n    from facteur import config\n"),
        ("facteur.flows.command_route", "from facteur.adapters.sessions import SessionStore\n"),
        ("facteur.flows.command_route", "from facteur.config import Settings\n"),
        ("facteur.adapters.discord", "from facteur.config import Settings\n"),
        ("facteur.adapters.argo", "from ..flows import ports\n"),
    ],
)
def test_the_rules_catch_a_crossing(module: str, source: str) -> None:
    assert violations(module, source) != []


def test_the_subpackage_doors_import_nothing() -> None:
    # Importing facteur.flows must not load a flow: each function loads only what it wires.
    for path in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path} states no rule"
        assert not [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)], path


def test_there_is_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for module, source in sources():
        graph[module] = {
            name
            for name in imports(source, module)
            if name.startswith("facteur.") or name == "facteur"
        }
    known = set(graph)
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            # `from facteur.decisions import render` names the module, not the package.
            if target not in known:
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
