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

    async def replace(self, resource: str, pages: Any, *, namespace: str | None) -> None:
        names = [i["metadata"]["name"] async for items in pages for i in items]
        self.calls.append(("replace", names) if namespace is None else ("replace", namespace, names))

    def upsert(self, resource: str, raw: Any) -> None:
        self.calls.append(("upsert", raw["metadata"]["name"]))

    def delete(self, resource: str, raw: Any) -> None:
        self.calls.append(("delete", raw["metadata"]["name"]))

    def synced(self, resource: str) -> None:
        self.calls.append(("synced", resource))


class NamespacedClient:
    """One scripted ``FakeClient`` per namespace, chosen by the ``/namespaces/<ns>/`` part of the path."""

    def __init__(self, scripts: Mapping[str, FakeClient]) -> None:
        self.scripts = dict(scripts)

    def _script(self, path: str) -> FakeClient:
        namespace = path.split("/namespaces/", 1)[1].split("/", 1)[0]
        return self.scripts[namespace]

    async def get_json(self, path: str, *, query: Mapping[str, Any] | None = None, timeout: float = 30.0) -> Any:
        return await self._script(path).get_json(path, query=query, timeout=timeout)

    def stream_lines(self, path: str, *, query: Mapping[str, Any] | None = None) -> Any:
        return self._script(path).stream_lines(path, query=query)

    async def all_exhausted(self) -> None:
        await asyncio.gather(*(script.exhausted.wait() for script in self.scripts.values()))


def vmi(namespace: str, name: str, rv: str) -> dict[str, Any]:
    """A running VMI the fleet accepts."""
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": f"{namespace}-{name}", "resourceVersion": rv},
        "status": {"phase": "Running"},
    }


def vmi_event(kind: str, namespace: str, name: str, rv: str) -> bytes:
    return json.dumps({"type": kind, "object": vmi(namespace, name, rv)}).encode() + b"\n"


def vmi_list(rv: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "metadata": {"resourceVersion": rv}}
