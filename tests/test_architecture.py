"""Data flows one way: channels import the core, the core imports no channel, no channel imports another, and no
package has an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

CHANNELS = ("bot", "mailroom", "console")
PACKAGES = ("core", *CHANNELS, "runner")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (inside functions too), by full dotted name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (PROJECT_ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def top_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports_of(path)}


def test_the_core_imports_no_channel() -> None:
    offenders = {name: sorted(top_packages(path) & {*CHANNELS, "runner"}) for name, path in modules("core").items()}
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_channel_imports_no_other_channel(channel: str) -> None:
    others = set(CHANNELS) - {channel} | {"runner"}
    offenders = {name: sorted(top_packages(path) & others) for name, path in modules(channel).items()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_runner_starts_channels_without_importing_them() -> None:
    offenders = {name: sorted(top_packages(path) & set(CHANNELS)) for name, path in modules("runner").items()}
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    found = modules(package)
    graph = {name: {other for other in imports_of(path) if other in found and other != name}
             for name, path in found.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycles.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []
