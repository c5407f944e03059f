from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.simulator.guest_reporter import (
    PROFILES,
    build_report_document,
    next_delay,
    retry_after_seconds,
    run_guest_reporters,
)
from exporter.state.diagnosis import judge_guest_checks
from exporter.state.guest_report import (
    GuestCheckThresholds,
    parse_guest_report,
    validate_guest_report,
    vss_could_not_run,
)

SAMPLES = Path(__file__).parent.parent / "data" / "guest_reports"
TOKEN = "simulated-token"


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    ip: str
    profile: str


@dataclass
class Received:
    peer: str
    authorization: str
    document: dict[str, Any]


@dataclass
class Recorder:
    """A tiny ingest endpoint that records who sent what; ``statuses`` scripts its first answers."""

    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # sent with every scripted status
    received: list[Received] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        address = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        peer = address[0]
        self.peers.append((address[0], address[1]))
        self.received.append(Received(peer, request.headers.get("Authorization", ""), await request.json()))
        self.changed.set()
        if self.statuses:
            return web.json_response({}, status=self.statuses.pop(0), headers=self.headers)
        return web.json_response({}, status=202)

    def from_peer(self, ip: str) -> list[Received]:
        return [r for r in self.received if r.peer == ip]

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def recording_server(recorder: Recorder) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/api/v1/guest-reports", recorder.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/api/v1/guest-reports"))


@contextlib.asynccontextmanager
async def running(coroutine: Awaitable[None]) -> AsyncIterator[asyncio.Task[None]]:
    task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_each_target_reports_from_its_own_address_repeatedly() -> None:
    targets = [
        Target("prod", "win-sql-01", "127.0.0.2", "healthy"),
        Target("prod", "win-sql-02", "127.0.0.3", "two_failed_writers"),
    ]
    recorder = Recorder()
    async with recording_server(recorder) as url:
        reporters = run_guest_reporters(targets, url=url, token=TOKEN, interval=0.05, clock=lambda: 1_757_844_900.0)
        async with running(reporters) as task:
            await recorder.wait_for(lambda: all(len(recorder.from_peer(t.ip)) >= 2 for t in targets))
            assert not task.done()

    assert {r.peer for r in recorder.received} == {"127.0.0.2", "127.0.0.3"}
    assert {r.authorization for r in recorder.received} == {f"Bearer {TOKEN}"}
    first, second = recorder.from_peer("127.0.0.2")[0], recorder.from_peer("127.0.0.3")[0]
    assert validate_guest_report(first.document) == [] and validate_guest_report(second.document) == []
    assert (first.document["hostname"], second.document["hostname"]) == ("WIN-SQL-01", "WIN-SQL-02")
    assert first.document["generatedAt"] == "2025-09-14T10:15:00Z"
    assert parse_guest_report(second.document, received_at=0.0).writers_failed == 2


async def test_each_report_uses_a_connection_of_its_own_that_is_not_kept_open() -> None:
    target = Target("prod", "win-sql-01", "127.0.0.2", "healthy")
    recorder = Recorder()
    async with recording_server(recorder) as url:
        reporters = run_guest_reporters([target], url=url, token=TOKEN, interval=0.02, clock=lambda: 0.0)
        async with running(reporters):
            await recorder.wait_for(lambda: len(recorder.received) >= 3)

    assert len(set(recorder.peers)) == len(recorder.peers)
    assert {ip for ip, _ in recorder.peers} == {"127.0.0.2"}


async def test_failed_sends_are_retried_not_raised() -> None:
    target = Target("prod", "win-01", "127.0.0.4", "healthy")
    recorder = Recorder(statuses=[500, 401])
    async with recording_server(recorder) as url:
        reporters = run_guest_reporters([target], url=url, token=TOKEN, interval=0.05, clock=lambda: 0.0)
        async with running(reporters) as task:
            await recorder.wait_for(lambda: len(recorder.received) >= 4)
            assert not task.done()


async def test_unreachable_exporter_does_not_end_the_reporter() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/v1/guest-reports"  # nothing listens there any more
    target = Target("prod", "win-01", "127.0.0.5", "healthy")
    async with running(run_guest_reporters([target], url=url, token=TOKEN, interval=0.05, clock=lambda: 0.0)) as task:
        await asyncio.sleep(0.3)
        assert not task.done()


@pytest.mark.parametrize(
    ("targets", "interval"),
    [([Target("ns", "vm", "127.0.0.2", "no_such_profile")], 1.0), ([], 0.0)],
    ids=["unknown-profile", "zero-interval"],
)
async def test_bad_arguments_fail_at_once(targets: list[Target], interval: float) -> None:
    with pytest.raises(ValueError):
        await run_guest_reporters(targets, url="http://127.0.0.1:1/", token=TOKEN, interval=interval, clock=lambda: 0.0)


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_judge_like_the_recorded_samples(profile: str) -> None:
    document = build_report_document(profile, hostname="WIN2022-SQL01", generated_at=1_757_844_900.0)
    sample = json.loads((SAMPLES / f"{profile}.json").read_text(encoding="utf-8"))

    assert validate_guest_report(document) == []
    simulated = parse_guest_report(document, received_at=0.0)
    recorded = parse_guest_report(sample, received_at=0.0)
    thresholds = GuestCheckThresholds()
    assert judge_guest_checks(simulated, thresholds) == judge_guest_checks(recorded, thresholds)
    assert vss_could_not_run(simulated) == vss_could_not_run(recorded)
    assert [(w.name, w.state, w.last_error) for w in simulated.writers] == [
        (w.name, w.state, w.last_error) for w in recorded.writers
    ]
    assert [(p.name, p.provider_id) for p in simulated.providers] == [
        (p.name, p.provider_id) for p in recorded.providers
    ]
    assert dict(simulated.services) == dict(recorded.services)


def test_ids_are_stable_per_host_and_differ_between_hosts() -> None:
    one = build_report_document("healthy", hostname="A", generated_at=0.0)
    again = build_report_document("healthy", hostname="A", generated_at=0.0)
    other = build_report_document("healthy", hostname="B", generated_at=0.0)
    assert one == again
    assert one["volumes"][0]["path"] != other["volumes"][0]["path"]


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown guest report profile"):
        build_report_document("broken", hostname="A", generated_at=0.0)


def test_a_guest_reports_the_volumes_its_guestosinfo_shows() -> None:
    """The demo tells one story: the report's volume paths, drives and sizes are guestosinfo's."""
    from exporter.simulator import Simulator, SimulatorConfig

    simulator = Simulator(SimulatorConfig())
    targets = simulator.guest_targets()
    assert targets
    for target in targets:
        document = build_report_document(
            target.profile, hostname=target.hostname, generated_at=0.0, volumes=target.volumes
        )
        reported = {v["path"]: v for v in document["volumes"]}
        assert set(reported) == {v.disk_name for v in target.volumes}, target.name
        for volume in target.volumes:
            entry = reported[volume.disk_name]
            letter = volume.mount_point[:2] if volume.mount_point.endswith(":\\") else None
            assert entry["driveLetter"] == letter
            if volume.total_bytes:
                assert entry["totalBytes"] == volume.total_bytes
                assert entry["freeBytes"] == volume.total_bytes - volume.used_bytes
        assert document["volumes"][0]["isSystem"] and document["volumes"][0]["driveLetter"] == "C:"
        assert document["hostname"] == target.hostname


def test_scenario_annotations_say_what_the_vm_does() -> None:
    from exporter.simulator.scenarios import SCENARIOS

    for scenario in SCENARIOS:
        if scenario.key.startswith("healthy"):
            assert scenario.behaviour == "healthy" and not scenario.stuck_frozen, scenario.name
            assert scenario.profile in (None, "healthy"), scenario.name
            assert scenario.agent == "connected" and scenario.power == "running", scenario.name


def test_a_delivered_report_is_followed_by_the_next_an_interval_later() -> None:
    assert next_delay(sent=True, retry_after=None, retry=8.0, first_retry=1.0, interval=300.0, jitter=1.0) == (
        300.0, 1.0)


def test_a_failed_report_is_retried_with_a_doubling_backoff_up_to_the_interval() -> None:
    assert next_delay(sent=False, retry_after=None, retry=1.0, first_retry=1.0, interval=300.0, jitter=1.0) == (
        1.0, 2.0)
    assert next_delay(sent=False, retry_after=None, retry=256.0, first_retry=1.0, interval=300.0, jitter=1.0) == (
        256.0, 300.0)


def test_the_exporters_retry_after_is_waited_for_even_beyond_the_backoff() -> None:
    # The exporter answers 503 + Retry-After while it lists the fleet: the guest comes back no sooner.
    delay, retry = next_delay(sent=False, retry_after=90.0, retry=1.0, first_retry=1.0, interval=300.0, jitter=1.1)
    assert (delay, retry) == (90.0, 2.0)
    delay, _ = next_delay(sent=False, retry_after=90.0, retry=128.0, first_retry=1.0, interval=300.0, jitter=1.0)
    assert delay == 128.0


@pytest.mark.parametrize(("header", "seconds"), [("77", 77.0), (" 5 ", 5.0), (None, None), ("soon", None),
                                                  ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("-3", None)])
def test_retry_after_is_read_in_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


async def test_a_not_ready_answer_is_not_retried_before_its_retry_after() -> None:
    target = Target("prod", "win-01", "127.0.0.6", "healthy")
    recorder = Recorder(statuses=[503], headers={"Retry-After": "3600"})
    async with recording_server(recorder) as url:
        reporters = run_guest_reporters([target], url=url, token=TOKEN, interval=0.01, clock=lambda: 0.0)
        async with running(reporters) as task:
            await recorder.wait_for(lambda: len(recorder.received) >= 1)
            for _ in range(20):  # a guest that ignored it would have sent again many times by now
                await asyncio.sleep(0.01)
            assert not task.done()

    assert len(recorder.received) == 1
