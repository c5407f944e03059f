from __future__ import annotations

from exporter.cli.diagnose import _collect, diagnosis, render_text
from exporter.simulator import Simulator, SimulatorConfig
from exporter.state.records import FreezeErrorDetail, SnapshotJudgement, VmKey, VmState

FAILING = VmState(
    key=VmKey("finance", "win-exchange-01"),
    node="node01",
    phase="Running",
    guest_os_version="Windows Server 2019 Standard",
    agent_connected=True,
    checks=(("agent_connected", True), ("fsfreeze_available", True)),
    last_snapshot=SnapshotJudgement(
        "snap-2", "Failed", 0, "failed", "add_volume_to_snapshot_set", "GuestAgent,Online", 1.7e9
    ),
    last_consistent_snapshot_timestamp=1.69e9,
    freeze_error_counts=(("add_volume_to_snapshot_set", "unknown", 2),),
    last_freeze_error=FreezeErrorDetail(
        "add_volume_to_snapshot_set",
        "unknown",
        "",
        "",
        "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\",
        "System Reserved",
        "snapshot",
        1.7e9,
    ),
)


def test_diagnosis_names_the_problems_and_the_fix() -> None:
    report = diagnosis(FAILING, now=1.7e9 + 60)
    assert report["problems"] == [
        "last snapshot snap-2 is failed (add_volume_to_snapshot_set)",
        "freeze failing: add_volume_to_snapshot_set",
    ]
    text = render_text(report)
    assert "volume \\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\ = System Reserved" in text
    assert "drive letter" in text  # the GUID-volume remediation
    assert "[  ok] agent_connected" in text


def test_healthy_vm_has_no_problems() -> None:
    healthy = VmState(
        key=VmKey("ns", "vm"),
        phase="Running",
        checks=(("agent_connected", True),),
        last_snapshot=SnapshotJudgement("s", "Succeeded", 3, "application", "", "GuestAgent,Online", 1.0),
    )
    assert diagnosis(healthy, now=2.0)["problems"] == []


async def test_collect_reads_one_vm_from_the_api(tmp_path) -> None:
    async with Simulator(SimulatorConfig(seed=1, time_speed=30)) as simulator:
        kubeconfig = tmp_path / "kubeconfig"
        simulator.write_kubeconfig(kubeconfig)
        vm = next(
            o
            for o in simulator.store.list("virtualmachines")
            if o["metadata"]["annotations"].get("kubevirt-vss-exporter/scenario", "") == "healthy_windows"
        )
        key = VmKey(vm["metadata"]["namespace"], vm["metadata"]["name"])
        state, _notes = await _collect(key, str(kubeconfig), None)
    assert state is not None and state.phase == "Running"
    assert dict(state.checks)["agent_connected"] is True
    assert state.fsfreeze_available is True
