"""KubeVirt 1.5 (v1.5.0–v1.5.3): objects in this release's shapes → the exporter's verdict.

v1.5.0 rebuilds the indications in append order and writes the bare freeze error; v1.5.2 prefixes it with
``Failed freezing vm`` and keeps QuiesceFailed sticky; v1.5.3 adds Paused.
"""

from __future__ import annotations

from tests.conformance.harness import NAME, T0, api_error, prefixed, snapshot, verdict, vmi

IN_PROGRESS = "failed to start snapshot set: Windows error 0x80042316: "
VSS_REFUSED = "failed to add \\\\\\\\?\\\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\\\ to snapshot set: "


def test_v1_5_0_bare_error_and_append_order() -> None:
    # source.go:442-443 (v1.5.0) returns the bare error; snapshot.go:838-843 (v1.5.0) appends Online first.
    error = api_error(IN_PROGRESS)
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 1, snapshot(phase="InProgress", indications=["Online", "GuestAgent"], error=error)),
            (T0 + 12, snapshot(phase="Succeeded", indications=["Online", "GuestAgent"], creation_time=T0 + 7)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (3, "application", "")
    assert result.freeze_errors == {"start_snapshot_set": 1}


def test_v1_5_2_quiesce_failed_then_a_retry_froze_the_guest() -> None:
    # source.go:441-447 (v1.5.2): "Failed freezing vm <vm>: <err>"; snapshot.go:412-419 (v1.5.2) writes it and
    # retries every 5 s; snapshot.go:833-846 (v1.5.2) seeds the set with the old indications and adds
    # QuiesceFailed when the error has that prefix. VolumeSnapshots are created only after Freeze() returned
    # nil (snapshot.go:412-425, v1.5.2), so Succeeded means a retry froze the guest.
    error = prefixed(NAME, api_error(IN_PROGRESS))
    failed = ["GuestAgent", "Online", "QuiesceFailed"]
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 1, snapshot(phase="InProgress", indications=failed, error=error)),
            (T0 + 12, snapshot(phase="Succeeded", indications=failed, creation_time=T0 + 7)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (3, "application", "quiesced_after_retry")
    assert result.freeze_errors == {"start_snapshot_set": 1}


def test_v1_5_2_quiesce_failed_until_the_deadline() -> None:
    error = prefixed(NAME, api_error(VSS_REFUSED))
    failed = ["GuestAgent", "Online", "QuiesceFailed"]
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 1, snapshot(phase="InProgress", indications=failed, error=error)),
            (T0 + 296, snapshot(phase="InProgress", indications=failed, error=error, error_at=T0 + 296)),
            (
                T0 + 301,
                snapshot(phase="Failed", indications=failed, error=error, error_at=T0 + 296, failed_deadline=True),
            ),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (0, "failed", "add_volume_to_snapshot_set")
    assert result.freeze_errors == {"add_volume_to_snapshot_set": 1}


def test_v1_5_3_paused_vm_is_snapshotted_without_freeze() -> None:
    # source.go:439-442 (v1.5.3) skips the freeze of a paused VM; snapshot.go:842-844 (v1.5.3) adds Paused.
    result = verdict(
        [
            (T0 - 60, vmi(paused=True)),
            (T0 + 5, snapshot(phase="Succeeded", indications=["Online", "Paused"], creation_time=T0 + 2)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (1, "crash", "paused")


def test_v1_5_volume_snapshot_error_is_a_storage_failure() -> None:
    # snapshot.go:464-470 (v1.5.2): the controller writes "VolumeSnapshot <name> error: <message>" itself.
    error = "VolumeSnapshot vmsnapshot-uid-snap-1-volume-rootdisk error: Failed to create snapshot content: quota"
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 3, snapshot(phase="InProgress", indications=["GuestAgent", "Online"], error=error)),
            (
                T0 + 301,
                snapshot(phase="Failed", indications=["GuestAgent", "Online"], error=error, failed_deadline=True),
            ),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (0, "failed", "volume_snapshot_error")
    assert result.freeze_errors == {}
    assert result.storage_failures == {"volume_snapshot_error": 1}
