"""/metrics latency and memory at several fleet sizes, against a naive prometheus_client collector.

Run ``python -m benchmarks.scrape [--sizes 1000,10000,50000] [--scrapes 30] [--json PATH]``. Each size
runs in a fresh interpreter (``--one N``) so its RSS figures start clean. Inside it:

1. the simulator builds its fleet (scenario mix, a few VirtualMachineSnapshots per VM, FreezeError
   events, guestosinfo bodies, guest reports of the Windows guests) and the raw objects are taken
   from its store without serving them;
2. *ingest*: the objects go through ``Fleet.replace`` (one initial list per resource), then every
   guestosinfo body and guest report, into a ``MetricsStore``; wall time and VmRSS growth;
3. *scrapes*: the real aiohttp app (``build_app`` + ``MetricsEndpoint``) on 127.0.0.1, fetched with an
   aiohttp client: idle text, idle gzip, idle OpenMetrics, then text and gzip with one VMI changed
   before every request; each request is also timed inside the server (handler time);
4. *naive*: a prometheus_client collector that walks the same ``VmState`` objects at scrape time and
   builds a metric family per entry of ``FAMILIES``, served by ``generate_latest`` on a second route
   of the same server;
5. *state changes*: a full relist of the same objects, and the exporter's clock tick, 5 s apart.

Figures are medians and 90th percentiles. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from benchmarks.naive import naive_handler, naive_registry
from exporter import resources
from exporter.self_metrics import PREFIX as SELF_PREFIX
from exporter.self_metrics import SelfMetrics
from exporter.service import Exporter
from exporter.settings import Settings
from exporter.simulator import Simulator, SimulatorConfig
from exporter.simulator.guest_reporter import build_report_document
from exporter.state.guest_report import parse_guest_report
from exporter.state.records import VmKey, VmState
from exporter.web.app import build_app
from exporter.web.health import Readiness

DEFAULT_SIZES = (1_000, 10_000, 50_000)
DEFAULT_SCRAPES = 30
DEFAULT_PHASE_BUDGET = 10.0  # seconds one phase may take before it stops early (after MIN_RUNS)
MIN_RUNS = 3
MAX_RELISTS = 3
TICK_INTERVAL = Settings().tick_interval
START_TIME = 1_750_000_000.0  # a fixed simulated epoch, so every run builds the same objects
# The story is shortened so building is quick at 50k VMs: snapshots every 60 s, failures give up after
# 30 s, played for 130 s. Every scheduled VM then holds up to three snapshots (the simulator keeps
# three) and failing VMs have their FreezeError events and failed or in-progress snapshots.
STORY_SECONDS = 130.0
SNAPSHOT_INTERVAL = 60.0
FAILURE_DEADLINE = 30.0
VMS, VMIS, SNAPSHOTS, EVENTS = (r.name for r in (resources.VMS, resources.VMIS, resources.SNAPSHOTS, resources.EVENTS))
LIST_ORDER = (VMS, VMIS, SNAPSHOTS, EVENTS)
ACCEPT_OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
NAIVE_ROUTE = "/naive-metrics"
MIB = 1024 * 1024
TRACED_SITES = 25  # allocation sites listed under --tracemalloc

Progress = Callable[[str], None]


# --- the fleet's raw objects -------------------------------------------------------------------


@dataclass(slots=True)
class FleetObjects:
    """Raw API objects of a simulated fleet, as an initial list, a guestosinfo poll and guest reports give them."""

    vms: int
    now: float
    lists: dict[str, list[Mapping[str, Any]]]
    guest_info: list[tuple[VmKey, dict[str, Any]]]
    guest_reports: list[tuple[VmKey, dict[str, Any]]]
    simulator: Simulator  # owns the objects in ``lists``; kept alive so they are not freed mid-run

    def count(self, resource: str) -> int:
        return len(self.lists[resource])


def build_fleet_objects(vms: int, *, seed: int = 1) -> FleetObjects:
    """Build the simulator's fleet of ``vms`` VMs and play its story; nothing is served."""
    config = SimulatorConfig(
        vms=vms,
        seed=seed,
        start_time=START_TIME,
        snapshot_interval=SNAPSHOT_INTERVAL,
        failure_deadline=FAILURE_DEADLINE,
        history_limit=100,
    )
    simulator = Simulator(config)
    assert simulator.fleet is not None
    now = START_TIME + STORY_SECONDS
    simulator.fleet.advance_to(now)
    store = simulator.store
    lists: dict[str, list[Mapping[str, Any]]] = {}
    for resource in LIST_ORDER:
        entries, _, _ = store.page(resource, namespace=None, after=None, limit=None, match=None)
        lists[resource] = [entry.obj for entry in entries]
    guest_info: list[tuple[VmKey, dict[str, Any]]] = []
    for vmi in lists[VMIS]:
        meta = vmi["metadata"]
        body = store.guest_info(meta["namespace"], meta["name"])
        if body is not None:
            guest_info.append((VmKey(meta["namespace"], meta["name"]), body))
    reports = [
        (
            VmKey(target.namespace, target.name),
            build_report_document(target.profile, hostname=target.name.upper()[:15], generated_at=now - 30),
        )
        for target in simulator.guest_targets()
    ]
    return FleetObjects(vms, now, lists, guest_info, reports, simulator)


# --- the exporter's side: fleet, store, endpoint -------------------------------------------------


class _NoCluster:
    """Stands in for the Kubernetes client: the harness feeds the fleet itself and sends no request."""

    host = "(none: objects fed in process)"

    def report_to(self, metrics: SelfMetrics) -> None:
        """Nothing to report: no credentials are read."""


class _CountingExporter(Exporter):
    """The service's own wiring (fleet → store → endpoint, self-metrics, poller), counting what
    it publishes and, once asked, keeping the states the naive collector walks."""

    def __init__(self) -> None:
        super().__init__(Settings(), client=_NoCluster())  # type: ignore[arg-type]
        self.published = 0
        self.states: dict[VmKey, VmState] | None = None

    def _publish(self, key: VmKey, state: VmState | None) -> None:
        self.published += 1
        super()._publish(key, state)
        if self.states is not None:
            if state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = state


class Harness:
    """The exporter's data path without Kubernetes, as ``exporter.service.Exporter`` wires it."""

    def __init__(self, objects: FleetObjects) -> None:
        self.objects = objects
        self.now = objects.now
        self.exporter = _CountingExporter()
        self.metrics = self.exporter.metrics
        self.store = self.exporter.store
        self.endpoint = self.exporter.endpoint
        self.fleet = self.exporter.fleet

    @property
    def published(self) -> int:
        return self.exporter.published

    @property
    def problems(self) -> int:
        samples = (s for family in self.metrics.malformed.collect() for s in family.samples)
        return int(sum(s.value for s in samples if s.name.endswith("_total")))

    @property
    def states(self) -> dict[VmKey, VmState] | None:
        return self.exporter.states

    def ingest(self) -> dict[str, float]:
        """The first sync: one list per resource, one guestosinfo poll round, one report per guest."""
        timings: dict[str, float] = {}
        for resource in LIST_ORDER:
            started = time.perf_counter()
            self.fleet.replace(resource, self.objects.lists[resource], self.now)
            timings[resource] = time.perf_counter() - started
        started = time.perf_counter()
        for key, body in self.objects.guest_info:
            record = self.fleet.record(key)
            if record is not None and record.vmi is not None:
                self.fleet.apply_guest_info(key, record.vmi.uid, body, self.now)
        timings["guestosinfo"] = time.perf_counter() - started
        started = time.perf_counter()
        for key, document in self.objects.guest_reports:
            self.fleet.apply_guest_report(key, parse_guest_report(document, received_at=self.now), self.now)
        timings["guest_reports"] = time.perf_counter() - started
        return timings

    def report_rounds(self, rounds: int, *, every: float = 300.0) -> None:
        """``rounds`` more reports from every guest, ``every`` seconds apart, as the guests keep sending."""
        for round_ in range(1, rounds + 1):
            at = self.now + round_ * every
            for key, document in self.objects.guest_reports:
                self.fleet.apply_guest_report(key, parse_guest_report(document, received_at=at), at)

    def relist(self) -> None:
        """Every reflector relists at once (after a 410 storm, say): the same objects again."""
        for resource in LIST_ORDER:
            self.fleet.replace(resource, self.objects.lists[resource], self.now)

    def track_states(self) -> None:
        """Start keeping the current VmState of every VM, for the naive collector."""
        states: dict[VmKey, VmState] = {}
        for key in list(self.fleet.keys()):
            record = self.fleet.record(key)
            state = self.fleet.judge(record, self.now) if record is not None else None
            if state is not None:
                states[key] = state
        self.exporter.states = states

    def changing_vmi(self) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
        """A running VMI with a connected agent and the same VMI frozen: upserting them in turn changes one VM."""
        for raw in self.objects.lists[VMIS]:
            meta, status = raw["metadata"], raw["status"]
            key = VmKey(meta["namespace"], meta["name"])
            if self.fleet.poll_target_uid(key) is not None and "fsFreezeStatus" not in status:
                return raw, {**raw, "status": {**status, "fsFreezeStatus": "frozen"}}
        return None


# --- measuring ----------------------------------------------------------------------------------


def rss_bytes(field_name: str = "VmRSS") -> int:
    """VmRSS (or VmHWM) of this process from /proc/self/status; 0 where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(slots=True)
class Run:
    """One timed operation: client-side seconds, server-side seconds (HTTP only) and the body size."""

    seconds: float
    server_seconds: float | None = None
    body_bytes: int = 0


@dataclass(slots=True)
class Phase:
    """Timings of one repeated measurement."""

    name: str
    planned: int
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [run.seconds for run in self.runs]

    @property
    def server_seconds(self) -> list[float]:
        return [run.server_seconds for run in self.runs if run.server_seconds is not None]

    @property
    def reduced(self) -> bool:
        return len(self.runs) < self.planned

    def as_dict(self) -> dict[str, Any]:
        seconds, server = self.seconds, self.server_seconds
        return {
            "runs": len(self.runs),
            "planned": self.planned,
            "median_s": statistics.median(seconds),
            "p90_s": percentile(seconds, 0.9),
            "min_s": min(seconds),
            "max_s": max(seconds),
            "server_median_s": statistics.median(server) if server else None,
            "server_p90_s": percentile(server, 0.9) if server else None,
            "body_bytes": self.runs[-1].body_bytes,
        }


async def repeat(
    name: str, runs: int, budget: float, once: Callable[[], Awaitable[Run]], *, min_runs: int = MIN_RUNS
) -> Phase:
    """Run ``once`` up to ``runs`` times; stop early once ``budget`` seconds are spent and ``min_runs`` are done."""
    phase = Phase(name, runs)
    spent = 0.0
    for _ in range(runs):
        run = await once()
        phase.runs.append(run)
        spent += run.seconds
        if spent > budget and len(phase.runs) >= min(min_runs, runs):
            break
    return phase


def sample_lines(body: bytes, *, skip_prefix: bytes = b"") -> int:
    """Sample lines of a text exposition, leaving out comments and names starting with ``skip_prefix``."""
    count = 0
    for line in body.split(b"\n"):
        if line and not line.startswith(b"#") and not (skip_prefix and line.startswith(skip_prefix)):
            count += 1
    return count


TEXT_HEADERS = {"Accept": "text/plain", "Accept-Encoding": "identity"}
GZIP_HEADERS = {"Accept": "text/plain", "Accept-Encoding": "gzip"}
OPENMETRICS_HEADERS = {"Accept": ACCEPT_OPENMETRICS, "Accept-Encoding": "identity"}


class Server:
    """The real /metrics app plus the naive route, on 127.0.0.1, timing every handler server-side."""

    def __init__(self, harness: Harness, registry: CollectorRegistry) -> None:
        self.handler_seconds: list[float] = []
        app = build_app(endpoint=harness.endpoint, readiness=Readiness())
        app.router.add_get(NAIVE_ROUTE, naive_handler(registry))
        app.middlewares.append(self._timed)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.base = ""

    @web.middleware
    async def _timed(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        self.handler_seconds.append(time.perf_counter() - started)
        return response

    async def __aenter__(self) -> Server:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


async def measure(
    harness: Harness, registry: CollectorRegistry, *, scrapes: int, budget: float, progress: Progress
) -> dict[str, Any]:
    """Every scrape, relist and tick figure for one ingested fleet; ``harness.states`` must be tracked."""
    n = harness.objects.vms
    phases: dict[str, Phase] = {}
    extra: dict[str, Any] = {}

    def report(phase: Phase, note: str = "") -> None:
        phases[phase.name] = phase
        figures = phase.as_dict()
        server = figures["server_median_s"]
        reduced = f" (reduced to {len(phase.runs)} of {phase.planned} runs: phase budget {budget:g} s)"
        progress(
            f"N={n} {phase.name}: median {figures['median_s'] * 1e3:.1f} ms, p90 {figures['p90_s'] * 1e3:.1f} ms"
            + (f", handler median {server * 1e3:.1f} ms" if server is not None else "")
            + note
            + (reduced if phase.reduced else "")
        )

    variants = harness.changing_vmi()
    turn = 0
    upserts: list[float] = []

    def change_one_vm() -> None:
        """Upsert the chosen VMI frozen, then thawed, in turn: one VM re-rendered, every cache dropped."""
        nonlocal turn
        assert variants is not None
        turn += 1
        started = time.perf_counter()
        harness.fleet.upsert(VMIS, variants[turn % 2], harness.now)
        upserts.append(time.perf_counter() - started)

    timeout = aiohttp.ClientTimeout(total=600)
    async with Server(harness, registry) as server, aiohttp.ClientSession(
        auto_decompress=False, timeout=timeout
    ) as session:

        async def fetch(path: str, headers: Mapping[str, str]) -> tuple[Run, bytes]:
            started = time.perf_counter()
            async with session.get(server.base + path, headers=headers) as response:
                body = await response.read()
                response.raise_for_status()
            seconds = time.perf_counter() - started
            return Run(seconds, server.handler_seconds[-1], len(body)), body

        def scrape(path: str, headers: Mapping[str, str], *, change: bool = False) -> Callable[[], Awaitable[Run]]:
            async def once() -> Run:
                if change:
                    change_one_vm()
                run, _ = await fetch(path, headers)
                return run

            return once

        # Warm up: the first request of each kind joins and compresses the body once.
        _, text_body = await fetch("/metrics", TEXT_HEADERS)
        await fetch("/metrics", GZIP_HEADERS)
        await fetch("/metrics", OPENMETRICS_HEADERS)
        extra["series"] = sample_lines(text_body, skip_prefix=SELF_PREFIX.encode())
        extra["self_series"] = sample_lines(text_body) - extra["series"]
        del text_body

        report(await repeat("idle_text", scrapes, budget, scrape("/metrics", TEXT_HEADERS)))
        report(await repeat("idle_gzip", scrapes, budget, scrape("/metrics", GZIP_HEADERS)))
        report(await repeat("idle_openmetrics", scrapes, budget, scrape("/metrics", OPENMETRICS_HEADERS)))
        if variants is not None:
            report(await repeat("changed_text", scrapes, budget, scrape("/metrics", TEXT_HEADERS, change=True)))
            report(await repeat("changed_gzip", scrapes, budget, scrape("/metrics", GZIP_HEADERS, change=True)))
            extra["upsert_median_s"] = statistics.median(upserts)
            harness.fleet.upsert(VMIS, variants[0], harness.now)  # leave the fleet as listed

        _, naive_text = await fetch(NAIVE_ROUTE, TEXT_HEADERS)
        extra["naive_series"] = sample_lines(naive_text)
        del naive_text
        report(await repeat("naive_text", scrapes, budget, scrape(NAIVE_ROUTE, TEXT_HEADERS)))
        report(await repeat("naive_gzip", scrapes, budget, scrape(NAIVE_ROUTE, GZIP_HEADERS)))

    async def relist() -> Run:
        published = harness.published
        started = time.perf_counter()
        harness.relist()
        seconds = time.perf_counter() - started
        extra["relist_published"] = harness.published - published
        return Run(seconds)

    report(
        await repeat("relist", min(scrapes, MAX_RELISTS), budget, relist, min_runs=1),
        f"; {extra['relist_published']} VMs republished by the last one",
    )

    # The exporter's ticker: every TICK_INTERVAL seconds, re-judge the VMs whose state the clock changes.
    clock = harness.now
    ticks: list[tuple[int, bool]] = []

    async def tick() -> Run:
        nonlocal clock
        clock += TICK_INTERVAL
        published, generation = harness.published, harness.store.generation
        started = time.perf_counter()
        harness.fleet.tick(clock)
        seconds = time.perf_counter() - started
        ticks.append((harness.published - published, harness.store.generation != generation))
        return Run(seconds)

    tick_phase = await repeat("tick", scrapes, budget, tick, min_runs=1)
    extra["tick_published_total"] = sum(count for count, _ in ticks)
    extra["ticks_dropping_cache"] = sum(1 for _, dropped in ticks if dropped)
    report(
        tick_phase,
        f"; {len(ticks)} ticks {TICK_INTERVAL:g} s apart republished {extra['tick_published_total']} VMs, "
        f"{extra['ticks_dropping_cache']} of them dropped the cached body",
    )

    sizes = {
        "text": phases["idle_text"].runs[-1].body_bytes,
        "gzip": phases["idle_gzip"].runs[-1].body_bytes,
        "openmetrics": phases["idle_openmetrics"].runs[-1].body_bytes,
        "naive_text": phases["naive_text"].runs[-1].body_bytes,
        "naive_gzip": phases["naive_gzip"].runs[-1].body_bytes,
    }
    return {"phases": {name: phase.as_dict() for name, phase in phases.items()}, "body_bytes": sizes, **extra}


def run_size(
    vms: int,
    *,
    scrapes: int,
    budget: float = DEFAULT_PHASE_BUDGET,
    seed: int = 1,
    trace_memory: bool = False,
    report_rounds: int = 0,
    progress: Progress = print,
) -> dict[str, Any]:
    """Build, ingest and measure one fleet size in this process; returns the figures."""
    started = time.perf_counter()
    objects = build_fleet_objects(vms, seed=seed)
    counts = {resource: objects.count(resource) for resource in LIST_ORDER}
    counts["guestosinfo"] = len(objects.guest_info)
    counts["guest_reports"] = len(objects.guest_reports)
    progress(
        f"N={vms} simulated fleet built in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{count} {name}" for name, count in counts.items())
    )

    harness = Harness(objects)
    gc.collect()
    rss_baseline = rss_bytes()
    started = time.perf_counter()
    steps = harness.ingest()
    ingest_seconds = time.perf_counter() - started
    gc.collect()
    rss_ingest = rss_bytes() - rss_baseline
    progress(
        f"N={vms} ingest {ingest_seconds:.2f} s, rss +{rss_ingest / MIB:.0f} MiB ("
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps.items())
        + f"; {len(harness.store)} VMs in the store, {harness.problems} malformed-object problems)"
    )

    rss_before = rss_bytes()
    harness.track_states()
    assert harness.states is not None
    registry = naive_registry(harness.states)
    gc.collect()
    rss_states = rss_bytes() - rss_before
    progress(f"N={vms} naive collector holds {len(harness.states)} VmState objects, rss +{rss_states / MIB:.0f} MiB")

    figures = asyncio.run(measure(harness, registry, scrapes=scrapes, budget=budget, progress=progress))
    gc.collect()
    rss_end = rss_bytes() - rss_baseline
    progress(f"N={vms} rss +{rss_end / MIB:.0f} MiB over the pre-ingest baseline at the end (cached bodies filled)")
    result: dict[str, Any] = {
        "vms": vms,
        "objects": counts,
        "ingest_s": ingest_seconds,
        "ingest_steps_s": steps,
        "rss_ingest_bytes": rss_ingest,
        "rss_naive_states_bytes": rss_states,
        "rss_end_bytes": rss_end,
        "rss_peak_bytes": rss_bytes("VmHWM"),
        **figures,
    }
    if report_rounds > 0:
        reports = report_rounds * len(objects.guest_reports)
        started = time.perf_counter()
        harness.report_rounds(report_rounds)
        seconds = time.perf_counter() - started
        gc.collect()
        grown = rss_bytes() - rss_baseline - rss_end
        progress(
            f"N={vms} {report_rounds} more guest report rounds ({reports} reports): {seconds:.1f} s "
            f"({seconds / max(reports, 1) * 1e3:.2f} ms per report), rss +{grown / MIB:.0f} MiB"
        )
        result.update(report_rounds=report_rounds, report_rounds_s=seconds, rss_report_rounds_bytes=grown)
    if trace_memory:
        result.update(traced_ingest(objects, progress))
    return result


def traced_ingest(objects: FleetObjects, progress: Progress) -> dict[str, Any]:
    """A second ingest into a fresh fleet under tracemalloc: bytes Python still holds, and the peak."""
    gc.collect()
    tracemalloc.start(1)
    harness = Harness(objects)
    harness.ingest()
    harness.endpoint.body(openmetrics=False, compress=True)  # the gzip members a scrape builds and keeps
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    progress(f"N={objects.vms} tracemalloc ingest: held {current / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB")
    sites = [s for s in snapshot.statistics("lineno") if "/exporter/" in s.traceback[0].filename][:TRACED_SITES]
    for stat in sites:
        frame = stat.traceback[0]
        where = f"{frame.filename.split('/exporter/', 1)[1]}:{frame.lineno}"
        progress(f"N={objects.vms}   {stat.size / objects.vms:7.0f} B/VM  {stat.count:8d} blocks  exporter/{where}")
    return {
        "traced_ingest_current_bytes": current,
        "traced_ingest_peak_bytes": peak,
        "traced_sites": [
            {"site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}", "bytes": s.size, "blocks": s.count}
            for s in sites
        ],
    }


# --- the parent: one subprocess per size, then the table -----------------------------------------


def machine_facts() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            memory = next((int(line.split()[1]) * 1024 for line in info if line.startswith("MemTotal:")), 0)
    except OSError:
        pass
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                            check=False).stdout.strip()
    if commit:
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "exporter"], cwd=root, check=False)
        commit += " (exporter/ with uncommitted changes)" if changed.returncode else ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "unknown",
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
    }


def run_in_subprocess(vms: int, args: argparse.Namespace) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix="vss-bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable, "-m", "benchmarks.scrape", "--one", str(vms), "--scrapes", str(args.scrapes),
            "--phase-budget", str(args.phase_budget), "--seed", str(args.seed), "--result", str(out),
        ]
        if args.tracemalloc:
            command.append("--tracemalloc")
        if args.report_rounds:
            command += ["--report-rounds", str(args.report_rounds)]
        root = Path(__file__).resolve().parent.parent
        completed = subprocess.run(command, cwd=root, check=False)
        if completed.returncode != 0 or not out.exists():
            print(f"N={vms} failed (exit status {completed.returncode})", flush=True)
            return None
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if seconds < 10 else f"{seconds * 1e3:.0f}"


def table(results: Sequence[Mapping[str, Any]]) -> str:
    """Rows of figures, one column per size."""

    def phase(result: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
        found: Mapping[str, Any] | None = result["phases"].get(name)
        return found

    def latency(name: str) -> Callable[[Mapping[str, Any]], str]:
        def cell(result: Mapping[str, Any]) -> str:
            p = phase(result, name)
            if p is None:
                return "-"
            runs = f" [{p['runs']}]" if p["runs"] < p["planned"] else ""
            return f"{_ms(p['median_s'])} / {_ms(p['p90_s'])}{runs}"

        return cell

    def handler(name: str) -> Callable[[Mapping[str, Any]], str]:
        def cell(result: Mapping[str, Any]) -> str:
            p = phase(result, name)
            if p is None or p["server_median_s"] is None:
                return "-"
            return f"{_ms(p['server_median_s'])} / {_ms(p['server_p90_s'])}"

        return cell

    def ratio(naive: str, ours: str, key: str = "median_s") -> Callable[[Mapping[str, Any]], str]:
        def cell(result: Mapping[str, Any]) -> str:
            a, b = phase(result, naive), phase(result, ours)
            if a is None or b is None or not b[key]:
                return "-"
            return f"{a[key] / b[key]:.1f}x"

        return cell

    def mib(value: float) -> str:
        return f"{value / MIB:.1f}"

    rows: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("VMIs / VMs / snapshots / events", lambda r: " / ".join(
            str(r["objects"][k]) for k in (VMIS, VMS, SNAPSHOTS, EVENTS))),
        ("guestosinfo bodies / guest reports", lambda r: f"{r['objects']['guestosinfo']} / "
                                                         f"{r['objects']['guest_reports']}"),
        ("series (ours / naive)", lambda r: f"{r['series']} / {r['naive_series']}"),
        ("body text / gzip / OpenMetrics, MiB", lambda r: " / ".join(
            mib(r["body_bytes"][k]) for k in ("text", "gzip", "openmetrics"))),
        ("ingest (first lists + guestosinfo + reports), s", lambda r: f"{r['ingest_s']:.2f}"),
        ("RSS growth after ingest, MiB", lambda r: f"{r['rss_ingest_bytes'] / MIB:.0f}"),
        ("RSS growth, VmState copy for naive, MiB", lambda r: f"{r['rss_naive_states_bytes'] / MIB:.0f}"),
        ("RSS growth at the end (cached bodies, naive copy), MiB", lambda r: f"{r['rss_end_bytes'] / MIB:.0f}"),
        ("peak RSS of the run (incl. simulator), MiB", lambda r: f"{r['rss_peak_bytes'] / MIB:.0f}"),
        ("**GET /metrics, ms p50 / p90**", lambda r: ""),
        ("(a) idle, text", latency("idle_text")),
        ("(b) idle, gzip", latency("idle_gzip")),
        ("(c) idle, OpenMetrics", latency("idle_openmetrics")),
        ("(d) 1 VM changed, text", latency("changed_text")),
        ("(d) 1 VM changed, gzip", latency("changed_gzip")),
        ("naive, text", latency("naive_text")),
        ("naive, gzip", latency("naive_gzip")),
        ("**handler time (server side), ms p50 / p90**", lambda r: ""),
        ("(a) idle, text ", handler("idle_text")),
        ("(d) 1 VM changed, text ", handler("changed_text")),
        ("(d) 1 VM changed, gzip ", handler("changed_gzip")),
        ("naive, text (generate_latest)", handler("naive_text")),
        ("naive, gzip (generate_latest + gzip)", handler("naive_gzip")),
        ("**state changes, ms p50 / p90**", lambda r: ""),
        ("(e) full relist (4 lists)", latency("relist")),
        ("clock tick (Fleet.tick, 5 s steps)", latency("tick")),
        ("**naive / ours (medians)**", lambda r: ""),
        ("GET, idle text", ratio("naive_text", "idle_text")),
        ("GET, idle gzip", ratio("naive_gzip", "idle_gzip")),
        ("GET, 1 VM changed, text", ratio("naive_text", "changed_text")),
        ("GET, 1 VM changed, gzip", ratio("naive_gzip", "changed_gzip")),
        ("handler, 1 VM changed, text", ratio("naive_text", "changed_text", "server_median_s")),
        ("handler, 1 VM changed, gzip", ratio("naive_gzip", "changed_gzip", "server_median_s")),
    ]
    if any("report_rounds" in r for r in results):

        def report_rounds(r: Mapping[str, Any]) -> str:
            if "report_rounds" not in r:
                return "-"
            per_report = r["report_rounds_s"] / max(1, r["report_rounds"] * r["objects"]["guest_reports"])
            return f"{r['report_rounds']}: +{r['rss_report_rounds_bytes'] / MIB:.0f} MiB, {per_report * 1e3:.2f} ms"

        rows.insert(9, ("more guest report rounds: RSS, time per report", report_rounds))
    header = ["", *(f"N={r['vms']}" for r in results)]
    body = [[label, *(cell(r) for r in results)] for label, cell in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                                 enumerate(zip(cells, widths, strict=True))) + " |"

    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"

    return "\n".join([line(header), rule, *(line(row) for row in body)])


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.replace("_", "").split(",") if part.strip()]
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError("sizes are positive integers separated by commas")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scrape", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="fleet sizes (VMs)")
    parser.add_argument("--scrapes", type=int, default=DEFAULT_SCRAPES, help="requests per scrape phase")
    parser.add_argument("--phase-budget", type=float, default=DEFAULT_PHASE_BUDGET,
                        help=f"seconds after which a phase stops early, once it has {MIN_RUNS} runs")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations of a 2nd ingest")
    parser.add_argument("--report-rounds", type=int, default=0,
                        help="at the end, this many more reports from every guest (the fleet keeps a history)")
    parser.add_argument("--json", type=Path, help="write every figure and the machine facts here")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scrapes < 1:
        parser.error("--scrapes must be at least 1")

    def progress(message: str) -> None:
        print(message, flush=True)

    if args.one is not None:
        result = run_size(args.one, scrapes=args.scrapes, budget=args.phase_budget, seed=args.seed,
                          trace_memory=args.tracemalloc, report_rounds=args.report_rounds, progress=progress)
        if args.result is not None:
            args.result.write_text(json.dumps(result, indent=2), encoding="utf-8")
        return 0

    facts = machine_facts()
    progress(
        f"{facts['date']}, commit {facts['commit']}: {facts['nproc']} CPUs ({facts['cpu']}), "
        f"{facts['memory_gib']} GiB, Python "
        f"{facts['python']}, load average {' '.join(f'{x:.2f}' for x in facts['loadavg'])}; "
        f"sizes {', '.join(map(str, args.sizes))}, {args.scrapes} runs per phase, "
        f"phase budget {args.phase_budget:g} s"
    )
    started = time.perf_counter()
    results = [r for vms in args.sizes if (r := run_in_subprocess(vms, args)) is not None]
    elapsed = time.perf_counter() - started
    if results:
        print()
        print(table(results))
        reduced = sorted({(r["vms"], name) for r in results for name, p in r["phases"].items()
                          if p["runs"] < p["planned"]})
        if reduced:
            print(f"\n[k] after a figure: only k runs, because the phase hit its {args.phase_budget:g} s budget "
                  "(" + ", ".join(f"N={vms} {name}" for vms, name in reduced) + ").")
    print(f"\ntotal {elapsed:.0f} s")
    if args.json is not None:
        payload = {"machine": facts, "scrapes": args.scrapes, "phase_budget_s": args.phase_budget,
                   "seconds": elapsed, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if len(results) == len(args.sizes) else 1


if __name__ == "__main__":
    sys.exit(main())
