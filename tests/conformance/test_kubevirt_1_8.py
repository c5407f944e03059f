"""KubeVirt 1.8: virt-api timeouts, libvirt codes, AgentVersionNotSupported, stale guest info, failed volumes."""

from __future__ import annotations

from tests.conformance.harness import (
    NAME,
    T0,
    backup,
    freeze_event,
    guest_info,
    snapshot,
    snapshot_content,
    ts,
    verdict,
    vmi,
)

SUCCEEDED = ["GuestAgent", "Online"]


def test_v1_8_virt_api_gives_up_after_10_seconds() -> None:
    # pkg/virt-api/rest/subresource.go:94 (v1.8.0): the client to virt-handler times out after 10 s; the error is
    # wrapped by NewInternalError (subresource.go:175-178) and returned bare by source.go:460-464 (v1.8.0).
    error = (
        'Internal error occurred: Put "https://10.244.0.12:8186/v1/namespaces/prod/virtualmachineinstances/'
        f'{NAME}/freeze": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    )
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 11, snapshot(phase="InProgress", indications=SUCCEEDED, error=error)),
            (T0 + 301, snapshot(phase="Failed", indications=SUCCEEDED, error=error, failed_deadline=True)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (0, "failed", "agent_timeout")
    assert result.freeze_errors == {"agent_timeout": 1}


def test_v1_8_domain_stopped_under_the_freeze() -> None:
    # virt-handler's FreezeError Event (pkg/virt-handler/rest/lifecycle.go:134, v1.8.0) with libvirt's
    # VIR_ERR_OPERATION_INVALID (55, vendor/libvirt.org/go/libvirt/libvirt_generated_enums.h:2674, v1.8.0).
    event = (
        'Failed to freeze VMI: server error. command Freeze failed: "LibvirtError(Code=55, Domain=10, '
        "Message='Requested operation is not valid: domain is not running')\""
    )
    result = verdict([(T0 - 60, vmi()), (T0 + 1, freeze_event(event, first=T0 + 1, last=T0 + 1, count=1))])
    assert result.freeze_errors == {"vm_not_running": 1}


def test_v1_8_agent_version_not_supported_still_freezes() -> None:
    # pkg/virt-handler/guestagent.go:65-100 (v1.8.0): the condition is also set for missing SSH-key or
    # password commands; source.go:437-466 (v1.8.0) checks only AgentConnected before freezing.
    result = verdict(
        [
            (T0 - 60, vmi(unsupported="This guest agent doesn't support required public key commands")),
            (T0 - 50, guest_info(freeze_enabled=True)),
            (T0 + 9, snapshot(phase="Succeeded", indications=SUCCEEDED, creation_time=T0 + 4)),
        ]
    )
    assert result.state.agent_supported is False
    assert result.state.fsfreeze_available is True
    assert (result.level, result.consistency, result.reason) == (3, "application", "")


def test_v1_8_guest_info_cached_during_a_freeze_is_not_evidence() -> None:
    # virt-launcher refreshes guest-info every 300 s (cmd/virt-launcher/virt-launcher.go:366-370 at HEAD
    # d923fdb); qemu-ga disables all but six commands while frozen (qemu/qemu qga/main.c:132-140
    # ga_freeze_allowlist, blob c7b7b0a9bc; later the 'fs-frozen' feature, main.c:444-446, blob 7bf5ec49ba),
    # so a refresh taken during a freeze shows the freeze command disabled after the thaw.
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 - 50, guest_info(freeze_enabled=False, others_enabled=False)),
            (T0 + 9, snapshot(phase="Succeeded", indications=SUCCEEDED, creation_time=T0 + 4)),
        ]
    )
    assert result.state.fsfreeze_available is None
    assert (result.level, result.reason) == (3, "")


def test_v1_8_freeze_command_blocked_in_the_guest_downgrades() -> None:
    # Only the freeze command disabled (qemu-ga --block-rpcs): VSS could not have run on Windows.
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 - 50, guest_info(freeze_enabled=False, others_enabled=True)),
            (T0 + 9, snapshot(phase="Succeeded", indications=SUCCEEDED, creation_time=T0 + 4)),
        ]
    )
    assert result.state.fsfreeze_available is False
    assert (result.level, result.reason) == (1, "fsfreeze_unavailable")


def test_v1_8_backup_freeze_failure_is_in_the_done_warning() -> None:
    # v1.8.0 backups have no Quiesced condition (staging/src/kubevirt.io/api/backup/v1alpha1/types.go:229-252);
    # the freeze error reaches Done's reason via BackupMsg (pkg/virt-launcher/virtwrap/storage/backup.go:183-185,
    # pkg/storage/cbt/backup.go:1278-1283, v1.8.0), and the backup goes on.
    warning = (
        "Completed VirtualMachineBackup, warning: Failed freezing guest filesystem: virError(Code=1, Domain=10, "
        "Message='guest agent command failed: unable to execute QEMU agent command 'guest-fsfreeze-freeze': "
        "failed to prepare for backup: Windows error 0x80042301: ')"
    )
    done = {"type": "Done", "status": "True", "reason": warning, "lastTransitionTime": ts(T0 + 30)}
    result = verdict([(T0 - 60, vmi()), (T0 + 30, backup([done]))])
    assert result.freeze_errors == {"prepare_for_backup": 1}


CSI_QUOTA = (
    'Failed to check and update snapshot content: failed to take snapshot of the volume pvc-data: "rpc error: '
    'code = ResourceExhausted desc = snapshot quota exceeded"'
)
CSI_TIMEOUT = (
    'Failed to check and update snapshot content: failed to take snapshot of the volume pvc-logs: "rpc error: '
    'code = DeadlineExceeded desc = context deadline exceeded"'
)


def test_v1_8_content_names_every_failed_volume_and_why() -> None:
    # snapshot.go:474-477 (v1.8.0): the snapshot's error names only the first VolumeSnapshot with an error; the
    # content keeps one volumeSnapshotStatus per VolumeSnapshot (:445-455, :511), and spec.volumeBackups maps
    # each back to the VM's volume (:641-648). The CSI driver's gRPC status is printed as "rpc error: code = …
    # desc = …" (vendor/google.golang.org/grpc/internal/status/status.go:202, v1.8.0).
    error = f"VolumeSnapshot vmsnapshot-uid-snap-1-volume-datadisk error: {CSI_QUOTA}"
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 3, snapshot(phase="InProgress", indications=SUCCEEDED, error=error)),
            (T0 + 3, snapshot_content({"rootdisk": None, "datadisk": CSI_QUOTA, "logs": CSI_TIMEOUT})),
            (T0 + 301, snapshot(phase="Failed", indications=SUCCEEDED, error=error, failed_deadline=True)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (0, "failed", "volume_snapshot_error")
    assert result.storage_failures == {"volume_snapshot_error": 1}
    assert result.freeze_errors == {}
    last = result.state.last_snapshot
    assert last is not None
    assert last.failed_volumes == (("datadisk", "resource_exhausted"), ("logs", "timeout"))
    assert any(
        line.startswith("volume datadisk storage snapshot failed (resource_exhausted): ") for line in last.explanation
    )


def test_v1_8_without_the_content_the_snapshot_error_still_names_the_volume() -> None:
    # A deployment without read access to contents: the VolumeSnapshot named in the snapshot's error is
    # "vmsnapshot-<snapshot uid>-volume-<volume>" (snapshot.go:641, v1.8.0), its message the CSI error (:476).
    error = f"VolumeSnapshot vmsnapshot-uid-snap-1-volume-datadisk error: {CSI_QUOTA}"
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 301, snapshot(phase="Failed", indications=SUCCEEDED, error=error, failed_deadline=True)),
        ]
    )
    last = result.state.last_snapshot
    assert last is not None and last.reason == "volume_snapshot_error"
    assert last.failed_volumes == (("datadisk", "resource_exhausted"),)
