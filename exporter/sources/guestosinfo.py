"""Polls the guestosinfo subresource of Running, agent-connected VMIs.

Bounded concurrency (a fixed set of workers), a per-VM interval with jitter so a large fleet
does not poll in lock-step, and every outcome counted. guestosinfo is served from
virt-launcher's cache, so polling never sends a command to the guest agent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog

from exporter.kube import errors
from exporter.resources import guestosinfo_path
from exporter.self_metrics import SelfMetrics
from exporter.state.records import VmKey

Target = tuple[VmKey, str]
NOT_CONNECTED = "does not have guest agent connected"


class Client(Protocol):
    async def get_json(self, path: str, *, query: Any = None, timeout: float = 30.0) -> Any: ...


class GuestInfoPoller:
    def __init__(
        self,
        *,
        client: Client,
        targets: Callable[[], Sequence[Target]],
        on_result: Callable[[VmKey, str, Any], None],
        metrics: SelfMetrics,
        interval: float,
        concurrency: int,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        scan_every: float = 1.0,
    ) -> None:
        self.client = client
        self.targets = targets
        self.on_result = on_result
        self.metrics = metrics
        self.interval = interval
        self.concurrency = concurrency
        self.timeout = timeout
        self._clock = clock
        self._rng = rng or random.Random()
        self._scan_every = scan_every
        self._next: dict[VmKey, tuple[str, float]] = {}
        self._in_flight: set[VmKey] = set()
        self._log = structlog.get_logger().bind(component="guestosinfo")

    async def run(self) -> None:
        queue: asyncio.Queue[Target] = asyncio.Queue(maxsize=self.concurrency * 4)
        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(self._worker(queue))
            while True:
                for target in self._due():
                    self._in_flight.add(target[0])
                    await queue.put(target)
                await asyncio.sleep(self._scan_every)

    def _due(self) -> list[Target]:
        now = self._clock()
        current = dict(self.targets())
        for key in [k for k in self._next if k not in current]:
            del self._next[key]
        due: list[Target] = []
        for key, uid in current.items():
            scheduled = self._next.get(key)
            if scheduled is None or scheduled[0] != uid:
                # A new VMI life: poll soon, spread over a few seconds.
                self._next[key] = (uid, now + self._rng.uniform(0, min(5.0, self.interval)))
                continue
            if scheduled[1] <= now and key not in self._in_flight:
                due.append((key, uid))
                jitter = self._rng.uniform(-0.1, 0.1) * self.interval
                self._next[key] = (uid, now + self.interval + jitter)
        return due

    async def _worker(self, queue: asyncio.Queue[Target]) -> None:
        while True:
            key, uid = await queue.get()
            try:
                await self._poll(key, uid)
            finally:
                self._in_flight.discard(key)
                queue.task_done()

    async def _poll(self, key: VmKey, uid: str) -> None:
        started = time.perf_counter()
        result = "ok"
        try:
            raw = await self.client.get_json(guestosinfo_path(key.namespace, key.name), timeout=self.timeout)
        except errors.ServerError as error:
            result = "not_connected" if NOT_CONNECTED in str(error) else "error"
            self._log.debug("guestosinfo_failed", namespace=key.namespace, name=key.name, result=result)
            return
        except errors.TransportError as error:
            result = "timeout" if "timed out" in str(error) else "error"
            self._log.info("guestosinfo_failed", namespace=key.namespace, name=key.name, result=result)
            return
        except errors.KubeError as error:
            result = "error"
            self._log.info("guestosinfo_failed", namespace=key.namespace, name=key.name, error=str(error))
            return
        finally:
            self.metrics.guestosinfo_requests.labels(result).inc()
            self.metrics.guestosinfo_duration.observe(time.perf_counter() - started)
        self.on_result(key, uid, raw)
