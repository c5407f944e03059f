"""state/ and render/ are pure: they import no HTTP server or client, no Kubernetes client, no asyncio."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "exporter"
FORBIDDEN = ("aiohttp", "kubernetes", "asyncio", "exporter.kube", "exporter.web", "exporter.sources", "time")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted([*PACKAGE.glob("state/*.py"), *PACKAGE.glob("render/*.py")]), ids=lambda p: p.name
)
def test_pure_layers(path: Path) -> None:
    bad = {m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"
