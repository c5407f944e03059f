"""kubectl writes to the simulator reach the exporter: a VMSnapshot created, given a status, deleted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from exporter.simulator import Simulator, SimulatorConfig
from tests.integration.conftest import value, vmi
from tests.tools import required_tool

pytestmark = pytest.mark.slow

SNAPSHOT = {
    "apiVersion": "snapshot.kubevirt.io/v1beta1",
    "kind": "VirtualMachineSnapshot",
    "metadata": {"name": "by-hand", "namespace": "ns"},
    "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "vm1"}},
}


async def kubectl(kubeconfig: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        required_tool("kubectl"),
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(kubeconfig.parent / "cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_kubectl_create_patch_delete_reach_the_exporter(cluster, tmp_path: Path) -> None:
    # kubectl sends its token only over TLS.
    simulator = Simulator(SimulatorConfig(story=False, tls=True, bookmark_interval=0.5))
    await simulator.start()
    running = None
    try:
        running = await cluster(simulator=simulator, seed_objects=[("virtualmachineinstances", vmi("vm1"))])
        kubeconfig = tmp_path / "kubectl-config"
        simulator.write_kubeconfig(kubeconfig)
        manifest = tmp_path / "snapshot.yaml"
        manifest.write_text(yaml.safe_dump(SNAPSHOT))

        await kubectl(kubeconfig, "create", "--validate=false", "-f", str(manifest))
        # The watch delivers it: wait_for gives up after 15 s.
        await running.wait_for(lambda s: value(s, "kubevirt_vss_snapshots", namespace="ns", name="vm1") == 1)

        status = {
            "status": {
                "phase": "Succeeded",
                "indications": ["GuestAgent", "Online"],
                "creationTime": "2026-11-29T10:00:00Z",
                "readyToUse": True,
            }
        }
        await kubectl(
            kubeconfig,
            "patch",
            "vmsnapshot",
            "by-hand",
            "-n",
            "ns",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )
        samples = await running.wait_for(
            lambda s: value(s, "kubevirt_vss_last_snapshot_consistency", namespace="ns", name="vm1") is not None
        )
        assert value(samples, "kubevirt_vss_last_snapshot_consistency", namespace="ns", name="vm1") == 2

        await kubectl(kubeconfig, "delete", "vmsnapshot", "by-hand", "-n", "ns")
        await running.wait_for(lambda s: value(s, "kubevirt_vss_snapshots", namespace="ns", name="vm1") is None)
    finally:
        if running is not None:
            await cluster.stop_exporter(running)
        await simulator.stop()
