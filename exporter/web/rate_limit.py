"""A token bucket per client address, bounded in how many addresses it remembers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    logged_limit: bool = False


class SourceRateLimiter:
    """A token bucket per source address; at most ``max_sources`` are tracked, least recent evicted."""

    def __init__(self, *, per_minute: int, max_sources: int, clock: Callable[[], float]) -> None:
        if per_minute < 1 or max_sources < 1:
            raise ValueError("per_minute and max_sources must be positive")
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, source: str) -> float:
        """Spend one token for ``source``: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        self._forget_refilled(now)
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _Bucket(tokens=self._capacity, updated=now)
            self._buckets[source] = bucket
            if len(self._buckets) > self._max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._capacity, bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.logged_limit = False
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _forget_refilled(self, now: float) -> None:
        """Drop the least recently seen buckets once they have refilled: a full bucket is what an
        unknown source gets, so keeping it costs memory and changes nothing. Guests report every few
        minutes, so without this every guest of the fleet would keep a bucket between reports."""
        for _ in range(2):  # each take retires at most two: the cost stays constant
            oldest = next(iter(self._buckets.items()), None)
            if oldest is None:
                return
            source, bucket = oldest
            if bucket.tokens + (now - bucket.updated) * self._rate < self._capacity:
                return
            del self._buckets[source]

    def first_refusal(self, source: str) -> bool:
        """True once per throttling episode of ``source``, so a flood logs one line, not thousands."""
        bucket = self._buckets.get(source)
        if bucket is None or bucket.logged_limit:
            return False
        bucket.logged_limit = True
        return True
