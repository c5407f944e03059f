"""The real exporter with the real ``kubernetes.aio`` client over HTTP against the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from exporter.kube.client import KubeClient
from exporter.service import Exporter
from exporter.settings import Address, Settings
from exporter.simulator import Simulator, SimulatorConfig
from tests.scraping import Samples, scrape_samples


@dataclass
class Running:
    simulator: Simulator
    exporter: Exporter
    url: str
    session: aiohttp.ClientSession

    async def scrape(self) -> Samples:
        return await scrape_samples(self.session, self.url)

    async def vm_names(self) -> list[str]:
        samples = await self.scrape()
        return sorted(dict(labels)["name"] for name, labels in samples if name == "kubevirt_vss_vm_info")

    async def watching(self, resource: str, *, timeout: float = 10.0) -> None:
        """Wait until the exporter has a watch open on ``resource`` (so a fault hits a live stream)."""
        deadline = time.monotonic() + timeout
        while not any(getattr(s, "resource", None) == resource for s in self.simulator.store.streams()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no watch on {resource}")
            await asyncio.sleep(0.01)

    async def wait_for(self, predicate: Callable[[Samples], bool], *, timeout: float = 15.0) -> Samples:
        deadline = time.monotonic() + timeout
        while True:
            samples = await self.scrape()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError("condition not met within timeout")
            await asyncio.sleep(0.05)


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    return samples.get((metric, tuple(sorted(labels.items()))))


def vmi(name: str, *, namespace: str = "ns", uid: str | None = None, frozen: bool = False, agent: bool = True) -> dict:
    status: dict = {"phase": "Running", "nodeName": "node01", "conditions": []}
    if agent:
        status["conditions"].append({"type": "AgentConnected", "status": "True", "lastProbeTime": None})
    if frozen:
        status["fsFreezeStatus"] = "frozen"
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"namespace": namespace, "name": name, "uid": uid or f"uid-{name}"},
        "spec": {},
        "status": status,
    }


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Start a story-less simulator and an exporter against it; objects may be seeded first."""
    started: list[tuple[asyncio.Event, asyncio.Task[None], KubeClient]] = []
    simulators: list[Simulator] = []
    session = aiohttp.ClientSession()

    async def start(
        *,
        seed_objects: list[tuple[str, dict]] = (),
        simulator: Simulator | None = None,
        guest_report_token: str | None = None,
        shard_token: str | None = None,
        **overrides: object,
    ) -> Running:
        """A new exporter; against a new story-less simulator unless one is given (a restart)."""
        if simulator is None:
            simulator = Simulator(SimulatorConfig(story=False, bookmark_interval=0.5))
            await simulator.start()
            simulators.append(simulator)
        for resource, raw in seed_objects:
            simulator.store.upsert(resource, raw)
        kubeconfig = tmp_path / "kubeconfig"
        simulator.write_kubeconfig(kubeconfig)
        settings = replace(
            Settings(
                listen=Address("127.0.0.1", 0),
                guestosinfo_interval=0.2,
                tick_interval=0.2,
                inactivity_timeout=5.0,
                watch_timeout_seconds=30,
            ),
            **overrides,
        )
        client = await KubeClient.connect(kubeconfig=str(kubeconfig))
        exporter = Exporter(settings, client=client, guest_report_token=guest_report_token, shard_token=shard_token)
        stop = asyncio.Event()
        task = asyncio.create_task(exporter.run(stop))
        started.append((stop, task, client))
        for _ in range(200):
            if "metrics" in exporter.bound_urls:
                break
            await asyncio.sleep(0.01)
        running = Running(simulator, exporter, exporter.bound_urls["metrics"], session)
        for _ in range(500):
            async with session.get(running.url + "/readyz") as response:
                if response.status == 200:
                    return running
            await asyncio.sleep(0.02)
        raise AssertionError("exporter never became ready")

    async def stop_exporter(running: Running) -> None:
        for stop, task, client in started:
            if client is running.exporter.client and not task.done():
                stop.set()
                await asyncio.wait_for(task, timeout=10)

    start.stop_exporter = stop_exporter  # type: ignore[attr-defined]
    yield start
    for stop, task, client in started:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await client.close()
    for simulator in simulators:
        await simulator.stop()
    await session.close()
