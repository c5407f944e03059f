"""Scraping a running exporter's /metrics into comparable samples."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape_samples(session: aiohttp.ClientSession, url: str) -> Samples:
    """Every sample of ``url``/metrics, keyed by name and sorted labels."""
    async with session.get(url + "/metrics") as response:
        assert response.status == 200
        body = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
