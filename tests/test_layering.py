"""The layers import one way (DESIGN.md §7).

state/ and render/ are pure: no HTTP server or client, no Kubernetes client, no asyncio, no clock.
kube/ and sources/ are the edges that feed the state; they import nothing from render/ or web/.
The modules every layer shares (resources, self metrics) import no layer above them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "exporter"
IMPURE = ("aiohttp", "kubernetes", "asyncio", "exporter.kube", "exporter.web", "exporter.sources", "time")
EDGE_FORBIDDEN = ("exporter.render", "exporter.web", "exporter.service", "exporter.cli")
SHARED_FORBIDDEN = (*IMPURE, "exporter.render", "exporter.state", "exporter.service", "exporter.cli")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # ``from exporter import render`` names the package in the alias, not the module.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize(
    "path", sorted([*PACKAGE.glob("state/*.py"), *PACKAGE.glob("render/*.py")]), ids=lambda p: p.name
)
def test_pure_layers(path: Path) -> None:
    bad = violations(path, IMPURE)
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize(
    "path", sorted([*PACKAGE.glob("kube/*.py"), *PACKAGE.glob("sources/*.py")]), ids=lambda p: p.name
)
def test_edges_do_not_reach_up(path: Path) -> None:
    bad = violations(path, EDGE_FORBIDDEN)
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize("name", ["resources.py", "self_metrics.py"])
def test_shared_modules_import_no_layer(name: str) -> None:
    bad = violations(PACKAGE / name, SHARED_FORBIDDEN)
    assert not bad, f"{name} imports {bad}"


def test_the_layering_check_sees_every_form_of_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("import exporter.render.text\nfrom exporter import render\nfrom exporter.web.app import x\n")
    assert violations(module, EDGE_FORBIDDEN) == [
        "exporter.render",
        "exporter.render.text",
        "exporter.web.app",
        "exporter.web.app.x",
    ]
