"""Typed records that flow from the API edge into judgement and rendering.

Everything here is immutable; state changes by building new records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class VmKey(NamedTuple):
    """Identity of a VM across its VirtualMachine, its VMI lives and its snapshots."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class VmFacts:
    """What a VirtualMachine object says."""

    key: VmKey
    uid: str
    printable_status: str
    # status.snapshotInProgress: the snapshot holding the VM's lock, if any.
    snapshot_in_progress: str | None = None
    # status.volumeSnapshotStatuses: per volume, whether it can be snapshotted and why not.
    volume_snapshot_statuses: tuple[VolumeSnapshotStatus, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class VolumeSnapshotStatus:
    """One entry of a VM's ``status.volumeSnapshotStatuses``."""

    name: str
    enabled: bool
    reason: str


@dataclass(frozen=True, slots=True)
class VmiFacts:
    """What a VirtualMachineInstance object says about agent, freeze and identity."""

    key: VmKey
    uid: str
    phase: str
    node: str
    agent_connected: bool
    agent_unsupported_reason: str | None
    paused: bool
    fs_frozen: bool
    guest_os_id: str
    guest_os_name: str
    guest_os_version: str
    ip_addresses: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.phase == "Running"

    @property
    def is_windows(self) -> bool:
        return self.guest_os_id == "mswindows" or "windows" in self.guest_os_name.lower()


@dataclass(frozen=True, slots=True)
class GuestFilesystem:
    """One guest filesystem from guestosinfo ``fsInfo``: what maps a volume in an error to a mount point.

    Its used and total bytes are not kept: nothing exports them, and as they change with every
    answer they would make every poll re-judge and re-render the VM.
    """

    disk_name: str
    mount_point: str
    filesystem: str


@dataclass(frozen=True, slots=True)
class GuestInfo:
    """What the guestosinfo subresource said for one VMI life."""

    vmi_uid: str
    observed_at: float
    agent_version: str
    fsfreeze_enabled: bool | None
    fs_frozen: bool
    os_id: str
    filesystems: tuple[GuestFilesystem, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotFacts:
    """What a VirtualMachineSnapshot says; times are epoch seconds."""

    key: VmKey
    uid: str
    name: str
    requested_at: float  # metadata.creationTimestamp: when the snapshot was asked for
    phase: str
    indications: tuple[str, ...]
    taken_at: float | None = None  # status.creationTime: when the disks were captured
    error_message: str | None = None
    error_time: float | None = None
    failure_deadline: float | None = None
    deadline_exceeded: bool = False
    # status.sourceIndications (v1.7+): (indication, message) as the controller wrote them.
    indication_messages: tuple[tuple[str, str], ...] = ()
    # status.snapshotVolumes.excludedVolumes: volumes of the VM that are not in the snapshot.
    excluded_volumes: tuple[str, ...] = ()

    def indication_message(self, indication: str) -> str:
        """The controller's message for one indication, or "" when it wrote none."""
        return next((message for name, message in self.indication_messages if name == indication), "")

    def finished(self, now: float) -> bool:
        """Succeeded or Failed, or InProgress with an error past its failure deadline."""
        if self.phase in ("Succeeded", "Failed"):
            return True
        return self.phase == "InProgress" and self.error_message is not None and self.past_deadline(now)

    def past_deadline(self, now: float) -> bool:
        if self.deadline_exceeded:
            return True
        if self.failure_deadline is None or self.failure_deadline <= 0:
            return False
        return now > self.requested_at + self.failure_deadline


@dataclass(frozen=True, slots=True)
class SnapshotJudgement:
    """Consistency of one snapshot: ordered level, class name and why."""

    snapshot: str
    phase: str
    level: int
    consistency: str
    reason: str
    indications: str
    timestamp: float
    # What the objects themselves say about it: indication messages, excluded volumes and why, storage errors.
    explanation: tuple[str, ...] = ()
    # Volumes whose storage snapshot failed: (volume, or its VolumeSnapshot when unknown; bounded reason).
    failed_volumes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class FreezeErrorDetail:
    """The newest classified freeze error of a VM, as the info series shows it."""

    reason: str
    cause: str
    hresult: str
    hresult_name: str
    volume: str
    mount_point: str
    source: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class FailedWriter:
    name: str
    state: int
    last_error: str


@dataclass(frozen=True, slots=True)
class VolumeFreeSpace:
    volume: str
    mount_point: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class VmState:
    """Everything rendered for one VM. ``None`` means no evidence: the series is absent."""

    key: VmKey
    node: str = ""
    phase: str = ""
    guest_os: str = ""
    guest_os_version: str = ""
    agent_version: str = ""
    agent_connected: bool | None = None
    agent_supported: bool | None = None
    fsfreeze_available: bool | None = None
    fs_frozen: bool | None = None
    frozen_since: float | None = None
    filesystems: tuple[GuestFilesystem, ...] = ()
    checks: tuple[tuple[str, bool], ...] = ()
    snapshot_count: int = 0
    oldest_snapshot_timestamp: float | None = None
    last_snapshot: SnapshotJudgement | None = None
    last_consistent_snapshot_timestamp: float | None = None
    writers_total: int | None = None
    writers_failed: int | None = None
    failed_writers: tuple[FailedWriter, ...] = ()
    volume_free_space: tuple[VolumeFreeSpace, ...] = ()
    guest_report_timestamp: float | None = None
    freeze_error_counts: tuple[tuple[str, str, int], ...] = ()
    last_freeze_error_by_reason: tuple[tuple[str, float], ...] = ()
    last_freeze_error: FreezeErrorDetail | None = None
    storage_failure_counts: tuple[tuple[str, int], ...] = ()
    last_storage_failure_timestamp: float | None = None
