"""One VM's facts → the VmState that is rendered: the only place a VmState is built.

Pure: ``now`` is an argument, and what the freeze-error ledger knows of the VM comes in as a value
(``VmFreezeErrors``). The state is assembled from three parts, each built by its own function:
the agent and freeze state from the VMI and guestosinfo, the guest report's figures, and the
judgement of the VM's snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.state.consistency import FILESYSTEM, GuestEvidence, SnapshotContext, judge
from exporter.state.diagnosis import judge_checks
from exporter.state.freeze_errors import NO_FREEZE_ERRORS, VmFreezeErrors, classify_cached
from exporter.state.guest_report import GuestCheckThresholds, GuestReport
from exporter.state.records import (
    FailedWriter,
    GuestFilesystem,
    GuestInfo,
    SnapshotFacts,
    SnapshotJudgement,
    VmiFacts,
    VmState,
    VolumeFreeSpace,
)
from exporter.state.snapshot_contents import VolumeFailure, failure_from_snapshot_error
from exporter.state.snapshots import last_finished
from exporter.state.storage_failures import NO_STORAGE_FAILURES, StorageFailureSummary, storage_failure_reason
from exporter.state.vm_record import VmRecord

MAX_FAILED_WRITERS = 32
MAX_LABEL = 128
FREE_SPACE_STEPS = 1024
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    stuck_frozen_after: float = 300.0
    guest_report_max_age: float = 1800.0
    # While guest reports are received: when the exporter started, and how long a Windows VM's first
    # report may take to arrive (the probe's schedule). Before then a verdict waiting for it is unknown.
    started_at: float | None = None
    guest_report_grace: float = 0.0
    guest_thresholds: GuestCheckThresholds = field(default_factory=GuestCheckThresholds)


def exported_free_bytes(free_bytes: int, total_bytes: int) -> int:
    """Free space rounded down to 1/1024 of the volume (at least 1 MiB): at most 0.1 % of the volume off.

    Free space moves a little with every guest report; exported exactly, every report would
    re-render the VM and recompress its block. The free-space check judges the exact figure.
    """
    step = max(MIB, total_bytes // FREE_SPACE_STEPS)
    return free_bytes - free_bytes % step


@dataclass(frozen=True, slots=True)
class AgentPart:
    """What the VMI and guestosinfo say about the agent and the guest's filesystems."""

    running: bool
    node: str
    phase: str
    guest_os: str
    guest_os_version: str
    agent_version: str
    agent_connected: bool | None
    agent_supported: bool | None
    fsfreeze_available: bool | None
    fs_frozen: bool | None
    frozen_since: float | None
    filesystems: tuple[GuestFilesystem, ...]


@dataclass(frozen=True, slots=True)
class GuestReportPart:
    """The figures of the current guest report; empty when there is none."""

    writers_total: int | None = None
    writers_failed: int | None = None
    failed_writers: tuple[FailedWriter, ...] = ()
    volume_free_space: tuple[VolumeFreeSpace, ...] = ()
    guest_report_timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class SnapshotPart:
    """The judgement of the VM's snapshots."""

    snapshot_count: int
    oldest_snapshot_timestamp: float | None
    last_snapshot: SnapshotJudgement | None
    last_consistent_snapshot_timestamp: float | None


def build_vm_state(
    record: VmRecord,
    *,
    now: float,
    settings: JudgeSettings,
    freeze_errors: VmFreezeErrors = NO_FREEZE_ERRORS,
    storage_failures: StorageFailureSummary = NO_STORAGE_FAILURES,
    snapshots: SnapshotPart | None = None,
) -> VmState | None:
    """Judge one VM; ``None`` when neither a VirtualMachine nor a VMI exists for it.

    ``snapshots`` is the judgement of its snapshots when the caller knows it still holds (see
    ``snapshot_part``); otherwise they are judged here.
    """
    if not record.exists:
        return None
    agent = agent_part(record, freeze_errors.frozen_at)
    report = current_report(record, now, settings.guest_report_max_age) if record.vmi is not None else None
    figures = guest_report_part(report)
    if snapshots is None:
        snapshots = snapshot_part(record, now=now, settings=settings, freeze_errors=freeze_errors)
    return VmState(
        key=record.key,
        node=agent.node,
        phase=agent.phase,
        guest_os=agent.guest_os,
        guest_os_version=agent.guest_os_version,
        agent_version=agent.agent_version,
        agent_connected=agent.agent_connected,
        agent_supported=agent.agent_supported,
        fsfreeze_available=agent.fsfreeze_available,
        fs_frozen=agent.fs_frozen,
        frozen_since=agent.frozen_since,
        filesystems=agent.filesystems,
        checks=judge_checks(
            running=agent.running,
            agent_connected=agent.agent_connected,
            agent_supported=agent.agent_supported,
            fsfreeze_available=agent.fsfreeze_available,
            frozen_since=agent.frozen_since,
            now=now,
            stuck_after=settings.stuck_frozen_after,
            report=report,
            thresholds=settings.guest_thresholds,
        ),
        snapshot_count=snapshots.snapshot_count,
        oldest_snapshot_timestamp=snapshots.oldest_snapshot_timestamp,
        last_snapshot=snapshots.last_snapshot,
        last_consistent_snapshot_timestamp=snapshots.last_consistent_snapshot_timestamp,
        writers_total=figures.writers_total,
        writers_failed=figures.writers_failed,
        failed_writers=figures.failed_writers,
        volume_free_space=figures.volume_free_space,
        guest_report_timestamp=figures.guest_report_timestamp,
        freeze_error_counts=freeze_errors.counts,
        last_freeze_error_by_reason=freeze_errors.last_by_reason,
        last_freeze_error=freeze_errors.newest_detail(agent.filesystems),
        storage_failure_counts=storage_failures.counts,
        last_storage_failure_timestamp=storage_failures.last_timestamp,
    )


def agent_part(record: VmRecord, frozen_at: float | None = None) -> AgentPart:
    """Agent, freeze and identity from the VMI and the guestosinfo answer of the same VMI life.

    ``frozen_at`` is when virt-launcher logged the freeze: evidence the API keeps, so frozen-since
    is the same after an exporter restart. Without it, it is when the VM was first seen frozen.
    """
    vmi = record.vmi
    guest = current_guest(record)
    running = vmi is not None and vmi.running
    agent_connected = vmi.agent_connected if running and vmi is not None else None
    agent_supported = (vmi.agent_unsupported_reason is None) if agent_connected and vmi is not None else None
    freeze_available = fsfreeze_available(vmi, guest) if running else None
    fs_frozen = vmi.fs_frozen if running and vmi is not None else None
    frozen_since = record.frozen_since if fs_frozen else None
    if frozen_since is not None and frozen_at is not None and frozen_at <= frozen_since:
        frozen_since = frozen_at
    return AgentPart(
        running=running,
        node=vmi.node if vmi is not None else "",
        phase=(vmi.phase or "Unknown") if vmi is not None else "Stopped",
        guest_os=(vmi.guest_os_id if vmi is not None else "") or (guest.os_id if guest else ""),
        guest_os_version=vmi.guest_os_version if vmi is not None else "",
        agent_version=guest.agent_version if guest is not None else "",
        agent_connected=agent_connected,
        agent_supported=agent_supported,
        fsfreeze_available=freeze_available,
        fs_frozen=fs_frozen,
        frozen_since=frozen_since,
        filesystems=guest.filesystems if guest is not None else (),
    )


def current_guest(record: VmRecord) -> GuestInfo | None:
    """The guestosinfo answer of the VM's current VMI life, if any."""
    vmi, guest = record.vmi, record.guest
    return guest if vmi is not None and guest is not None and guest.vmi_uid == vmi.uid else None


def is_windows(record: VmRecord) -> bool:
    """A Windows guest per the VMI's guest OS info, or per guestosinfo."""
    vmi, guest = record.vmi, current_guest(record)
    return (vmi is not None and vmi.is_windows) or (guest is not None and guest.os_id == "mswindows")


def fsfreeze_available(vmi: VmiFacts | None, guest: GuestInfo | None) -> bool | None:
    """Freeze command enabled per guestosinfo; not judged while frozen (qemu-ga disables it then)."""
    if vmi is None or not vmi.agent_connected or guest is None or guest.vmi_uid != vmi.uid:
        return None
    if vmi.fs_frozen or guest.fs_frozen:
        return None
    return guest.fsfreeze_enabled


def guest_report_part(report: GuestReport | None) -> GuestReportPart:
    """Writers and free space from the current guest report, if any."""
    if report is None:
        return GuestReportPart()
    return GuestReportPart(
        writers_total=report.writers_total,
        writers_failed=report.writers_failed,
        failed_writers=tuple(
            FailedWriter(w.name[:MAX_LABEL], w.state, (w.last_error or "")[:MAX_LABEL])
            for w in report.failed_writers[:MAX_FAILED_WRITERS]
        ),
        volume_free_space=tuple(
            VolumeFreeSpace(
                v.path[:MAX_LABEL],
                v.mount_point[:MAX_LABEL],
                exported_free_bytes(v.free_bytes, v.total_bytes),
                v.total_bytes,
            )
            for v in report.volumes
            if v.free_bytes is not None and v.total_bytes
        ),
        guest_report_timestamp=report.received_at,
    )


def current_report(record: VmRecord, now: float, max_age: float) -> GuestReport | None:
    """The newest guest report, unless it is older than ``max_age``."""
    report = record.guest_report
    return report if report is not None and now - report.received_at <= max_age else None


def snapshot_part(
    record: VmRecord, *, now: float, settings: JudgeSettings, freeze_errors: VmFreezeErrors
) -> SnapshotPart:
    """The last finished snapshot judged, the newest consistent one, and the count and age of all.

    Of the VM's freeze failures only ``freeze_errors.thaw_failures`` count here: while the record,
    the clock's due changes and those stay the same, so does the result.
    """
    judge_snapshot = snapshot_judge(
        record,
        report_max_age=settings.guest_report_max_age,
        freeze_errors=freeze_errors,
        awaiting_reports=awaiting_first_report(record, now=now, settings=settings),
    )
    last = last_finished(record.snapshots.values(), now)
    created = [s.requested_at for s in record.snapshots.values() if s.requested_at > 0]
    return SnapshotPart(
        snapshot_count=len(record.snapshots),
        oldest_snapshot_timestamp=min(created) if created else None,
        last_snapshot=judge_snapshot.settled(last) if last is not None else None,
        last_consistent_snapshot_timestamp=judge_snapshot.last_consistent(),
    )


def snapshot_judge(
    record: VmRecord, *, report_max_age: float, freeze_errors: VmFreezeErrors, awaiting_reports: bool = False
) -> SnapshotJudge:
    """The judge of this VM's snapshots, with the evidence that was current at each one's creation."""
    return SnapshotJudge(record, is_windows(record), report_max_age, freeze_errors, awaiting_reports)


def grace_ends_at(settings: JudgeSettings) -> float | None:
    """When the start-up wait for guest reports ends; None when there is none."""
    if settings.started_at is None or settings.guest_report_grace <= 0:
        return None
    return settings.started_at + settings.guest_report_grace


def awaiting_first_report(record: VmRecord, *, now: float, settings: JudgeSettings) -> bool:
    """Whether this Windows VM's first report since start-up may still be on its way."""
    ends = grace_ends_at(settings)
    return ends is not None and now < ends and is_windows(record) and not record.report_evidence


@dataclass(frozen=True, slots=True)
class SnapshotJudge:
    """Judges the snapshots of one VM with the evidence that was current at each one's creation."""

    record: VmRecord
    is_windows: bool
    report_max_age: float
    freeze_errors: VmFreezeErrors
    # The VM's first guest report since start-up may still come: verdicts that need it are unknown.
    awaiting_reports: bool = False
    # Verdicts given so far, by snapshot: the last snapshot is usually also the last consistent one.
    _settled: dict[int, SnapshotJudgement | None] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, snapshot: SnapshotFacts) -> SnapshotJudgement:
        context = SnapshotContext(
            is_windows=self.is_windows,
            evidence=self.evidence(snapshot),
            failure_reason=classify_cached(snapshot.error_message).reason if snapshot.error_message else None,
            storage_failure=storage_failure_reason(snapshot.error_message),
            thaw_failure=self.freeze_errors.thaw_failure_during(snapshot),
            frozen_at_start=self.is_windows and self.record.frozen_long_before(snapshot.requested_at),
            partial_volumes=snapshottable_excluded(self.record, snapshot),
            excluded_why=excluded_why(self.record, snapshot),
            volume_failures=volume_failures(self.record, snapshot),
        )
        return judge(snapshot, context)

    def settled(self, snapshot: SnapshotFacts) -> SnapshotJudgement | None:
        """The judgement, or None while it waits for a guest report that has not arrived yet.

        Without guest evidence a Windows snapshot is judged application-consistent; just after
        start-up that would only mean the exporter has not heard from the guest yet.
        """
        key = id(snapshot)  # the record holds every snapshot for as long as this judge lives
        if key not in self._settled:
            self._settled[key] = self._settle(snapshot)
        return self._settled[key]

    def _settle(self, snapshot: SnapshotFacts) -> SnapshotJudgement | None:
        judgement = self(snapshot)
        if self.awaiting_reports and judgement.consistency == "application" and self.evidence(snapshot) is None:
            return None
        return judgement

    def evidence(self, snapshot: SnapshotFacts) -> GuestEvidence | None:
        """What the guest said about VSS when the snapshot was taken (Windows guests only)."""
        if not self.is_windows:
            return None
        moment = snapshot.taken_at if snapshot.taken_at is not None else snapshot.requested_at
        evidence = self.record.evidence_at(moment, self.report_max_age) or self.record.evidence_standing_in_for(
            moment, self.report_max_age
        )
        if (evidence is None or evidence.vss_blocker is None) and self.record.fsfreeze_unavailable_at(moment):
            writers_failed = evidence.writers_failed if evidence else None
            evidence = GuestEvidence(writers_failed=writers_failed, vss_blocker="fsfreeze_unavailable")
        return evidence

    def last_consistent(self) -> float | None:
        """Creation time of the newest Succeeded snapshot at level 2 or above."""
        for snapshot in sorted(self.record.snapshots.values(), key=lambda s: (s.requested_at, s.name), reverse=True):
            if snapshot.phase == "Succeeded":
                judgement = self.settled(snapshot)
                if judgement is None:
                    return None  # a newer snapshot's verdict is still unknown
                if judgement.level >= FILESYSTEM:
                    return judgement.timestamp
        return None


def volume_failures(record: VmRecord, snapshot: SnapshotFacts) -> tuple[VolumeFailure, ...]:
    """Failed volumes from the snapshot's content; else the one its own ``status.error`` names."""
    failures = record.volume_failures(snapshot.name)
    if failures:
        return failures
    named = failure_from_snapshot_error(snapshot.error_message, snapshot.uid)
    return (named,) if named is not None else ()


def excluded_why(record: VmRecord, snapshot: SnapshotFacts) -> tuple[tuple[str, str], ...]:
    """The VM's own reason for each excluded volume it cannot snapshot."""
    if not snapshot.excluded_volumes or record.vm is None:
        return ()
    reasons = {v.name: v.reason for v in record.vm.volume_snapshot_statuses if not v.enabled and v.reason}
    return tuple((v, reasons[v]) for v in snapshot.excluded_volumes if v in reasons)


def snapshottable_excluded(record: VmRecord, snapshot: SnapshotFacts) -> tuple[str, ...]:
    """Excluded volumes that the VM reports as snapshottable: the snapshot is partial (before 1.9 says so)."""
    if not snapshot.excluded_volumes or record.vm is None:
        return ()
    enabled = {v.name for v in record.vm.volume_snapshot_statuses if v.enabled}
    return tuple(v for v in snapshot.excluded_volumes if v in enabled)


def next_change_at(record: VmRecord, *, now: float, settings: JudgeSettings) -> float | None:
    """The earliest future time at which this VM's judgement changes by the clock alone.

    A snapshot in progress with an error fails at its deadline; a frozen filesystem becomes
    stuck; a guest report expires; the start-up wait for a Windows VM's first report ends.
    Nothing else in a VmState depends on the clock.
    """
    moments: list[float] = []
    for snapshot in record.snapshots.values():
        if snapshot.phase == "InProgress" and snapshot.failure_deadline and not snapshot.deadline_exceeded:
            moments.append(snapshot.requested_at + snapshot.failure_deadline)
    if record.frozen_since is not None:
        moments.append(record.frozen_since + settings.stuck_frozen_after)
    if record.guest_report is not None:
        moments.append(record.guest_report.received_at + settings.guest_report_max_age)
    grace_end = grace_ends_at(settings)
    if grace_end is not None and awaiting_first_report(record, now=now, settings=settings):
        moments.append(grace_end)  # verdicts held back for the first report are made without it
    future = [m for m in moments if m > now]
    # Just past the boundary, so the comparison that flips is already true when re-judged.
    return min(future) + 0.001 if future else None
