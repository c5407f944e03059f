"""Storage failures: the controller's own status.error texts (pkg/storage/snapshot/snapshot.go, per release)."""

from __future__ import annotations

import pytest

from exporter.state.records import SnapshotFacts, VmKey
from exporter.state.storage_failures import STORAGE_REASONS, StorageFailureLedger, storage_failure_reason

KEY = VmKey("ns", "vm")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        # snapshot.go:476 (v1.8.0), :477 (v1.9.0), :478 (v1.4.0)
        (
            "VolumeSnapshot vmsnapshot-3c1e-volume-rootdisk error: Failed to create snapshot: rpc error: "
            "code = Internal desc = quota exceeded",
            "volume_snapshot_error",
        ),
        # snapshot.go:463 (v1.8.0), :461 (v1.4.0)
        (
            "VolumeSnapshots (vmsnapshot-3c1e-volume-rootdisk,vmsnapshot-3c1e-volume-data) missing",
            "volume_snapshots_missing",
        ),
        # snapshot.go:466 (v1.8.0), :465 (v1.4.0)
        ("VolumeSnapshots (vmsnapshot-3c1e-volume-rootdisk) skipped because vm snapshot is deleted", "source_deleted"),
        ("Failed freezing vm w: Internal error occurred: Guest agent not available for now", None),
        ("VolumeSnapshot mentioned in a freeze error: error: x", None),
        ("", None),
        (None, None),
    ],
)
def test_storage_failure_reason(message: str | None, reason: str | None) -> None:
    found = storage_failure_reason(message)
    assert found == reason
    assert found is None or found in STORAGE_REASONS


def snapshot(uid: str, message: str | None, at: float) -> SnapshotFacts:
    return SnapshotFacts(
        key=KEY,
        uid=uid,
        name=uid,
        requested_at=0.0,
        phase="InProgress",
        indications=(),
        error_message=message,
        error_time=at,
    )


def test_one_episode_per_snapshot_and_reason() -> None:
    ledger = StorageFailureLedger()
    error = "VolumeSnapshot v error: boom"
    assert ledger.observe(snapshot("a", error, 10.0))
    assert not ledger.observe(snapshot("a", error, 10.0))  # relist replay
    assert ledger.observe(snapshot("a", error, 20.0))  # same episode, newer time
    assert ledger.observe(snapshot("b", "VolumeSnapshots (x) missing", 30.0))
    assert not ledger.observe(snapshot("c", "some freeze error", 40.0))

    summary = ledger.summary(KEY)
    assert summary.counts == (("volume_snapshot_error", 1), ("volume_snapshots_missing", 1))
    assert summary.last_timestamp == 30.0
    assert ledger.summary(VmKey("ns", "other")).counts == ()

    ledger.prune(lambda key: False)
    assert ledger.summary(KEY).last_timestamp is None
