"""Helpers shared by the simulator tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

START = 1_800_000_000.0


async def read_lines(response: aiohttp.ClientResponse, *, count: int | None = None,
                     timeout: float = 5.0) -> list[dict[str, Any]]:
    """Parse watch lines until ``count`` were read or the server closed the stream."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while count is None or len(events) < count:
            line = await response.content.readline()
            if not line:
                break
            events.append(json.loads(line))
    return events


def vmi_body(name: str, namespace: str = "ns1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": {"kubevirt.io/nodeName": "n1"}},
        "spec": {},
        "status": {"phase": "Running", **status},
    }
