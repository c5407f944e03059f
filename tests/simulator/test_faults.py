"""Fault injection that is not about streams (those are in test_watch.py): malformed objects, 503."""

from __future__ import annotations

import aiohttp
import pytest

from exporter.simulator import Simulator
from exporter.simulator.faults import MALFORMED_NAMESPACE, Faults
from exporter.simulator.history import ObjectStore

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


def test_malformed_objects_cycle_through_broken_shapes() -> None:
    store = ObjectStore(clock=lambda: 0.0)
    injected = Faults(store).malformed_objects(6, huge_size=1000)
    vmis = {o["metadata"]["name"]: o for o in store.list("virtualmachineinstances")}
    snapshots = store.list("virtualmachinesnapshots")

    assert len(vmis) == 6 and len(injected) == 7
    assert all(o["metadata"]["namespace"] == MALFORMED_NAMESPACE for o in vmis.values())
    assert "status" not in vmis["malformed-0"]
    assert isinstance(vmis["malformed-1"]["status"]["conditions"], str)
    assert isinstance(vmis["malformed-2"]["status"]["phase"], int)
    assert len(vmis["malformed-3"]["status"]["nodeName"]) == 1000
    assert None in vmis["malformed-4"]["status"]["conditions"]
    assert "\x00" in vmis["malformed-5"]["status"]["nodeName"]
    assert snapshots[0]["status"]["indications"] == ["GuestAgent", "Online", "QuantumEntangled", 42]


def test_more_malformed_objects_get_new_names() -> None:
    store = ObjectStore(clock=lambda: 0.0)
    faults = Faults(store)
    faults.malformed_objects(2)
    faults.malformed_objects(2)
    assert len(store.list("virtualmachineinstances")) == 4


async def test_malformed_objects_are_served(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    empty_sim.faults.malformed_objects(6)
    async with http.get(f"/apis/kubevirt.io/v1/namespaces/{MALFORMED_NAMESPACE}/virtualmachineinstances") as r:
        body = await r.json()
    assert len(body["items"]) == 6
    assert len(body["items"][3]["metadata"]["annotations"]["huge"]) == 64 * 1024


def test_fail_rate_draws_are_seeded() -> None:
    def draws(seed: int) -> list[bool]:
        faults = Faults(ObjectStore(clock=lambda: 0.0), seed=seed)
        faults.guestosinfo_fail_rate = 0.5
        return [faults.guestosinfo_fails() for _ in range(50)]

    assert draws(1) == draws(1)
    assert 5 < sum(draws(1)) < 45
    assert not any(Faults(ObjectStore(clock=lambda: 0.0)).guestosinfo_fails() for _ in range(10))
