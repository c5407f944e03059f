"""Follows the ``compute`` container log of virt-launcher pods and reports freeze failures in it.

Off by default (it needs ``pods/log``). The pods come from a reflector on launcher pods; this
module is that reflector's sink. At most ``max_streams`` logs are followed at once. Lines are
split here with a length cap, so a huge or binary line costs a counter, never memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from exporter.kube import errors
from exporter.resources import pod_log_path
from exporter.self_metrics import SelfMetrics
from exporter.state.freeze_errors import FreezeObservation, from_log_line
from exporter.state.records import VmKey

MAX_LINE = 64 * 1024
FIRST_LOOKBACK_SECONDS = 3600
RECONNECT_EVERY = 600.0
RawObject = Mapping[str, Any]


class Client(Protocol):
    def stream_lines(self, path: str, *, query: Mapping[str, Any] | None = None) -> Any: ...


class LineSplitter:
    """Bytes in, complete lines out; a line longer than ``limit`` is dropped and counted."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._discarding = False
        self.too_long = 0

    def feed(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self._discarding:
                if len(self._buffer) + len(piece) > self.limit:
                    self._buffer.clear()
                    self._discarding = True
                    self.too_long += 1
                else:
                    self._buffer += piece
            if end < 0:
                return lines
            if not self._discarding:
                lines.append(self._buffer.decode("utf-8", "replace"))
            self._buffer.clear()
            self._discarding = False
            start = end + 1


@dataclass(frozen=True, slots=True)
class LauncherPod:
    uid: str
    namespace: str
    name: str
    vmi_name: str | None
    vmi_uid: str | None


def launcher_pod(raw: RawObject) -> LauncherPod | None:
    """A running virt-launcher pod and the VMI it serves, or ``None``."""
    metadata = raw.get("metadata")
    status = raw.get("status")
    if not isinstance(metadata, Mapping) or not isinstance(status, Mapping) or status.get("phase") != "Running":
        return None
    namespace, name, uid = metadata.get("namespace"), metadata.get("name"), metadata.get("uid")
    if not all(isinstance(v, str) and v for v in (namespace, name, uid)):
        return None
    vmi_name = None
    for owner in metadata.get("ownerReferences") or ():
        if isinstance(owner, Mapping) and owner.get("kind") == "VirtualMachineInstance":
            vmi_name = owner.get("name") if isinstance(owner.get("name"), str) else None
    labels = metadata.get("labels") if isinstance(metadata.get("labels"), Mapping) else {}
    created_by = labels.get("kubevirt.io/created-by")
    return LauncherPod(uid, namespace, name, vmi_name, created_by if isinstance(created_by, str) else None)


class LauncherLogs:
    """Reflector sink for launcher pods, and the owner of one follower task per followed pod."""

    def __init__(
        self,
        *,
        client: Client,
        vm_of_vmi_uid: Callable[[str], VmKey | None],
        on_observation: Callable[[FreezeObservation], None],
        metrics: SelfMetrics,
        max_streams: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.vm_of_vmi_uid = vm_of_vmi_uid
        self.on_observation = on_observation
        self.metrics = metrics
        self.max_streams = max_streams
        self.clock = clock
        self.pods: dict[str, LauncherPod] = {}
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._last_line_at: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._log = structlog.get_logger().bind(component="launcher_logs")
        self._capped_logged = False

    # -- reflector sink ------------------------------------------------------------------------

    async def replace(
        self, resource: str, pages: AsyncIterator[Sequence[RawObject]], *, namespace: str | None
    ) -> None:
        """A full list of ``namespace`` (``None``: all) replaces only that namespace's pods."""
        listed = [pod async for items in pages for pod in map(launcher_pod, items) if pod is not None]
        kept = {uid: p for uid, p in self.pods.items() if namespace is not None and p.namespace != namespace}
        self.pods = kept | {p.uid: p for p in listed}
        self._changed.set()

    def upsert(self, resource: str, raw: RawObject) -> None:
        pod = launcher_pod(raw)
        uid = _uid(raw)
        if pod is not None:
            self.pods[pod.uid] = pod
        elif uid is not None:
            self.pods.pop(uid, None)
        self._changed.set()

    def delete(self, resource: str, raw: RawObject) -> None:
        uid = _uid(raw)
        if uid is not None:
            self.pods.pop(uid, None)
        self._changed.set()

    def synced(self, resource: str) -> None:
        """Launcher logs are a best-effort source; they never hold readiness back."""

    # -- followers ---------------------------------------------------------------------------------

    def vm_key(self, pod: LauncherPod) -> VmKey | None:
        if pod.vmi_name:
            return VmKey(pod.namespace, pod.vmi_name)
        if pod.vmi_uid:
            return self.vm_of_vmi_uid(pod.vmi_uid)
        return None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            while True:
                await self._changed.wait()
                self._changed.clear()
                self._reconcile(group)
                await asyncio.sleep(0.5)  # let a burst of pod updates settle

    def _reconcile(self, group: asyncio.TaskGroup) -> None:
        for uid in [u for u in self._followers if u not in self.pods or self._followers[u].done()]:
            self._followers.pop(uid).cancel()
        wanted = sorted(self.pods)  # stable choice when the cap bites
        for uid in wanted:
            if uid in self._followers:
                continue
            if len(self._followers) >= self.max_streams:
                if not self._capped_logged:
                    self._log.warning("log_stream_cap_reached", max_streams=self.max_streams, pods=len(self.pods))
                    self._capped_logged = True
                break
            pod = self.pods[uid]
            self._followers[uid] = group.create_task(self._follow(pod), name=f"log-{pod.namespace}/{pod.name}")
        self.metrics.launcher_log_streams.set(len(self._followers))

    async def _follow(self, pod: LauncherPod) -> None:
        log = self._log.bind(namespace=pod.namespace, pod=pod.name)
        failures = 0
        while True:
            last = self._last_line_at.get(pod.uid)
            since = FIRST_LOOKBACK_SECONDS if last is None else max(1, int(self.clock() - last) + 5)
            query = {"container": "compute", "follow": "true", "sinceSeconds": since, "timestamps": "false"}
            try:
                async with asyncio.timeout(RECONNECT_EVERY):
                    await self._read(pod, query)
                failures = 0
            except TimeoutError:
                failures = 0  # a periodic reconnect; replayed lines are recognised and ignored
            except errors.NotFound:
                log.info("launcher_log_gone")
                return
            except errors.KubeError as error:
                failures += 1
                log.info("launcher_log_error", error=str(error), attempt=failures)
            await asyncio.sleep(min(60.0, 2.0**failures))

    async def _read(self, pod: LauncherPod, query: Mapping[str, Any]) -> None:
        splitter = LineSplitter()
        async with self.client.stream_lines(pod_log_path(pod.namespace, pod.name), query=query) as stream:
            while True:
                try:
                    chunk = await stream.readany()
                except Exception as error:
                    raise errors.from_exception(error) from error
                if not chunk:
                    return
                before = splitter.too_long
                for line in splitter.feed(chunk):
                    self._line(pod, line)
                if splitter.too_long > before:
                    self.metrics.launcher_log_lines.labels("too_long").inc(splitter.too_long - before)

    def _line(self, pod: LauncherPod, line: str) -> None:
        self._last_line_at[pod.uid] = self.clock()
        key = self.vm_key(pod)
        observation = from_log_line(line, key, stream=pod.uid) if key is not None else None
        if observation is None:
            self.metrics.launcher_log_lines.labels("ignored").inc()
            return
        self.metrics.launcher_log_lines.labels("matched").inc()
        self.on_observation(observation)


def _uid(raw: RawObject) -> str | None:
    metadata = raw.get("metadata")
    uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    return uid if isinstance(uid, str) else None
