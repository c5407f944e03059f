"""Fixtures for driving a simulator over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from exporter.simulator import Simulator, SimulatorConfig
from tests.simulator.helpers import START


@pytest.fixture
async def empty_sim(no_leaked_tasks: None) -> AsyncIterator[Simulator]:
    """A started simulator with no fleet; stopped after the test (before the leaked-task check)."""
    async with Simulator(SimulatorConfig(story=False, start_time=START, bookmark_interval=0.2)) as sim:
        yield sim


@pytest.fixture
async def http(empty_sim: Simulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for ``empty_sim`` carrying its bearer token."""
    headers = {"Authorization": f"Bearer {empty_sim.token}"}
    async with aiohttp.ClientSession(base_url=empty_sim.url, headers=headers) as session:
        yield session
