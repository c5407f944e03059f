"""Soak: ``simulate --vms N`` with faults, and the exporter, for minutes; RSS and descriptors over time.

``python -m benchmarks.soak [--vms 5000] [--minutes 10] [--sample 30] [--json PATH]``. The simulator
tells its story (snapshots, freeze failures), its Windows guests report, watches are expired (410)
and dropped on a schedule, and malformed objects are injected, so every relist and parse path runs
again and again. Every ``--sample`` seconds the exporter's VmRSS, open descriptors and a scrape's
latency are recorded; Prometheus-like scrapes run every 15 s in between. Nothing asserts a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.e2e import GZIP_HEADERS, MIB, free_port, machine, percentile, process, rss_of

SCRAPE_EVERY = 15.0
START_TIMEOUT = 900.0


@dataclass(slots=True)
class Sample:
    minute: float
    rss_mib: float
    fds: int
    scrape_ms: float


@dataclass(slots=True)
class Soak:
    vms: int
    minutes: float
    ready_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    scrape_ms: list[float] = field(default_factory=list)
    failed_scrapes: int = 0
    self_metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        rss = [s.rss_mib for s in self.samples]
        half = len(rss) // 2
        return {
            "vms": self.vms,
            "minutes": self.minutes,
            "ready_s": round(self.ready_s, 1),
            "rss_mib_first": rss[0] if rss else None,
            "rss_mib_last": rss[-1] if rss else None,
            "rss_mib_max": max(rss) if rss else None,
            # Growth between the medians of the first and the second half: a leak shows as a steady rise.
            "rss_mib_second_half_minus_first_half": round(
                statistics.median(rss[half:]) - statistics.median(rss[:half]), 1
            )
            if half
            else None,
            "fds_max": max((s.fds for s in self.samples), default=None),
            "scrapes": len(self.scrape_ms),
            "failed_scrapes": self.failed_scrapes,
            "scrape_ms_median": round(statistics.median(self.scrape_ms), 1) if self.scrape_ms else None,
            "scrape_ms_p90": round(percentile(self.scrape_ms, 0.9), 1) if self.scrape_ms else None,
            "self_metrics": self.self_metrics,
        }


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def wait_for_file(path: Path, child: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not await asyncio.to_thread(path.exists):
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        await asyncio.sleep(0.1)


async def wait_ready(session: aiohttp.ClientSession, url: str, child: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the exporter did not become ready")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        await asyncio.sleep(0.2)


async def scrape(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.get(url, headers=GZIP_HEADERS, timeout=aiohttp.ClientTimeout(total=30)) as response:
        await response.read()
        response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def self_metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Totals of the exporter's own counters that say what the soak exercised, and its cached objects."""
    async with session.get(url, headers={"Accept": "text/plain"}) as response:
        text = await response.text()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("kubevirt_vss_exporter_") and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name.endswith("_total"):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
            elif name == "kubevirt_vss_exporter_objects":  # what the memory holds, per resource
                resource = line.split('resource="', 1)[1].split('"', 1)[0]
                totals[f"objects/{resource}"] = float(line.rsplit(" ", 1)[1])
    return totals


async def soak(options: argparse.Namespace, progress: Any) -> Soak:
    result = Soak(options.vms, options.minutes)
    sim_port, metrics_port, report_port = (free_port(options.base_port, i) for i in range(3))
    metrics = f"http://127.0.0.1:{metrics_port}"
    with tempfile.TemporaryDirectory(prefix="kubevirt-vss-soak-") as folder:
        workdir = Path(folder)
        token, kubeconfig = workdir / "report-token", workdir / "kubeconfig"
        token.write_text(os.urandom(16).hex(), encoding="ascii")
        simulate = [
            sys.executable, "-m", "exporter", "simulate", "--vms", str(options.vms), "--seed", "1",
            "--listen", f"127.0.0.1:{sim_port}", "--write-kubeconfig", str(kubeconfig),
            "--guest-reports-to", f"http://127.0.0.1:{report_port}/api/v1/guest-reports",
            "--guest-report-token-file", str(token), "--guest-report-interval", "300",
            "--expire-watches-every", "120", "--drop-streams-every", "210", "--malformed", "12",
        ]  # fmt: skip
        run = [
            sys.executable, "-m", "exporter", "run", "--kubeconfig", str(kubeconfig),
            "--listen", f"127.0.0.1:{metrics_port}", "--guest-report-listen", f"127.0.0.1:{report_port}",
            "--guest-report-token-file", str(token), "--follow-launcher-logs", "--log-level", "warning",
        ]  # fmt: skip
        with process("simulator", simulate, workdir) as simulator:
            await wait_for_file(kubeconfig, simulator)
            async with aiohttp.ClientSession() as session:
                spawned = time.monotonic()
                with process("exporter", run, workdir) as exporter:
                    await wait_ready(session, metrics + "/readyz", exporter)
                    result.ready_s = time.monotonic() - spawned
                    progress(f"ready after {result.ready_s:.1f} s, RSS {rss_of(exporter.pid) / MIB:.0f} MiB")
                    await _run(session, metrics, exporter, options, result, progress)
                    result.self_metrics = await self_metrics(session, metrics + "/metrics")
            if options.keep_logs:
                for name in ("simulator", "exporter"):
                    (options.keep_logs / f"{name}.log").write_bytes((workdir / f"{name}.log").read_bytes())
    return result


async def _run(
    session: aiohttp.ClientSession,
    metrics: str,
    exporter: Any,
    options: argparse.Namespace,
    result: Soak,
    progress: Any,
) -> None:
    started = time.monotonic()
    end = started + options.minutes * 60
    next_sample = started
    while time.monotonic() < end:
        if exporter.poll() is not None:
            raise RuntimeError(f"the exporter exited with {exporter.returncode}")
        try:
            milliseconds = await scrape(session, metrics + "/metrics")
            result.scrape_ms.append(milliseconds)
        except (aiohttp.ClientError, OSError, TimeoutError):
            result.failed_scrapes += 1
            milliseconds = float("nan")
        if time.monotonic() >= next_sample:
            sample = Sample(
                minute=round((time.monotonic() - started) / 60, 2),
                rss_mib=round(rss_of(exporter.pid) / MIB, 1),
                fds=open_fds(exporter.pid),
                scrape_ms=round(milliseconds, 1),
            )
            result.samples.append(sample)
            progress(f"t={sample.minute:5.2f} min  RSS {sample.rss_mib:6.1f} MiB  fds {sample.fds:4d}  "
                     f"scrape {sample.scrape_ms:7.1f} ms")  # fmt: skip
            next_sample += options.sample
        await asyncio.sleep(min(SCRAPE_EVERY, max(0.0, next_sample - time.monotonic())))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample", type=float, default=30.0, metavar="SECONDS", help="RSS sampling period")
    parser.add_argument("--base-port", type=int, default=0, help="use ports BASE..BASE+2 (default: free ports)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the samples and the summary")
    parser.add_argument("--keep-logs", type=Path, metavar="DIR", help="copy both processes' logs here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    facts = machine()
    print(f"# {facts}", flush=True)
    result = asyncio.run(soak(options, lambda line: print(line, flush=True)))
    summary = result.summary()
    print(json.dumps(summary, indent=2), flush=True)
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"machine": facts, "summary": summary, "samples": [asdict(s) for s in result.samples]}
        options.json.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
