"""KubeVirt 1.7.0–1.7.1: sourceIndications with messages, QuiesceFailed still set: shapes → verdicts."""

from __future__ import annotations

from tests.conformance.harness import NAME, T0, api_error, prefixed, snapshot, verdict, vm, vmi

# pkg/storage/snapshot/snapshot.go:74-82 (v1.7.0), IndicationMessage.
MESSAGES = {
    "GuestAgent": "Guest agent was active and attempted to quiesce the filesystem for application consistency.",
    "Online": "Snapshot taken while the VM was running. Consistency depends on guest-agent quiescing.",
    "QuiesceFailed": "Guest agent failed to quiesce the filesystem. Snapshot is crash-consistent and may not be "
    "application-consistent.",
}


def sourced(*indications: str) -> list[tuple[str, str]]:
    return [(i, MESSAGES[i]) for i in indications]


def test_v1_7_0_retried_freeze_ends_succeeded_with_quiesce_failed() -> None:
    # snapshot.go:857-890 (v1.7.0) writes indications and sourceIndications; the QuiesceFailed message says
    # "crash-consistent", but VolumeSnapshots are made only after Freeze() returned nil (snapshot.go:421-435,
    # v1.7.0), and source.go:453-461 (v1.7.0) wraps a failure as "Failed freezing vm": a retry froze the guest.
    error = prefixed(NAME, api_error("failed to start snapshot set: Windows error 0x80042316: "))
    failed = ["GuestAgent", "Online", "QuiesceFailed"]
    result = verdict(
        [
            (T0 - 60, vmi()),
            (
                T0 + 1,
                snapshot(phase="InProgress", indications=failed, source_indications=sourced(*failed), error=error),
            ),
            (
                T0 + 6,
                snapshot(
                    phase="InProgress",
                    indications=failed,
                    source_indications=sourced(*failed),
                    error=error,
                    error_at=T0 + 6,
                ),
            ),
            (
                T0 + 14,
                snapshot(
                    phase="Succeeded", indications=failed, source_indications=sourced(*failed), creation_time=T0 + 12
                ),
            ),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (3, "application", "quiesced_after_retry")
    assert result.freeze_errors == {"start_snapshot_set": 1}


def test_v1_7_0_windows_vmi_frozen_long_before_the_start_skips_the_freeze() -> None:
    # source.go:435-437 (v1.7.0): Freeze() returns nil when the VMI says frozen (the state is read from
    # vmi.Status.FSFreezeStatus, source.go:116). On Windows that status outlives VSS's 10 s auto-release.
    indications = ["GuestAgent", "Online"]
    steps = [
        (T0 - 600, vmi(frozen=True)),
        (
            T0 + 9,
            snapshot(
                phase="Succeeded",
                indications=indications,
                source_indications=sourced(*indications),
                creation_time=T0 + 4,
            ),
        ),
    ]
    result = verdict(steps)
    assert (result.level, result.consistency, result.reason) == (1, "crash", "freeze_skipped_stale_frozen")
    linux = verdict([(T0 - 600, vmi(windows=False, frozen=True)), steps[1]])
    assert (linux.level, linux.reason) == (2, "")  # a Linux fsfreeze holds until thawed


def test_v1_7_0_frozen_for_less_than_the_hold_limit_is_not_stale() -> None:
    # A backup hook that froze the guest just before creating the snapshot (cmd/virt-freezer) is still held.
    indications = ["GuestAgent", "Online"]
    result = verdict(
        [
            (T0 - 600, vmi()),
            (T0 - 3, vmi(frozen=True)),
            (T0 + 6, snapshot(phase="Succeeded", indications=indications, creation_time=T0 + 2)),
        ]
    )
    assert (result.level, result.reason) == (3, "")


def test_v1_7_0_volume_snapshots_missing_after_success_is_a_storage_failure() -> None:
    # snapshot.go:461-464 (v1.7.0): once the content was created, deleted VolumeSnapshots give
    # "VolumeSnapshots (<names>) missing"; the phase stays Succeeded (snapshot.go updateSnapshotStatus).
    indications = ["GuestAgent", "Online"]
    error = "VolumeSnapshots (vmsnapshot-uid-snap-1-volume-rootdisk) missing"
    result = verdict(
        [
            (T0 - 60, vm()),
            (T0 - 60, vmi()),
            (T0 + 9, snapshot(phase="Succeeded", indications=indications, creation_time=T0 + 4)),
            (
                T0 + 900,
                snapshot(
                    phase="Succeeded", indications=indications, creation_time=T0 + 4, error=error, error_at=T0 + 900
                ),
            ),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (0, "failed", "volume_snapshots_missing")
    assert result.freeze_errors == {}
    assert result.storage_failures == {"volume_snapshots_missing": 1}
    assert result.state.last_storage_failure_timestamp == T0 + 900
