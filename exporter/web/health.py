"""/healthz (the process answers) and /readyz (every reflector finished its first list).

Readiness is never withdrawn after the first sync: through an API outage the exporter keeps
serving the last state it listed, like kube-state-metrics. Staleness is a metric
(``last_contact_timestamp_seconds``) and an alert, not a reason to drop out of the Service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Readiness:
    """Ready once every expected resource reported its first sync, and what those lists built is published."""

    expected: set[str] = field(default_factory=set)
    synced: set[str] = field(default_factory=set)
    #: While True, the states held back during the first lists are still being published.
    publishing: bool = False
    _listed: asyncio.Event = field(default_factory=asyncio.Event)
    _became_ready: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, resources: Iterable[str]) -> None:
        self.expected.update(resources)

    def mark_synced(self, resource: str) -> None:
        self.synced.add(resource)
        self._update()

    def mark_published(self) -> None:
        self.publishing = False
        self._update()

    def _update(self) -> None:
        if self.listed:
            self._listed.set()
        if self.ready:
            self._became_ready.set()

    async def wait_listed(self) -> None:
        """Return once every expected resource has synced."""
        await self._listed.wait()

    async def wait(self) -> None:
        """Return once ready."""
        await self._became_ready.wait()

    @property
    def pending(self) -> list[str]:
        return sorted(self.expected - self.synced)

    @property
    def listed(self) -> bool:
        return bool(self.expected) and not self.pending

    @property
    def ready(self) -> bool:
        return self.listed and not self.publishing


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def readyz_handler(readiness: Readiness):  # type: ignore[no-untyped-def]
    async def readyz(request: web.Request) -> web.Response:
        if readiness.ready:
            return web.Response(text="ok\n")
        if readiness.listed:
            return web.Response(status=503, text="publishing what the first lists hold\n")
        return web.Response(status=503, text="waiting for first sync: " + ", ".join(readiness.pending) + "\n")

    return readyz
