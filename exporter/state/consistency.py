"""How consistent a finished snapshot is: the table of DESIGN §4, as one pure function.

Levels are ordered so that PromQL can compare them: 0 failed, 1 crash-consistent,
2 filesystem-consistent, 3 application-consistent (or taken offline).
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.state.records import SnapshotFacts, SnapshotJudgement

FAILED, CRASH, FILESYSTEM, APPLICATION = 0, 1, 2, 3

KNOWN_INDICATIONS = (
    "GuestAgent",
    "NoGuestAgent",
    "Online",
    "Paused",
    "PartialSnapshot",
    "QuiesceFailed",
    "QuiesceTimeout",
)

# The indications that say the guest was not (or not fully) quiesced, strongest first.
_CRASH_INDICATIONS = (
    ("QuiesceTimeout", "quiesce_timeout"),
    ("QuiesceFailed", "quiesce_failed"),
    ("NoGuestAgent", "no_guest_agent"),
    ("Paused", "paused"),
)


@dataclass(frozen=True, slots=True)
class GuestEvidence:
    """What the guest said about itself around the snapshot's creation time."""

    writers_failed: int | None = None
    vss_blocker: str | None = None


def indications_label(indications: tuple[str, ...]) -> str:
    """Sorted, comma-joined; values outside the known set are kept (they are pattern-checked)."""
    return ",".join(sorted(set(indications)))


def judge(
    snapshot: SnapshotFacts,
    *,
    is_windows: bool,
    evidence: GuestEvidence | None,
    thaw_timeout_seen: bool,
    failure_reason: str | None,
) -> SnapshotJudgement:
    """Judge one finished snapshot. ``failure_reason`` is the classified reason of its error, if any."""
    level, consistency, reason = _classify(
        snapshot,
        is_windows=is_windows,
        evidence=evidence,
        thaw_timeout_seen=thaw_timeout_seen,
        failure_reason=failure_reason,
    )
    if "PartialSnapshot" in snapshot.indications and level > FAILED:
        reason = f"{reason}_partial" if reason else "partial"
    timestamp = snapshot.creation_time if snapshot.creation_time is not None else snapshot.created_at
    return SnapshotJudgement(
        snapshot=snapshot.name,
        phase=snapshot.phase,
        level=level,
        consistency=consistency,
        reason=reason,
        indications=indications_label(snapshot.indications),
        timestamp=timestamp,
    )


def _classify(
    snapshot: SnapshotFacts,
    *,
    is_windows: bool,
    evidence: GuestEvidence | None,
    thaw_timeout_seen: bool,
    failure_reason: str | None,
) -> tuple[int, str, str]:
    if snapshot.phase != "Succeeded":
        if snapshot.deadline_exceeded or snapshot.phase == "InProgress":
            return FAILED, "failed", failure_reason or "deadline_exceeded"
        return FAILED, "failed", failure_reason or "failed"
    indications = set(snapshot.indications)
    if not indications & {"Online", "GuestAgent", "NoGuestAgent", "Paused", "QuiesceFailed", "QuiesceTimeout"}:
        # No indications at all: the VM was off, so the disks were at rest.
        return APPLICATION, "offline", ""
    for indication, reason in _CRASH_INDICATIONS:
        if indication in indications:
            return CRASH, "crash", reason
    if thaw_timeout_seen:
        # Older KubeVirt has no QuiesceTimeout: the thaw error is the only trace of the 10 s VSS limit.
        return CRASH, "crash", "hold_writes_timeout"
    if "GuestAgent" not in indications:
        return CRASH, "crash", "not_quiesced"
    if not is_windows:
        return FILESYSTEM, "filesystem", ""
    if evidence is not None and evidence.vss_blocker:
        return CRASH, "crash", evidence.vss_blocker
    if evidence is not None and evidence.writers_failed:
        return FILESYSTEM, "filesystem", "writers_failed"
    return APPLICATION, "application", ""
