"""Reconvergence after an API outage: the simulated API is killed, stays away, and comes back.

``python -m benchmarks.soak.outage [--vms 1000] [--outage 60] [--runs 3] [--json PATH]``. The
exporter runs against ``simulate --vms N``; once it is ready the simulator process is killed
(connections refused, as when an API server restarts), and after ``--outage`` seconds a new one
starts on the same port with the same seed (so the kubeconfig stays valid). *Reconverged* is the
first moment the exporter reports every resource synced with a list or watch contact made after
the API's return; the figure is the time from the return (the API answering ``/version``) to then.
It also checks that /readyz stayed 200 and the VMs stayed served throughout the outage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.e2e import Simulated, free_port, machine, process
from benchmarks.soak.__main__ import wait_for_file, wait_ready

RESOURCES = ("virtualmachineinstances", "virtualmachines", "virtualmachinesnapshots", "events")


async def exporter_view(session: aiohttp.ClientSession, metrics: str) -> tuple[dict[str, float], dict[str, float], int]:
    """(synced by resource, last contact by resource, VMs served)."""
    async with session.get(metrics + "/metrics", headers={"Accept": "text/plain"}) as response:
        text = await response.text()
    synced: dict[str, float] = {}
    contact: dict[str, float] = {}
    vms = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "kubevirt_vss_exporter_synced":
                synced[sample.labels["resource"]] = sample.value
            elif sample.name == "kubevirt_vss_exporter_last_contact_timestamp_seconds":
                contact[sample.labels["resource"]] = sample.value
            elif sample.name == "kubevirt_vss_vm_info":
                vms += 1
    return synced, contact, vms


async def api_back(session: aiohttp.ClientSession, simulated: Simulated) -> None:
    headers = {"Authorization": f"Bearer {simulated.token}"}
    while True:
        try:
            async with session.get(simulated.url + "/version", headers=headers, ssl=simulated.ssl_context) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, OSError, ssl.SSLError):
            pass
        await asyncio.sleep(0.05)


async def reconverged(session: aiohttp.ClientSession, metrics: str, since_epoch: float) -> int:
    """Wait until every resource is synced with a contact after ``since_epoch``; the VMs then served."""
    deadline = time.monotonic() + 300
    while True:
        synced, contact, vms = await exporter_view(session, metrics)
        if all(synced.get(r) == 1 and contact.get(r, 0) >= since_epoch for r in RESOURCES):
            return vms
        if time.monotonic() > deadline:
            raise RuntimeError("no reconvergence within 300 s")
        await asyncio.sleep(0.1)


async def one_outage(options: argparse.Namespace, run: int, progress: Any) -> dict[str, Any]:
    sim_port, metrics_port = free_port(options.base_port, 0), free_port(options.base_port, 1)
    metrics = f"http://127.0.0.1:{metrics_port}"
    with tempfile.TemporaryDirectory(prefix="kubevirt-vss-outage-") as folder:
        workdir = Path(folder)
        kubeconfig = workdir / "kubeconfig"
        simulate = [
            sys.executable, "-m", "exporter", "simulate", "--vms", str(options.vms), "--seed", "1",
            "--listen", f"127.0.0.1:{sim_port}", "--write-kubeconfig", str(kubeconfig),
        ]  # fmt: skip
        exporter_command = [
            sys.executable, "-m", "exporter", "run", "--kubeconfig", str(kubeconfig),
            "--listen", f"127.0.0.1:{metrics_port}", "--log-level", "warning",
        ]  # fmt: skip
        async with aiohttp.ClientSession() as session:
            with process(f"simulator-{run}a", simulate, workdir) as first:
                await wait_for_file(kubeconfig, first)
                simulated = Simulated.from_kubeconfig(kubeconfig)
                with process(f"exporter-{run}", exporter_command, workdir) as exporter:
                    await wait_ready(session, metrics + "/readyz", exporter)
                    _, _, vms_before = await exporter_view(session, metrics)
                    first.kill()
                    first.wait()
                    killed = time.monotonic()
                    progress(f"run {run}: API killed with {vms_before} VMs served")
                    always_ready, min_vms = True, vms_before
                    while time.monotonic() - killed < options.outage:
                        async with session.get(metrics + "/readyz") as response:
                            always_ready &= response.status == 200
                        min_vms = min(min_vms, (await exporter_view(session, metrics))[2])
                        await asyncio.sleep(1.0)
                    with process(f"simulator-{run}b", simulate, workdir):
                        await api_back(session, simulated)
                        back, back_epoch = time.monotonic(), time.time()
                        vms = await reconverged(session, metrics, back_epoch)
                        seconds = time.monotonic() - back
    figures = {
        "run": run,
        "outage_s": round(back - killed, 1),
        "reconverged_after_s": round(seconds, 2),
        "ready_throughout": always_ready,
        "vms_before": vms_before,
        "vms_min_during": min_vms,
        "vms_after": vms,
    }
    progress(f"run {run}: {figures}")
    return figures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak.outage", description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=0, help="use ports BASE..BASE+1 (default: free ports)")
    parser.add_argument("--json", type=Path, metavar="PATH")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    facts = machine()
    print(f"# {facts}", flush=True)
    runs = [asyncio.run(one_outage(options, run, lambda line: print(line, flush=True))) for run in range(options.runs)]
    seconds = [r["reconverged_after_s"] for r in runs]
    summary = {"runs": len(runs), "median_s": statistics.median(seconds), "max_s": max(seconds)}
    print(json.dumps(summary), flush=True)
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps({"machine": facts, "summary": summary, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
