"""The collector during the first sync: survivors of each full collection are frozen, and once more at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from exporter.heap import StartupFreezer, freeze_until


class FakeCollector:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[str, dict[str, Any]], None]] = []
        self.events: list[str] = []

    def freeze(self) -> None:
        self.events.append("freeze")

    def collect(self, generation: int = 2) -> int:
        self.events.append(f"collect {generation}")
        return 0

    def run(self, generation: int) -> None:
        """What the interpreter does around a collection of ``generation``."""
        for callback in list(self.callbacks):
            callback("start", {"generation": generation})
        self.events.append(f"gc {generation}")
        for callback in list(self.callbacks):
            callback("stop", {"generation": generation, "collected": 0, "uncollectable": 0})


def test_the_survivors_of_full_collections_only_are_frozen() -> None:
    collector = FakeCollector()
    freezer = StartupFreezer(collector)
    freezer.start()
    collector.run(0)
    collector.run(1)
    collector.run(2)
    collector.run(0)

    assert collector.events == ["gc 0", "gc 1", "gc 2", "freeze", "gc 0"]


def test_finishing_collects_freezes_once_more_and_leaves_the_collector_alone() -> None:
    collector = FakeCollector()
    freezer = StartupFreezer(collector)
    freezer.start()
    freezer.finish()
    collector.run(2)

    assert collector.events == ["collect 2", "freeze", "gc 2"]
    assert collector.callbacks == [] and freezer.freezes == 1


async def test_freezing_lasts_until_the_first_sync() -> None:
    collector = FakeCollector()
    synced = asyncio.Event()
    task = asyncio.create_task(freeze_until(synced.wait, StartupFreezer(collector)))
    await asyncio.sleep(0)
    collector.run(2)
    synced.set()
    await task
    collector.run(2)

    assert collector.events == ["gc 2", "freeze", "collect 2", "freeze", "gc 2"]


async def test_a_stop_before_the_first_sync_still_removes_the_callback() -> None:
    collector = FakeCollector()
    task = asyncio.create_task(freeze_until(asyncio.Event().wait, StartupFreezer(collector)))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert collector.callbacks == []
