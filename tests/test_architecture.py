"""Data flows one way: channels import the core, the core imports no channel."""

from __future__ import annotations

import ast
from pathlib import Path

from core.settings import PROJECT_ROOT

CHANNEL_PACKAGES = {"bot", "mailroom", "console", "runner"}


def imported_top_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_core_imports_no_channel() -> None:
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): sorted(imported_top_packages(path) & CHANNEL_PACKAGES)
        for path in (PROJECT_ROOT / "core").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_actions_import_no_other_channel() -> None:
    for path in (PROJECT_ROOT / "bot" / "actions").rglob("*.py"):
        assert not imported_top_packages(path) & {"mailroom", "console", "runner"}, path
