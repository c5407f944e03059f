"""When each VM's judgement next changes by the clock alone (deadlines, stuck-frozen, report age)."""

from __future__ import annotations

import heapq

from exporter.state.records import VmKey


class DueSchedule:
    """A heap of (when, VM); re-scheduling leaves the old entry, which is skipped when it comes due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, VmKey]] = []
        self._scheduled: dict[VmKey, float] = {}

    def schedule(self, key: VmKey, when: float) -> None:
        if self._scheduled.get(key) != when:
            self._scheduled[key] = when
            heapq.heappush(self._heap, (when, key))

    def pop_due(self, now: float) -> set[VmKey]:
        """Every VM with an entry due at or before ``now`` (stale entries included: re-judging is harmless)."""
        due: set[VmKey] = set()
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._scheduled.get(key) == when:
                del self._scheduled[key]
            due.add(key)
        return due
