"""Connection limits for a listener that anyone on the network can reach.

aiohttp has no timeout for reading a request's head, so a client that opens a connection and
never finishes its headers (slowloris) would hold a file descriptor forever. The guard wraps the
listener's protocol factory: it caps concurrent connections, and closes a connection that has
not delivered a complete request head within ``header_timeout`` of opening, or within
``idle_timeout`` of its previous response. A middleware tells it when a request's head arrived and
when its response is done, and bounds the whole request (body read and response) by
``request_timeout``. Every forced close is counted by reason.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

HEADER_TIMEOUT = "header_timeout"
IDLE_TIMEOUT = "idle_timeout"
REQUEST_TIMEOUT = "request_timeout"
OVER_LIMIT = "over_limit"

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_log = structlog.get_logger("exporter.web.guard")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 1024
    header_timeout: float = 10.0
    idle_timeout: float = 120.0
    request_timeout: float = 60.0


class _Connection:
    """One accepted connection: the timer that closes it unless a request head arrives in time."""

    __slots__ = ("active_requests", "timer", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.timer: asyncio.TimerHandle | None = None
        self.active_requests = 0


class _GuardedProtocol(asyncio.Protocol):
    """Forwards everything to aiohttp's protocol; tells the guard when the connection opens and closes."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self._guard = guard
        self._inner = inner
        self._connection: _Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._connection = self._guard.opened(transport)
        if self._connection is not None:
            self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._connection is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._connection is not None else None

    def pause_writing(self) -> None:
        if self._connection is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._connection is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connection is not None:
            self._guard.closed(self._connection)
            self._inner.connection_lost(exc)


class ConnectionGuard:
    """Limits for one listener; ``on_close(reason)`` counts every connection the guard ends."""

    def __init__(self, limits: ConnectionLimits, *, on_close: Callable[[str], None], on_open: Callable[[int], None]):
        self.limits = limits
        self._on_close = on_close
        self._on_open = on_open
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}
        self._logged: set[str] = set()

    def __len__(self) -> int:
        return len(self._connections)

    def protocol_factory(self, inner: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        return lambda: _GuardedProtocol(self, inner())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The request's head has arrived: stop the head timer; bound the request; re-arm after it."""
        connection = self._connections.get(request.transport) if request.transport is not None else None
        if connection is not None:
            connection.active_requests += 1
            _cancel(connection)
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                return await handler(request)
        except TimeoutError:
            self._count(REQUEST_TIMEOUT)
            return await _give_up(request)
        finally:
            if connection is not None:
                connection.active_requests -= 1
                if not connection.active_requests:
                    self._arm(connection, self.limits.idle_timeout, IDLE_TIMEOUT)

    # -- connection lifetime ---------------------------------------------------------------------

    def opened(self, transport: asyncio.Transport) -> _Connection | None:
        if len(self._connections) >= self.limits.max_connections:
            self._count(OVER_LIMIT)
            transport.write(_BUSY)
            transport.close()
            return None
        connection = _Connection(transport)
        self._connections[transport] = connection
        self._on_open(len(self._connections))
        self._arm(connection, self.limits.header_timeout, HEADER_TIMEOUT)
        return connection

    def closed(self, connection: _Connection) -> None:
        _cancel(connection)
        self._connections.pop(connection.transport, None)
        self._on_open(len(self._connections))

    def _arm(self, connection: _Connection, delay: float, reason: str) -> None:
        _cancel(connection)
        loop = asyncio.get_running_loop()
        connection.timer = loop.call_later(delay, self._expire, connection, reason)

    def _expire(self, connection: _Connection, reason: str) -> None:
        connection.timer = None
        if connection.active_requests or connection.transport.is_closing():
            return
        self._count(reason)
        if reason == HEADER_TIMEOUT:
            connection.transport.write(_TIMED_OUT)
        connection.transport.close()

    def _count(self, reason: str) -> None:
        self._on_close(reason)
        if reason not in self._logged:
            self._logged.add(reason)
            _log.warning("connection_closed_by_limit", reason=reason, note="counted from now on")


async def _give_up(request: web.Request) -> web.StreamResponse:
    """408 and close, without waiting for the rest of a body that is late (aiohttp would linger)."""
    transport = request.transport
    if request.writer.output_size:  # the response had started: nothing sensible to add
        if transport is not None:
            transport.abort()
        raise ConnectionResetError("request timed out while responding")
    response = web.Response(status=408, text="request timed out\n")
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if transport is not None:
        transport.close()  # flushes the 408 first
    return response


def _cancel(connection: _Connection) -> None:
    if connection.timer is not None:
        connection.timer.cancel()
        connection.timer = None


async def serve(
    runner: web.AppRunner, guard: ConnectionGuard, *, host: str, port: int
) -> tuple[asyncio.Server, list[tuple[str, int]]]:
    """Listen on ``host:port`` with aiohttp's protocol behind the guard; return the server and its addresses."""
    assert runner.server is not None, "call runner.setup() first"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        guard.protocol_factory(runner.server), host, port, reuse_address=True, family=socket.AF_UNSPEC
    )
    return server, [sock.getsockname()[:2] for sock in server.sockets]
