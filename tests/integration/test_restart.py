"""An exporter restarted against an unchanged cluster serves the same freeze and snapshot series.

The simulated fleet plays its story for a few minutes on a controlled clock and then stands still.
One exporter reads it (guest reports, Events, launcher logs and all), stops; a second one starts and
must come back with every freeze and snapshot series identical — counts, newest errors, frozen-since,
consistency — or alerts built on them would resolve and fire again after every rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

from exporter.settings import Address
from exporter.simulator import Simulator, SimulatorConfig
from exporter.simulator.guest_reporter import run_guest_reporters
from tests.integration.conftest import Running, Samples

#: How much of the story plays before the cluster stands still: failures, retries, a snapshot deadline.
STORY_SECONDS = 420.0
#: Series about freezes and snapshots: every one must survive a restart unchanged.
COMPARED = ("freeze", "frozen", "snapshot")


class StoppedClock:
    """A monotonic clock for the simulator that jumps ahead once and then stands still."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def compared(samples: Samples) -> Samples:
    return {
        key: sample
        for key, sample in samples.items()
        if key[0].startswith("kubevirt_vss_")
        and not key[0].startswith("kubevirt_vss_exporter_")
        and any(word in key[0] for word in COMPARED)
    }


@contextlib.asynccontextmanager
async def guests_reporting(simulator: Simulator, running: Running, token: str) -> AsyncIterator[None]:
    url = running.exporter.bound_urls["guest_reports"] + "/api/v1/guest-reports"
    task = asyncio.create_task(
        run_guest_reporters(simulator.guest_targets(), url=url, token=token, interval=0.5, clock=simulator.now)
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settled(running: Running, *, quiet: float = 1.5, timeout: float = 30.0) -> Samples:
    """The compared series once they have stopped changing for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = compared(await running.scrape())
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the exporter's series never settled"
        await asyncio.sleep(0.2)
        current = compared(await running.scrape())
        if current != last:
            last, since = current, time.monotonic()
    return last


async def test_a_restart_against_an_unchanged_cluster_changes_no_freeze_or_snapshot_series(cluster) -> None:
    clock = StoppedClock()
    simulator = Simulator(
        SimulatorConfig(bookmark_interval=0.5, start_time=time.time() - STORY_SECONDS), monotonic=clock
    )
    await simulator.start()
    try:
        clock.now = STORY_SECONDS  # play the story up to the wall clock's now, then stand still
        for _ in range(600):  # the story driver catches up with the jump in batches
            due = simulator.fleet.next_due()
            if due is None or due > simulator.now():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the simulated story never caught up with its clock")
        token = secrets.token_hex(16)
        settings = {
            "follow_launcher_logs": True,
            "guest_report_listen": Address("127.0.0.1", 0),
            "guest_report_token": token,
        }

        first = await cluster(simulator=simulator, **settings)
        async with guests_reporting(simulator, first, token):
            before = await settled(first)
        await cluster.stop_exporter(first)

        second = await cluster(simulator=simulator, **settings)
        async with guests_reporting(simulator, second, token):
            after = await settled(second)
    finally:
        await simulator.stop()

    names = {name for name, _ in before}
    # The story must have produced what is compared: freeze errors, a frozen VM, judged snapshots.
    for expected in (
        "kubevirt_vss_freeze_errors_total",
        "kubevirt_vss_last_freeze_error_info",
        "kubevirt_vss_fs_frozen_since_timestamp_seconds",
        "kubevirt_vss_last_snapshot_info",
        "kubevirt_vss_last_consistent_snapshot_timestamp_seconds",
    ):
        assert expected in names, expected
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert changed == [], f"{len(changed)} series differ after the restart: {changed[:20]}"
