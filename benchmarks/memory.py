"""Bytes per VM the exporter's Python objects hold after the first sync, and where they were allocated.

Run ``python -m benchmarks.memory [--sizes 1000,10000] [--sites 25]``. For each size, in this process,
the simulator's fleet is built (as ``benchmarks.scrape`` builds it, before tracing starts, so the raw
API objects are not counted), then ``tracemalloc`` traces the service's own wiring
(``benchmarks.scrape.Harness``) through one ingest — lists, a guestosinfo round, a report from every
Windows guest — and one gzip scrape. It prints what is still held and the peak, and the allocation
sites holding the most, each named by the innermost frame in ``exporter/`` and the one calling it.

The marginal cost per VM is the difference between two sizes divided by the difference in VMs;
it is what ``python -m benchmarks.e2e`` measures as RSS, without the interpreter's floor and the
allocator's slack. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import gc
import logging
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import structlog

from benchmarks.scrape import Harness, build_fleet_objects, parse_sizes

MIB = 1024 * 1024
FRAMES = 8


@dataclass(frozen=True)
class Traced:
    vms: int
    held: int
    peak: int
    sites: list[tuple[str, int, int]]  # (site, bytes, blocks), most bytes first


def _site(traceback: tracemalloc.Traceback) -> str:
    inner = [f for f in reversed(list(traceback)) if "/exporter/" in f.filename][:2]
    return " < ".join(f"{f.filename.split('/exporter/', 1)[1]}:{f.lineno}" for f in inner) or "(outside exporter/)"


def trace(vms: int, *, seed: int = 1) -> Traced:
    objects = build_fleet_objects(vms, seed=seed)
    gc.collect()
    tracemalloc.start(FRAMES)
    try:
        harness = Harness(objects)
        harness.ingest()
        harness.endpoint.body(openmetrics=False, compress=True)
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for stat in snapshot.statistics("traceback"):
        site = _site(stat.traceback)
        size[site] += stat.size
        count[site] += stat.count
    return Traced(vms, held, peak, [(site, n, count[site]) for site, n in size.most_common()])


def report(results: Sequence[Traced], sites: int) -> str:
    lines = []
    for result in results:
        lines.append(
            f"N={result.vms}: held {result.held / MIB:.1f} MiB ({result.held / result.vms:.0f} B/VM), "
            f"peak {result.peak / MIB:.1f} MiB"
        )
        for site, size, blocks in result.sites[:sites]:
            lines.append(f"  {size / result.vms:7.0f} B/VM {blocks:8d} blocks  {site}")
    for small, large in pairwise(results):
        marginal = (large.held - small.held) / (large.vms - small.vms)
        lines.append(f"marginal {small.vms} → {large.vms} VMs: {marginal:.0f} B/VM ({marginal / 1024:.2f} KiB)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[1000, 10000], help="fleet sizes (VMs)")
    parser.add_argument("--sites", type=int, default=25, help="allocation sites listed per size")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed")
    args = parser.parse_args(argv)
    # The ingest logs a line per freeze failure; those are not what is measured here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(report([trace(vms, seed=args.seed) for vms in args.sizes], args.sites), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
