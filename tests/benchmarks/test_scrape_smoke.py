"""The benchmark's code path runs end to end on a small fleet, and both exporters expose the same samples.

Nothing here is timed: it only keeps ``python -m benchmarks.scrape`` working and its baseline honest.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.self_metrics import PREFIX as SELF_PREFIX

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

scrape = importlib.import_module("benchmarks.scrape")

Sample = tuple[str, frozenset[tuple[str, str]], float]


def samples(body: bytes) -> set[Sample]:
    return {
        (sample.name, frozenset(sample.labels.items()), sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if not sample.name.startswith(SELF_PREFIX)
    }


async def test_measure_runs_and_naive_matches_ours() -> None:
    objects = scrape.build_fleet_objects(50)
    harness = scrape.Harness(objects)
    harness.ingest()
    harness.track_states()
    assert harness.states is not None
    registry = scrape.naive_registry(harness.states)
    lines: list[str] = []

    figures = await scrape.measure(harness, registry, scrapes=3, budget=5.0, progress=lines.append)

    assert figures["phases"]["idle_text"]["runs"] == 3
    assert {"changed_text", "changed_gzip", "naive_text", "naive_gzip", "relist", "tick"} <= figures["phases"].keys()
    assert figures["series"] == figures["naive_series"] > 0
    assert any(line.startswith("N=50 naive_gzip") for line in lines)

    ours = samples(harness.endpoint.body(openmetrics=False, compress=False))
    naive = samples(generate_latest(registry))
    assert ours == naive
    names = {name for name, _, _ in ours}
    # The small fleet covers the interesting families, so the comparison above means something.
    assert {
        "kubevirt_vss_vm_info",
        "kubevirt_vss_check_ok",
        "kubevirt_vss_last_snapshot_info",
        "kubevirt_vss_freeze_errors_total",
        "kubevirt_vss_writer_failed_info",
        "kubevirt_vss_guest_volume_free_bytes",
    } <= names


def test_table_renders_a_result() -> None:
    result = scrape.run_size(30, scrapes=1, budget=1.0, report_rounds=1, progress=lambda line: None)
    json.dumps(result)  # what --json writes
    table = scrape.table([result])
    assert "N=30" in table
    assert "(d) 1 VM changed, gzip" in table
    assert "more guest report rounds" in table
