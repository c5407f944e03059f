"""The guestosinfo poller: what it asks, what it hands on, and how it counts every request."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from exporter.kube import errors
from exporter.self_metrics import SelfMetrics
from exporter.sources.guestosinfo import GuestInfoPoller, poll_fingerprint
from exporter.sources.poll_plan import PollPlan, PollSettings
from exporter.state.records import FreezeErrorDetail, VmKey, VmState

OK = VmKey("ns", "ok")
DISCONNECTED = VmKey("ns", "disconnected")
THROTTLED = VmKey("ns", "throttled")
SLOW = VmKey("ns", "slow")
BROKEN = VmKey("ns", "broken")
ANSWERS: dict[str, Any] = {
    "ok": {"guestAgentVersion": "108.0.2"},
    "disconnected": errors.ServerError("HTTP 500: VMI does not have guest agent connected", status=500),
    "throttled": errors.TooManyRequests("HTTP 429: slow down", status=429, retry_after=0.01),
    "slow": errors.TransportError("request timed out"),
    "broken": errors.ServerError("HTTP 500: internal error", status=500),
}


class FakeClient:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def get_json(self, path: str, *, query: Any = None, timeout: float = 30.0) -> Any:
        self.paths.append(path)
        answer = ANSWERS[path.split("/")[-2]]
        if isinstance(answer, Exception):
            raise answer
        return answer


def connected(key: VmKey, **changes: Any) -> VmState:
    fields: dict[str, Any] = {"agent_connected": True, "guest_os": "mswindows", "guest_os_version": "2022"}
    return VmState(key=key, **(fields | changes))


def test_fingerprint_is_none_without_a_connected_agent_and_ignores_what_polls_return() -> None:
    assert poll_fingerprint(None) is None
    assert poll_fingerprint(VmState(key=OK, agent_connected=False)) is None
    base = connected(OK)
    # What a guestosinfo answer itself changes must not ask for another poll.
    assert poll_fingerprint(connected(OK, agent_version="108.0.2", fsfreeze_available=True)) == poll_fingerprint(base)
    failure = FreezeErrorDetail("add_volume_to_snapshot_set", "volume_not_supported", "", "", "", "", "event", 5.0)
    assert poll_fingerprint(connected(OK, last_freeze_error=failure)) != poll_fingerprint(base)
    assert poll_fingerprint(connected(OK, guest_os_version="2025")) != poll_fingerprint(base)
    # The plan keeps one per VM: VMs of one OS build without freeze failures share it.
    assert poll_fingerprint(connected(VmKey("other", "vm"))) is poll_fingerprint(base)


async def test_polls_after_ready_hands_answers_on_and_counts_every_result() -> None:
    metrics = SelfMetrics()
    client = FakeClient()
    results: list[tuple[VmKey, str, Any]] = []
    ready = asyncio.Event()
    poller = GuestInfoPoller(
        client=client,
        plan=PollPlan(PollSettings(period=0.05, max_rate=1000.0, min_gap=0.0), rng=random.Random(1)),
        vmi_uid=lambda key: f"uid-{key.name}",
        on_result=lambda key, uid, raw: results.append((key, uid, raw)),
        metrics=metrics,
        concurrency=2,
    )
    for key in (OK, DISCONNECTED, THROTTLED, SLOW, BROKEN):
        poller.observe(key, connected(key))
    poller.observe(VmKey("ns", "stopped"), VmState(key=VmKey("ns", "stopped"), phase="Stopped"))
    task = asyncio.create_task(poller.run(ready.wait))
    await asyncio.sleep(0.05)
    assert client.paths == []  # nothing before the first lists are in
    ready.set()
    try:
        for _ in range(500):
            if all(_count(metrics, r) > 0 for r in ("ok", "not_connected", "throttled", "timeout", "error")):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert results and all(r == (OK, "uid-ok", ANSWERS["ok"]) for r in results)
    assert not any("stopped" in path for path in client.paths)
    assert client.paths[0].startswith("/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/")
    assert all(_count(metrics, r) > 0 for r in ("ok", "not_connected", "throttled", "timeout", "error"))


def _count(metrics: SelfMetrics, result: str) -> float:
    name = "kubevirt_vss_exporter_guestosinfo_requests_total"
    return metrics.registry.get_sample_value(name, {"result": result}) or 0
