"""Mirror one resource into a sink: list, watch from the list's resourceVersion, relist — forever.

The loop is cut by lifetime. ``list_pages`` is one full list, a page at a time; ``watch_stream`` is one watch
request; ``list_and_watch`` is one relist lifetime (a list, then watches re-opened while the
resourceVersion stays valid) and returns why it ended; ``Reflector.run`` repeats that forever per
namespace with jittered backoff. Every request's outcome is counted in one place, ``Outcomes``.

We own this loop because the client library retries a 410 once and then raises. A 410 and a
closed stream are return values; every other failure is counted with a bounded label, logged
once with context, and the loop carries on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from exporter.kube import errors
from exporter.kube.backoff import Backoff
from exporter.kube.watching import BOOKMARK, DELETED, EXPIRED, OBJECT_TYPES, WatchEvent, read_events
from exporter.resources import Resource
from exporter.self_metrics import SelfMetrics
from exporter.untrusted import Cleaned

RawObject = Mapping[str, Any]
Identity = tuple[str, str]
NOT_SERVED_RECHECK_SECONDS = 300.0
ALL_NAMESPACES: str | None = None
MAX_REMEMBERED_CLEANED = 10_000


class Sink(Protocol):
    """Receives a reflector's view of one resource.

    ``replace`` carries a full list of ``namespace`` (``None``: every namespace), as pages to read
    in turn; it replaces only that namespace's objects, so the lists of several watched namespaces
    never prune each other. If reading a page raises, the list is incomplete: prune nothing.
    """

    async def replace(
        self, resource: str, pages: AsyncIterator[Sequence[RawObject]], *, namespace: str | None
    ) -> None: ...
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


@dataclass(slots=True)
class Listing:
    """What a list has shown so far: the objects' identities and the resourceVersion to watch from."""

    identities: set[Identity] = field(default_factory=set)
    resource_version: str = ""
    complete: bool = False


class Outcomes:
    """Counts every list and watch request of one resource with bounded labels, in one place.

    It also stamps ``last_contact``: the last time the API answered for this resource (a list, an
    opened watch, any event or bookmark, a watch the server closed cleanly) — the staleness signal.
    """

    def __init__(self, metrics: SelfMetrics, resource: str, clock: Callable[[], float]) -> None:
        self._metrics = metrics
        self._resource = resource
        self._clock = clock
        self._logged: set[str] = set()
        self._cleaned: dict[Identity, str] = {}
        self._log = structlog.get_logger().bind(component="reflector", resource=resource)

    def contact(self) -> None:
        self._metrics.last_contact.labels(self._resource).set(self._clock())

    @contextmanager
    def listing(self) -> Iterator[None]:
        try:
            yield
        except errors.KubeError:
            self._metrics.lists.labels(self._resource, "error").inc()
            raise
        self._metrics.lists.labels(self._resource, "success").inc()
        self.contact()

    @contextmanager
    def watching(self) -> Iterator[None]:
        try:
            yield
        except errors.Gone:
            self.contact()  # the server answered: our resourceVersion is too old, not an error
            raise
        except errors.KubeError as error:
            self._metrics.watch_errors.labels(self._resource, error.reason).inc()
            raise

    def event(self, event_type: str) -> None:
        self._metrics.watch_events.labels(self._resource, event_type).inc()
        self._metrics.last_event.labels(self._resource).set(self._clock())
        self.contact()

    def malformed(self, problems: Iterable[str], *, example: object = None) -> None:
        """Count an object's problems; log each kind once, so a hostile object cannot flood the log."""
        for problem in problems:
            self._metrics.malformed.labels(self._resource, problem).inc()
            if problem not in self._logged:
                self._logged.add(problem)
                self._log.warning("malformed_object", problem=problem, object=example, note="counted from now on")

    def cleaned(self, raw: RawObject) -> None:
        """Count an object whose text was made safe, once per version of it (relists see it again)."""
        if not isinstance(raw, Cleaned):
            return
        identity, version = _identity(raw), _version(raw)
        if identity is not None and version and self._cleaned.get(identity) == version:
            return
        if identity is not None:
            if len(self._cleaned) >= MAX_REMEMBERED_CLEANED:
                self._cleaned.clear()  # a bound, not a cache: at worst some objects count twice
            self._cleaned[identity] = version
        self.malformed(sorted(raw.problems), example=identity)

    def relist(self, reason: str) -> None:
        self._metrics.relists.labels(self._resource, reason).inc()

    def cached(self, count: int) -> None:
        self._metrics.objects.labels(self._resource).set(count)

    def synced(self, value: bool) -> None:
        self._metrics.synced.labels(self._resource).set(1 if value else 0)


@dataclass(slots=True)
class _Scope:
    """What the reflector holds for one watched namespace (or for all of them)."""

    namespace: str | None
    known: set[Identity] = field(default_factory=set)
    listed_once: bool = False
    healthy: bool = False


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
        backoff: Callable[[], Backoff] = Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.resource = resource
        self.sink = sink
        self.settings = settings or ReflectorSettings()
        self.outcomes = Outcomes(metrics, resource.name, clock)
        self._new_backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._scopes = [_Scope(namespace) for namespace in dict.fromkeys(namespaces or (ALL_NAMESPACES,))]
        self._version: str | None = None
        self._announced_sync = False
        self._log = structlog.get_logger().bind(component="reflector", resource=resource.name)
        self.unavailable = False

    async def run(self) -> None:
        """Mirror the resource until cancelled; each namespace has its own loop and backoff."""
        await asyncio.gather(*(self._forever(scope) for scope in self._scopes))

    # -- lifetimes -------------------------------------------------------------------------------

    async def _forever(self, scope: _Scope) -> None:
        """Relist forever: pause with jittered backoff after failures, quietly after a 410."""
        backoff = self._new_backoff()
        reason = "initial"
        while True:
            try:
                if self._version is None:
                    self._version = await served_version(self.client, self.resource, scope.namespace, self._log)
                version = self._version
                if version is None:
                    await self._not_served(scope)
                    continue
                self.unavailable = False
                if reason != "initial":
                    self.outcomes.relist(reason)
                reason = await self.list_and_watch(scope, self.resource.path(version, scope.namespace), backoff)
            except asyncio.CancelledError:
                raise
            except errors.KubeError as error:
                reason = error.reason
                await self._pause_after(error, scope, backoff)
            except Exception as error:  # never let one resource's surprise stop the exporter
                reason = "error"
                self._log.exception("reflector_unexpected_error", namespace=scope.namespace)
                await self._pause_after(errors.from_exception(error), scope, backoff)

    async def list_and_watch(self, scope: _Scope, path: str, backoff: Backoff) -> str:
        """One relist lifetime: a full list into the sink, then watches; returns the relist reason."""
        resource_version = await self.relist(scope, path)
        while True:
            opened = self._clock()
            received = 0
            try:
                async with aclosing(self.watch_stream(path, resource_version)) as events:
                    async for event in events:
                        # Reset only once a watch delivers: a list that succeeds followed by a watch
                        # that fails at once must still back off, not relist in a tight loop.
                        backoff.reset()
                        received += 1
                        if event.type == EXPIRED:
                            self._log.info(
                                "watch_expired", namespace=scope.namespace, resource_version=resource_version
                            )
                            return "expired"
                        resource_version = event.resource_version or resource_version
                        self._apply(scope, event)
            except errors.Gone:
                return "expired"
            self.outcomes.contact()  # the server closed the watch at its timeout: a healthy end
            if not received and self._clock() - opened < 1.0:
                # A server that closes watches at once would otherwise be hammered in a tight loop.
                await self._sleep(backoff.next())

    async def relist(self, scope: _Scope, path: str) -> str:
        """A full list into the sink, page by page; returns its resourceVersion.

        The sink takes each page as it arrives and none is kept: a list of 100k objects held
        whole (or for the watch that follows) would be most of the exporter's memory.
        """
        listing = Listing()
        async with aclosing(self.list_pages(path, scope.namespace, listing)) as pages:
            await self.sink.replace(self.resource.name, pages, namespace=scope.namespace)
        if not listing.complete:
            raise errors.MalformedResponse("the sink stopped reading the list")
        scope.known = listing.identities
        self._update_cached()
        self._mark_listed(scope)
        return listing.resource_version

    async def list_pages(self, path: str, namespace: str | None, listing: Listing) -> AsyncIterator[list[RawObject]]:
        """One complete list, a page at a time. An expired continue token raises ``Gone``: the
        pages already handed on stay applied, and the relist that follows prunes what went."""
        continue_token: str | None = None
        started = self._clock()
        while True:
            query: dict[str, Any] = {"limit": self.settings.page_size, **self.resource.selectors()}
            if continue_token:
                query["continue"] = continue_token
            with self.outcomes.listing():
                page = await self.client.get_json(path, query=query, timeout=self.settings.list_timeout)
                if not isinstance(page, Mapping) or not isinstance(page.get("items"), list):
                    raise errors.MalformedResponse("list response without items")
            items = [item for item in page["items"] if isinstance(item, Mapping)]
            for item in items:
                self.outcomes.cleaned(item)
            listing.identities.update(identity for identity in map(_identity, items) if identity is not None)
            metadata = page.get("metadata") if isinstance(page.get("metadata"), Mapping) else {}
            continue_token = metadata.get("continue") or None
            listing.resource_version = str(metadata.get("resourceVersion") or "")
            del page
            yield items
            if not continue_token:
                break
            if len(listing.identities) >= 5000 and len(listing.identities) % 5000 < self.settings.page_size:
                self._log.info("list_progress", namespace=namespace, objects=len(listing.identities))
        listing.complete = True
        self._log.info(
            "listed",
            namespace=namespace,
            objects=len(listing.identities),
            resource_version=listing.resource_version,
            seconds=round(self._clock() - started, 3),
        )

    async def watch_stream(self, path: str, resource_version: str) -> AsyncIterator[WatchEvent]:
        """One watch request from ``resource_version``; ends when the server closes the stream."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": self.settings.watch_timeout_seconds,
            **self.resource.selectors(),
        }
        with self.outcomes.watching():
            async with self.client.stream_lines(path, query=query) as lines:
                self.outcomes.contact()
                async for event in read_events(lines, inactivity_timeout=self.settings.inactivity_timeout):
                    self.outcomes.event(event.type)
                    yield event

    # -- helpers ---------------------------------------------------------------------------------

    def _apply(self, scope: _Scope, event: WatchEvent) -> None:
        if event.type == BOOKMARK or event.type not in OBJECT_TYPES:
            return
        self.outcomes.cleaned(event.raw_object)
        identity = _identity(event.raw_object)
        try:
            if event.type == DELETED:
                self.sink.delete(self.resource.name, event.raw_object)
            else:
                self.sink.upsert(self.resource.name, event.raw_object)
        except Exception:  # one object the sink cannot take must not stop the resource
            self._log.exception("object_unprocessable", object=identity, event_type=event.type)
            self.outcomes.malformed(["unprocessable"], example=identity)
            return
        if identity is not None:
            if event.type == DELETED:
                scope.known.discard(identity)
            else:
                scope.known.add(identity)
        self._update_cached()

    def _update_cached(self) -> None:
        self.outcomes.cached(sum(len(scope.known) for scope in self._scopes))

    def _mark_listed(self, scope: _Scope) -> None:
        """The resource counts as synced once every watched namespace has been listed."""
        scope.listed_once = scope.healthy = True
        self.outcomes.synced(all(s.healthy for s in self._scopes))
        if not self._announced_sync and all(s.listed_once for s in self._scopes):
            self._announced_sync = True
            self.sink.synced(self.resource.name)

    async def _not_served(self, scope: _Scope) -> None:
        if not self.unavailable:
            self._log.info("resource_not_served", optional=self.resource.optional)
        self.unavailable = True
        # An API the cluster does not have must not hold readiness back.
        self._mark_listed(scope)
        await self._sleep(NOT_SERVED_RECHECK_SECONDS)

    async def _pause_after(self, error: errors.KubeError, scope: _Scope, backoff: Backoff) -> None:
        scope.healthy = False
        self.outcomes.synced(False)
        delay = backoff.next()
        if isinstance(error, errors.TooManyRequests) and error.retry_after:
            delay = max(delay, error.retry_after)
        self._log.warning(
            "reflector_error",
            namespace=scope.namespace,
            error=str(error),
            reason=error.reason,
            attempt=backoff.attempt,
            retry_in=round(delay, 2),
        )
        await self._sleep(delay)


async def served_version(client: Client, resource: Resource, namespace: str | None, log: Any) -> str | None:
    """The first served API version; ``None`` when the resource is not served at all.

    The probe uses the namespaced path when namespaces are given, so that namespace-scoped
    RBAC suffices. An optional resource we may not read counts as not served.
    """
    for version in resource.versions:
        try:
            await client.get_json(resource.path(version, namespace), query={"limit": 1}, timeout=30.0)
        except errors.NotFound:
            continue
        except errors.Forbidden as error:
            if not resource.optional:
                raise
            log.warning("optional_resource_forbidden", error=str(error))
            return None
        if version != resource.versions[0]:
            log.info("api_version_fallback", version=version)
        return version
    return None


def _version(raw: RawObject) -> str:
    metadata = raw.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else ""


def _identity(raw: RawObject) -> Identity | None:
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    namespace, name = metadata.get("namespace") or "", metadata.get("name")
    return (namespace, name) if isinstance(name, str) and isinstance(namespace, str) else None
