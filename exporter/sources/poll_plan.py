"""When to ask virt-api for a VMI's guestosinfo: on change, otherwise at the launcher's pace, under a rate cap.

virt-launcher answers guestosinfo from a cache that its agent poller refreshes every 300 s
(guest-info and fsinfo; ``--qemu-agent-version-interval`` / ``--qemu-agent-file-interval``), so
asking more often returns the same bytes and only loads virt-api, virt-handler and the launcher.
A VM is therefore polled soon after something that changes the answer — its agent connects, its
guest OS changes, a freeze fails — and otherwise once per ``period`` with jitter. A token bucket
caps the requests per second for the whole fleet; polls caused by a change go before routine ones.

The load this produces, for N agent-connected VMs (README, *Load on virt-api*):

* steady state: at most N / ``period`` requests per second (3.3 req/s per 1,000 VMs at 300 s; the
  jitter only lengthens a VM's period, by up to ``jitter``), and at most ``max_rate`` (beyond
  N = ``max_rate`` × ``period``, 6,000 VMs by default, every VM is polled every N / ``max_rate`` s);
* the first sweep after start: spread evenly at half of ``max_rate`` or over one period, whichever
  is shorter (1,000 VMs: 10 req/s for 100 s; 12 VMs: within 1.2 s), never a burst;
* changes: at most one extra request per VM per ``min_gap``;
* never more than ``max_rate`` requests in any second (plus a burst of a tenth of that after a pause).

Pure: no asyncio and no clock; ``now`` is an argument.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Hashable
from dataclasses import dataclass

LAUNCHER_PERIOD = 300.0
DEFAULT_MAX_RATE = 20.0
DEFAULT_MIN_GAP = 60.0
DEFAULT_JITTER = 0.1
# A change is acted on after a short spread, so a wave of agents connecting (a node boot) is not a burst.
CHANGE_SPREAD = 5.0
# The first sweep after start runs at no more than this share of the rate cap (leaving room for changes).
SWEEP_SHARE = 0.5

Fingerprint = Hashable


@dataclass(frozen=True, slots=True)
class PollSettings:
    period: float = LAUNCHER_PERIOD
    max_rate: float = DEFAULT_MAX_RATE
    min_gap: float = DEFAULT_MIN_GAP
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if self.period <= 0 or self.max_rate <= 0 or self.min_gap < 0 or not 0 <= self.jitter < 1:
            raise ValueError("period and max_rate must be positive, min_gap >= 0, 0 <= jitter < 1")


class _Target:
    __slots__ = ("due", "fingerprint", "in_flight", "last_polled", "queued", "urgent", "version")

    def __init__(self, fingerprint: Fingerprint, due: float, *, urgent: bool) -> None:
        self.fingerprint = fingerprint
        self.due = due
        self.urgent = urgent
        self.in_flight = False
        self.queued = False
        self.last_polled: float | None = None
        self.version = 0


class PollPlan:
    """Targets, their due times and the fleet-wide token bucket."""

    def __init__(self, settings: PollSettings | None = None, *, rng: random.Random | None = None) -> None:
        self.settings = settings or PollSettings()
        self._rng = rng or random.Random()
        self._targets: dict[Hashable, _Target] = {}
        # (due, order, key, version) per queue; entries whose version is stale are skipped when popped.
        self._urgent: list[tuple[float, int, Hashable, int]] = []
        self._routine: list[tuple[float, int, Hashable, int]] = []
        self._order = itertools.count()
        self._started_at: float | None = None
        self._tokens = 0.0
        self._tokens_at = 0.0
        # A tenth of a second of requests at once at most, so no second ever sees much above the cap.
        self._burst = max(1.0, self.settings.max_rate / 10)

    def __len__(self) -> int:
        """Targets to poll now (VMs with a running VMI and a connected agent)."""
        return sum(1 for target in self._targets.values() if target.fingerprint is not None)

    def __contains__(self, key: object) -> bool:
        return key in self._targets

    @property
    def started(self) -> bool:
        return self._started_at is not None

    def start(self, now: float) -> None:
        """Begin polling (after the first lists). Targets known by now form the first sweep, spread
        evenly at ``SWEEP_SHARE`` of the rate cap but over no more than one period: a small fleet
        has its data within seconds, a large one is not asked all at once."""
        if self._started_at is not None:
            return
        self._started_at = now
        self._tokens, self._tokens_at = 0.0, now
        active = [(key, target) for key, target in self._targets.items() if target.fingerprint is not None]
        window = min(self.settings.period, len(active) / (SWEEP_SHARE * self.settings.max_rate))
        for key, target in active:
            self._schedule(key, target, now + self._rng.uniform(0.0, window), urgent=False)

    def observe(self, key: Hashable, fingerprint: Fingerprint | None, now: float) -> bool:
        """What the API says about a VM now; ``None`` while it is not to be polled (no running VMI
        with a connected agent). Returns True when this asks for a poll sooner than planned."""
        target = self._targets.get(key)
        if target is None:
            if fingerprint is None:
                return False
            target = _Target(fingerprint, 0.0, urgent=False)
            self._targets[key] = target
            if self._started_at is None:
                return False
            self._schedule(key, target, now + self._rng.uniform(0.0, CHANGE_SPREAD), urgent=True)
            return True
        if target.fingerprint == fingerprint:
            return False
        target.fingerprint = fingerprint
        if fingerprint is None:
            target.version += 1  # drops whatever is queued; ``last_polled`` stays, so flapping is bounded
            target.queued = False
            return False
        if self._started_at is None:
            return False
        # A target seen before keeps ``min_gap`` between polls, whatever changed (an agent that flaps,
        # a freeze retried every 5 s), so changes add at most one request per VM per ``min_gap``.
        earliest = now if target.last_polled is None else target.last_polled + self.settings.min_gap
        when = max(now + self._rng.uniform(0.0, CHANGE_SPREAD), earliest)
        if when >= target.due and target.queued:
            return False  # already planned no later than a change would ask
        self._schedule(key, target, when, urgent=True)
        return True

    def forget(self, key: Hashable) -> None:
        """The VM is gone."""
        self._targets.pop(key, None)

    def take_due(self, now: float, *, limit: int) -> list[Hashable]:
        """Keys to poll now, change-driven first, at most ``limit`` and as many as the bucket allows."""
        if self._started_at is None or limit <= 0:
            return []
        self._refill(now)
        taken: list[Hashable] = []
        for queue in (self._urgent, self._routine):
            while queue and queue[0][0] <= now and len(taken) < limit and self._tokens >= 1.0:
                _, _, key, version = heapq.heappop(queue)
                target = self._targets.get(key)
                if target is None or target.version != version or target.in_flight:
                    continue
                target.in_flight = True
                target.queued = False
                target.last_polled = now
                self._tokens -= 1.0
                taken.append(key)
        return taken

    def done(self, key: Hashable, now: float) -> None:
        """A poll finished (any result): next one at the launcher's pace, or sooner if a change came meanwhile."""
        target = self._targets.get(key)
        if target is None:
            return
        target.in_flight = False
        if target.fingerprint is None:
            return  # no longer a target; ``observe`` plans the next poll when it is again
        if target.urgent and target.due > (target.last_polled or 0.0):
            heapq.heappush(self._urgent, (target.due, next(self._order), key, target.version))
            target.queued = True
            return
        # Jitter only lengthens the period, so no VM is polled twice within one launcher period.
        spread = self.settings.jitter * self.settings.period
        self._schedule(key, target, now + self.settings.period + self._rng.uniform(0.0, spread), urgent=False)

    def seconds_until_next(self, now: float) -> float | None:
        """How long until ``take_due`` can return something (None: nothing planned)."""
        if self._started_at is None:
            return None
        next_due = min((q[0][0] for q in (self._urgent, self._routine) if q), default=None)
        if next_due is None:
            return None
        self._refill(now)
        token_wait = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.settings.max_rate
        return max(next_due - now, token_wait, 0.0)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(self._burst, self._tokens + elapsed * self.settings.max_rate)
        self._tokens_at = now

    def _schedule(self, key: Hashable, target: _Target, when: float, *, urgent: bool) -> None:
        target.version += 1
        target.due = when
        target.urgent = urgent
        if target.in_flight:
            return  # queued again by ``done``
        heapq.heappush(self._urgent if urgent else self._routine, (when, next(self._order), key, target.version))
        target.queued = True
