"""KubeVirt 1.9: PartialSnapshot and the Quiesced backup condition: shapes → verdicts."""

from __future__ import annotations

from tests.conformance.harness import T0, backup, snapshot, ts, verdict, vm, vmi

PARTIAL = ["GuestAgent", "Online", "PartialSnapshot"]


def test_v1_9_partial_snapshot() -> None:
    # snapshot.go:945-963 (v1.9.0): an excluded volume that could be snapshotted adds PartialSnapshot,
    # appended after the sorted list (snapshot.go:905-921).
    result = verdict(
        [
            (T0 - 60, vmi(windows=False)),
            (T0 + 9, snapshot(phase="Succeeded", indications=PARTIAL, creation_time=T0 + 4, excluded=["data"])),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (2, "filesystem", "partial")


def test_before_1_9_partial_from_the_vm_volume_statuses() -> None:
    # Before v1.9 there is no indication; the VM's volumeSnapshotStatuses (snapshot.go:938-990, v1.8.0) say
    # which volumes can be snapshotted, and excludedVolumes (snapshot.go:922-935, v1.8.0) which were left out.
    statuses = [
        {"name": "rootdisk", "enabled": True},
        {"name": "data", "enabled": True},
        {
            "name": "cloudinitdisk",
            "enabled": False,
            "reason": "Snapshot is not supported for this volumeSource type [cloudinitdisk]",
        },
    ]
    partial = verdict(
        [
            (T0 - 60, vm(volume_statuses=statuses)),
            (T0 - 60, vmi(windows=False)),
            (
                T0 + 9,
                snapshot(
                    phase="Succeeded",
                    indications=["GuestAgent", "Online"],
                    creation_time=T0 + 4,
                    excluded=["cloudinitdisk", "data"],
                ),
            ),
        ]
    )
    assert (partial.level, partial.reason) == (2, "partial")
    whole = verdict(
        [
            (T0 - 60, vm(volume_statuses=statuses)),
            (T0 - 60, vmi(windows=False)),
            (
                T0 + 9,
                snapshot(
                    phase="Succeeded",
                    indications=["GuestAgent", "Online"],
                    creation_time=T0 + 4,
                    excluded=["cloudinitdisk"],
                ),
            ),
        ]
    )
    assert (whole.level, whole.reason) == (2, "")


def test_v1_9_backup_quiesced_false() -> None:
    # pkg/storage/cbt/backup.go:1066-1090 (v1.9.0) sets Quiesced=False/QuiesceFailed; the error is the
    # Complete warning (backup.go:69,893) from BackupMsg = err.Error() (virtwrap/storage/backup.go:182-185).
    error = (
        "virError(Code=1, Domain=10, Message='guest agent command failed: unable to execute QEMU agent command "
        "'guest-fsfreeze-freeze': failed to add D:\\\\ to snapshot set: Windows error 0x8004230e: ')"
    )
    conditions = [
        {
            "type": "Quiesced",
            "status": "False",
            "reason": "QuiesceFailed",
            "message": "Guest filesystem quiesce failed",
            "lastTransitionTime": ts(T0 + 30),
        },
        {
            "type": "Complete",
            "status": "True",
            "reason": "CompletedWithWarning",
            "message": "Completed VirtualMachineBackup, warning: " + error,
            "lastTransitionTime": ts(T0 + 90),
        },
    ]
    result = verdict([(T0 - 60, vmi()), (T0 + 90, backup(conditions))])
    assert result.freeze_errors == {"add_volume_to_snapshot_set": 1}
