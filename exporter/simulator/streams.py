"""Open long-running responses (watches and followed logs) that the store feeds and HTTP drains."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque
from collections.abc import Callable
from typing import Any

from exporter.simulator.resources import Change

Predicate = Callable[[dict[str, Any]], bool]


class StreamEnd(enum.Enum):
    """How an open stream ends."""

    CLOSED = "closed"  # finish the response cleanly
    DROPPED = "dropped"  # abort the connection with no final chunk
    EXPIRED = "expired"  # send an ERROR 410 event, then finish
    OVERFLOW = "overflow"  # the client fell too far behind; finish cleanly


class Stream:
    """An open long-running response: the store pushes items, the HTTP handler drains them."""

    def __init__(self, limit: int) -> None:
        self._items: deque[Any] = deque()
        self._limit = limit
        self._wakeup = asyncio.Event()
        self.end: StreamEnd | None = None

    def push(self, item: Any) -> None:
        if self.end is not None:
            return
        if len(self._items) >= self._limit:
            self.finish(StreamEnd.OVERFLOW)
            return
        self._items.append(item)
        self._wakeup.set()

    def finish(self, how: StreamEnd) -> None:
        """End the stream once; later calls keep the first reason."""
        if self.end is None:
            self.end = how
            self._wakeup.set()

    def drain(self) -> list[Any]:
        items = list(self._items)
        self._items.clear()
        return items

    async def wait(self, timeout: float | None) -> None:
        """Return when items are pending, the stream ended, or ``timeout`` seconds passed."""
        if self._items or self.end is not None:
            return
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)


class Watcher(Stream):
    """One open watch of a resource, optionally limited to a namespace and a selector."""

    def __init__(self, *, resource: str, namespace: str | None, match: Predicate | None, limit: int) -> None:
        super().__init__(limit)
        self.resource = resource
        self.namespace = namespace
        self.match = match

    def offer(self, change: Change) -> None:
        """Queue ``(type, entry)`` for a change, translated for the selector as the API server does."""
        obj = change.entry.obj
        if self.namespace is not None and _namespace(obj) != self.namespace:
            return
        if self.match is None:
            self.push((change.type, change.entry))
            return
        matches = self.match(obj)
        if change.type == "DELETED":
            if matches:
                self.push(("DELETED", change.entry))
            return
        matched = change.prev is not None and self.match(change.prev.obj)
        if matches:
            self.push(("MODIFIED" if matched else "ADDED", change.entry))
        elif matched:
            self.push(("DELETED", change.entry))


class LogFollower(Stream):
    """One ``follow=true`` log request; items are ``(simulated time, line)``."""


def _namespace(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("namespace") or "") if isinstance(meta, dict) else ""
