"""A scripted stand-in for KubeClient: list pages and watch streams as named constants."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from exporter.kube import errors


def obj(name: str, rv: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": name, "resourceVersion": rv}, "status": status}


def event(kind: str, name: str, rv: str) -> bytes:
    return json.dumps({"type": kind, "object": obj(name, rv)}).encode() + b"\n"


def bookmark(rv: str) -> bytes:
    return json.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": rv}}}).encode() + b"\n"


EXPIRED_LINE = (
    json.dumps(
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}
    ).encode()
    + b"\n"
)
STALL = object()  # the stream stays silent from here on


class ScriptedLines:
    def __init__(self, lines: list[Any]) -> None:
        self._lines = deque(lines)

    async def readline(self) -> bytes:
        if not self._lines:
            return b""
        item = self._lines.popleft()
        if item is STALL:
            await asyncio.sleep(3600)
        if isinstance(item, BaseException):
            raise item
        return item


class FakeClient:
    """Answers lists and watches from scripts; blocks forever once a script is used up."""

    def __init__(self, *, lists: list[Any], watches: list[Any], served: Mapping[str, bool] | None = None) -> None:
        self.lists = deque(lists)
        self.watches = deque(watches)
        self.served = served or {}
        self.list_queries: list[tuple[str, dict[str, Any]]] = []
        self.watch_queries: list[tuple[str, dict[str, Any]]] = []
        self.exhausted = asyncio.Event()

    async def get_json(self, path: str, *, query: Mapping[str, Any] | None = None, timeout: float = 30.0) -> Any:
        for prefix, served in self.served.items():
            if path.startswith(prefix) and not served:
                raise errors.NotFound("HTTP 404: not found", status=404)
        if query == {"limit": 1}:
            return {"items": [], "metadata": {"resourceVersion": "0"}}
        self.list_queries.append((path, dict(query or {})))
        if not self.lists:
            self.exhausted.set()
            await asyncio.sleep(3600)
        item = self.lists.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

    @asynccontextmanager
    async def stream_lines(self, path: str, *, query: Mapping[str, Any] | None = None) -> AsyncIterator[Any]:
        self.watch_queries.append((path, dict(query or {})))
        if not self.watches:
            self.exhausted.set()
            await asyncio.sleep(3600)
        item = self.watches.popleft()
        if isinstance(item, BaseException):
            raise item
        yield ScriptedLines(list(item))


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def replace(self, resource: str, items: Any) -> None:
        self.calls.append(("replace", [i["metadata"]["name"] for i in items]))

    def upsert(self, resource: str, raw: Any) -> None:
        self.calls.append(("upsert", raw["metadata"]["name"]))

    def delete(self, resource: str, raw: Any) -> None:
        self.calls.append(("delete", raw["metadata"]["name"]))

    def synced(self, resource: str) -> None:
        self.calls.append(("synced", resource))
