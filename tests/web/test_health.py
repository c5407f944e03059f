"""Readiness: every first list in, then what they built published."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exporter.web.health import Readiness, readyz_handler


async def test_ready_only_once_listed_and_published() -> None:
    readiness = Readiness(publishing=True)
    readiness.expect(["vmis", "vms"])
    listed = asyncio.create_task(readiness.wait_listed())
    ready = asyncio.create_task(readiness.wait())
    readiness.mark_synced("vmis")
    assert (readiness.listed, readiness.ready, readiness.pending) == (False, False, ["vms"])
    readiness.mark_synced("vms")
    await listed
    assert (readiness.listed, readiness.ready) == (True, False)
    readiness.mark_published()
    await ready
    assert readiness.ready


async def test_readyz_says_what_it_waits_for() -> None:
    readiness = Readiness(publishing=True)
    readiness.expect(["vmis"])
    app = web.Application()
    app.router.add_get("/readyz", readyz_handler(readiness))
    async with TestServer(app) as server, TestClient(server) as client:
        waiting = await client.get("/readyz")
        assert (waiting.status, await waiting.text()) == (503, "waiting for first sync: vmis\n")
        readiness.mark_synced("vmis")
        publishing = await client.get("/readyz")
        assert (publishing.status, await publishing.text()) == (503, "publishing what the first lists hold\n")
        readiness.mark_published()
        assert (await client.get("/readyz")).status == 200
