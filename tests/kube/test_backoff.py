"""Backoff: exponential, capped, jittered."""

from __future__ import annotations

import random

from exporter.kube.backoff import Backoff


def test_default_delays_are_capped_well_below_thirty_seconds_and_jittered() -> None:
    backoff = Backoff(rng=random.Random(7))
    delays = [backoff.next() for _ in range(40)]
    assert delays[0] < 1
    assert max(delays) <= backoff.maximum * (1 + backoff.jitter) <= 30
    capped = delays[10:]
    assert len({round(d, 6) for d in capped}) == len(capped)  # jitter: retries of many replicas spread out


def test_reset_starts_over() -> None:
    backoff = Backoff(initial=1, factor=2, jitter=0)
    assert [backoff.next() for _ in range(3)] == [1, 2, 4]
    backoff.reset()
    assert backoff.next() == 1 and backoff.attempt == 1
