"""The guestosinfo load a fleet puts on virt-api, counted in virtual time.

The launcher's cache period the plan follows (kubevirt/kubevirt v1.8.0):
* cmd/virt-launcher/virt-launcher.go:362 ``--qemu-agent-file-interval`` default 300 s (guest-get-fsinfo)
  and :364 ``--qemu-agent-version-interval`` default 300 s (guest-info: version and supported commands);
* pkg/virt-launcher/virtwrap/agent-poller/agent_poller.go:239-241: each worker fills the cache at once
  when the agent connects (``Poll`` runs ``execFunc()`` before its first tick), so a poll right after
  the agent connects gets fresh data, and :243-262 the period then backs off up to those 300 s.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from exporter.sources.poll_plan import (
    CHANGE_SPREAD,
    DEFAULT_MAX_RATE,
    LAUNCHER_PERIOD,
    SWEEP_SHARE,
    PollPlan,
    PollSettings,
)

STEP = 0.05  # virtual seconds per scheduler pass
REQUEST_SECONDS = 0.2  # how long virt-api takes to answer, in virtual time
CONCURRENCY = 8


def test_the_routine_period_is_the_launcher_cache_period() -> None:
    assert LAUNCHER_PERIOD == 300.0
    assert PollSettings().period == LAUNCHER_PERIOD
    assert DEFAULT_MAX_RATE <= 20


class VirtualFleet:
    """Drives a plan as the poller does: passes every STEP, requests that take REQUEST_SECONDS."""

    def __init__(self, plan: PollPlan, vms: int) -> None:
        self.plan = plan
        self.keys = [("ns", f"vm-{i}") for i in range(vms)]
        self.now = 0.0
        self.requests: list[tuple[float, tuple[str, str]]] = []
        self._in_flight: list[tuple[float, tuple[str, str]]] = []
        for key in self.keys:
            plan.observe(key, ("mswindows", "2022", None), self.now)

    def run_until(self, end: float, *, each_pass: Callable[[float], None] | None = None) -> None:
        while self.now < end:
            for finished in [f for f in self._in_flight if f[0] <= self.now]:
                self._in_flight.remove(finished)
                self.plan.done(finished[1], self.now)
            if each_pass is not None:
                each_pass(self.now)
            for key in self.plan.take_due(self.now, limit=CONCURRENCY - len(self._in_flight)):
                self.requests.append((self.now, key))
                self._in_flight.append((self.now + REQUEST_SECONDS, key))
            self.now = round(self.now + STEP, 6)

    def in_window(self, start: float, end: float) -> list[tuple[float, tuple[str, str]]]:
        return [r for r in self.requests if start <= r[0] < end]

    def busiest_second(self, start: float, end: float) -> int:
        per_second = Counter(int(at) for at, _ in self.in_window(start, end))
        return max(per_second.values(), default=0)


def started_fleet(vms: int, **settings: float) -> VirtualFleet:
    fleet = VirtualFleet(PollPlan(PollSettings(**settings), rng=random.Random(7)), vms)
    fleet.plan.start(fleet.now)
    return fleet


def test_first_sweep_of_1000_vms_is_spread_at_half_the_cap() -> None:
    fleet = started_fleet(1000)
    sweep = 1000 / (SWEEP_SHARE * DEFAULT_MAX_RATE)  # 100 s
    fleet.run_until(sweep + 1)
    assert {key for _, key in fleet.requests} == set(fleet.keys)  # every VM once in the sweep
    assert len(fleet.requests) == 1000
    assert len(fleet.in_window(0, 60)) <= SWEEP_SHARE * DEFAULT_MAX_RATE * 60 * 1.2
    assert fleet.busiest_second(0, sweep) <= DEFAULT_MAX_RATE + DEFAULT_MAX_RATE / 10


def test_first_sweep_of_a_small_fleet_takes_seconds() -> None:
    fleet = started_fleet(12)
    fleet.run_until(2)
    assert {key for _, key in fleet.requests} == set(fleet.keys)


def test_first_sweep_of_10000_vms_stays_under_the_rate_cap() -> None:
    fleet = started_fleet(10_000)
    fleet.run_until(120)
    first_minute = fleet.in_window(0, 60)
    assert len(first_minute) <= DEFAULT_MAX_RATE * 60 + DEFAULT_MAX_RATE / 10
    assert fleet.busiest_second(0, 120) <= DEFAULT_MAX_RATE + DEFAULT_MAX_RATE / 10


def test_steady_state_is_at_most_one_request_per_vm_per_launcher_period() -> None:
    fleet = started_fleet(1000)
    fleet.run_until(4 * LAUNCHER_PERIOD)
    steady = fleet.in_window(LAUNCHER_PERIOD, 4 * LAUNCHER_PERIOD)
    # Documented: at most N / period requests per second, 3.3 req/s per 1,000 VMs.
    assert len(steady) <= 1000 * 3
    for start in range(int(LAUNCHER_PERIOD), int(3 * LAUNCHER_PERIOD), 30):
        per_vm = Counter(key for _, key in fleet.in_window(start, start + LAUNCHER_PERIOD))
        assert max(per_vm.values()) == 1


def test_beyond_the_cap_every_vm_is_still_polled_and_no_second_exceeds_it() -> None:
    vms = 12_000  # twice what 20 req/s covers in 300 s
    fleet = started_fleet(vms)
    fleet.run_until(2 * vms / DEFAULT_MAX_RATE)
    assert fleet.busiest_second(0, fleet.now) <= DEFAULT_MAX_RATE + DEFAULT_MAX_RATE / 10
    assert {key for _, key in fleet.requests} == set(fleet.keys)
    assert len(fleet.requests) <= DEFAULT_MAX_RATE * fleet.now + DEFAULT_MAX_RATE / 10


def test_an_agent_that_connects_is_polled_within_seconds() -> None:
    fleet = started_fleet(100)
    fleet.run_until(10)
    newcomer = ("ns", "new-vm")

    def connect(now: float) -> None:
        if now == 20.0:
            assert fleet.plan.observe(newcomer, ("mswindows", "2022", None), now)

    fleet.run_until(60, each_pass=connect)
    polls = [at for at, key in fleet.requests if key == newcomer]
    assert len(polls) == 1
    assert 20.0 <= polls[0] <= 20.0 + CHANGE_SPREAD + STEP


def test_freeze_failures_retried_every_5_seconds_add_one_poll_per_vm_per_min_gap() -> None:
    fleet = started_fleet(200, min_gap=60.0)
    fleet.run_until(LAUNCHER_PERIOD + 1)
    failing = fleet.keys[:50]
    before = len(fleet.requests)

    def fail_every_5s(now: float) -> None:
        if now % 5 < STEP / 2:
            for key in failing:
                fleet.plan.observe(key, ("mswindows", "2022", now), now)

    window = 600.0
    fleet.run_until(LAUNCHER_PERIOD + 1 + window, each_pass=fail_every_5s)
    per_vm = Counter(key for _, key in fleet.requests[before:])
    for key in failing:
        # one per min_gap from the changes, plus the routine ones (they reset the gap, never add to it)
        assert per_vm[key] <= window / 60.0 + 1
    quiet = [per_vm[key] for key in fleet.keys[50:]]
    assert max(quiet) <= window / LAUNCHER_PERIOD + 1


def test_a_relist_that_changes_nothing_asks_for_no_poll() -> None:
    quiet, relisted = started_fleet(100), started_fleet(100)

    def relist(now: float) -> None:
        if now % 30 < STEP / 2:
            for key in relisted.keys:
                assert not relisted.plan.observe(key, ("mswindows", "2022", None), now)

    quiet.run_until(2 * LAUNCHER_PERIOD)
    relisted.run_until(2 * LAUNCHER_PERIOD, each_pass=relist)
    assert relisted.requests == quiet.requests


def test_a_flapping_agent_is_polled_at_most_once_per_min_gap() -> None:
    fleet = started_fleet(1, min_gap=60.0)
    fleet.run_until(LAUNCHER_PERIOD + 1)
    (key,) = fleet.keys
    before = len(fleet.requests)

    def flap(now: float) -> None:
        connected = int(now) % 4 < 2
        fleet.plan.observe(key, ("mswindows", "2022", None) if connected else None, now)

    fleet.run_until(LAUNCHER_PERIOD + 301, each_pass=flap)
    assert len(fleet.requests) - before <= 300 / 60 + 1


def test_disconnected_and_forgotten_vms_are_not_polled() -> None:
    fleet = started_fleet(10)
    fleet.plan.observe(fleet.keys[0], None, 0.0)
    fleet.plan.forget(fleet.keys[1])
    fleet.run_until(2 * LAUNCHER_PERIOD)
    polled = {key for _, key in fleet.requests}
    assert fleet.keys[0] not in polled and fleet.keys[1] not in polled
    assert len(fleet.plan) == 8


def test_nothing_is_polled_before_start() -> None:
    plan = PollPlan(rng=random.Random(1))
    plan.observe(("ns", "a"), ("", "", None), 0.0)
    assert plan.take_due(1000.0, limit=8) == []
    assert plan.seconds_until_next(1000.0) is None


@pytest.mark.parametrize(
    "settings", [{"period": 0}, {"max_rate": 0}, {"min_gap": -1}, {"jitter": 1.0}], ids=str
)
def test_settings_are_validated(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollSettings(**settings)
