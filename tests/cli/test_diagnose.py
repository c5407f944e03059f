from __future__ import annotations

import argparse
import asyncio
import json
import socket
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.cli import diagnose as cli
from exporter.simulator import Simulator, SimulatorConfig
from exporter.state.diagnosis import diagnose, diagnosis_object
from exporter.state.records import FreezeErrorDetail, SnapshotJudgement, VmKey, VmState

NOW = 1.7e9
FAILING = VmState(
    key=VmKey("finance", "win-exchange-01"),
    phase="Running",
    guest_os="mswindows",
    agent_connected=True,
    checks=(("agent_connected", True), ("fsfreeze_available", True)),
    last_snapshot=SnapshotJudgement(
        "snap-2", "Failed", 0, "failed", "add_volume_to_snapshot_set", "GuestAgent,Online", NOW
    ),
    last_consistent_snapshot_timestamp=NOW - 86400,
    last_freeze_error=FreezeErrorDetail(
        "add_volume_to_snapshot_set",
        "unknown",
        "",
        "",
        "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\",
        "System Reserved",
        "snapshot",
        NOW,
    ),
)


def detail_of(state: VmState) -> dict[str, Any]:
    return diagnosis_object(state, diagnose(state, now=NOW + 60))


def test_text_names_the_problems_the_fix_and_the_runbooks() -> None:
    text = cli.render_text(detail_of(FAILING))
    assert text.startswith("VM finance/win-exchange-01: PROBLEMS FOUND")
    assert "[  ok] agent_connected" in text and "[FAIL] freeze_not_failing" in text
    assert "[   ?] writers_stable" in text
    assert "drive letter" in text  # the GUID-volume remediation
    assert "runbook: https://" in text and "KubevirtVssFreezeAddVolumeFailed.md" in text


def test_text_never_says_none_when_checks_are_unknown() -> None:
    quiet = VmState(key=VmKey("ns", "vm"), phase="Running", guest_os="mswindows", agent_connected=True)
    text = cli.render_text(detail_of(quiet))
    assert "Problems: no check fails; unknown: " in text and "writers_stable" in text
    assert "none" not in text.split("Problems:")[1].split(";")[0]


def _serve(details: dict[str, dict[str, Any]]) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        vm = f"{request.match_info['namespace']}/{request.match_info['name']}"
        if vm not in details:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(details[vm])

    app = web.Application()
    app.router.add_get("/api/v1/vms/{namespace}/{name}", handler)
    return app


def _args(vm: str, exporter: str | None, *, as_json: bool) -> argparse.Namespace:
    return argparse.Namespace(vm=vm, exporter=exporter, kubeconfig=None, context=None, json=as_json)


async def test_exporter_mode_prints_the_object_and_exits_by_health(capsys: pytest.CaptureFixture[str]) -> None:
    healthy = VmState(
        key=VmKey("ns", "ok"),
        phase="Stopped",
        last_snapshot=SnapshotJudgement("s", "Succeeded", 3, "offline", "", "", NOW),
        last_consistent_snapshot_timestamp=NOW,
    )
    details = {"finance/win-exchange-01": {**detail_of(FAILING), "extra": 1}, "ns/ok": detail_of(healthy)}
    async with TestServer(_serve(details)) as server:
        url = str(server.make_url(""))
        # main() runs its own event loop; run it in a thread so this loop keeps serving.
        code = await asyncio.to_thread(cli.main, _args("finance/win-exchange-01", url, as_json=True))
        printed = json.loads(capsys.readouterr().out)
        assert code == cli.EXIT_PROBLEMS
        assert list(printed) == ["vm", "healthy", "last_snapshot", "checks", "problems", "next_steps"]
        assert list(printed["last_snapshot"]) == [
            "name",
            "phase",
            "level",
            "consistency",
            "reason",
            "indications",
            "time",
            "failed_volumes",
        ]
        assert all(list(check) == ["name", "status", "evidence"] for check in printed["checks"])
        assert printed["last_snapshot"]["level"] == 0 and printed["healthy"] is False
        assert await asyncio.to_thread(cli.main, _args("ns/ok", url, as_json=False)) == cli.EXIT_HEALTHY
        assert "VM ns/ok: healthy" in capsys.readouterr().out
        assert await asyncio.to_thread(cli.main, _args("ns/missing", url, as_json=True)) == cli.EXIT_ERROR
        assert "does not export ns/missing" in capsys.readouterr().err


def test_an_unreachable_exporter_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cli.main(_args("ns/vm", f"http://127.0.0.1:{port}", as_json=True)) == cli.EXIT_ERROR
    assert "cannot read the exporter" in capsys.readouterr().err


def test_a_malformed_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(_args("just-a-name", None, as_json=False)) == cli.EXIT_ERROR


async def test_cluster_mode_reads_one_vm_and_says_what_it_cannot_know(tmp_path) -> None:
    async with Simulator(SimulatorConfig(seed=1, time_speed=30)) as simulator:
        kubeconfig = tmp_path / "kubeconfig"
        simulator.write_kubeconfig(kubeconfig)
        windows = await cli.from_cluster(VmKey("finance", "win-ad-01"), str(kubeconfig), None)
        frozen = await cli.from_cluster(VmKey("engineering", "linux-db-01"), str(kubeconfig), None)
        with pytest.raises(cli.Unreachable, match="no VirtualMachine"):
            await cli.from_cluster(VmKey("finance", "no-such-vm"), str(kubeconfig), None)
    checks = {c["name"]: c for c in windows["checks"]}
    assert checks["agent_connected"]["status"] == "ok"
    assert checks["fsfreeze_available"]["status"] == "ok"
    assert checks["writers_stable"]["status"] == "unknown" and "--exporter" in checks["writers_stable"]["evidence"]
    stuck = {c["name"]: c for c in frozen["checks"]}["not_stuck_frozen"]
    assert stuck["status"] == "unknown" and "since when is unknown" in stuck["evidence"]
    assert "Problems: no check fails; unknown: " in cli.render_text(frozen)


def test_an_unreachable_cluster_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n",
        encoding="utf-8",
    )
    args = argparse.Namespace(vm="ns/vm", exporter=None, kubeconfig=str(kubeconfig), context=None, json=False)
    assert cli.main(args) == cli.EXIT_ERROR
    assert "cannot read the cluster" in capsys.readouterr().err


async def test_cluster_mode_names_every_failed_volume_of_the_snapshot_content(tmp_path) -> None:
    quota = "rpc error: code = ResourceExhausted desc = quota"
    timeout = "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    vm = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"namespace": "infra", "name": "db-01", "uid": "vm-1"},
        "status": {"printableStatus": "Running"},
    }
    snapshot = {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {"namespace": "infra", "name": "snap-1", "uid": "s-1", "creationTimestamp": "2026-11-20T02:00:00Z"},
        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "db-01"}},
        "status": {
            "phase": "Failed",
            "indications": ["GuestAgent", "Online"],
            "error": {"message": f"VolumeSnapshot vmsnapshot-s-1-volume-data error: {quota}"},
        },
    }
    content = {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshotContent",
        "metadata": {"namespace": "infra", "name": "vmsnapshot-content-s-1"},
        "spec": {
            "virtualMachineSnapshotName": "snap-1",
            "source": {"virtualMachine": {"metadata": {"name": "db-01", "namespace": "infra"}}},
            "volumeBackups": [
                {"volumeName": v, "volumeSnapshotName": f"vmsnapshot-s-1-volume-{v}"} for v in ("data", "logs")
            ],
        },
        "status": {
            "volumeSnapshotStatus": [
                {"volumeSnapshotName": "vmsnapshot-s-1-volume-data", "error": {"message": quota}},
                {"volumeSnapshotName": "vmsnapshot-s-1-volume-logs", "error": {"message": timeout}},
            ]
        },
    }
    async with Simulator(SimulatorConfig(story=False)) as simulator:
        simulator.store.upsert("virtualmachines", vm)
        simulator.store.upsert("virtualmachinesnapshots", snapshot)
        simulator.store.upsert("virtualmachinesnapshotcontents", content)
        kubeconfig = tmp_path / "kubeconfig"
        simulator.write_kubeconfig(kubeconfig)
        result = await cli.from_cluster(VmKey("infra", "db-01"), str(kubeconfig), None)
    assert result["last_snapshot"]["failed_volumes"] == [
        {"volume": "data", "reason": "resource_exhausted"},
        {"volume": "logs", "reason": "timeout"},
    ]
    assert "volume logs storage snapshot failed (timeout)" in cli.render_text(result)
