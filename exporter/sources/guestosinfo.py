"""Polls the guestosinfo subresource of Running, agent-connected VMIs, as ``PollPlan`` says when.

Every request goes virt-api → virt-handler → virt-launcher, which answers from its guest-info
cache; it never sends a command to the guest agent. Bounded concurrency, a fleet-wide rate cap,
a per-request timeout, and every request counted by result.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from exporter.kube import errors
from exporter.resources import guestosinfo_path
from exporter.sources.poll_plan import PollPlan
from exporter.state.records import VmKey, VmState
from exporter.state.shared import SharedValues

NOT_CONNECTED = "does not have guest agent connected"
RESULTS = ("ok", "not_connected", "throttled", "timeout", "error")


class Client(Protocol):
    async def get_json(self, path: str, *, query: Any = None, timeout: float = 30.0) -> Any: ...


class _Counter(Protocol):
    def labels(self, *values: str) -> Any: ...


class _Histogram(Protocol):
    def observe(self, amount: float) -> None: ...


class PollMetrics(Protocol):
    guestosinfo_requests: _Counter
    guestosinfo_duration: _Histogram


# Kept per VM by the plan; VMs of one OS build without freeze failures have the same one.
_SHARED_FINGERPRINTS: SharedValues = SharedValues()


def poll_fingerprint(state: VmState | None) -> tuple[str, str, float | None] | None:
    """What, when it changes, makes a new guestosinfo answer likely; None when there is nothing to poll.

    The guest OS (it changes on an upgrade or a new VMI) and the newest freeze failure (a failed
    freeze can leave the agent's commands disabled or its filesystems in a new state). The agent
    connecting makes a VM a target in the first place.
    """
    if state is None or not state.agent_connected:
        return None
    if state.last_freeze_error is not None:
        return state.guest_os, state.guest_os_version, state.last_freeze_error.timestamp
    return _SHARED_FINGERPRINTS((state.guest_os, state.guest_os_version, None))


class GuestInfoPoller:
    """Runs ``plan``: ``observe`` is fed every published VM state; ``run`` sends the requests."""

    def __init__(
        self,
        *,
        client: Client,
        plan: PollPlan,
        vmi_uid: Callable[[VmKey], str | None],
        on_result: Callable[[VmKey, str, Any], None],
        metrics: PollMetrics,
        concurrency: int,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.plan = plan
        self.vmi_uid = vmi_uid
        self.on_result = on_result
        self.metrics = metrics
        self.concurrency = concurrency
        self.timeout = timeout
        self._clock = clock
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._paused_until = 0.0
        self._log = structlog.get_logger().bind(component="guestosinfo")

    def observe(self, key: VmKey, state: VmState | None) -> None:
        """A VM's published state changed (``None``: the VM is gone)."""
        if state is None:
            self.plan.forget(key)
        elif self.plan.observe(key, poll_fingerprint(state), self._clock()):
            self._wake.set()

    async def run(self, ready: Callable[[], Awaitable[Any]]) -> None:
        """Poll forever, once ``ready`` returns (the first lists are in, so the first sweep is known)."""
        await ready()
        self.plan.start(self._clock())
        self._log.info("guestosinfo_polling_started", targets=len(self.plan), period=self.plan.settings.period,
                       max_rate=self.plan.settings.max_rate)
        queue: asyncio.Queue[VmKey] = asyncio.Queue()
        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(self._worker(queue))
            while True:
                self._wake.clear()
                now = self._clock()
                wait: float | None = self._paused_until - now
                if wait is not None and wait <= 0:
                    for key in self.plan.take_due(now, limit=self.concurrency - self._in_flight):
                        self._in_flight += 1
                        queue.put_nowait(key)
                    wait = None if self._in_flight >= self.concurrency else self.plan.seconds_until_next(now)
                # asyncio.timeout, not wait_for: wait_for in 3.11 can swallow a cancellation that
                # arrives as the event is set, and this loop wakes often.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    async def _worker(self, queue: asyncio.Queue[VmKey]) -> None:
        while True:
            key = await queue.get()
            try:
                uid = self.vmi_uid(key)
                if uid is not None:
                    await self._poll(key, uid)
            finally:
                self._in_flight -= 1
                self.plan.done(key, self._clock())
                self._wake.set()

    async def _poll(self, key: VmKey, uid: str) -> None:
        started = time.perf_counter()
        result = "ok"
        try:
            raw = await self.client.get_json(guestosinfo_path(key.namespace, key.name), timeout=self.timeout)
        except errors.KubeError as error:
            result = _result_of(error)
            if isinstance(error, errors.TooManyRequests):
                # virt-api asks us to slow down: the whole fleet waits, not just this VM.
                self._paused_until = self._clock() + (error.retry_after or 1.0)
            log = self._log.debug if result == "not_connected" else self._log.info
            log("guestosinfo_failed", namespace=key.namespace, name=key.name, result=result, error=str(error)[:200])
            return
        finally:
            self.metrics.guestosinfo_requests.labels(result).inc()
            self.metrics.guestosinfo_duration.observe(time.perf_counter() - started)
        self.on_result(key, uid, raw)


def _result_of(error: errors.KubeError) -> str:
    if isinstance(error, errors.ServerError):
        return "not_connected" if NOT_CONNECTED in str(error) else "error"
    if isinstance(error, errors.TooManyRequests):
        return "throttled"
    if isinstance(error, errors.TransportError) and "timed out" in str(error):
        return "timeout"
    return "error"
