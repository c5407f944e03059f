"""Status pages and JSON API at fleet scale: server time of ``GET /``, filtered and sorted views,
``/api/v1/vms`` and one VM's page, on the simulator's fleet of N VMs (default 10,000).

    python -m benchmarks.status_page                 # 10k VMs, 20 requests per view
    python -m benchmarks.status_page --vms 50000 --requests 5

Prints median / p90 / max per view and the page size. Never fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from urllib.parse import quote

import aiohttp
from aiohttp import web

from benchmarks.scrape import Harness, build_fleet_objects
from exporter.web.app import build_app
from exporter.web.health import Readiness
from exporter.web.inventory import Inventory

VIEWS = (
    ("fleet page, default order", "/"),
    ("fleet page, sorted by level desc", "/?sort=level&dir=desc"),
    ("fleet page, search 'win-'", "/?q=win-"),
    ("fleet page, only problems, page 5", "/?problems=1&page=5"),
    ("fleet page, 500 rows", "/?per_page=500"),
    ("API list, default", "/api/v1/vms"),
)


async def measure(vms: int, requests: int) -> list[tuple[str, list[float], int]]:
    started = time.perf_counter()
    objects = build_fleet_objects(vms)
    harness = Harness(objects)
    harness.ingest()
    print(f"fleet of {vms} VMs built and ingested in {time.perf_counter() - started:.1f} s", flush=True)
    inventory = Inventory(harness.fleet, clock=lambda: objects.now, simulated=True)
    app = build_app(endpoint=harness.endpoint, readiness=Readiness(), inventory=inventory)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    first = next(iter(inventory.states())).key
    views = [*VIEWS, ("one VM's page", f"/vm/{quote(first.namespace, safe='')}/{quote(first.name, safe='')}")]
    results: list[tuple[str, list[float], int]] = []
    try:
        async with aiohttp.ClientSession() as session:
            for label, path in views:
                times: list[float] = []
                size = 0
                for _ in range(requests):
                    begin = time.perf_counter()
                    async with session.get(f"http://{host}:{port}{path}") as response:
                        body = await response.read()
                        assert response.status == 200, (path, response.status)
                    times.append(time.perf_counter() - begin)
                    size = len(body)
                results.append((label, times, size))
    finally:
        await runner.cleanup()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.vms, args.requests))
    print(f"\n{'view':<40} {'median':>9} {'p90':>9} {'max':>9} {'body':>9}")
    for label, times, size in results:
        ordered = sorted(times)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(
            f"{label:<40} {statistics.median(times) * 1000:>7.1f}ms {p90 * 1000:>7.1f}ms "
            f"{max(times) * 1000:>7.1f}ms {size / 1024:>7.1f}KiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
