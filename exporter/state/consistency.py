"""How consistent a finished snapshot is: the table of DESIGN §4, as one pure function.

Levels are ordered so that PromQL can compare them: 0 failed, 1 crash-consistent,
2 filesystem-consistent, 3 application-consistent (or taken offline). Each rule follows what the
KubeVirt snapshot controller does (``pkg/storage/snapshot/snapshot.go``, ``source.go``); the tests cite
the lines per release.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from exporter.state.records import SnapshotFacts, SnapshotJudgement
from exporter.state.shared import SharedValues
from exporter.state.snapshot_contents import VolumeFailure

FAILED, CRASH, FILESYSTEM, APPLICATION = 0, 1, 2, 3

# The indications that say the guest was not quiesced, strongest first.
_CRASH_INDICATIONS = (
    ("QuiesceTimeout", "quiesce_timeout"),
    ("NoGuestAgent", "no_guest_agent"),
    ("Paused", "paused"),
)
_ONLINE_INDICATIONS = frozenset({"Online", "GuestAgent", "NoGuestAgent", "Paused", "QuiesceFailed", "QuiesceTimeout"})
# A QuiesceFailed whose message says the snapshot went ahead without quiescing (an announced upstream
# change that takes the snapshot after the last failed retry) is crash-consistent, whatever the version.
_UNQUIESCED_AFTER_RETRIES = "exhausting retries"

# Thaw failures that mean the writes were not held while the storage snapshot was taken:
# qemu-ga requester_thaw() reports these only after VSS gave up the hold or the snapshot set failed.
THAW_FAILURES_THAT_BREAK_CONSISTENCY = frozenset({"hold_writes_timeout", "thaw_failed"})
# thaw_failed texts that say nothing about the hold: the set completed (only the completion notice
# failed), or nothing was frozen at all.
THAW_CAUSES_THAT_KEEP_CONSISTENCY = frozenset({"bad_state"})


@dataclass(frozen=True, slots=True)
class GuestEvidence:
    """What the guest said about itself around the snapshot's creation time."""

    writers_failed: int | None = None
    vss_blocker: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotContext:
    """What else is known about one snapshot besides the object itself.

    ``failure_reason``: classified reason of its ``status.error`` (a freeze reason, or a storage reason).
    ``thaw_failure``: reason of a thaw failure matched to this snapshot that broke the hold, if any.
    ``frozen_at_start``: the VMI already said ``frozen`` when the snapshot started, so ``Freeze()`` was a no-op.
    ``partial_volumes``: excluded volumes that could have been snapshotted (from the VM's volume statuses).
    ``storage_failure``: storage reason of its ``status.error`` when the controller wrote it itself.
    """

    is_windows: bool = False
    evidence: GuestEvidence | None = None
    failure_reason: str | None = None
    storage_failure: str | None = None
    thaw_failure: str | None = None
    frozen_at_start: bool = False
    partial_volumes: tuple[str, ...] = ()
    # Why each excluded volume was left out, from the VM's volumeSnapshotStatuses ("" when unknown).
    excluded_why: tuple[tuple[str, str], ...] = ()
    # Volumes whose VolumeSnapshot reports an error (from the snapshot's content, or its own status.error).
    volume_failures: tuple[VolumeFailure, ...] = ()


def indications_label(indications: tuple[str, ...]) -> str:
    """Sorted, comma-joined; every value is kept (the parser admits only identifier-shaped ones)."""
    return sys.intern(",".join(sorted(set(indications))))  # a label value: a few per fleet


def thaw_breaks_consistency(reason: str, cause: str) -> bool:
    """Whether a classified thaw failure means the guest's writes were not held during the snapshot."""
    return reason in THAW_FAILURES_THAT_BREAK_CONSISTENCY and cause not in THAW_CAUSES_THAT_KEEP_CONSISTENCY


def judge(snapshot: SnapshotFacts, context: SnapshotContext) -> SnapshotJudgement:
    """Judge one finished snapshot."""
    level, consistency, reason = _classify(snapshot, context)
    notes = _notes(snapshot, context, level)
    reason = sys.intern("_".join(part for part in (reason, *notes) if part))  # a label value
    timestamp = snapshot.taken_at if snapshot.taken_at is not None else snapshot.requested_at
    return SnapshotJudgement(
        snapshot=snapshot.name,
        phase=snapshot.phase,
        level=level,
        consistency=consistency,
        reason=reason,
        indications=indications_label(snapshot.indications),
        timestamp=timestamp,
        explanation=_explanation(snapshot, context),
        failed_volumes=tuple((f.volume or f.volume_snapshot, f.reason) for f in context.volume_failures),
    )


_SELF_EXPLAINING = frozenset({"GuestAgent", "Online"})
# Snapshots of one kind are explained in the same words: every VM's judgement holds one tuple.
_SHARED_EXPLANATIONS: SharedValues = SharedValues()
MAX_EXPLANATION_LINES = 8
MAX_EXPLANATION_CHARS = 240


def _explanation(snapshot: SnapshotFacts, context: SnapshotContext) -> tuple[str, ...]:
    """The controller's own words about this snapshot, bounded: what a support engineer reads first."""
    lines = [
        f"{name}: {message}"
        for name, message in snapshot.indication_messages
        if message and name not in _SELF_EXPLAINING
    ]
    why = dict(context.excluded_why)
    for volume in snapshot.excluded_volumes:
        reason = why.get(volume) or ("snapshottable, but left out" if volume in context.partial_volumes else "")
        lines.append(f"volume {volume} excluded" + (f": {reason}" if reason else ""))
    for failure in context.volume_failures:
        name = failure.volume or failure.volume_snapshot
        lines.append(f"volume {name} storage snapshot failed ({failure.reason}): {failure.message}")
    if context.storage_failure is not None and snapshot.error_message and not context.volume_failures:
        lines.append(f"storage: {snapshot.error_message}")
    return _SHARED_EXPLANATIONS(tuple(line[:MAX_EXPLANATION_CHARS] for line in lines[:MAX_EXPLANATION_LINES]))


def _notes(snapshot: SnapshotFacts, context: SnapshotContext, level: int) -> list[str]:
    if level == FAILED:
        return []
    notes = []
    if level >= FILESYSTEM and _quiesced_after_retry(snapshot):
        notes.append("quiesced_after_retry")
    if "PartialSnapshot" in snapshot.indications or context.partial_volumes:
        notes.append("partial")
    return notes


def _quiesced_after_retry(snapshot: SnapshotFacts) -> bool:
    return "QuiesceFailed" in snapshot.indications and "GuestAgent" in snapshot.indications


def _classify(snapshot: SnapshotFacts, context: SnapshotContext) -> tuple[int, str, str]:
    if context.storage_failure is not None:
        # The controller keeps a Succeeded phase when VolumeSnapshots go missing later, but the data is
        # gone (readyToUse false); in progress, it never gets a usable snapshot either.
        return FAILED, "failed", context.storage_failure
    if snapshot.phase != "Succeeded":
        if snapshot.deadline_exceeded or snapshot.phase == "InProgress":
            return FAILED, "failed", context.failure_reason or "deadline_exceeded"
        return FAILED, "failed", context.failure_reason or "failed"
    indications = set(snapshot.indications)
    if not indications & _ONLINE_INDICATIONS:
        # No indications at all: the VM was off, so the disks were at rest.
        return APPLICATION, "offline", ""
    crash = _crash_reason(snapshot, indications, context)
    if crash is not None:
        return CRASH, "crash", crash
    if not context.is_windows:
        return FILESYSTEM, "filesystem", ""
    evidence = context.evidence
    if evidence is not None and evidence.vss_blocker:
        return CRASH, "crash", evidence.vss_blocker
    if evidence is not None and evidence.writers_failed:
        return FILESYSTEM, "filesystem", "writers_failed"
    return APPLICATION, "application", ""


def _crash_reason(snapshot: SnapshotFacts, indications: set[str], context: SnapshotContext) -> str | None:
    """Why an online snapshot was taken without quiescing, or None when the guest was quiesced."""
    if "QuiesceFailed" in indications:
        if "NoGuestAgent" in indications:
            # The agent went away between retries; Freeze() is a no-op without it.
            return "quiesce_failed_no_guest_agent"
        if _UNQUIESCED_AFTER_RETRIES in snapshot.indication_message("QuiesceFailed"):
            return "quiesce_failed"
    for indication, reason in _CRASH_INDICATIONS:
        if indication in indications:
            return reason
    if context.thaw_failure is not None:
        # Before QuiesceTimeout existed (or for other thaw failures) the thaw error is the only trace.
        return context.thaw_failure
    if "GuestAgent" not in indications:
        return "not_quiesced"
    if context.is_windows and context.frozen_at_start:
        # Freeze() returns at once when the VMI says frozen; on Windows that status outlives VSS's auto-thaw.
        return "freeze_skipped_stale_frozen"
    return None
