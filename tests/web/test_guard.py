"""The connection guard: a cap per listener, header / idle / request timeouts, each counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from exporter.web.guard import ConnectionGuard, ConnectionLimits, serve

FAST = ConnectionLimits(max_connections=3, header_timeout=0.3, idle_timeout=0.3, request_timeout=0.3)


class Served:
    def __init__(self, guard: ConnectionGuard, port: int, closed: Counter[str]) -> None:
        self.guard, self.port, self.closed = guard, port, closed

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def upload(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    closed: Counter[str] = Counter()
    guard = ConnectionGuard(FAST, on_close=lambda reason: closed.update([reason]), on_open=lambda n: None)
    app = web.Application(middlewares=[guard.middleware])
    app.router.add_get("/", hello)
    app.router.add_post("/upload", upload)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    server, addresses = await serve(runner, guard, host="127.0.0.1", port=0)
    yield Served(guard, addresses[0][1], closed)
    server.close()
    await runner.cleanup()
    await server.wait_closed()


async def test_connections_over_the_cap_are_refused_with_503(served: Served) -> None:
    held = [await served.connect() for _ in range(3)]
    reader, writer = await served.connect()
    assert (await asyncio.wait_for(reader.read(), 2)).startswith(b"HTTP/1.1 503 ")
    writer.close()
    assert served.closed["over_limit"] == 1
    for _, w in held:
        w.close()
    for _ in range(100):  # the cap frees as soon as the held connections are gone
        if len(served.guard) == 0:
            break
        await asyncio.sleep(0.01)
    reader, writer = await served.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 2)).startswith(b"HTTP/1.1 200 ")
    writer.close()


@pytest.mark.slow
async def test_a_kept_alive_connection_that_goes_quiet_is_closed_at_the_idle_timeout(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"hello"), 2)).startswith(b"HTTP/1.1 200 ")
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the next request's head never ends
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert served.closed == Counter(idle_timeout=1)


async def test_a_body_that_never_arrives_gets_408_and_the_connection_closes(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    response = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    assert response.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in response
    assert served.closed == Counter(request_timeout=1)


async def test_a_prompt_client_is_not_touched(served: Served) -> None:
    reader, writer = await served.connect()
    for _ in range(3):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"hello"), 2)).startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(0.1)  # inside the idle timeout each time
    writer.close()
    assert not served.closed
