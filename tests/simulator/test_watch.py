"""Watch over real HTTP: event order, initial state, bookmarks, timeouts, 410 Expired, dropped streams."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from exporter.simulator import Simulator
from tests.simulator.helpers import read_lines, vmi_body

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

VMIS = "/apis/kubevirt.io/v1/virtualmachineinstances"


def summary(events: list[dict]) -> list[tuple[str, str | None]]:
    return [(e["type"], e["object"].get("metadata", {}).get("name")) for e in events]


async def test_watch_from_a_list_version_sends_changes_in_order(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    store = empty_sim.store
    store.upsert("virtualmachineinstances", vmi_body("a"))
    async with http.get(VMIS) as response:
        listed = (await response.json())["metadata"]["resourceVersion"]
    store.upsert("virtualmachineinstances", vmi_body("a", nodeName="n2"))

    params = {"watch": "true", "resourceVersion": listed, "timeoutSeconds": "30"}
    async with http.get(VMIS, params=params) as response:
        assert response.headers["Content-Type"] == "application/json"
        store.upsert("virtualmachineinstances", vmi_body("b"))
        store.delete("virtualmachineinstances", "ns1", "a")
        events = await read_lines(response, count=3)

    assert summary(events) == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert versions[0] > int(listed)


async def test_watch_from_zero_starts_with_current_state(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("a"))
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("b", namespace="ns2"))

    for params in ({"watch": "1", "resourceVersion": "0"}, {"watch": "true"}):
        async with http.get(VMIS, params=params) as response:
            events = await read_lines(response, count=2)
        assert summary(events) == [("ADDED", "a"), ("ADDED", "b")]
    async with http.get("/apis/kubevirt.io/v1/namespaces/ns2/virtualmachineinstances",
                        params={"watch": "true"}) as response:
        empty_sim.store.upsert("virtualmachineinstances", vmi_body("c", namespace="ns1"))
        empty_sim.store.upsert("virtualmachineinstances", vmi_body("d", namespace="ns2"))
        assert summary(await read_lines(response, count=2)) == [("ADDED", "b"), ("ADDED", "d")]


@pytest.mark.slow
async def test_bookmarks_come_periodically_and_before_the_timeout_close(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("a"))
    start = empty_sim.store.resource_version
    params = {"watch": "true", "resourceVersion": str(start), "allowWatchBookmarks": "true", "timeoutSeconds": "1"}
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with http.get(VMIS, params=params) as response:
        empty_sim.store.upsert("pods", {"metadata": {"name": "p", "namespace": "ns1"}})
        events = await read_lines(response)
    elapsed = loop.time() - began

    assert 1.0 <= elapsed < 3.0
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert len(events) >= 3  # every 0.2 s in this fixture, plus one at the close
    bookmark = events[-1]["object"]
    assert bookmark == {"kind": "VirtualMachineInstance", "apiVersion": "kubevirt.io/v1",
                        "metadata": {"resourceVersion": str(start + 1)}}


@pytest.mark.slow
async def test_timeout_without_bookmarks_closes_cleanly(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.get(VMIS, params={"watch": "true", "timeoutSeconds": "1"}) as response:
        assert await read_lines(response) == []


async def test_send_initial_events_ends_with_the_marked_bookmark(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("a"))
    params = {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "5"}
    async with http.get(VMIS, params=params) as response:
        events = await read_lines(response, count=2)

    assert summary(events)[0] == ("ADDED", "a")
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_too_old_version_is_an_expired_error_event_then_close(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("a"))
    old = empty_sim.store.resource_version
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("a", nodeName="n2"))
    empty_sim.faults.compact()

    async with http.get(VMIS, params={"watch": "true", "resourceVersion": str(old)}) as response:
        assert response.status == 200
        events = await read_lines(response)

    current = empty_sim.store.resource_version
    assert events == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {old} ({current})", "reason": "Expired", "code": 410}}]


async def test_expire_watches_sends_410_to_open_watches_and_resume_fails(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    store = empty_sim.store
    store.upsert("virtualmachineinstances", vmi_body("a"))
    async with http.get(VMIS, params={"watch": "true"}) as response:
        first = await read_lines(response, count=1)
        seen = first[0]["object"]["metadata"]["resourceVersion"]
        store.upsert("virtualmachineinstances", vmi_body("b"))
        await read_lines(response, count=1)
        empty_sim.faults.expire_watches()
        rest = await read_lines(response)
    assert [e["type"] for e in rest] == ["ERROR"]
    assert rest[0]["object"]["code"] == 410

    async with http.get(VMIS, params={"watch": "true", "resourceVersion": seen}) as response:
        again = await read_lines(response)
    assert again[0]["object"]["reason"] == "Expired"


async def test_drop_streams_aborts_the_connection(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("a"))
    async with http.get(VMIS, params={"watch": "true"}) as response:
        await read_lines(response, count=1)
        empty_sim.faults.drop_streams()
        with pytest.raises(aiohttp.ClientPayloadError):
            async with asyncio.timeout(5):
                await response.content.read()
    async with http.get("/version") as response:
        assert response.status == 200


async def test_a_client_that_falls_behind_is_disconnected(no_leaked_tasks: None) -> None:
    from exporter.simulator import SimulatorConfig

    config = SimulatorConfig(story=False, stream_limit=5)
    async with Simulator(config) as sim, aiohttp.ClientSession(
        base_url=sim.url, headers={"Authorization": f"Bearer {sim.token}"}
    ) as http:
        sim.store.upsert("virtualmachineinstances", vmi_body("a"))
        async with http.get(VMIS, params={"watch": "true"}) as response:
            await read_lines(response, count=1)
            # Many writes in one loop turn: the handler cannot drain in between.
            for i in range(20):
                sim.store.upsert("virtualmachineinstances", vmi_body("a", nodeName=f"n{i}"))
            events = await read_lines(response)
    assert 1 <= len(events) <= 5


async def test_bad_parameters_are_400(http: aiohttp.ClientSession) -> None:
    async with http.get(VMIS, params={"watch": "true", "resourceVersion": "abc"}) as response:
        assert response.status == 400
    async with http.get(VMIS, params={"limit": "ten"}) as response:
        assert response.status == 400
