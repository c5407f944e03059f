"""Shared fixtures: test data loaders and a guard against leaked asyncio tasks."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

DATA = Path(__file__).parent / "data"


def load_json(relative: str) -> Any:
    return json.loads((DATA / relative).read_text(encoding="utf-8"))


@pytest.fixture
def kubevirt_object() -> Callable[[str], Any]:
    """A fresh deep copy of an object under tests/data/kubevirt/, by file stem.

    Without ``metadata.resourceVersion``: tests edit these objects in place, which the API server
    never does without a new version (the fleet skips an object whose version it has applied).
    """

    def load(name: str) -> Any:
        raw = copy.deepcopy(load_json(f"kubevirt/{name}.json"))
        if isinstance(raw.get("metadata"), dict):
            raw["metadata"].pop("resourceVersion", None)
        return raw

    return load


def pytest_configure(config: pytest.Config) -> None:
    """Logs go to standard error, as in the running exporter, so that no test's standard output
    (a command's JSON, for example) gets an exporter's log line mixed in."""
    structlog.configure(logger_factory=lambda *args: structlog.PrintLogger(file=sys.stderr))


# Tests that run real servers over the network, a browser, Prometheus or other external tools, or that
# time the data path (benchmarks), are all ``slow``: ``make unit`` leaves them out; ``make test`` and CI
# run them. Timed, flood and fuzzing tests elsewhere carry the marker themselves.
SLOW_DIRECTORIES = frozenset({"integration", "browser", "e2e", "deploy", "mixin", "release", "benchmarks"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every coroutine test gets the leaked-task guard; tests in SLOW_DIRECTORIES are marked slow."""
    for item in items:
        if SLOW_DIRECTORIES.intersection(item.path.relative_to(DATA.parent).parts[:1]):
            item.add_marker(pytest.mark.slow)
        function = getattr(item, "function", None)
        coroutine = function is not None and asyncio.iscoroutinefunction(function)
        if coroutine and isinstance(item, pytest.Function) and "no_leaked_tasks" not in item.fixturenames:
            item.fixturenames.insert(0, "no_leaked_tasks")


@pytest.fixture
async def no_leaked_tasks() -> Any:
    """Fail a test that leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"leaked tasks: {[t.get_name() for t in leaked]}"
