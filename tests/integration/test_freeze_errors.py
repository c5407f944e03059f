"""Freeze failures through snapshots and Events: one count per episode, volume mapped, restart-proof."""

from __future__ import annotations

from tests.integration.conftest import value, vmi

NS, VM = "finance", "win-files"
GUID = "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\"
CHAIN = (
    "Internal error occurred: unexpected return code 400 (400 Bad Request), message: server error. command Freeze "
    "failed: \"LibvirtError(Code=1, Domain=10, Message='internal error: unable to execute QEMU agent command "
    "'guest-fsfreeze-freeze': failed to add \\\\\\\\?\\\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\\\ to "
    "snapshot set: ')\""
)
GUEST_INFO = {
    "guestAgentVersion": "108.0.2",
    "supportedCommands": [{"name": "guest-fsfreeze-freeze", "enabled": True}],
    "os": {"id": "mswindows"},
    "fsInfo": {
        "disks": [
            {
                "diskName": GUID,
                "mountPoint": "System Reserved",
                "fileSystemType": "NTFS",
                "usedBytes": 0,
                "totalBytes": 0,
            },
        ]
    },
    "fsFreezeStatus": "thawed",
}


def snapshot(name: str, created: str, error_time: str, phase: str = "InProgress") -> dict:
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {"namespace": NS, "name": name, "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {
            "source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": VM},
            "failureDeadline": "5m0s",
        },
        "status": {
            "phase": phase,
            "indications": ["GuestAgent", "Online"],
            "error": {"time": error_time, "message": CHAIN},
            "conditions": [{"type": "Progressing", "status": "False", "reason": "In error state"}],
        },
    }


def event(count: int, last: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": NS, "name": f"{VM}.17f", "uid": "event-1"},
        "involvedObject": {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "name": VM,
            "namespace": NS,
        },
        "reason": "FreezeError",
        "type": "Warning",
        "count": count,
        "source": {"component": "virt-handler"},
        "message": "Failed to freeze VMI: " + CHAIN,
        "firstTimestamp": "2026-11-20T02:00:05Z",
        "lastTimestamp": last,
    }


def errors_total(samples) -> float | None:
    return value(
        samples,
        "kubevirt_vss_freeze_errors_total",
        namespace=NS,
        name=VM,
        reason="add_volume_to_snapshot_set",
        cause="unknown",
    )


async def test_one_count_per_episode_with_volume_and_mount_point_and_restart(cluster) -> None:
    running = await cluster(seed_objects=[("virtualmachineinstances", vmi(VM, namespace=NS))])
    store = running.simulator.store
    store.set_guest_info(NS, VM, GUEST_INFO)
    await running.wait_for(lambda s: value(s, "kubevirt_vss_fsfreeze_available", namespace=NS, name=VM) == 1)

    # Episode 1: the controller retries every 5 s; virt-handler's Event count rises; then the deadline passes.
    for attempt in range(6):
        second = 5 + 5 * attempt
        store.upsert(
            "virtualmachinesnapshots", snapshot("snap-1", "2026-11-20T02:00:00Z", f"2026-11-20T02:00:{second:02d}Z")
        )
        store.upsert("events", event(attempt + 1, f"2026-11-20T02:00:{second:02d}Z"))
    store.upsert(
        "virtualmachinesnapshots", snapshot("snap-1", "2026-11-20T02:00:00Z", "2026-11-20T02:04:55Z", phase="Failed")
    )
    samples = await running.wait_for(
        lambda s: value(s, "kubevirt_vss_last_snapshot_consistency", namespace=NS, name=VM) == 0
    )
    assert errors_total(samples) == 1
    info = {
        dict(labels)["source"]: dict(labels)
        for name, labels in samples
        if name == "kubevirt_vss_last_freeze_error_info"
    }
    (detail,) = info.values()
    assert detail["volume"] == GUID and detail["mount_point"] == "System Reserved"
    assert detail["reason"] == "add_volume_to_snapshot_set"

    # Episode 2, an hour later.
    store.upsert("virtualmachinesnapshots", snapshot("snap-2", "2026-11-20T03:00:00Z", "2026-11-20T03:00:05Z"))
    samples = await running.wait_for(lambda s: errors_total(s) == 2)
    last_error = value(
        samples,
        "kubevirt_vss_last_freeze_error_timestamp_seconds",
        namespace=NS,
        name=VM,
        reason="add_volume_to_snapshot_set",
    )
    assert last_error is not None

    # A restarted exporter rebuilds from what the API still holds: the newest failure is still known.
    await cluster.stop_exporter(running)
    restarted = await cluster(simulator=running.simulator)
    samples = await restarted.wait_for(lambda s: errors_total(s) is not None)
    assert (
        value(
            samples,
            "kubevirt_vss_last_freeze_error_timestamp_seconds",
            namespace=NS,
            name=VM,
            reason="add_volume_to_snapshot_set",
        )
        == last_error
    )
    assert errors_total(samples) == 2
