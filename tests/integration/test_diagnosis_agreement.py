"""``diagnose --exporter URL --json`` agrees with the exporter's metrics for every VM of the demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exporter.cli import diagnose as cli
from tests.demo import DEMO_VMS, Demo, Samples, running_demo

# (last snapshot level or None, whether the exporter shows something failing)
Expectation = tuple[float | None, bool]


def expectations(samples: Samples) -> dict[str, Expectation]:
    """Per VM, what the metrics say: the level, and failing check / level below 2 / recent freeze failure."""
    per_vm: dict[str, dict[str, Any]] = {}
    for (name, labels), value in samples.items():
        label = dict(labels)
        if "namespace" not in label or "name" not in label:
            continue
        vm = per_vm.setdefault(f"{label['namespace']}/{label['name']}", {"checks": [], "freeze": []})
        if name == "kubevirt_vss_last_snapshot_consistency":
            vm["level"] = value
        elif name == "kubevirt_vss_check_ok":
            vm["checks"].append(value)
        elif name == "kubevirt_vss_last_freeze_error_timestamp_seconds":
            vm["freeze"].append(value)
        elif name == "kubevirt_vss_last_consistent_snapshot_timestamp_seconds":
            vm["consistent"] = value
    result: dict[str, Expectation] = {}
    for vm, found in per_vm.items():
        level = found.get("level")
        consistent = found.get("consistent", float("-inf"))
        freeze_newer = bool(found["freeze"]) and max(found["freeze"]) > consistent
        failing = 0.0 in found["checks"] or (level is not None and level < 2) or freeze_newer
        result[vm] = (level, failing)
    return result


def run_diagnose(vm: str, url: str) -> tuple[int, dict[str, Any]]:
    """The command as a user runs it, in-process (what main prints, without redirecting stdout)."""
    args = argparse.Namespace(vm=vm, exporter=url, kubeconfig=None, context=None, json=True)
    code, output = cli.run(args)
    return code, json.loads(output)


async def page_verdict(demo: Demo, vm: str) -> bool:
    """Whether the VM's status page says it has problems."""
    async with demo.session.get(f"{demo.url}/vm/{vm}") as response:
        assert response.status == 200, vm
        return "problems found" in await response.text()


@pytest.mark.slow
async def test_diagnose_agrees_with_the_metrics_for_every_demo_vm(tmp_path: Path) -> None:
    # A short stuck-frozen limit, so the stuck VM pages within the test as it does after 5 minutes.
    async with running_demo(tmp_path, stuck_frozen_after=2.0) as demo:

        async def story_played() -> bool:
            seen = expectations(await demo.scrape())
            return (
                set(DEMO_VMS) <= set(seen)
                and seen["engineering/linux-db-01"][1]
                and seen["finance/win-exchange-01"][1]
                and seen["finance/win-sql-01"][0] == 2  # its first snapshot after the guest's report
            )

        await demo.wait_for("the stuck VM, the add-volume failure and win-sql-01's failed writers", story_played)
        for _attempt in range(10):
            before = expectations(await demo.scrape())
            results = {vm: await asyncio.to_thread(run_diagnose, vm, demo.url) for vm in DEMO_VMS}
            pages = {vm: await page_verdict(demo, vm) for vm in DEMO_VMS}
            after = expectations(await demo.scrape())
            if before == after:
                break  # nothing moved while diagnose ran: compare against this view
        assert before == after, "the demo kept changing under every attempt"

        for vm in DEMO_VMS:
            code, printed = results[vm]
            level, failing = before[vm]
            shown = printed["last_snapshot"]["level"] if printed["last_snapshot"] is not None else None
            assert shown == level, (vm, shown, level)
            assert printed["healthy"] is (not failing), (vm, printed["checks"])
            assert code == (cli.EXIT_PROBLEMS if failing else cli.EXIT_HEALTHY), vm
        assert before["finance/win-sql-01"][0] == 2  # writers failed: filesystem-consistent, as the metrics say
        stuck = {c["name"]: c for c in results["engineering/linux-db-01"][1]["checks"]}["not_stuck_frozen"]
        assert stuck["status"] == "fail" and "frozen since" in stuck["evidence"]
        assert all(c["status"] != "none" for _, printed in results.values() for c in printed["checks"])

        # Every demo VM's page renders, with the same verdict.
        assert pages == {vm: failing for vm, (_, failing) in before.items() if vm in pages}

        # The console script itself, once, as a separate process.
        completed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "exporter", "diagnose", "finance/win-exchange-01", "--exporter", demo.url, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == cli.EXIT_PROBLEMS, completed.stderr
        printed = json.loads(completed.stdout)
        assert list(printed) == list(cli.DIAGNOSIS_KEYS)
        assert list(printed["last_snapshot"]) == list(cli.SNAPSHOT_KEYS)
        assert all(list(check) == list(cli.CHECK_KEYS) for check in printed["checks"])
        assert any("add_volume_to_snapshot_set" in p["text"] for p in printed["problems"])
