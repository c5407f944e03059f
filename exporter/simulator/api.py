"""HTTP handlers of the simulated API for resources: get, list with paging, and watch.

Failures answer with a ``Status`` object, as kube-apiserver does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from typing import Any

from aiohttp import web

from exporter.simulator import tables
from exporter.simulator.discovery import Served
from exporter.simulator.history import ObjectStore
from exporter.simulator.resources import RESOURCE_TYPES, Entry, Expired, encode
from exporter.simulator.selectors import SelectorError, combine, parse_field_selector, parse_label_selector
from exporter.simulator.streams import StreamEnd, Watcher

_WRITE_BATCH = 500
EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)


def status_object(code: int, reason: str, message: str, **metadata: Any) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": metadata, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def status_response(code: int, reason: str, message: str, **metadata: Any) -> web.Response:
    return web.Response(status=code, body=encode(status_object(code, reason, message, **metadata)),
                        content_type="application/json")


def truthy(value: str | None) -> bool:
    return value in ("true", "1", "True")


def encode_continue(rv: int, after: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(after)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """Return (resourceVersion, key to continue after); raise ValueError for a token not ours."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        rv, start = int(raw["rv"]), raw["start"]
        return rv, (str(start[0]), str(start[1]))
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError("continue key is not valid") from exc


class ApiHandlers:
    """Resource handlers bound to one store; ``served`` maps (group, version, plural) to a resource."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        served: dict[tuple[str, str, str], Served],
        bookmark_interval: float,
        watch_timeout: float,
    ) -> None:
        self._store = store
        self._served = served
        self._bookmark_interval = bookmark_interval
        self._watch_timeout = watch_timeout

    def _resolve(self, request: web.Request) -> Served:
        info = request.match_info
        served = self._served.get((info.get("group", ""), info["version"], info["resource"]))
        if served is None or (served.namespaced is False and "namespace" in info):
            raise web.HTTPNotFound()
        return served

    @staticmethod
    def _override(served: Served) -> str | None:
        """The apiVersion to serve stored objects under, when it differs from the stored one."""
        stored = RESOURCE_TYPES[served.plural].api_version
        return None if stored == served.api_version else served.api_version

    # --- objects ------------------------------------------------------------------------------

    async def get_object(self, request: web.Request) -> web.StreamResponse:
        served = self._resolve(request)
        namespace = request.match_info.get("namespace", "")
        name = request.match_info["name"]
        entry = self._store.entry(served.plural, namespace, name)
        if entry is None:
            group = f".{served.group}" if served.group else ""
            body = status_object(404, "NotFound", f'{served.plural}{group} "{name}" not found')
            body["details"] = {"name": name, "group": served.group, "kind": served.plural}
            return web.Response(status=404, body=encode(body), content_type="application/json")
        if tables.wants_table(request.headers.get("Accept", "")):
            body = tables.table(served.plural, [entry.obj], now=self._store.now(), metadata={})
            return web.Response(body=encode(body), content_type="application/json")
        return web.Response(body=entry.json(self._override(served)), content_type="application/json")

    async def collection(self, request: web.Request) -> web.StreamResponse:
        served = self._resolve(request)
        query = request.query
        namespace = request.match_info.get("namespace")
        try:
            match = combine(parse_label_selector(query.get("labelSelector", "")),
                            parse_field_selector(query.get("fieldSelector", "")))
        except SelectorError as exc:
            return status_response(400, "BadRequest", str(exc))
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        if truthy(query.get("watch")):
            return await self._watch(request, served, namespace, match, as_table=as_table)
        return self._list(served, namespace, match, query, as_table=as_table)

    def _list(
        self, served: Served, namespace: str | None, match: Any, query: Any, *, as_table: bool
    ) -> web.Response:
        store = self._store
        limit: int | None = None
        if query.get("limit"):
            try:
                limit = int(query["limit"])
            except ValueError:
                return status_response(400, "BadRequest", f"invalid limit: {query['limit']!r}")
            limit = limit if limit > 0 else None
        after = None
        list_rv = store.resource_version
        token = query.get("continue")
        if token:
            try:
                list_rv, after = decode_continue(token)
                store.check_readable(list_rv)
            except ValueError as exc:
                return status_response(400, "BadRequest", str(exc))
            except Expired:
                fresh = encode_continue(store.resource_version, after) if after else ""
                return status_response(410, "Expired", EXPIRED_CONTINUE, **{"continue": fresh})
        elif query.get("resourceVersion") and query.get("resourceVersionMatch") == "Exact":
            try:
                exact = int(query["resourceVersion"])
                store.check_readable(exact)
            except ValueError:
                return status_response(400, "BadRequest", "invalid resourceVersion")
            except Expired as exc:
                return status_response(410, "Expired", str(exc))
        entries, last, remaining = store.page(served.plural, namespace=namespace, after=after, limit=limit,
                                              match=match)
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if last is not None:
            meta["continue"] = encode_continue(list_rv, last)
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        if as_table:
            body = tables.table(served.plural, [e.obj for e in entries], now=store.now(), metadata=meta)
            return web.Response(body=encode(body), content_type="application/json")
        override = self._override(served)
        head = encode({"apiVersion": served.api_version, "kind": f"{served.kind}List", "metadata": meta})
        body = b"".join((head[:-1], b',"items":[', b",".join(e.json(override) for e in entries), b"]}"))
        return web.Response(body=body, content_type="application/json")

    # --- watch --------------------------------------------------------------------------------

    def _bookmark(self, served: Served, rv: int, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": served.kind, "apiVersion": served.api_version, "metadata": meta}
        return encode({"type": "BOOKMARK", "object": obj}) + b"\n"

    @staticmethod
    def _error_line(code: int, reason: str, message: str) -> bytes:
        return encode({"type": "ERROR", "object": status_object(code, reason, message)}) + b"\n"

    async def _watch(self, request: web.Request, served: Served, namespace: str | None,
                     match: Any, *, as_table: bool) -> web.StreamResponse:
        query = request.query
        rv_text = query.get("resourceVersion", "")
        initial_events = truthy(query.get("sendInitialEvents"))
        try:
            since = None if rv_text in ("", "0") or initial_events else int(rv_text)
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else self._watch_timeout
        except ValueError:
            return status_response(400, "BadRequest", "invalid resourceVersion or timeoutSeconds")
        bookmarks = truthy(query.get("allowWatchBookmarks"))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            watcher, backlog = self._store.watch(served.plural, namespace=namespace, since=since, match=match)
        except Expired as exc:
            await response.write(self._error_line(410, "Expired", str(exc)))
            await response.write_eof()
            return response
        try:
            await self._serve_watch(request, response, served, watcher, backlog, since=since, timeout=timeout,
                                    bookmarks=bookmarks, initial_events=initial_events, as_table=as_table)
        except ConnectionError:
            pass
        finally:
            self._store.release(watcher)
        return response

    async def _serve_watch(self, request: web.Request, response: web.StreamResponse, served: Served,
                           watcher: Watcher, backlog: list[tuple[str, Entry]], *, since: int | None,
                           timeout: float, bookmarks: bool, initial_events: bool, as_table: bool) -> None:
        loop = asyncio.get_running_loop()
        override = self._override(served)
        last_rv = since if since is not None else self._store.resource_version

        def lines(items: list[tuple[str, Entry]]) -> list[bytes]:
            nonlocal last_rv
            out = []
            for kind, entry in items:
                if as_table:
                    body = tables.table(served.plural, [entry.obj], now=self._store.now(), metadata={})
                    out.append(encode({"type": kind, "object": body}) + b"\n")
                else:
                    out.append(b'{"type":"' + kind.encode() + b'","object":' + entry.json(override) + b"}\n")
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    last_rv = max(last_rv, int(entry.obj["metadata"]["resourceVersion"]))
            return out

        for start in range(0, len(backlog), _WRITE_BATCH):
            await response.write(b"".join(lines(backlog[start:start + _WRITE_BATCH])))
        if initial_events and bookmarks:
            pending = lines(watcher.drain())
            last_rv = max(last_rv, self._store.resource_version)
            await response.write(b"".join([*pending, self._bookmark(served, last_rv, initial_end=True)]))
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self._bookmark_interval
        while True:
            wake = min(deadline, next_bookmark) if bookmarks else deadline
            await watcher.wait(max(0.0, wake - loop.time()))
            pending = lines(watcher.drain())
            now = loop.time()
            end = watcher.end
            if end is StreamEnd.DROPPED:
                if request.transport is not None:
                    request.transport.abort()
                return
            if end is StreamEnd.EXPIRED:
                pending.append(self._error_line(410, "Expired", str(Expired(last_rv, self._store.resource_version))))
            elif end is None and bookmarks and (now >= next_bookmark or now >= deadline):
                last_rv = max(last_rv, self._store.resource_version)
                pending.append(self._bookmark(served, last_rv))
                next_bookmark = now + self._bookmark_interval
            if pending:
                await response.write(b"".join(pending))
            if end is not None or now >= deadline:
                await response.write_eof()
                return
