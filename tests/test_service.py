"""The composition root: lists are fed in chunks so the event loop keeps serving; guest reports wait for VMIs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from exporter.render.store import MetricsStore
from exporter.self_metrics import SelfMetrics
from exporter.service import RELIST_CHUNK, VMIS, Exporter, FleetSink, FreezeFailureLog
from exporter.settings import Settings
from exporter.state.fleet import Fleet
from exporter.state.records import VmKey, VmState
from exporter.web.health import Readiness


def vmi(i: int) -> dict:
    return {
        "metadata": {"namespace": "ns", "name": f"vm{i}", "uid": f"u{i}"},
        "status": {"phase": "Running", "conditions": [{"type": "AgentConnected", "status": "True"}]},
    }


async def pages(items: list[dict], size: int = 700) -> AsyncIterator[list[dict]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def test_an_incomplete_list_prunes_nothing() -> None:
    store = MetricsStore()
    sink = FleetSink(Fleet(on_state=store.put), Readiness(), SelfMetrics(), clock=lambda: 1.0)
    items = [vmi(i) for i in range(20)]
    await sink.replace("virtualmachineinstances", pages(items), namespace=None)

    async def broken() -> AsyncIterator[list[dict]]:
        yield items[:5]
        raise ConnectionResetError("the list broke off")

    with pytest.raises(ConnectionResetError):
        await sink.replace("virtualmachineinstances", broken(), namespace=None)
    assert len(store) == 20


@pytest.mark.slow
async def test_a_large_list_yields_to_the_event_loop_and_then_prunes() -> None:
    store = MetricsStore()
    sink = FleetSink(Fleet(on_state=store.put), Readiness(), SelfMetrics(), clock=lambda: 1.0)
    items = [vmi(i) for i in range(RELIST_CHUNK * 4 + 1)]
    turns = 0
    sizes_seen: list[int] = []

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            sizes_seen.append(len(store))
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await sink.replace("virtualmachineinstances", pages(items), namespace=None)
    assert len(store) == len(items)
    await sink.replace("virtualmachineinstances", pages(items[:10]), namespace=None)
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)
    assert turns >= 5  # the other task ran between chunks
    assert any(0 < size < len(items) for size in sizes_seen)  # and saw the list arrive in parts
    assert len(store) == 10  # pruned at the end of the second list


class _NoCluster:
    host = "(none)"

    def report_to(self, metrics: object) -> None:
        pass


async def test_guest_reports_from_unknown_addresses_wait_for_the_first_list_of_vmis() -> None:
    exporter = Exporter(Settings(), client=_NoCluster(), guest_report_token="t" * 32)  # type: ignore[arg-type]
    headers = {"Authorization": "Bearer " + "t" * 32, "Content-Type": "application/json"}
    async with TestServer(exporter.guest_report_app()) as server, TestClient(server) as client:
        before = await client.post("/api/v1/guest-reports", data=b"{}", headers=headers)
        exporter.readiness.mark_synced(VMIS)
        after = await client.post("/api/v1/guest-reports", data=b"{}", headers=headers)

    assert before.status == 503 and int(before.headers["Retry-After"]) >= 1
    assert after.status == 403  # listed, and still no VMI has this address


class _Lines:
    def __init__(self) -> None:
        self.lines: list[dict[str, object]] = []

    def info(self, event: str, **fields: object) -> None:
        self.lines.append({"event": event, **fields})


def test_a_freeze_failure_line_is_logged_once_per_new_episode_and_keeps_the_states_counts() -> None:
    lines = _Lines()
    log = FreezeFailureLog(lines)
    key = VmKey("ns", "vm")
    first = VmState(key, freeze_error_counts=(("command_disabled", "unknown", 1),))
    log.observe(key, first)
    log.observe(key, VmState(key, freeze_error_counts=(("command_disabled", "unknown", 1),)))
    assert log.episodes[key] is first.freeze_error_counts  # held, not copied
    log.observe(key, VmState(key, freeze_error_counts=(("command_disabled", "unknown", 2), ("x", "y", 1))))
    log.observe(key, None)
    assert key not in log.episodes
    assert [(line["reason"], line["episodes"]) for line in lines.lines] == [
        ("command_disabled", 1),
        ("command_disabled", 2),
        ("x", 1),
    ]
