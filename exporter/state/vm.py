"""All facts of one VM → the VmState that is rendered. Pure: ``now`` is an argument."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.state.consistency import FILESYSTEM, GuestEvidence, SnapshotContext, judge
from exporter.state.diagnosis import judge_checks
from exporter.state.guest_report import GuestCheckThresholds, GuestReport, vss_could_not_run
from exporter.state.records import (
    FailedWriter,
    GuestInfo,
    GuestVolumeSpace,
    SnapshotFacts,
    SnapshotJudgement,
    VmFacts,
    VmiFacts,
    VmKey,
    VmState,
)
from exporter.state.snapshots import last_finished
from exporter.state.storage_failures import storage_failure_reason

FROZEN_INTERVALS = 16
# Windows releases a VSS write hold after 10 s (VSS_E_HOLD_WRITES_TIMEOUT).
VSS_HOLD_LIMIT = 10.0


@dataclass(slots=True)
class VmRecord:
    """Mutable per-VM facts held by the fleet; judged into a VmState on every change."""

    key: VmKey
    vm: VmFacts | None = None
    vmi: VmiFacts | None = None
    guest: GuestInfo | None = None
    frozen_since: float | None = None
    snapshots: dict[str, SnapshotFacts] = field(default_factory=dict)
    # Evidence that outlives a single object: (observed_at, freeze available?) transitions.
    fsfreeze_history: list[tuple[float, bool]] = field(default_factory=list)
    # The newest guest report in full, and what the last few said about VSS, oldest first, so a
    # snapshot is judged by the report current at its creation time (full reports are large).
    guest_report: GuestReport | None = None
    report_evidence: list[tuple[float, GuestEvidence]] = field(default_factory=list)
    # When the VMI said frozen: (first seen, thawed at or None), oldest first, for judging snapshot starts.
    frozen_intervals: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.vm is not None or self.vmi is not None

    def note_frozen(self, at: float) -> None:
        self.frozen_intervals.append((at, None))
        del self.frozen_intervals[:-FROZEN_INTERVALS]

    def note_thawed(self, at: float | None = None) -> None:
        """Close the open frozen interval; without a time (the VMI went away) it claims nothing."""
        if self.frozen_intervals and self.frozen_intervals[-1][1] is None:
            start = self.frozen_intervals[-1][0]
            self.frozen_intervals[-1] = (start, start if at is None else at)

    def frozen_long_before(self, moment: float) -> bool:
        """Whether the VMI had said frozen for longer than the VSS hold limit at ``moment``.

        The snapshot controller skips the freeze while the VMI says frozen; a freeze older than the
        10 s hold limit was released by Windows long before, so nothing held the writes.
        """
        return any(
            start <= moment - VSS_HOLD_LIMIT and (end is None or end >= moment) for start, end in self.frozen_intervals
        )


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    stuck_frozen_after: float = 300.0
    guest_report_max_age: float = 1800.0
    guest_thresholds: GuestCheckThresholds = field(default_factory=GuestCheckThresholds)


MAX_FAILED_WRITERS = 32
MAX_LABEL = 128
FREE_SPACE_STEPS = 1024
MIB = 1024 * 1024


def exported_free_bytes(free_bytes: int, total_bytes: int) -> int:
    """Free space rounded down to 1/1024 of the volume (at least 1 MiB): at most 0.1 % of the volume off.

    Free space moves a little with every guest report; exported exactly, every report would
    re-render the VM and recompress its block. The free-space check judges the exact figure.
    """
    step = max(MIB, total_bytes // FREE_SPACE_STEPS)
    return free_bytes - free_bytes % step


def current_report(record: VmRecord, now: float, max_age: float) -> GuestReport | None:
    """The newest guest report, unless it is older than ``max_age``."""
    report = record.guest_report
    return report if report is not None and now - report.received_at <= max_age else None


def report_evidence(report: GuestReport) -> GuestEvidence:
    """What a guest report says about whether VSS could quiesce the guest."""
    return GuestEvidence(writers_failed=report.writers_failed, vss_blocker=vss_could_not_run(report))


def _evidence(record: VmRecord, moment: float, max_age: float) -> GuestEvidence | None:
    """What the guest report current at ``moment`` said: the newest one received before it, if fresh then."""
    for received_at, evidence in reversed(record.report_evidence):
        if received_at <= moment:
            return evidence if moment - received_at <= max_age else None
    return None


ReasonLookup = Callable[[SnapshotFacts], str | None]
ThawLookup = Callable[[VmRecord, SnapshotFacts], str | None]


def fsfreeze_available(vmi: VmiFacts | None, guest: GuestInfo | None) -> bool | None:
    """Freeze command enabled per guestosinfo; not judged while frozen (qemu-ga disables it then)."""
    if vmi is None or not vmi.agent_connected or guest is None or guest.vmi_uid != vmi.uid:
        return None
    if vmi.fs_frozen or guest.fs_frozen:
        return None
    return guest.fsfreeze_enabled


@dataclass(frozen=True, slots=True)
class _SnapshotJudge:
    """Judges the snapshots of one VM with the evidence that was current at each one's creation."""

    record: VmRecord
    is_windows: bool
    report_max_age: float
    failure_reason: ReasonLookup | None
    thaw_timeout_seen: ThawLookup | None

    def __call__(self, snapshot: SnapshotFacts) -> SnapshotJudgement:
        moment = snapshot.creation_time if snapshot.creation_time is not None else snapshot.created_at
        evidence = _evidence(self.record, moment, self.report_max_age) if self.is_windows else None
        no_blocker = evidence is None or evidence.vss_blocker is None
        if self.is_windows and no_blocker and _fsfreeze_unavailable_at(self.record, moment):
            writers_failed = evidence.writers_failed if evidence else None
            evidence = GuestEvidence(writers_failed=writers_failed, vss_blocker="fsfreeze_unavailable")
        reason = None
        if snapshot.error_message and self.failure_reason is not None:
            reason = self.failure_reason(snapshot)
        thaw_failure = self.thaw_timeout_seen(self.record, snapshot) if self.thaw_timeout_seen else None
        context = SnapshotContext(
            is_windows=self.is_windows,
            evidence=evidence,
            failure_reason=reason,
            storage_failure=storage_failure_reason(snapshot.error_message),
            thaw_failure=thaw_failure,
            frozen_at_start=self.is_windows and self.record.frozen_long_before(snapshot.created_at),
            partial_volumes=_snapshottable_excluded(self.record, snapshot),
        )
        return judge(snapshot, context)

    def last_consistent(self) -> float | None:
        """Creation time of the newest Succeeded snapshot at level 2 or above."""
        for snapshot in sorted(self.record.snapshots.values(), key=lambda s: (s.created_at, s.name), reverse=True):
            if snapshot.phase == "Succeeded":
                judgement = self(snapshot)
                if judgement.level >= FILESYSTEM:
                    return judgement.timestamp
        return None


def snapshot_judge(
    record: VmRecord,
    *,
    report_max_age: float,
    failure_reason: ReasonLookup | None,
    thaw_timeout_seen: ThawLookup | None,
) -> _SnapshotJudge:
    """The judge of this VM's snapshots, with the evidence that was current at each one's creation."""
    vmi = record.vmi
    guest = record.guest if vmi is not None and record.guest is not None and record.guest.vmi_uid == vmi.uid else None
    is_windows = (vmi is not None and vmi.is_windows) or (guest is not None and guest.os_id == "mswindows")
    return _SnapshotJudge(record, is_windows, report_max_age, failure_reason, thaw_timeout_seen)


def build_state(
    record: VmRecord,
    *,
    now: float,
    settings: JudgeSettings,
    failure_reason: ReasonLookup | None = None,
    thaw_timeout_seen: ThawLookup | None = None,
) -> VmState | None:
    """Judge one VM; ``None`` when neither a VirtualMachine nor a VMI exists for it."""
    if not record.exists:
        return None
    vmi = record.vmi
    guest = record.guest if vmi is not None and record.guest is not None and record.guest.vmi_uid == vmi.uid else None
    running = vmi is not None and vmi.running
    agent_connected = vmi.agent_connected if running and vmi is not None else None
    agent_supported = (vmi.agent_unsupported_reason is None) if agent_connected and vmi is not None else None
    freeze_available = fsfreeze_available(vmi, guest) if running else None
    fs_frozen = vmi.fs_frozen if running and vmi is not None else None
    frozen_since = record.frozen_since if fs_frozen else None

    judge_snapshot = snapshot_judge(
        record,
        report_max_age=settings.guest_report_max_age,
        failure_reason=failure_reason,
        thaw_timeout_seen=thaw_timeout_seen,
    )
    last = last_finished(record.snapshots.values(), now)
    created = [s.created_at for s in record.snapshots.values() if s.created_at > 0]

    phase = (vmi.phase or "Unknown") if vmi is not None else "Stopped"
    report = current_report(record, now, settings.guest_report_max_age) if vmi is not None else None
    checks = judge_checks(
        running=running,
        agent_connected=agent_connected,
        agent_supported=agent_supported,
        fsfreeze_available=freeze_available,
        frozen_since=frozen_since,
        now=now,
        stuck_after=settings.stuck_frozen_after,
        report=report,
        thresholds=settings.guest_thresholds,
    )
    return VmState(
        key=record.key,
        node=vmi.node if vmi is not None else "",
        phase=phase,
        guest_os=(vmi.guest_os_id if vmi is not None else "") or (guest.os_id if guest else ""),
        guest_os_version=vmi.guest_os_version if vmi is not None else "",
        agent_version=guest.agent_version if guest is not None else "",
        agent_connected=agent_connected,
        agent_supported=agent_supported,
        fsfreeze_available=freeze_available,
        fs_frozen=fs_frozen,
        frozen_since=frozen_since,
        volumes=guest.volumes if guest is not None else (),
        checks=checks,
        snapshots=len(record.snapshots),
        oldest_snapshot_timestamp=min(created) if created else None,
        last_snapshot=judge_snapshot(last) if last is not None else None,
        last_consistent_snapshot_timestamp=judge_snapshot.last_consistent(),
        writers_total=report.writers_total if report is not None else None,
        writers_failed=report.writers_failed if report is not None else None,
        failed_writers=tuple(
            FailedWriter(w.name[:MAX_LABEL], w.state, (w.last_error or "")[:MAX_LABEL])
            for w in report.failed_writers[:MAX_FAILED_WRITERS]
        )
        if report is not None
        else (),
        guest_volumes=tuple(
            GuestVolumeSpace(
                v.path[:MAX_LABEL],
                (v.drive_letter or "")[:MAX_LABEL],
                exported_free_bytes(v.free_bytes, v.total_bytes),
                v.total_bytes,
            )
            for v in report.volumes
            if v.free_bytes is not None and v.total_bytes
        )
        if report is not None
        else (),
        guest_report_timestamp=report.received_at if report is not None else None,
    )


def _snapshottable_excluded(record: VmRecord, snapshot: SnapshotFacts) -> tuple[str, ...]:
    """Excluded volumes that the VM reports as snapshottable: the snapshot is partial (before 1.9 says so)."""
    if not snapshot.excluded_volumes or record.vm is None:
        return ()
    enabled = {v.name for v in record.vm.volume_snapshot_statuses if v.enabled}
    return tuple(v for v in snapshot.excluded_volumes if v in enabled)


def _fsfreeze_unavailable_at(record: VmRecord, moment: float) -> bool:
    """Whether the last guestosinfo answer before ``moment`` showed the freeze command disabled."""
    known = [available for observed, available in record.fsfreeze_history if observed <= moment]
    return bool(known) and known[-1] is False


def next_change_at(record: VmRecord, *, now: float, settings: JudgeSettings) -> float | None:
    """The earliest future time at which this VM's judgement changes by the clock alone.

    A snapshot in progress with an error fails at its deadline; a frozen filesystem becomes
    stuck; a guest report expires. Nothing else in a VmState depends on the clock.
    """
    moments: list[float] = []
    for snapshot in record.snapshots.values():
        if snapshot.phase == "InProgress" and snapshot.failure_deadline and not snapshot.deadline_exceeded:
            moments.append(snapshot.created_at + snapshot.failure_deadline)
    if record.frozen_since is not None:
        moments.append(record.frozen_since + settings.stuck_frozen_after)
    if record.guest_report is not None:
        moments.append(record.guest_report.received_at + settings.guest_report_max_age)
    future = [m for m in moments if m > now]
    # Just past the boundary, so the comparison that flips is already true when re-judged.
    return min(future) + 0.001 if future else None
