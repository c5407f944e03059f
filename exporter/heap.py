"""Garbage collection for a heap that is mostly the fleet's state: large and long-lived.

CPython's cyclic collector walks every tracked object of its oldest generation at each full
collection, and starts one whenever that generation has grown by a quarter. While the first lists
of a large fleet come in, the heap grows by hundreds of MiB, so full collections come again and
again over an ever larger heap: at 100,000 VMs they took a third of the exporter's CPU before it
was ready. What survives a full collection is live, so moving it to the permanent generation
(``gc.freeze``) right after that collection loses nothing, and the next one walks only what came
since. Once the first sync is done the collector works as usual, and what was live then stays out
of its walks (objects are still freed by reference counting).
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class Collector(Protocol):
    """The part of the ``gc`` module used here."""

    callbacks: list[Callable[[str, dict[str, Any]], None]]

    def freeze(self) -> None: ...

    def collect(self, generation: int = 2) -> int: ...


class StartupFreezer:
    """Freezes the survivors of every full collection until ``finish``, then once more."""

    def __init__(self, collector: Collector = gc) -> None:
        self._gc = collector
        self.freezes = 0

    def start(self) -> None:
        self._gc.callbacks.append(self._after_collection)

    def finish(self) -> None:
        if self._after_collection in self._gc.callbacks:
            self._gc.callbacks.remove(self._after_collection)
        self._gc.collect()
        self._freeze()

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            self._freeze()

    def _freeze(self) -> None:
        self._gc.freeze()
        self.freezes += 1


async def freeze_until(synced: Callable[[], Awaitable[None]], freezer: StartupFreezer | None = None) -> None:
    """Keep what the first sync builds out of the collector's walks: from now until ``synced`` returns."""
    freezer = freezer or StartupFreezer()
    freezer.start()
    try:
        await synced()
    finally:
        freezer.finish()
