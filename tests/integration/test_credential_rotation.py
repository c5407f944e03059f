"""The simulated API rotates its token and CA mid-run; the exporter follows without a restart.

With a kubeconfig the exporter notices the rewritten file (or the 401) and reloads it; in a pod it
re-reads the service-account token and CA files when they change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from exporter.kube.client import KubeClient
from exporter.kube.credentials import InCluster, Kubeconfig
from exporter.service import Exporter
from exporter.settings import Address, Settings
from exporter.simulator import Simulator, SimulatorConfig
from tests.integration.conftest import Running, value, vmi

VMIS = "virtualmachineinstances"


@dataclass
class Rotating:
    running: Running
    simulator: Simulator


@pytest.fixture(params=["kubeconfig", "service_account"])
async def rotating(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rotating]:
    simulator = Simulator(SimulatorConfig(story=False, tls=True, bookmark_interval=0.5))
    await simulator.start()
    simulator.store.upsert(VMIS, vmi("before"))
    if request.param == "kubeconfig":
        simulator.write_kubeconfig(tmp_path / "kubeconfig")
        credentials = Kubeconfig(path=str(tmp_path / "kubeconfig"), context=None)
    else:
        simulator.write_service_account(tmp_path / "serviceaccount")
        credentials = InCluster(host=simulator.url, directory=tmp_path / "serviceaccount")
    client = await KubeClient.connect(credentials=credentials)
    settings = Settings(listen=Address("127.0.0.1", 0), tick_interval=0.2, inactivity_timeout=5.0)
    exporter = Exporter(settings, client=client)
    stop = asyncio.Event()
    task = asyncio.create_task(exporter.run(stop))
    session = aiohttp.ClientSession()
    try:
        await asyncio.wait_for(exporter.readiness.wait(), timeout=15)
        yield Rotating(Running(simulator, exporter, exporter.bound_urls["metrics"], session), simulator)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await client.close()
        await session.close()
        await simulator.stop()


async def test_token_and_ca_rotated_mid_run(rotating: Rotating) -> None:
    running, simulator = rotating.running, rotating.simulator
    assert await running.vm_names() == ["before"]
    assert value(await running.scrape(), "kubevirt_vss_exporter_api_authenticated") == 1

    simulator.rotate_credentials()  # the old token is refused and new connections see a new CA
    simulator.faults.drop_streams()  # open watches end, as they would on an API server restart
    simulator.store.upsert(VMIS, vmi("after"))

    samples = await running.wait_for(
        lambda s: any(n == "kubevirt_vss_vm_info" and dict(labels)["name"] == "after" for n, labels in s),
        timeout=20,
    )
    reloads = {
        dict(labels)["trigger"]: v
        for (n, labels), v in samples.items()
        if n == "kubevirt_vss_exporter_credential_reloads_total" and dict(labels)["result"] == "changed"
    }
    assert sum(reloads.values()) >= 1, samples
    assert value(samples, "kubevirt_vss_exporter_api_authenticated") == 1
    assert value(samples, "kubevirt_vss_exporter_synced", resource=VMIS) == 1


class UnwatchedKubeconfig(Kubeconfig):
    """A kubeconfig whose file changes go unnoticed: only the API's 401 can trigger the reload."""

    def changed(self) -> bool:
        return False


async def test_a_401_reloads_the_kubeconfig_and_the_request_is_retried(tmp_path: Path) -> None:
    async with Simulator(SimulatorConfig(story=False, tls=True)) as simulator:
        simulator.store.upsert(VMIS, vmi("one"))
        simulator.write_kubeconfig(tmp_path / "kubeconfig")
        client = await KubeClient.connect(
            credentials=UnwatchedKubeconfig(path=str(tmp_path / "kubeconfig"), context=None)
        )
        exporter = Exporter(Settings(), client=client)  # only for its metrics
        try:
            path = "/apis/kubevirt.io/v1/virtualmachineinstances"
            assert len((await client.get_json(path))["items"]) == 1
            simulator.rotate_credentials()
            assert len((await client.get_json(path))["items"]) == 1  # 401, reload, retried with the new token
            registry = exporter.metrics.registry
            reloads = {"trigger": "unauthorized", "result": "changed"}
            assert registry.get_sample_value("kubevirt_vss_exporter_credential_reloads_total", reloads) == 1
            assert registry.get_sample_value("kubevirt_vss_exporter_api_authenticated") == 1
        finally:
            await client.close()
