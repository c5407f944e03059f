"""Size limits that keep modules readable: no class over 220 lines, no function over 60 lines.

Counted from the ``def``/``class`` line (decorators excluded) to the last line of the body, over
``exporter/`` except the simulator.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "exporter"
MAX_CLASS_LINES = 220
MAX_FUNCTION_LINES = 60


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "simulator" not in p.relative_to(PACKAGE).parts)


def oversized(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            limit = MAX_CLASS_LINES
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_FUNCTION_LINES
        else:
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > limit:
            where = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path.name
            yield f"{where}:{node.lineno} {node.name} has {lines} lines (limit {limit})"


def test_no_class_or_function_is_too_long() -> None:
    found = [problem for path in sources() for problem in oversized(path)]
    assert not found, "\n".join(found)


def test_the_check_measures_nested_definitions(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    module.write_text(f"class Small:\n    def long(self):\n{body}\n", encoding="utf-8")
    assert [p.split(" ", 1)[1] for p in oversized(module)] == [f"long has {MAX_FUNCTION_LINES + 1} lines (limit 60)"]
