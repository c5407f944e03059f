"""Forwarding to the owning shard: relayed answers, and every result counted — bounded and with a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.self_metrics import SelfMetrics
from exporter.web.shard_forwarding import SOURCE_HEADER, ShardForwarder

TOKEN = "shards"


class Owner:
    """A stand-in owning shard that records what it got and answers as told."""

    def __init__(self) -> None:
        self.status = 202
        self.delay = 0.0
        self.seen: list[tuple[str, str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.headers["Authorization"], request.headers[SOURCE_HEADER], await request.read()))
        await asyncio.sleep(self.delay)
        return web.json_response({"answer": self.status}, status=self.status)


@pytest.fixture
async def owner() -> AsyncIterator[tuple[Owner, str]]:
    stand_in = Owner()
    app = web.Application()
    app.router.add_post("/shard/{shard}", stand_in.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield stand_in, f"http://127.0.0.1:{server.port}/shard/{{shard}}"
    await server.close()


def forwarder(template: str, metrics: SelfMetrics, **options: float) -> ShardForwarder:
    return ShardForwarder(
        url_template=template, token=TOKEN, owner_of=lambda address: 1,
        results=metrics.guest_report_forwards, **options,  # type: ignore[arg-type]
    )


def count(metrics: SelfMetrics, result: str) -> float:
    name = "kubevirt_vss_exporter_guest_report_forwards_total"
    return metrics.registry.get_sample_value(name, {"result": result}) or 0.0


async def test_forwards_with_the_shard_token_and_the_guest_address_and_relays_the_answer(owner) -> None:
    stand_in, template = owner
    metrics = SelfMetrics()
    sender = forwarder(template, metrics)
    try:
        response = await sender.forward(2, "10.0.0.7", b'{"report": 1}')
        assert (response.status, response.body) == (202, b'{"answer": 202}')
        stand_in.status = 403
        assert (await sender.forward(2, "10.0.0.7", b"{}")).status == 403
        stand_in.status = 500
        assert (await sender.forward(2, "10.0.0.7", b"{}")).status == 502
    finally:
        await sender.close()
    assert stand_in.seen[0] == (f"Bearer {TOKEN}", "10.0.0.7", b'{"report": 1}')
    assert (count(metrics, "forwarded"), count(metrics, "refused"), count(metrics, "failed")) == (1, 1, 1)


async def test_bounded_in_flight_and_timed_out(owner) -> None:
    stand_in, template = owner
    stand_in.delay = 0.5
    metrics = SelfMetrics()
    sender = forwarder(template, metrics, max_in_flight=1, timeout=0.2)
    try:
        slow, crowded = await asyncio.gather(
            sender.forward(1, "10.0.0.7", b"{}"), sender.forward(1, "10.0.0.8", b"{}")
        )
    finally:
        await sender.close()
    assert (slow.status, crowded.status) == (502, 503)
    assert crowded.headers["Retry-After"]
    assert (count(metrics, "failed"), count(metrics, "overloaded")) == (1, 1)


async def test_unreachable_owner_is_a_counted_failure() -> None:
    metrics = SelfMetrics()
    sender = forwarder("http://127.0.0.1:9/{shard}", metrics)
    try:
        assert (await sender.forward(0, "10.0.0.7", b"{}")).status == 502
    finally:
        await sender.close()
    assert count(metrics, "failed") == 1


def test_template_and_token_are_required() -> None:
    with pytest.raises(ValueError):
        ShardForwarder(url_template="http://x/", token=TOKEN, owner_of=lambda a: None, results=None)
    with pytest.raises(ValueError):
        ShardForwarder(url_template="http://x-{shard}/", token="", owner_of=lambda a: None, results=None)
