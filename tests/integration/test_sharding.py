"""Shards against one simulated cluster: together they export every VM exactly once, for any shard count."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from exporter.simulator import Simulator, SimulatorConfig
from tests.integration.conftest import Running


async def exported(shards: list[Running]) -> Counter[tuple[str, str]]:
    seen: Counter[tuple[str, str]] = Counter()
    for shard in shards:
        for name, labels in await shard.scrape():
            if name == "kubevirt_vss_vm_info":
                values = dict(labels)
                seen[(values["namespace"], values["name"])] += 1
    return seen


@pytest.mark.parametrize("total", [3, 2])
async def test_every_vm_exported_by_exactly_one_shard(cluster, total: int) -> None:
    async with Simulator(SimulatorConfig(vms=120, seed=7, bookmark_interval=0.5)) as simulator:
        expected = {
            (o["metadata"]["namespace"], o["metadata"]["name"])
            for resource in ("virtualmachines", "virtualmachineinstances")
            for o in simulator.store.list(resource)
        }
        shards = [await cluster(simulator=simulator, shard=i, total_shards=total) for i in range(total)]
        seen = await exported(shards)
        assert set(seen) == expected
        assert set(seen.values()) == {1}
        sizes = [(await shard.scrape())[("kubevirt_vss_exporter_vms", ())] for shard in shards]
        assert sum(sizes) == len(expected) and min(sizes) > 0
        for shard in shards:
            await cluster.stop_exporter(shard)
        await asyncio.sleep(0)
