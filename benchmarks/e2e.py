"""End to end, as a user runs it: ``simulate --vms N`` and the exporter as separate processes, over HTTP.

``python -m benchmarks.e2e [--sizes 1000,10000] [--window 60] [--json PATH]``. For each size, and
for the exporter and then the naive baseline (``benchmarks.naive``: the same exporter with /metrics
built by a prometheus_client collector per scrape), in fresh processes:

1. ``kubevirt-vss-exporter simulate --vms N`` serves the simulated API over TLS, and its Windows
   guests POST their reports to the exporter (spread over ``--report-interval``);
2. ``kubevirt-vss-exporter run`` starts against it: real ``kubernetes.aio`` lists (JSON decode), watches,
   guestosinfo polling and the guest-report listener; *ready* is the time from spawning it to
   ``/readyz`` answering 200;
3. for ``--window`` seconds after ready (the first minute, while the first guestosinfo sweep and
   the reports change VMs and the simulator's snapshot story runs), ``GET /metrics`` with gzip and
   as plain text in turn; the exporter's VmRSS is sampled throughout;
4. the simulator counts every request it served by kind (``/simulator/v1/requests``), so API
   requests per second are measured at the API, not claimed by the client.

Figures are medians and 90th percentiles; nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (1_000, 10_000)
DEFAULT_WINDOW = 60.0
DEFAULT_REPORT_INTERVAL = 300.0
GZIP_HEADERS = {"Accept": "text/plain", "Accept-Encoding": "gzip"}
TEXT_HEADERS = {"Accept": "text/plain", "Accept-Encoding": "identity"}
REQUESTS_PATH = "/simulator/v1/requests"
START_TIMEOUT = 900.0
MIB = 1024 * 1024


def free_port(base: int, offset: int) -> int:
    if base:
        return base + offset
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_of(pid: int) -> int:
    """VmRSS of a process in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


@contextlib.contextmanager
def process(name: str, command: list[str], workdir: Path, *, cwd: Path = REPO, nice: int = 0) -> Any:
    """A child process with its output in ``workdir/name.log``; SIGTERM (then SIGKILL) on exit."""
    if nice:
        command = ["nice", "-n", str(nice), *command]
    log = (workdir / f"{name}.log").open("wb")
    child = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        log.close()


@dataclass(slots=True)
class Simulated:
    url: str
    token: str
    ssl_context: ssl.SSLContext | None

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Simulated:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        cluster = config["clusters"][0]["cluster"]
        context = None
        if "certificate-authority-data" in cluster:
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
            context = ssl.create_default_context(cadata=ca)
        return cls(cluster["server"], config["users"][0]["user"]["token"], context)

    async def requests(self, session: aiohttp.ClientSession) -> dict[str, int]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with session.get(self.url + REQUESTS_PATH, headers=headers, ssl=self.ssl_context) as response:
            response.raise_for_status()
            return dict(await response.json())


@dataclass(slots=True)
class Result:
    variant: str
    vms: int
    simulator_start_s: float = 0.0
    ready_s: float = 0.0
    rss_ready: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    window_s: float = 0.0
    scrapes: dict[str, list[float]] = field(default_factory=lambda: {"gzip": [], "text": []})
    body_bytes: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    first_list_requests: dict[str, int] = field(default_factory=dict)

    def per_second(self, kind: str | None = None) -> float:
        total = sum(self.requests.values()) if kind is None else self.requests.get(kind, 0)
        return total / self.window_s if self.window_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        scrape = {
            name: {"runs": len(values), "median_s": statistics.median(values), "p90_s": percentile(values, 0.9)}
            for name, values in self.scrapes.items()
            if values
        }
        return {
            "variant": self.variant,
            "vms": self.vms,
            "simulator_start_s": self.simulator_start_s,
            "ready_s": self.ready_s,
            "rss_ready_bytes": self.rss_ready,
            "rss_peak_bytes": self.rss_peak,
            "rss_end_bytes": self.rss_end,
            "window_s": self.window_s,
            "scrapes": scrape,
            "body_bytes": self.body_bytes,
            "requests_in_window": self.requests,
            "requests_until_ready": self.first_list_requests,
            "guestosinfo_per_s": self.per_second("guestosinfo"),
            "api_requests_per_s": self.per_second(),
        }


@dataclass(frozen=True, slots=True)
class Options:
    window: float
    report_interval: float
    base_port: int
    seed: int
    exporter_root: Path = REPO
    snapshot_interval: float = 180.0
    nice: int = 0


async def _wait_for(path: Path, child: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not await asyncio.to_thread(path.exists):
        if child.poll() is not None:
            raise RuntimeError(f"{what} exited with {child.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {START_TIMEOUT:g} s")
        await asyncio.sleep(0.05)


async def _wait_ready(session: aiohttp.ClientSession, url: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if child.poll() is not None:
            raise RuntimeError(f"the exporter exited with {child.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError("the exporter was not ready in time")
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)


async def _scrape(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    async with session.get(url, headers=headers, auto_decompress=False) as response:
        body = await response.read()
        response.raise_for_status()
    return time.perf_counter() - started, len(body)


@contextlib.asynccontextmanager
async def _simulator(vms: int, options: Options, workdir: Path, report_url: str) -> AsyncIterator[Simulated]:
    token_file = workdir / "report-token"
    kubeconfig = workdir / "kubeconfig"
    command = [
        sys.executable, "-m", "exporter", "simulate", "--vms", str(vms), "--seed", str(options.seed),
        "--listen", f"127.0.0.1:{free_port(options.base_port, 0)}", "--write-kubeconfig", str(kubeconfig),
        "--guest-reports-to", report_url, "--guest-report-token-file", str(token_file),
        "--guest-report-interval", str(options.report_interval),
        "--snapshot-interval", str(options.snapshot_interval),
        # Enough watch history that a watch resumes after a slow first list; continue tokens expire
        # only by compaction, every 300 s as kube-apiserver's default.
        "--history-limit", str(max(20_000, 2 * vms)),
    ]
    with process("simulator", command, workdir, nice=options.nice) as child:
        await _wait_for(kubeconfig, child, "the simulator")
        yield Simulated.from_kubeconfig(kubeconfig)


async def measure(variant: str, vms: int, options: Options, *, progress: Any) -> Result:
    """One fresh simulator and one fresh exporter (or naive exporter) for ``vms`` VMs."""
    result = Result(variant, vms)
    metrics_port, report_port = free_port(options.base_port, 1), free_port(options.base_port, 2)
    report_url = f"http://127.0.0.1:{report_port}/api/v1/guest-reports"
    with tempfile.TemporaryDirectory(prefix="kubevirt-vss-e2e-bench-") as folder:
        workdir = Path(folder)
        (workdir / "report-token").write_text(os.urandom(16).hex(), encoding="ascii")
        started = time.monotonic()
        async with _simulator(vms, options, workdir, report_url) as simulated, aiohttp.ClientSession() as session:
            result.simulator_start_s = time.monotonic() - started
            progress(f"N={vms} {variant}: simulator serving after {result.simulator_start_s:.1f} s")
            module = "exporter" if variant == "exporter" else "benchmarks.naive"
            command = [
                sys.executable, "-m", module, *(["run"] if module == "exporter" else []),
                "--kubeconfig", str(workdir / "kubeconfig"), "--listen", f"127.0.0.1:{metrics_port}",
                "--guest-report-listen", f"127.0.0.1:{report_port}",
                "--guest-report-token-file", str(workdir / "report-token"), "--log-level", "warning",
                "--log-format", "json",
            ]
            before = await simulated.requests(session)
            spawned = time.monotonic()
            with process(variant, command, workdir, cwd=options.exporter_root, nice=options.nice) as child:
                await _wait_ready(session, f"http://127.0.0.1:{metrics_port}/readyz", child)
                ready = time.monotonic()
                result.ready_s = ready - spawned
                result.rss_ready = rss_of(child.pid)
                at_ready = await simulated.requests(session)
                result.first_list_requests = {k: at_ready[k] - before.get(k, 0) for k in at_ready}
                progress(f"N={vms} {variant}: ready after {result.ready_s:.1f} s, RSS {result.rss_ready / MIB:.0f} MiB")
                await _churn_window(session, f"http://127.0.0.1:{metrics_port}/metrics", child, options, result)
                after = await simulated.requests(session)
                result.window_s = time.monotonic() - ready
                result.requests = {k: after[k] - at_ready.get(k, 0) for k in after}
                result.rss_end = rss_of(child.pid)
    _print_result(result, progress)
    return result


async def _churn_window(
    session: aiohttp.ClientSession, url: str, child: subprocess.Popen[bytes], options: Options, result: Result
) -> None:
    """Scrape gzip and plain text in turn for the window; sample RSS all along."""
    end = time.monotonic() + options.window
    turn = 0
    while time.monotonic() < end:
        if child.poll() is not None:
            raise RuntimeError(f"the exporter exited with {child.returncode}")
        name, headers = ("gzip", GZIP_HEADERS) if turn % 2 == 0 else ("text", TEXT_HEADERS)
        seconds, size = await _scrape(session, url, headers)
        result.scrapes[name].append(seconds)
        result.body_bytes[name] = size
        result.rss_peak = max(result.rss_peak, rss_of(child.pid))
        turn += 1
        await asyncio.sleep(max(0.0, 1.0 - seconds))  # about one scrape a second, as several Prometheus would


def _print_result(result: Result, progress: Any) -> None:
    figures = result.as_dict()
    scrapes = ", ".join(
        f"{name} p50 {s['median_s'] * 1e3:.1f} ms p90 {s['p90_s'] * 1e3:.1f} ms ({s['runs']})"
        for name, s in figures["scrapes"].items()
    )
    progress(
        f"N={result.vms} {result.variant}: ready {result.ready_s:.1f} s; RSS ready {result.rss_ready / MIB:.0f} MiB, "
        f"peak {result.rss_peak / MIB:.0f} MiB, end {result.rss_end / MIB:.0f} MiB; {scrapes}; "
        f"guestosinfo {figures['guestosinfo_per_s']:.1f} req/s, all API {figures['api_requests_per_s']:.1f} req/s "
        f"over {result.window_s:.0f} s ({result.requests})"
    )


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "commit": commit,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


ROWS: tuple[tuple[str, Any], ...] = (
    ("ready after start, s", lambda r: f"{r['ready_s']:.1f}"),
    ("RSS at ready / after the window, MiB", lambda r: f"{r['rss_ready_bytes'] / MIB:.0f} / {r['rss_end_bytes'] / MIB:.0f}"),  # noqa: E501
    ("GET /metrics gzip, ms p50 / p90", lambda r: _latency(r, "gzip")),
    ("GET /metrics text, ms p50 / p90", lambda r: _latency(r, "text")),
    ("body gzip / text, MiB", lambda r: " / ".join(f"{r['body_bytes'].get(k, 0) / MIB:.1f}" for k in ("gzip", "text"))),
    ("guestosinfo requests/s (first minute after ready)", lambda r: f"{r['guestosinfo_per_s']:.1f}"),
    ("all API requests/s (same window)", lambda r: f"{r['api_requests_per_s']:.1f}"),
)


def _latency(result: dict[str, Any], name: str) -> str:
    figures = result["scrapes"].get(name)
    if not figures:
        return "–"
    return f"{figures['median_s'] * 1e3:.1f} / {figures['p90_s'] * 1e3:.1f} ({figures['runs']})"


def table(paths: Sequence[Path]) -> str:
    """A Markdown table of the results in ``paths`` (JSON written by ``--json``), one column per run."""
    results = [r for path in paths for r in json.loads(path.read_text(encoding="utf-8"))["results"]]
    results.sort(key=lambda r: (r["vms"], r["variant"] != "exporter"))
    header = "| | " + " | ".join(f"{r['vms']:,} {r['variant']}" for r in results) + " |"
    lines = [header, "|---|" + "---:|" * len(results)]
    lines += ["| " + name + " | " + " | ".join(cell(r) for r in results) + " |" for name, cell in ROWS]
    return "\n".join(lines)


VARIANTS = ("exporter", "naive")


def variant_list(text: str) -> tuple[str, ...]:
    """``exporter``, ``naive``, ``both`` or a comma-separated list of the first two; anything else is refused."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    expanded = [variant for name in names for variant in (VARIANTS if name == "both" else (name,))]
    unknown = sorted(set(expanded) - set(VARIANTS))
    if unknown or not expanded:
        named = ", ".join(unknown) or repr(text)
        raise argparse.ArgumentTypeError(f"unknown variant {named}: use exporter, naive or both")
    return tuple(dict.fromkeys(expanded))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="fleet sizes, comma-separated")
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW, help="seconds measured after ready")
    parser.add_argument("--report-interval", type=float, default=DEFAULT_REPORT_INTERVAL, metavar="SECONDS")
    parser.add_argument(
        "--variants", type=variant_list, default="both", help="exporter, naive, or both (comma-separated)"
    )
    parser.add_argument("--base-port", type=int, default=0, help="use ports BASE..BASE+2 (default: free ports)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="run the simulator and the exporter under nice -n N (negative: ahead of other work "
                        "on a shared machine; needs root)")
    parser.add_argument("--snapshot-interval", type=float, default=180.0, metavar="SECONDS",
                        help="simulated seconds between snapshots of one VM (the story's churn)")
    parser.add_argument(
        "--exporter-root", type=Path, default=REPO, metavar="DIR",
        help="run the exporter from this source tree (an older commit, to compare); the simulator stays",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure and the machine facts")
    parser.add_argument("--table", type=Path, nargs="+", metavar="JSON", help="print earlier results as a table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    options = Options(
        args.window, args.report_interval, args.base_port, args.seed, args.exporter_root.resolve(),
        args.snapshot_interval, args.nice,
    )
    facts = {**machine(), "nice": args.nice, "snapshot_interval": args.snapshot_interval}
    print(f"# {facts}", flush=True)
    results: list[dict[str, Any]] = []
    for vms in (int(s) for s in args.sizes.split(",")):
        for variant in args.variants:
            result = asyncio.run(measure(variant, vms, options, progress=lambda line: print(line, flush=True)))
            results.append(result.as_dict())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": facts, "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
