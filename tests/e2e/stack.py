"""Real components for the end-to-end test: processes with bounded start and stop, the Prometheus
HTTP API, and an Alertmanager webhook receiver served by the test itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web


def require_binary(name: str) -> str:
    """Path of a required program: missing fails the test when CI is set, skips it otherwise."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian packages prometheus, prometheus-alertmanager)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@dataclass
class Process:
    """A child process whose output goes to files in the test's directory."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def describe(self) -> str:
        state = "running" if self.proc.returncode is None else f"exited with {self.proc.returncode}"
        return f"--- {self.name} ({state}), last lines of {self.log.name}:\n{tail(self.log)}"


@contextlib.asynccontextmanager
async def running(name: str, argv: Sequence[str], *, workdir: Path, cwd: Path | None = None) -> AsyncIterator[Process]:
    """Start ``argv``; on exit terminate it (SIGTERM, then SIGKILL after 10 s) and reap it."""
    log = workdir / f"{name}.log"
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=output, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL, cwd=cwd
        )
    process = Process(name, proc, log)
    try:
        yield process
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_until(
    what: str,
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float,
    interval: float = 1.0,
    processes: Sequence[Process] = (),
) -> Any:
    """Call ``check`` until it returns a truthy value; fail after ``timeout`` seconds or when one of
    ``processes`` exits, with their output in the message."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        for process in processes:
            if process.proc.returncode is not None:
                pytest.fail(f"{process.name} exited while waiting for {what}\n{process.describe()}")
        try:
            result = await check()
            if result:
                return result
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as error:
            last_error = error
        if time.monotonic() > deadline:
            details = "\n".join(process.describe() for process in processes)
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})\n{details}")
        await asyncio.sleep(interval)


async def http_ok(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        return response.status == 200


@dataclass
class PrometheusAPI:
    session: aiohttp.ClientSession
    base: str

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; raises ValueError with Prometheus' error on a bad expression."""
        async with self.session.get(
            f"{self.base}/api/v1/query", params={"query": expr}, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            body = await response.json()
        if body.get("status") != "success":
            raise ValueError(f"query failed: {body.get('error')}: {expr}")
        return list(body["data"]["result"])

    async def label_values(self, label: str, selector: str) -> list[str]:
        params = {"match[]": selector} if selector else {}
        async with self.session.get(
            f"{self.base}/api/v1/label/{label}/values", params=params, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            body = await response.json()
        if body.get("status") != "success":
            raise ValueError(f"label values failed: {body.get('error')}")
        return list(body["data"])

    async def alerts(self) -> list[dict[str, Any]]:
        """Active (pending and firing) alerts as Prometheus' rule evaluation sees them."""
        async with self.session.get(f"{self.base}/api/v1/alerts", timeout=aiohttp.ClientTimeout(total=10)) as response:
            body = await response.json()
        return list(body["data"]["alerts"])


@dataclass
class Webhook:
    """Collects every Alertmanager webhook notification posted to ``url``."""

    url: str
    payloads: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def alerts(self) -> list[dict[str, Any]]:
        return [alert for payload in self.payloads for alert in payload.get("alerts", [])]


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Webhook]:
    port = free_port()
    hook = Webhook(url=f"http://127.0.0.1:{port}/alerts")

    async def receive(request: web.Request) -> web.Response:
        hook.payloads.append(await request.json())
        hook.arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/alerts", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield hook
    finally:
        await runner.cleanup()


def prometheus_config(*, job: str, exporter: str, alertmanager: str, interval: str) -> dict[str, Any]:
    """Prometheus scraping the exporter (keeping its ``namespace`` label) and sending to Alertmanager;
    the rules are read from ``rules.yaml`` next to the configuration."""
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": ["rules.yaml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": job, "honor_labels": True, "static_configs": [{"targets": [exporter]}]}],
    }
