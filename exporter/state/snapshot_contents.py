"""VirtualMachineSnapshotContent objects → which volume's storage snapshot failed, and why (bounded).

The snapshot controller keeps one ``status.volumeSnapshotStatus`` entry per VolumeSnapshot of a content,
with the CSI snapshotter's error copied into it; the snapshot's own ``status.error`` names only the first
failing VolumeSnapshot. ``spec.volumeBackups`` maps each VolumeSnapshot back to the VM's volume.
The error text is the storage driver's: it is classified into a small vocabulary for labels and kept,
shortened, only for people to read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.state import field_readers as read
from exporter.state.records import VmKey

# What a failed VolumeSnapshot's error says went wrong, as a bounded label value.
VOLUME_FAILURE_REASONS = (
    "resource_exhausted",  # quota or capacity of the storage backend
    "timeout",  # the driver did not answer in time
    "unavailable",  # the driver or its backend could not be reached
    "permission_denied",  # the driver's credentials were refused
    "rejected",  # the driver refused the request (unsupported, bad argument, missing source volume)
    "driver_error",  # the driver failed internally
    "snapshot_class",  # no usable VolumeSnapshotClass
    "other",
)

# gRPC status codes (the CSI driver's answer, printed as "rpc error: code = <Code> desc = …").
_GRPC_REASONS = {
    "ResourceExhausted": "resource_exhausted",
    "DeadlineExceeded": "timeout",
    "Canceled": "timeout",
    "Unavailable": "unavailable",
    "PermissionDenied": "permission_denied",
    "Unauthenticated": "permission_denied",
    "InvalidArgument": "rejected",
    "FailedPrecondition": "rejected",
    "NotFound": "rejected",
    "AlreadyExists": "rejected",
    "OutOfRange": "rejected",
    "Unimplemented": "rejected",
    "Internal": "driver_error",
    "Unknown": "driver_error",
    "Aborted": "driver_error",
    "DataLoss": "driver_error",
}
_GRPC_CODE = re.compile(r"rpc error: code = ([A-Za-z]{2,24}) desc = ")
_SNAPSHOT_CLASS = re.compile(r"snapshot ?class", re.IGNORECASE)
_TIMEOUT = re.compile(r"context deadline exceeded|timed? ?out", re.IGNORECASE)

MAX_VOLUMES = 64
MAX_NAME = 253
MAX_MESSAGE = 512  # kept for people to read; classified in full
MAX_ERROR_MESSAGE = 64 * 1024


def volume_failure_reason(message: str) -> str:
    """The bounded reason of a VolumeSnapshot error message."""
    code = _GRPC_CODE.search(message)
    if code is not None:
        return _GRPC_REASONS.get(code.group(1), "other")
    if _SNAPSHOT_CLASS.search(message):
        return "snapshot_class"
    if _TIMEOUT.search(message):
        return "timeout"
    return "other"


@dataclass(frozen=True, slots=True)
class VolumeFailure:
    """One failed VolumeSnapshot of a snapshot: the VM's volume ("" when unknown), why, and the words."""

    volume: str
    volume_snapshot: str
    reason: str
    message: str
    time: float | None = None


_CONTROLLER_VOLUME_ERROR = re.compile(r"\AVolumeSnapshot (\S{1,253}) error: (.*)\Z", re.DOTALL)


def failure_from_snapshot_error(message: str | None, snapshot_uid: str) -> VolumeFailure | None:
    """The first failed volume as the snapshot's own ``status.error`` names it, for when its content is
    not readable: the controller writes "VolumeSnapshot <name> error: <message>" and names VolumeSnapshots
    "vmsnapshot-<snapshot uid>-volume-<volume>"."""
    match = _CONTROLLER_VOLUME_ERROR.match(message.strip()) if message else None
    if match is None:
        return None
    volume_snapshot, text = match.groups()
    prefix = f"vmsnapshot-{snapshot_uid}-volume-"
    volume = volume_snapshot[len(prefix) :] if snapshot_uid and volume_snapshot.startswith(prefix) else ""
    return VolumeFailure(volume, volume_snapshot, volume_failure_reason(text), text[:MAX_MESSAGE])


@dataclass(frozen=True, slots=True)
class ContentFacts:
    """The failed volumes of one VMSnapshotContent, for the VM and the VMSnapshot it belongs to."""

    key: VmKey
    snapshot: str
    failures: tuple[VolumeFailure, ...] = ()


def parse_snapshot_content(raw: Any) -> tuple[ContentFacts | None, list[str]]:
    """Read a VirtualMachineSnapshotContent of a VM's snapshot; None when it cannot be tied to one."""
    problems, identity = read.identified(raw)
    if identity is None:
        return None, problems.items
    namespace = identity.namespace
    spec = read.mapping(raw, "spec", problems)
    snapshot = read.string(spec, "virtualMachineSnapshotName", problems, limit=MAX_NAME)
    source_vm = read.mapping(read.mapping(spec, "source", problems), "virtualMachine", problems)
    vm_name = read.string(read.mapping(source_vm, "metadata", problems), "name", problems, limit=MAX_NAME)
    if not snapshot or not vm_name:
        problems.add("source_unknown")
        return None, problems.items
    volumes = _volumes_by_snapshot(spec, problems)
    status = read.mapping(raw, "status", problems)
    failures = []
    for entry in read.sequence(status, "volumeSnapshotStatus", problems)[:MAX_VOLUMES]:
        failure = _failure(entry, volumes, problems)
        if failure is not None:
            failures.append(failure)
    return ContentFacts(VmKey(namespace, vm_name), snapshot, tuple(failures)), problems.items


def _volumes_by_snapshot(spec: Mapping[str, Any], problems: read.Problems) -> dict[str, str]:
    volumes: dict[str, str] = {}
    for backup in read.sequence(spec, "volumeBackups", problems)[:MAX_VOLUMES]:
        if not isinstance(backup, Mapping):
            problems.add("volumeBackups_malformed")
            continue
        volume_snapshot = read.string(backup, "volumeSnapshotName", problems, limit=MAX_NAME)
        if volume_snapshot:
            volumes[volume_snapshot] = read.string(backup, "volumeName", problems, limit=MAX_NAME)
    return volumes


def _failure(entry: Any, volumes: Mapping[str, str], problems: read.Problems) -> VolumeFailure | None:
    if not isinstance(entry, Mapping):
        problems.add("volumeSnapshotStatus_malformed")
        return None
    error = read.mapping(entry, "error", problems)
    message = read.string(error, "message", problems, limit=MAX_ERROR_MESSAGE)
    if not message:
        return None
    volume_snapshot = read.string(entry, "volumeSnapshotName", problems, limit=MAX_NAME)
    return VolumeFailure(
        volume=volumes.get(volume_snapshot, ""),
        volume_snapshot=volume_snapshot,
        reason=volume_failure_reason(message),
        message=message[:MAX_MESSAGE],
        time=read.timestamp(error, "time", problems),
    )
