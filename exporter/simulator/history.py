"""In-memory object store with one global resourceVersion, bounded watch history and fan-out.

Every write takes the next integer resourceVersion (one counter for all resources, as etcd has), is
kept in a bounded per-resource history so that a watch can resume from an older version, and is
offered to every open watcher of that resource. Once history is forgotten, resuming from before it
is answered with 410 Expired. Each object's JSON is encoded once per version and reused by every
list and watch that serves it. Guest-agent info and launcher logs live here too.
"""

from __future__ import annotations

import copy
import random
import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from exporter.simulator.clock import rfc3339
from exporter.simulator.resources import RESOURCE_TYPES, Change, Entry, Expired, ResourceType, random_uuid
from exporter.simulator.streams import LogFollower, Stream, StreamEnd, Watcher

Key = tuple[str, str]
Predicate = Callable[[dict[str, Any]], bool]
GuestInfoSource = Callable[[str, str], dict[str, Any] | None]

class Compaction:
    """etcd compaction as kube-apiserver requests it, on a timer rather than by change count.

    Every ``interval`` seconds the API server compacts etcd up to the revision it recorded at the
    previous request (none at the first), so a revision stays readable for one to two intervals
    whatever the write rate (kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/storage/etcd3/
    compact.go ``runCompactLoop``/``compact`` at 03e32bd; the interval is ``--etcd-compaction-interval``,
    ``DefaultCompactInterval = 5 * time.Minute`` in pkg/storage/storagebackend/config.go:31 at 010528e).
    A continue token names the revision its list was read at: it expires with that revision.
    """

    __slots__ = ("_monotonic", "_next", "_recorded", "compacted", "interval")

    def __init__(self, interval: float | None, monotonic: Callable[[], float]) -> None:
        self.interval = interval if interval else None  # None or 0: never compacted by the clock
        self._monotonic = monotonic
        self._next = monotonic() + interval if self.interval else 0.0
        self._recorded: int | None = None
        self.compacted = 0

    def advance(self, rv: int) -> None:
        """Run the compactions due by now; ``rv`` is the current revision, unchanged since they fell due
        because every write calls this first."""
        if self.interval is None:
            return
        now = self._monotonic()
        if now < self._next:
            return
        due = int((now - self._next) // self.interval) + 1
        if self._recorded is not None:
            self.compacted = max(self.compacted, self._recorded)
        if due > 1:  # the second of them compacts up to what the first recorded: the current revision
            self.compacted = max(self.compacted, rv)
        self._recorded = rv
        self._next += due * self.interval


class _Table:
    """One resource's objects, with their keys kept in list order as objects come and go.

    The key list is maintained incrementally (one insort per new object, one removal per deleted
    one) rather than re-sorted: a story that adds snapshots while a 100k-object list is being paged
    would otherwise pay a full sort on every page.
    """

    __slots__ = ("compacted", "history", "keys", "objects", "type", "watchers")

    def __init__(self, rtype: ResourceType) -> None:
        self.type = rtype
        self.objects: dict[Key, Entry] = {}
        self.history: deque[Change] = deque()
        self.compacted = 0
        self.watchers: set[Watcher] = set()
        self.keys: list[Key] = []

    def add_key(self, key: Key) -> None:
        keys = self.keys
        if not keys or keys[-1] < key:
            keys.append(key)
        else:
            insort(keys, key)

    def remove_key(self, key: Key) -> None:
        keys = self.keys
        index = bisect_left(keys, key)
        if index < len(keys) and keys[index] == key:
            del keys[index]

    def resort(self) -> None:
        self.keys = sorted(self.objects)


class ObjectStore:
    """Objects of every served resource, their history, guest-agent info and launcher logs.

    Methods are synchronous and must be called on the event loop that serves the API.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        seed: int = 0,
        history_limit: int = 20_000,
        stream_limit: int = 10_000,
        log_limit: int = 2_000,
        compaction_interval: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._compaction = Compaction(compaction_interval, monotonic)
        self._rng = random.Random(f"store-{seed}")
        self._history_limit = history_limit
        self._stream_limit = stream_limit
        self._log_limit = log_limit
        self._rv = 0
        self._tables = {plural: _Table(rtype) for plural, rtype in RESOURCE_TYPES.items()}
        self._guest_info: dict[Key, dict[str, Any] | None] = {}
        self.guest_info_source: GuestInfoSource | None = None
        self._logs: dict[Key, deque[tuple[float, str]]] = {}
        self._followers: dict[Key, set[LogFollower]] = {}

    @property
    def resource_version(self) -> int:
        return self._rv

    def now(self) -> float:
        return self._clock()

    def new_uid(self) -> str:
        return random_uuid(self._rng)

    def _table(self, resource: str) -> _Table:
        try:
            return self._tables[resource]
        except KeyError:
            raise ValueError(f"unknown resource {resource!r}") from None

    # --- writes -------------------------------------------------------------------------------

    def upsert(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a copy of ``obj`` with the next resourceVersion (uid and creationTimestamp if missing)."""
        return copy.deepcopy(self.put(resource, copy.deepcopy(obj)))

    def put(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Like ``upsert`` but takes ownership of ``obj`` and returns the stored object itself."""
        table = self._table(resource)
        meta = obj.get("metadata")
        meta = dict(meta) if isinstance(meta, dict) else {}
        if table.type.namespaced:
            meta["namespace"] = str(meta.get("namespace") or "default")
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            raise ValueError("object has no metadata.name")
        key = (str(meta.get("namespace", "")), str(meta["name"]))
        prev = table.objects.get(key)
        prev_meta = prev.obj.get("metadata", {}) if prev is not None else {}
        if not meta.get("uid"):
            meta["uid"] = prev_meta.get("uid") or self.new_uid()
        if not meta.get("creationTimestamp"):
            meta["creationTimestamp"] = prev_meta.get("creationTimestamp") or rfc3339(self._clock())
        if key[0] and prev is None:
            self._ensure_namespace(key[0])
        self._compaction.advance(self._rv)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        stored = {"apiVersion": table.type.api_version, "kind": table.type.kind, **obj, "metadata": meta}
        entry = Entry(stored)
        table.objects[key] = entry
        if prev is None:
            table.add_key(key)
        self._emit(table, Change(self._rv, "ADDED" if prev is None else "MODIFIED", entry, prev))
        return stored

    def bulk_load(self, resource: str, objs: Iterable[dict[str, Any]]) -> None:
        """Store many new objects at once, before any watch: no events, history starts after them."""
        table = self._table(resource)
        for obj in objs:
            meta = obj["metadata"]
            if meta["namespace"]:
                self._ensure_namespace(meta["namespace"])
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            table.objects[(meta["namespace"], meta["name"])] = Entry(obj)
        table.resort()
        table.history.clear()
        table.compacted = self._rv

    def _ensure_namespace(self, namespace: str) -> None:
        if ("", namespace) in self._tables["namespaces"].objects:
            return
        self.put(
            "namespaces",
            {
                "metadata": {
                    "name": namespace,
                    "labels": {"kubernetes.io/metadata.name": namespace},
                    "annotations": {"kubevirt-vss-exporter/simulated": "true"},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )

    def delete(self, resource: str, namespace: str, name: str) -> None:
        """Remove an object and emit DELETED with its last state; nothing happens if it is absent."""
        table = self._table(resource)
        key = (namespace if table.type.namespaced else "", name)
        prev = table.objects.pop(key, None)
        if prev is None:
            return
        table.remove_key(key)
        self._compaction.advance(self._rv)
        self._rv += 1
        final = {**prev.obj, "metadata": {**prev.obj["metadata"], "resourceVersion": str(self._rv)}}
        self._emit(table, Change(self._rv, "DELETED", Entry(final), prev))
        if resource == "pods":
            for follower in self._followers.pop(key, set()):
                follower.finish(StreamEnd.CLOSED)

    def _emit(self, table: _Table, change: Change) -> None:
        history = table.history
        history.append(change)
        if len(history) > self._history_limit:
            table.compacted = history.popleft().rv
        for watcher in tuple(table.watchers):
            watcher.offer(change)

    def compact(self) -> None:
        """Forget all history: resuming from any resourceVersion older than the current one is Expired."""
        for table in self._tables.values():
            table.history.clear()
            table.compacted = self._rv
        self._compaction.compacted = self._rv

    # --- reads --------------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the stored object, or None."""
        entry = self.entry(resource, namespace, name)
        return copy.deepcopy(entry.obj) if entry is not None else None

    def list(self, resource: str) -> list[dict[str, Any]]:
        """Copies of all objects of a resource, ordered by namespace and name."""
        table = self._table(resource)
        return [copy.deepcopy(table.objects[key].obj) for key in table.keys]

    def entry(self, resource: str, namespace: str, name: str) -> Entry | None:
        table = self._table(resource)
        return table.objects.get((namespace if table.type.namespaced else "", name))

    def page(
        self,
        resource: str,
        *,
        namespace: str | None,
        after: Key | None,
        limit: int | None,
        match: Predicate | None,
    ) -> tuple[list[Entry], Key | None, int | None]:
        """Objects in key order after ``after``: (entries, key to continue after or None, remaining count)."""
        table = self._table(resource)
        keys = table.keys
        if namespace is None:
            lo, hi = 0, len(keys)
        else:
            lo = bisect_left(keys, (namespace, ""))
            hi = bisect_left(keys, (namespace + "\x00", ""))
        if after is not None:
            lo = max(lo, bisect_right(keys, after))
        entries: list[Entry] = []
        index = lo
        objects = table.objects
        while index < hi and (limit is None or len(entries) < limit):
            entry = objects[keys[index]]
            index += 1
            if match is None or match(entry.obj):
                entries.append(entry)
        if index < hi:
            remaining = (hi - index) if match is None else None
            return entries, keys[index - 1], remaining
        return entries, None, None

    def check_readable(self, rv: int) -> None:
        """Raise Expired when revision ``rv`` has been compacted: a list continued or read at it fails.

        Only compaction, by the clock or ``compact``, forgets a revision, never the number of writes: a
        paged list under heavy writes completes if it takes less than one compaction interval.
        """
        self._compaction.advance(self._rv)
        if rv < self._compaction.compacted:
            raise Expired(rv, self._compaction.compacted)

    def check_not_expired(self, resource: str, rv: int) -> None:
        """Raise Expired when the watch history of ``resource`` no longer reaches back to ``rv``."""
        table = self._table(resource)
        if rv < table.compacted:
            raise Expired(rv, table.compacted)

    # --- watches ------------------------------------------------------------------------------

    def watch(
        self, resource: str, *, namespace: str | None, since: int | None, match: Predicate | None
    ) -> tuple[Watcher, list[tuple[str, Entry]]]:
        """Open a watcher and return it with the events owed before live ones.

        ``since`` None means "current state": one ADDED per matching object. Otherwise every change
        after ``since`` is replayed; Expired is raised when that history is gone.
        """
        table = self._table(resource)
        watcher = Watcher(resource=resource, namespace=namespace, match=match, limit=self._stream_limit)
        if since is None:
            initial, _, _ = self.page(resource, namespace=namespace, after=None, limit=None, match=match)
            backlog = [("ADDED", entry) for entry in initial]
        else:
            self.check_not_expired(resource, since)
            replay = Watcher(resource=resource, namespace=namespace, match=match, limit=len(table.history) + 1)
            for change in table.history:
                if change.rv > since:
                    replay.offer(change)
            backlog = replay.drain()
        table.watchers.add(watcher)
        return watcher, backlog

    def release(self, stream: Stream) -> None:
        """Forget a stream whose response has finished."""
        if isinstance(stream, Watcher):
            self._tables[stream.resource].watchers.discard(stream)
        elif isinstance(stream, LogFollower):
            for followers in self._followers.values():
                followers.discard(stream)

    def streams(self) -> list[Stream]:
        watchers: list[Stream] = [w for t in self._tables.values() for w in t.watchers]
        return watchers + [f for fs in self._followers.values() for f in fs]

    def end_streams(self, how: StreamEnd, *, watches_only: bool = False) -> None:
        for stream in self.streams():
            if not watches_only or isinstance(stream, Watcher):
                stream.finish(how)

    # --- guest agent and logs -----------------------------------------------------------------

    def set_guest_info(self, namespace: str, name: str, info: dict[str, Any] | None) -> None:
        """Set the guestosinfo body for a VMI; None makes it answer "guest agent not connected"."""
        self._guest_info[(namespace, name)] = copy.deepcopy(info)

    def guest_info(self, namespace: str, name: str) -> dict[str, Any] | None:
        key = (namespace, name)
        if key in self._guest_info:
            return self._guest_info[key]
        if self.guest_info_source is not None:
            return self.guest_info_source(namespace, name)
        return None

    def append_log(self, namespace: str, pod_name: str, line: str, *, at: float | None = None) -> None:
        """Append one line to a pod's compute log; open followers receive it."""
        key = (namespace, pod_name)
        when = self._clock() if at is None else at
        buffer = self._logs.get(key)
        if buffer is None:
            buffer = self._logs[key] = deque(maxlen=self._log_limit)
        buffer.append((when, line))
        for follower in self._followers.get(key, ()):
            follower.push((when, line))

    def log_lines(self, namespace: str, pod_name: str) -> list[tuple[float, str]]:
        return list(self._logs.get((namespace, pod_name), ()))

    def follow_log(self, namespace: str, pod_name: str) -> LogFollower:
        follower = LogFollower(self._stream_limit)
        self._followers.setdefault((namespace, pod_name), set()).add(follower)
        return follower
