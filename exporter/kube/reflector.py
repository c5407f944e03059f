"""List, then watch from the list's resourceVersion, then relist on 410 or a broken stream — forever.

We own this loop because the client library retries a 410 once and then raises. Outcomes are
counted with bounded labels and logged once with context; the loop always carries on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from exporter.kube import errors
from exporter.kube.backoff import Backoff
from exporter.kube.resources import Resource
from exporter.kube.watching import BOOKMARK, DELETED, EXPIRED, OBJECT_TYPES, read_events
from exporter.render.self_metrics import SelfMetrics

RawObject = Mapping[str, Any]


class Sink(Protocol):
    """Receives a reflector's view of one resource."""

    async def replace(self, resource: str, items: Sequence[RawObject]) -> None: ...
    def upsert(self, resource: str, raw: RawObject) -> None: ...
    def delete(self, resource: str, raw: RawObject) -> None: ...
    def synced(self, resource: str) -> None: ...


class Client(Protocol):
    async def get_json(self, path: str, *, query: Mapping[str, Any] | None = None, timeout: float = 30.0) -> Any: ...
    def stream_lines(self, path: str, *, query: Mapping[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class ReflectorSettings:
    page_size: int = 500
    watch_timeout_seconds: int = 300
    inactivity_timeout: float = 60.0
    list_timeout: float = 60.0


class Reflector:
    """Keeps one resource (optionally limited to some namespaces) mirrored into a sink."""

    def __init__(
        self,
        *,
        client: Client,
        resource: Resource,
        sink: Sink,
        metrics: SelfMetrics,
        namespaces: Sequence[str] = (),
        settings: ReflectorSettings | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.resource = resource
        self.sink = sink
        self.metrics = metrics
        self.namespaces = tuple(namespaces) or (None,)
        self.settings = settings or ReflectorSettings()
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._version: str | None = None
        self._known: set[tuple[str, str]] = set()
        self._log = structlog.get_logger().bind(component="reflector", resource=resource.name)
        self.unavailable = False

    async def run(self) -> None:
        """Mirror the resource until cancelled."""
        await asyncio.gather(*(self._run_namespace(ns) for ns in self.namespaces))

    async def _resolve_version(self, namespace: str | None) -> str | None:
        """The first served API version; ``None`` when the resource is not served at all.

        The probe uses the namespaced path when namespaces are given, so that namespace-scoped
        RBAC suffices. An optional resource we may not read counts as not served.
        """
        if self._version is not None:
            return self._version
        for version in self.resource.versions:
            try:
                await self.client.get_json(self.resource.path(version, namespace), query={"limit": 1}, timeout=30.0)
            except errors.NotFound:
                continue
            except errors.Forbidden as error:
                if not self.resource.optional:
                    raise
                self._log.warning("optional_resource_forbidden", error=str(error))
                return None
            self._version = version
            if version != self.resource.versions[0]:
                self._log.info("api_version_fallback", version=version)
            return version
        return None

    async def _run_namespace(self, namespace: str | None) -> None:
        synced_once = False
        reason = "initial"
        while True:
            try:
                version = await self._resolve_version(namespace)
                if version is None:
                    if not self.unavailable:
                        self._log.info("resource_not_served", optional=self.resource.optional)
                    self.unavailable = True
                    if not synced_once:
                        # An API the cluster does not have must not hold readiness back.
                        self.sink.synced(self.resource.name)
                        synced_once = True
                    await self._sleep(300.0)
                    continue
                self.unavailable = False
                path = self.resource.path(version, namespace)
                if reason != "initial":
                    self.metrics.relists.labels(self.resource.name, reason).inc()
                resource_version = await self._list(path, namespace)
                if not synced_once:
                    self.sink.synced(self.resource.name)
                    synced_once = True
                self.metrics.synced.labels(self.resource.name).set(1)
                self.backoff.reset()
                reason = await self._watch(path, resource_version)
                if reason == "expired":
                    continue  # a quiet relist: 410 is normal life for a watch
            except asyncio.CancelledError:
                raise
            except errors.KubeError as error:
                reason = error.reason
                self.metrics.synced.labels(self.resource.name).set(0)
                await self._pause_after(error, namespace)
            except Exception as error:  # never let one resource's surprise stop the exporter
                reason = "error"
                self._log.exception("reflector_unexpected_error", namespace=namespace)
                await self._pause_after(errors.from_exception(error), namespace)

    async def _pause_after(self, error: errors.KubeError, namespace: str | None) -> None:
        delay = self.backoff.next()
        if isinstance(error, errors.TooManyRequests) and error.retry_after:
            delay = max(delay, error.retry_after)
        self._log.warning(
            "reflector_error",
            namespace=namespace,
            error=str(error),
            reason=error.reason,
            attempt=self.backoff.attempt,
            retry_in=round(delay, 2),
        )
        await self._sleep(delay)

    async def _list(self, path: str, namespace: str | None) -> str:
        items: list[RawObject] = []
        continue_token: str | None = None
        started = self._clock()
        while True:
            query: dict[str, Any] = {"limit": self.settings.page_size, **self.resource.selectors()}
            if continue_token:
                query["continue"] = continue_token
            try:
                page = await self.client.get_json(path, query=query, timeout=self.settings.list_timeout)
            except errors.KubeError as error:
                self.metrics.lists.labels(self.resource.name, "error").inc()
                if isinstance(error, errors.Gone) and continue_token:
                    # The continue token expired mid-list: start the list over.
                    items, continue_token = [], None
                    continue
                raise
            if not isinstance(page, Mapping) or not isinstance(page.get("items"), list):
                self.metrics.lists.labels(self.resource.name, "error").inc()
                raise errors.MalformedResponse("list response without items")
            items.extend(item for item in page["items"] if isinstance(item, Mapping))
            metadata = page.get("metadata") if isinstance(page.get("metadata"), Mapping) else {}
            continue_token = metadata.get("continue") or None
            resource_version = metadata.get("resourceVersion") or ""
            if not continue_token:
                break
            if len(items) >= 5000 and len(items) % 5000 < self.settings.page_size:
                self._log.info("list_progress", namespace=namespace, objects=len(items))
        self.metrics.lists.labels(self.resource.name, "success").inc()
        await self.sink.replace(self.resource.name, items)
        self._known = {identity for identity in map(_identity, items) if identity is not None}
        self.metrics.objects.labels(self.resource.name).set(len(self._known))
        self._log.info(
            "listed",
            namespace=namespace,
            objects=len(items),
            resource_version=resource_version,
            seconds=round(self._clock() - started, 3),
        )
        return str(resource_version)

    async def _watch(self, path: str, resource_version: str) -> str:
        """Watch until the stream ends; return the relist reason, or raise for errors.

        A stream closed by the server's timeout is re-opened from the last resourceVersion.
        """
        while True:
            opened = self._clock()
            received = 0
            query = {
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": self.settings.watch_timeout_seconds,
                **self.resource.selectors(),
            }
            try:
                async with self.client.stream_lines(path, query=query) as lines:
                    async for event in read_events(lines, inactivity_timeout=self.settings.inactivity_timeout):
                        received += 1
                        self.metrics.watch_events.labels(self.resource.name, event.type).inc()
                        self.metrics.last_event.labels(self.resource.name).set(self._clock())
                        if event.type == EXPIRED:
                            self._log.info("watch_expired", resource_version=resource_version)
                            return "expired"
                        resource_version = event.resource_version or resource_version
                        if event.type == BOOKMARK:
                            continue
                        identity = _identity(event.raw_object)
                        if event.type == DELETED:
                            self.sink.delete(self.resource.name, event.raw_object)
                            self._known.discard(identity)  # type: ignore[arg-type]
                        elif event.type in OBJECT_TYPES:
                            self.sink.upsert(self.resource.name, event.raw_object)
                            if identity is not None:
                                self._known.add(identity)
                        self.metrics.objects.labels(self.resource.name).set(len(self._known))
            except errors.Gone:
                return "expired"
            except errors.KubeError as error:
                self.metrics.watch_errors.labels(self.resource.name, error.reason).inc()
                raise
            if not received and self._clock() - opened < 1.0:
                # A server that closes watches at once would otherwise be hammered in a tight loop.
                await self._sleep(self.backoff.next())


def _identity(raw: RawObject) -> tuple[str, str] | None:
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    namespace, name = metadata.get("namespace") or "", metadata.get("name")
    return (namespace, name) if isinstance(name, str) and isinstance(namespace, str) else None
