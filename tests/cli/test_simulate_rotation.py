"""``simulate`` rotates its credentials on a schedule and on SIGHUP, rewriting what it wrote."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import yaml


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def changed(path: Path, before: str, timeout: float = 15.0) -> str:
    for _ in range(int(timeout / 0.05)):
        text = read(path)
        if text and text != before:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not change")


@asynccontextmanager
async def simulate(tmp_path: Path, *extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "simulate", "--no-story", "--listen", "127.0.0.1:0",
        "--write-kubeconfig", str(tmp_path / "kubeconfig"), "--write-service-account", str(tmp_path / "sa"),
        "--log-format", "json", *extra, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.slow
async def test_rotation_on_a_schedule_rewrites_the_kubeconfig_and_the_service_account(tmp_path: Path) -> None:
    async with simulate(tmp_path, "--rotate-credentials-every", "0.5"):
        first = await changed(tmp_path / "sa" / "token", "")
        second = await changed(tmp_path / "sa" / "token", first)
        await changed(tmp_path / "sa" / "token", second)
        token = yaml.safe_load(read(tmp_path / "kubeconfig"))["users"][0]["user"]["token"]
        assert token not in (first, second)


@pytest.mark.slow
async def test_sighup_rotates_token_and_ca(tmp_path: Path) -> None:
    async with simulate(tmp_path) as process:
        token = await changed(tmp_path / "sa" / "token", "")
        ca = read(tmp_path / "sa" / "ca.crt")
        process.send_signal(signal.SIGHUP)
        assert await changed(tmp_path / "sa" / "token", token) != token
        assert await changed(tmp_path / "sa" / "ca.crt", ca) != ca
