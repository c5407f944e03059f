"""Simulated time and the timestamp formats the Kubernetes API and KubeVirt logs use."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class SimClock:
    """Epoch seconds that start at ``start`` and run ``speed`` times faster than ``monotonic``."""

    def __init__(
        self, *, start: float, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if speed <= 0:
            raise ValueError("time speed must be positive")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> float:
        return self.start + (self._monotonic() - self._origin) * self.speed

    def real_seconds(self, simulated: float) -> float:
        """How long to wait in real time for ``simulated`` seconds to pass (never negative)."""
        return max(0.0, simulated / self.speed)


def rfc3339(t: float) -> str:
    """Seconds precision, as metav1.Time: ``2026-08-21T02:00:07Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def rfc3339_micro(t: float) -> str:
    """Microsecond precision, as KubeVirt's log timestamps: ``2026-08-21T02:00:07.123456Z``."""
    seconds = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((t - seconds) * 1e6):06d}Z"


def rfc3339_nano(t: float) -> str:
    """Nanosecond precision, as the kubelet prefixes log lines when ``timestamps=true``."""
    seconds = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((t - seconds) * 1e9):09d}Z"


def parse_rfc3339(text: str) -> float:
    """Parse an RFC 3339 timestamp with a ``Z`` or numeric offset; raise ValueError otherwise."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String`` for whole seconds: ``5m0s``, ``1h0m0s``, ``45s``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
