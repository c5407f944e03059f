"""Half-sent requests against both listeners: closed at the header timeout, scrapes unaffected.

Bounded: 500 connections on loopback, a 1 s header timeout; every loop has a fixed count.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from urllib.parse import urlsplit

import pytest

from exporter.settings import Address
from tests.integration.conftest import value, vmi

HALF_SENT = 500
HEADER_TIMEOUT = 1.0
SLACK = 2.0  # scheduling on a loaded two-core machine; far below "never"
HALF_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nX-Slow: "


async def half_sent(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(HALF_REQUEST)
    await writer.drain()
    return reader, writer, time.monotonic()


async def closed_after(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opened: float
) -> tuple[float, bytes]:
    """When the server closed the connection (monotonic), and what it sent."""
    data = await asyncio.wait_for(reader.read(), timeout=HEADER_TIMEOUT + 10)
    closed = time.monotonic()
    writer.close()
    return closed, data


async def scrape_latencies(running, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.monotonic()
        async with running.session.get(running.url + "/metrics") as response:
            assert response.status == 200
            await response.read()
        latencies.append(time.monotonic() - started)
    return latencies


@pytest.mark.slow  # a flood of 500 connections
@pytest.mark.parametrize("listener", ["metrics", "guest_reports"])
async def test_half_sent_requests_are_closed_at_the_header_timeout_while_scrapes_go_on(cluster, listener) -> None:
    running = await cluster(
        seed_objects=[("virtualmachineinstances", vmi(f"vm{i}")) for i in range(50)],
        guest_report_listen=Address("127.0.0.1", 0),
        guest_report_token="t" * 32,
        http_header_timeout=HEADER_TIMEOUT,
    )
    target = urlsplit(running.exporter.bound_urls[listener])
    baseline = await scrape_latencies(running, 20)

    flood_started = time.monotonic()
    connections = await asyncio.gather(*(half_sent(target.hostname, target.port) for _ in range(HALF_SENT)))
    during = await scrape_latencies(running, 20)  # while all 500 are still open
    outcomes = await asyncio.gather(*(closed_after(*connection) for connection in connections))

    # From the client's side a connection opened between ``flood_started`` and its own stamp.
    seconds = [closed - opened for (closed, _), (_, _, opened) in zip(outcomes, connections, strict=True)]
    assert max(seconds) <= HEADER_TIMEOUT + SLACK, f"slowest close after {max(seconds):.2f}s"
    # Not closed early: the server's clock starts at accept, a little after ``flood_started``.
    assert min(closed for closed, _ in outcomes) - flood_started >= HEADER_TIMEOUT * 0.5
    assert all(data.startswith(b"HTTP/1.1 408 ") for _, data in outcomes)
    # Scrapes were answered while the half-sent requests were held, not queued behind them (queued,
    # every one would wait for the header timeout; the median ignores a lone scheduling stall).
    assert statistics.median(during) < HEADER_TIMEOUT / 2
    samples = await running.scrape()
    closed = value(
        samples, "kubevirt_vss_exporter_http_connections_closed_total", listener=listener, reason="header_timeout"
    )
    assert closed == HALF_SENT
    print(
        f"\n{listener}: {HALF_SENT} half-sent closed after {statistics.median(seconds):.2f}s median, "
        f"{max(seconds):.2f}s max; scrape median {statistics.median(baseline) * 1000:.1f} ms before, "
        f"{statistics.median(during) * 1000:.1f} ms during"
    )
