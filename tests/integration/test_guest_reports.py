"""Guest reports over real HTTP from the VM's own address; a flood of bad requests leaves /metrics alone."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from exporter.settings import Address
from exporter.simulator.guest_reporter import build_report_document
from tests.integration.conftest import value, vmi

TOKEN = "t" * 64


def windows_vmi(name: str, address: str) -> dict:
    raw = vmi(name)
    raw["status"]["guestOSInfo"] = {"id": "mswindows", "name": "Microsoft Windows"}
    raw["status"]["interfaces"] = [{"name": "default", "ipAddress": address, "ipAddresses": [address]}]
    return raw


async def post(url: str, body: bytes, *, source: str, token: str = TOKEN) -> int:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(
            url, data=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        ) as response,
    ):
        return response.status


@pytest.mark.slow
async def test_report_attributed_by_source_address_and_flood_resistance(cluster) -> None:
    running = await cluster(
        seed_objects=[("virtualmachineinstances", windows_vmi("win-sql", "127.0.0.42"))],
        guest_report_listen=Address("127.0.0.1", 0),
        guest_report_token=TOKEN,
    )
    url = running.exporter.bound_urls["guest_reports"] + "/api/v1/guest-reports"
    report = json.dumps(build_report_document("two_failed_writers", hostname="WIN-SQL", generated_at=1.7e9)).encode()

    assert await post(url, report, source="127.0.0.43") == 403  # not the VM's address
    assert await post(url, report, source="127.0.0.42", token="wrong") == 401
    assert await post(url, report, source="127.0.0.42") == 202
    samples = await running.wait_for(
        lambda s: value(s, "kubevirt_vss_writers_failed", namespace="ns", name="win-sql") == 2
    )
    assert value(samples, "kubevirt_vss_check_ok", namespace="ns", name="win-sql", check="writers_stable") == 0

    async def flood(source: str) -> None:
        for _ in range(100):
            await post(url, b"{not json", source=source, token="nope")

    flooding = asyncio.gather(*(flood(f"127.0.1.{i}") for i in range(1, 6)))
    scrapes = 0
    while not flooding.done():
        await running.scrape()  # asserts 200 every time
        scrapes += 1
        await asyncio.sleep(0.01)
    await flooding
    samples = await running.scrape()
    assert scrapes > 0
    rejected = sum(
        value(samples, "kubevirt_vss_exporter_guest_reports_total", result=result) or 0
        for result in ("unauthorized", "rate_limited")
    )
    assert rejected >= 500 + 1
    assert (value(samples, "kubevirt_vss_exporter_guest_reports_total", result="rate_limited") or 0) > 0
    assert value(samples, "kubevirt_vss_writers_failed", namespace="ns", name="win-sql") == 2
