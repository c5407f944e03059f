"""Jittered exponential backoff; seedable so tests see exact delays.

The cap is short on purpose: after an API outage the exporter should reconverge within seconds of
the API's return, and a retry every ~10 s per resource is no load for an API server.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays grow from ``initial`` by ``factor`` up to ``maximum``, each scaled by ±``jitter``."""

    def __init__(
        self,
        *,
        initial: float = 0.5,
        maximum: float = 10.0,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        return base * (1 + self._rng.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self._attempt = 0
