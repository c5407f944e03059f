"""The demo in-process: the simulated KubeVirt API with its story, the exporter against it with every
optional source on, and the simulated Windows guests sending their reports — as ``--demo`` wires it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from exporter.kube.client import KubeClient
from exporter.service import Exporter
from exporter.settings import Address, Settings
from exporter.simulator import Simulator, SimulatorConfig
from exporter.simulator.guest_reporter import run_guest_reporters
from exporter.simulator.scenarios import SCENARIOS
from tests.scraping import Samples, scrape_samples

DEMO_VMS = tuple(f"{s.namespace}/{s.name}" for s in SCENARIOS)


@dataclass
class Demo:
    simulator: Simulator
    exporter: Exporter
    url: str
    session: aiohttp.ClientSession

    async def scrape(self) -> Samples:
        return await scrape_samples(self.session, self.url)

    async def api(self, path: str) -> dict:
        async with self.session.get(self.url + path) as response:
            assert response.status == 200, (path, response.status)
            return await response.json()

    async def wait_for(self, what: str, predicate: Callable[[], object], *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if await predicate():  # type: ignore[misc]
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the demo never showed {what}")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_demo(
    workdir: Path, *, time_speed: float = 10.0, report_interval: float = 2.0, **overrides: object
) -> AsyncIterator[Demo]:
    """The demo fleet with the exporter ready and every Windows guest's first report in."""
    token = secrets.token_hex(16)
    simulator = Simulator(SimulatorConfig(seed=1, time_speed=time_speed))
    await simulator.start()
    kubeconfig = workdir / "kubeconfig"
    simulator.write_kubeconfig(kubeconfig)
    settings = replace(
        Settings(
            listen=Address("127.0.0.1", 0),
            guest_report_listen=Address("127.0.0.1", 0),
            follow_launcher_logs=True,
            guestosinfo_interval=1.0,
            tick_interval=0.2,
        ),
        **overrides,
    )
    client = await KubeClient.connect(kubeconfig=str(kubeconfig))
    exporter = Exporter(settings, client=client, guest_report_token=token, simulated=True)

    async def guests() -> None:
        await exporter.readiness.wait()
        url = exporter.bound_urls["guest_reports"] + "/api/v1/guest-reports"
        await run_guest_reporters(
            simulator.guest_targets(), url=url, token=token, interval=report_interval, clock=simulator.now
        )

    stop = asyncio.Event()
    task = asyncio.create_task(exporter.run(stop, extra_tasks=[guests]))
    session = aiohttp.ClientSession()
    try:
        while "metrics" not in exporter.bound_urls:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        demo = Demo(simulator, exporter, exporter.bound_urls["metrics"], session)
        await exporter.readiness.wait()
        reporting = {f"{t.namespace}/{t.name}" for t in simulator.guest_targets()}

        async def reports_in() -> bool:
            samples = await demo.scrape()
            reported = {
                f"{dict(labels)['namespace']}/{dict(labels)['name']}"
                for name, labels in samples
                if name == "kubevirt_vss_guest_report_timestamp_seconds"
            }
            return reporting <= reported

        await demo.wait_for("a guest report from every simulated Windows guest", reports_in)
        yield demo
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
        await client.close()
        await session.close()
        await simulator.stop()
