"""Failed volumes of a snapshot's content, read by the real client from the simulator, named in the verdict."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.conftest import value, vmi

NS, VM = "infra", "db-01"
QUOTA = (
    'Failed to check and update snapshot content: failed to take snapshot of the volume pvc-data: "rpc error: '
    'code = ResourceExhausted desc = snapshot quota exceeded"'
)
TIMEOUT = (
    'Failed to check and update snapshot content: failed to take snapshot of the volume pvc-logs: "rpc error: '
    'code = DeadlineExceeded desc = context deadline exceeded"'
)
SNAPSHOT = {
    "apiVersion": "snapshot.kubevirt.io/v1beta1",
    "kind": "VirtualMachineSnapshot",
    "metadata": {"namespace": NS, "name": "snap-1", "uid": "s-1", "creationTimestamp": "2026-11-20T02:00:00Z"},
    "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": VM}, "failureDeadline": "5m0s"},
    "status": {
        "phase": "Failed",
        "indications": ["GuestAgent", "Online"],
        # pkg/storage/snapshot/snapshot.go:474-477 (v1.8.0): only the first failed VolumeSnapshot is named.
        "error": {
            "time": "2026-11-20T02:00:04Z",
            "message": f"VolumeSnapshot vmsnapshot-s-1-volume-data error: {QUOTA}",
        },
        "conditions": [{"type": "Failure", "status": "True", "reason": "snapshot deadline exceeded"}],
        "virtualMachineSnapshotContentName": "vmsnapshot-content-s-1",
    },
}


def content(errors: dict[str, str | None]) -> dict:
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshotContent",
        "metadata": {"namespace": NS, "name": "vmsnapshot-content-s-1", "uid": "c-1"},
        "spec": {
            "virtualMachineSnapshotName": "snap-1",
            "source": {"virtualMachine": {"metadata": {"name": VM, "namespace": NS}}},
            "volumeBackups": [
                {"volumeName": volume, "volumeSnapshotName": f"vmsnapshot-s-1-volume-{volume}"} for volume in errors
            ],
        },
        "status": {
            "readyToUse": False,
            "volumeSnapshotStatus": [
                {"volumeSnapshotName": f"vmsnapshot-s-1-volume-{volume}"}
                | ({"error": {"time": "2026-11-20T02:00:04Z", "message": error}} if error else {})
                for volume, error in errors.items()
            ],
        },
    }


async def failed_volumes(running, *, timeout: float = 15.0, want: list[dict] | None = None) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        async with running.session.get(f"{running.url}/api/v1/vms/{NS}/{VM}") as response:
            assert response.status == 200
            found = (await response.json())["last_snapshot"]["failed_volumes"]
        if want is None or found == want or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_the_content_names_every_failed_volume_and_follows_its_changes(cluster) -> None:
    running = await cluster(
        seed_objects=[
            ("virtualmachineinstances", vmi(VM, namespace=NS)),
            ("virtualmachinesnapshots", SNAPSHOT),
            ("virtualmachinesnapshotcontents", content({"root": None, "data": QUOTA, "logs": TIMEOUT})),
        ]
    )
    both = [{"volume": "data", "reason": "resource_exhausted"}, {"volume": "logs", "reason": "timeout"}]
    assert await failed_volumes(running, want=both) == both
    samples = await running.scrape()
    assert (
        value(
            samples,
            "kubevirt_vss_snapshot_storage_failures_total",
            namespace=NS,
            name=VM,
            reason="volume_snapshot_error",
        )
        == 1.0
    )
    # The driver's retry for one volume succeeded: the watch brings the content's new status.
    running.simulator.store.upsert(
        "virtualmachinesnapshotcontents", content({"root": None, "data": None, "logs": TIMEOUT})
    )
    one = [{"volume": "logs", "reason": "timeout"}]
    assert await failed_volumes(running, want=one) == one
    # Without the content, the snapshot's own error still names its first failed volume.
    running.simulator.store.delete("virtualmachinesnapshotcontents", NS, "vmsnapshot-content-s-1")
    first = [{"volume": "data", "reason": "resource_exhausted"}]
    assert await failed_volumes(running, want=first) == first
