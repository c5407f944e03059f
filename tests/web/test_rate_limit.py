"""The per-source token bucket of the guest report ingest."""

from __future__ import annotations

import pytest

from exporter.web.rate_limit import SourceRateLimiter


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_buckets() -> None:
    clock = FakeClock(0.0)
    limiter = SourceRateLimiter(per_minute=60, max_sources=2, clock=clock)

    assert [limiter.take("a") for _ in range(60)] == [0.0] * 60
    assert limiter.take("a") == pytest.approx(1.0)
    clock.now = 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now = 1.0
    assert limiter.take("a") == 0.0

    limiter.take("b")
    limiter.take("c")  # evicts "a", the least recently seen
    assert len(limiter) == 2
    assert limiter.take("a") == 0.0  # a fresh, full bucket


def test_first_refusal_is_reported_once_per_throttling_episode() -> None:
    clock = FakeClock(0.0)
    limiter = SourceRateLimiter(per_minute=1, max_sources=4, clock=clock)
    assert limiter.first_refusal("a") is False  # unknown source: nothing was refused
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert [limiter.first_refusal("a"), limiter.first_refusal("a")] == [True, False]
    clock.now = 60.0
    assert limiter.take("a") == 0.0  # the episode ends with the next allowed request
    assert limiter.take("a") > 0
    assert limiter.first_refusal("a") is True


def test_buckets_that_have_refilled_are_not_kept() -> None:
    # Thousands of guests report every few minutes: a bucket is kept only while it is below capacity.
    clock = FakeClock(0.0)
    limiter = SourceRateLimiter(per_minute=6, max_sources=1000, clock=clock)
    for guest in range(100):
        assert limiter.take(f"10.0.0.{guest}") == 0.0
    assert len(limiter) == 100
    clock.now = 9.0  # one token back takes 10 s
    limiter.take("10.0.1.1")
    assert len(limiter) == 101
    clock.now = 10.0
    for guest in range(60):
        limiter.take(f"10.0.2.{guest}")
    assert len(limiter) < 100  # each take retired up to two refilled buckets
    limiter.take("10.0.0.99")
    assert limiter.take("10.0.0.99") == 0.0  # a retired bucket comes back full: nothing was lost
