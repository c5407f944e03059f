"""VirtualMachineSnapshotContent → failed volumes, and the bounded reasons of their storage errors."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.state.records import VmKey
from exporter.state.snapshot_contents import (
    MAX_MESSAGE,
    VOLUME_FAILURE_REASONS,
    failure_from_snapshot_error,
    parse_snapshot_content,
    volume_failure_reason,
)

# The snapshot controller's content (kubevirt/kubevirt v1.8.0): types in
# staging/src/kubevirt.io/api/snapshot/v1beta1/types.go:213-221 (the object), :224-232 (spec), :246-249
# (SourceSpec), :265-272 (VolumeBackup), :275-289 (status), :301-313 (VolumeSnapshotStatus), :158-164 (Error);
# the source VM keeps its metadata (pkg/storage/snapshot/source.go:391-419, util.go:125-130); written by
# pkg/storage/snapshot/snapshot.go:641-668 (createContent) and :445-455, :511 (updateVMSnapshotContent).
CONTENT: dict[str, Any] = {
    "apiVersion": "snapshot.kubevirt.io/v1beta1",
    "kind": "VirtualMachineSnapshotContent",
    "metadata": {"namespace": "finance", "name": "vmsnapshot-content-0d5e", "uid": "c-1"},
    "spec": {
        "virtualMachineSnapshotName": "win-sql-01-snap-7",
        "source": {"virtualMachine": {"metadata": {"name": "win-sql-01", "namespace": "finance"}}},
        "volumeBackups": [
            {"volumeName": "rootdisk", "volumeSnapshotName": "vmsnapshot-0d5e-volume-rootdisk"},
            {"volumeName": "sqldata", "volumeSnapshotName": "vmsnapshot-0d5e-volume-sqldata"},
        ],
    },
    "status": {
        "readyToUse": False,
        "volumeSnapshotStatus": [
            {"volumeSnapshotName": "vmsnapshot-0d5e-volume-rootdisk", "readyToUse": True},
            {
                "volumeSnapshotName": "vmsnapshot-0d5e-volume-sqldata",
                "readyToUse": False,
                "error": {
                    "time": "2027-01-15T07:50:03Z",
                    "message": "Failed to check and update snapshot content: failed to take snapshot of the volume "
                    'pvc-9: "rpc error: code = ResourceExhausted desc = snapshot quota exceeded"',
                },
            },
        ],
    },
}


def test_a_content_names_the_failed_volume_and_its_snapshot() -> None:
    facts, problems = parse_snapshot_content(CONTENT)
    assert problems == []
    assert facts is not None
    assert (facts.key, facts.snapshot) == (VmKey("finance", "win-sql-01"), "win-sql-01-snap-7")
    (failure,) = facts.failures
    assert (failure.volume, failure.volume_snapshot, failure.reason) == (
        "sqldata",
        "vmsnapshot-0d5e-volume-sqldata",
        "resource_exhausted",
    )
    assert failure.message.endswith('snapshot quota exceeded"')
    assert failure.time == datetime(2027, 1, 15, 7, 50, 3, tzinfo=UTC).timestamp()


def test_a_volume_snapshot_without_a_backup_entry_keeps_its_own_name() -> None:
    raw = copy.deepcopy(CONTENT)
    raw["spec"]["volumeBackups"] = []
    facts, _ = parse_snapshot_content(raw)
    assert facts is not None
    assert [(f.volume, f.volume_snapshot) for f in facts.failures] == [("", "vmsnapshot-0d5e-volume-sqldata")]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        # grpc-go prints a status as "rpc error: code = %s desc = %s" (kubevirt/kubevirt
        # vendor/google.golang.org/grpc/internal/status/status.go:202, v1.8.0) with the code names of
        # vendor/google.golang.org/grpc/codes/code_string.go:34-66; the CSI snapshotter wraps it as
        # "failed to take snapshot of the volume <id>: %q".
        (
            'failed to take snapshot of the volume v: "rpc error: code = ResourceExhausted desc = quota"',
            "resource_exhausted",
        ),
        ("rpc error: code = DeadlineExceeded desc = context deadline exceeded", "timeout"),
        ("rpc error: code = Canceled desc = context canceled", "timeout"),
        ("rpc error: code = Unavailable desc = connection refused", "unavailable"),
        ("rpc error: code = PermissionDenied desc = token expired", "permission_denied"),
        ("rpc error: code = Unauthenticated desc = no credentials", "permission_denied"),
        ("rpc error: code = InvalidArgument desc = bad parameter", "rejected"),
        ("rpc error: code = FailedPrecondition desc = volume in use", "rejected"),
        ("rpc error: code = NotFound desc = volume vol-1 not found", "rejected"),
        ("rpc error: code = AlreadyExists desc = snapshot exists", "rejected"),
        ("rpc error: code = Unimplemented desc = CreateSnapshot", "rejected"),
        ("rpc error: code = Internal desc = ceph: error", "driver_error"),
        ("rpc error: code = Unknown desc = ?", "driver_error"),
        ("rpc error: code = Aborted desc = operation pending", "driver_error"),
        ("rpc error: code = DataLoss desc = lost", "driver_error"),
        ("rpc error: code = Code(42) desc = new", "other"),  # a code newer than this table
        (
            "Failed to get snapshot class with error volumesnapshotclass.snapshot.storage.k8s.io not found",
            "snapshot_class",
        ),
        ("cannot find default snapshot class", "snapshot_class"),
        ("context deadline exceeded", "timeout"),
        ("something else", "other"),
        # The code decides, whatever the description says.
        ("rpc error: code = Internal desc = snapshot class parameters rejected: timed out", "driver_error"),
    ],
)
def test_volume_failure_reasons(message: str, reason: str) -> None:
    assert volume_failure_reason(message) == reason


@given(st.text(max_size=300))
def test_every_message_gets_a_bounded_reason(message: str) -> None:
    assert volume_failure_reason(message) in VOLUME_FAILURE_REASONS


def test_the_snapshot_error_names_the_first_failed_volume() -> None:
    # pkg/storage/snapshot/snapshot.go:476 (v1.8.0) writes "VolumeSnapshot <name> error: <message>", and :641
    # names VolumeSnapshots "vmsnapshot-<snapshot uid>-volume-<volume>".
    message = (
        "VolumeSnapshot vmsnapshot-0d5e-volume-sqldata error: Failed to check and update snapshot content: "
        '"rpc error: code = Unavailable desc = backend down"'
    )
    failure = failure_from_snapshot_error(message, "0d5e")
    assert failure is not None
    assert (failure.volume, failure.volume_snapshot, failure.reason) == (
        "sqldata",
        "vmsnapshot-0d5e-volume-sqldata",
        "unavailable",
    )
    other_uid = failure_from_snapshot_error(message, "ffff")
    assert other_uid is not None and other_uid.volume == ""
    assert failure_from_snapshot_error("VolumeSnapshots (a,b) missing", "0d5e") is None
    assert failure_from_snapshot_error(None, "0d5e") is None


def test_a_long_message_is_classified_in_full_and_kept_short() -> None:
    raw = copy.deepcopy(CONTENT)
    raw["status"]["volumeSnapshotStatus"][1]["error"]["message"] = "x" * 2000 + " rpc error: code = Internal desc = y"
    facts, problems = parse_snapshot_content(raw)
    assert problems == []
    assert facts is not None
    assert facts.failures[0].reason == "driver_error"
    assert len(facts.failures[0].message) == MAX_MESSAGE


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda raw: raw["spec"].pop("virtualMachineSnapshotName"), "source_unknown"),
        (lambda raw: raw["spec"].pop("source"), "source_unknown"),
        (lambda raw: raw["spec"].__setitem__("volumeBackups", "x"), "volumeBackups_not_list"),
        (lambda raw: raw["spec"]["volumeBackups"].append(7), "volumeBackups_malformed"),
        (lambda raw: raw["status"]["volumeSnapshotStatus"].append("x"), "volumeSnapshotStatus_malformed"),
        (lambda raw: raw["status"]["volumeSnapshotStatus"][1]["error"].__setitem__("message", 5), "message_not_string"),
        (lambda raw: raw.__setitem__("status", []), "status_not_object"),
    ],
)
def test_malformed_contents_give_problems_not_errors(mutate: Any, problem: str) -> None:
    raw = copy.deepcopy(CONTENT)
    mutate(raw)
    _, problems = parse_snapshot_content(raw)
    assert problem in problems


def test_an_unidentifiable_object_is_no_content() -> None:
    assert parse_snapshot_content("not an object") == (None, ["object_not_object"])
    assert parse_snapshot_content({"metadata": {}})[0] is None
