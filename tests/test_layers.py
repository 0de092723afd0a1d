"""The rooms of mbprof import one way (CONTRIBUTING.md's map): a test, so that the map stays
true as the code grows."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

# room -> the rooms it may import (itself always)
ALLOWED = {
    "core": set(),
    "models": {"core"},
    "analysis": {"core", "models"},
    "frame": {"core"},
    "checks": {"core", "frame"},
    "report": {"core", "frame", "render", "models"},  # models: which are registered
    "render": {"core", "frame", "checks", "report", "models"},
    "api": {"core", "models", "analysis", "frame", "checks", "report", "render"},
    "cli": {"core", "api", "render", "frame", "checks", "report", "models"},
}
TOP = {"__init__", "__main__"}


def _room(path: Path) -> str:
    parts = path.relative_to(ROOT / "mbprof").with_suffix("").parts
    return parts[0]


def _typing_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (names for annotations only)."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }


def _imports(path: Path) -> set[str]:
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mbprof."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mbprof.")}
    return found


def test_every_room_imports_only_the_rooms_below_it():
    wrong = []
    for path in sorted((ROOT / "mbprof").rglob("*.py")):
        room = _room(path)
        if room in TOP:
            continue
        for other in _imports(path) - {room} - TOP:
            if other not in ALLOWED[room]:
                wrong.append(f"{path.relative_to(ROOT)} ({room}) imports mbprof.{other}")
    assert not wrong, "\n".join(wrong)


def test_no_file_holds_more_than_one_idea_by_size():
    long = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in (ROOT / "mbprof").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    ]
    assert not long, long
