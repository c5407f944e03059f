"""Every row of the consistency table (DESIGN §4) that API data and guest evidence decide."""

from __future__ import annotations

import pytest

from exporter.state.consistency import GuestEvidence, SnapshotContext, judge, thaw_breaks_consistency
from exporter.state.records import SnapshotFacts, SnapshotJudgement, VmKey
from exporter.state.snapshots import parse_snapshot

KEY = VmKey("default", "win2019")


def snapshot(
    phase: str = "Succeeded", indications: tuple[str, ...] = ("GuestAgent", "Online"), **extra
) -> SnapshotFacts:
    return SnapshotFacts(
        key=KEY,
        uid="u",
        name="snap",
        requested_at=1000.0,
        phase=phase,
        indications=indications,
        taken_at=1010.0 if phase == "Succeeded" else None,
        **extra,
    )


WINDOWS = SnapshotContext(is_windows=True)
LINUX = SnapshotContext()
SNAPSHOT_GO_18 = "kubevirt/kubevirt pkg/storage/snapshot/snapshot.go (v1.8.0)"

CASES = [
    # id, snapshot, context → level, consistency, reason
    (
        "failed-phase",
        snapshot("Failed", error_message="x"),
        SnapshotContext(is_windows=True, failure_reason="add_volume_to_snapshot_set"),
        0,
        "failed",
        "add_volume_to_snapshot_set",
    ),
    ("failed-no-error", snapshot("Failed", deadline_exceeded=True), WINDOWS, 0, "failed", "deadline_exceeded"),
    (
        "in-progress-past-deadline",
        snapshot("InProgress", error_message="x", failure_deadline=60.0),
        SnapshotContext(failure_reason="linux_freeze_failed"),
        0,
        "failed",
        "linux_freeze_failed",
    ),
    ("offline", snapshot(indications=()), WINDOWS, 3, "offline", ""),
    ("no-guest-agent", snapshot(indications=("NoGuestAgent", "Online")), WINDOWS, 1, "crash", "no_guest_agent"),
    ("paused", snapshot(indications=("Online", "Paused")), LINUX, 1, "crash", "paused"),
    (
        "quiesce-timeout",
        snapshot(indications=("GuestAgent", "Online", "QuiesceTimeout")),
        WINDOWS,
        1,
        "crash",
        "quiesce_timeout",
    ),
    # v1.5.2–v1.7.1: QuiesceFailed is sticky (snapshot.go:859 v1.7.0 seeds the set with the old indications)
    # and VolumeSnapshots are created only after Freeze() returned nil (snapshot.go:421-435 v1.7.0), so a
    # Succeeded snapshot carrying it was frozen by a later retry.
    (
        "quiesce-failed-then-retry-froze-windows",
        snapshot(indications=("GuestAgent", "Online", "QuiesceFailed")),
        WINDOWS,
        3,
        "application",
        "quiesced_after_retry",
    ),
    (
        "quiesce-failed-then-retry-froze-linux",
        snapshot(indications=("GuestAgent", "Online", "QuiesceFailed")),
        LINUX,
        2,
        "filesystem",
        "quiesced_after_retry",
    ),
    (
        "quiesce-failed-then-retry-froze-writers-failed",
        snapshot(indications=("GuestAgent", "Online", "QuiesceFailed")),
        SnapshotContext(is_windows=True, evidence=GuestEvidence(writers_failed=1)),
        2,
        "filesystem",
        "writers_failed_quiesced_after_retry",
    ),
    # Freeze() returns nil without freezing when the agent is gone (source.go:443-449 v1.7.0).
    (
        "quiesce-failed-then-agent-lost",
        snapshot(indications=("GuestAgent", "NoGuestAgent", "Online", "QuiesceFailed")),
        WINDOWS,
        1,
        "crash",
        "quiesce_failed_no_guest_agent",
    ),
    (
        "quiesce-failed-on-failed-snapshot",
        snapshot("Failed", indications=("GuestAgent", "Online", "QuiesceFailed"), deadline_exceeded=True),
        SnapshotContext(is_windows=True, failure_reason="agent_timeout"),
        0,
        "failed",
        "agent_timeout",
    ),
    (
        "quiesce-failed-taken-without-quiescing",
        snapshot(
            indications=("GuestAgent", "Online", "QuiesceFailed"),
            indication_messages=(
                (
                    "QuiesceFailed",
                    "Filesystem quiescing failed after exhausting retries. Snapshot is crash-consistent and may "
                    "not be application-consistent.",
                ),
            ),
        ),
        WINDOWS,
        1,
        "crash",
        "quiesce_failed",
    ),
    (
        "sticky-agent-flap",
        snapshot(indications=("GuestAgent", "NoGuestAgent", "Online")),
        LINUX,
        1,
        "crash",
        "no_guest_agent",
    ),
    ("linux-quiesced", snapshot(), LINUX, 2, "filesystem", ""),
    (
        "windows-writers-failed",
        snapshot(),
        SnapshotContext(is_windows=True, evidence=GuestEvidence(writers_failed=2)),
        2,
        "filesystem",
        "writers_failed",
    ),
    (
        "windows-vss-disabled",
        snapshot(),
        SnapshotContext(is_windows=True, evidence=GuestEvidence(writers_failed=0, vss_blocker="vss_service_disabled")),
        1,
        "crash",
        "vss_service_disabled",
    ),
    (
        "windows-provider-missing",
        snapshot(),
        SnapshotContext(is_windows=True, evidence=GuestEvidence(vss_blocker="qga_provider_missing")),
        1,
        "crash",
        "qga_provider_missing",
    ),
    (
        "windows-application",
        snapshot(),
        SnapshotContext(is_windows=True, evidence=GuestEvidence(writers_failed=0)),
        3,
        "application",
        "",
    ),
    ("windows-no-report", snapshot(), WINDOWS, 3, "application", ""),
    # Before v1.6.4/v1.7.2 a thaw error never reached the snapshot (snapshot.go:477-481 v1.7.0 returns it).
    (
        "thaw-timeout-old-kubevirt",
        snapshot(),
        SnapshotContext(is_windows=True, thaw_failure="hold_writes_timeout"),
        1,
        "crash",
        "hold_writes_timeout",
    ),
    (
        "thaw-failed-snapshot-set",
        snapshot(),
        SnapshotContext(is_windows=True, thaw_failure="thaw_failed"),
        1,
        "crash",
        "thaw_failed",
    ),
    # Freeze() returns nil when the VMI already says frozen (source.go:435-437 v1.7.0, :441-443 v1.8.0;
    # snapshot.go:412-416 v1.4.0 skips it the same way).
    (
        "windows-stale-frozen-at-start",
        snapshot(),
        SnapshotContext(is_windows=True, frozen_at_start=True),
        1,
        "crash",
        "freeze_skipped_stale_frozen",
    ),
    ("linux-frozen-at-start-stays-frozen", snapshot(), SnapshotContext(frozen_at_start=True), 2, "filesystem", ""),
    (
        "partial-linux",
        snapshot(indications=("GuestAgent", "Online", "PartialSnapshot")),
        LINUX,
        2,
        "filesystem",
        "partial",
    ),
    (
        "partial-crash",
        snapshot(indications=("NoGuestAgent", "Online", "PartialSnapshot")),
        LINUX,
        1,
        "crash",
        "no_guest_agent_partial",
    ),
    # Before v1.9.0 there is no PartialSnapshot; an excluded volume the VM reports as snapshottable says it.
    (
        "partial-before-1.9-from-volume-statuses",
        snapshot(excluded_volumes=("data",)),
        SnapshotContext(partial_volumes=("data",)),
        2,
        "filesystem",
        "partial",
    ),
    # Storage errors the controller writes itself (snapshot.go:463/466/476 v1.8.0): the snapshot is unusable.
    (
        "storage-missing-after-success",
        snapshot(error_message="VolumeSnapshots (vmsnapshot-1-volume-disk0) missing"),
        SnapshotContext(is_windows=True, storage_failure="volume_snapshots_missing"),
        0,
        "failed",
        "volume_snapshots_missing",
    ),
    (
        "storage-error-past-deadline",
        snapshot("Failed", error_message="VolumeSnapshot v error: x", deadline_exceeded=True),
        SnapshotContext(storage_failure="volume_snapshot_error", failure_reason="other"),
        0,
        "failed",
        "volume_snapshot_error",
    ),
    (
        "unknown-future-indication",
        snapshot(indications=("GuestAgent", "Online", "SomethingNew")),
        LINUX,
        2,
        "filesystem",
        "",
    ),
    ("online-without-agent-indication", snapshot(indications=("Online",)), LINUX, 1, "crash", "not_quiesced"),
]


@pytest.mark.parametrize(
    ("facts", "context", "level", "consistency", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_judge(facts, context, level, consistency, reason) -> None:
    judgement = judge(facts, context)
    assert (judgement.level, judgement.consistency, judgement.reason) == (level, consistency, reason)


def test_indications_label_is_sorted_and_deduplicated() -> None:
    facts = snapshot(indications=("Online", "GuestAgent", "Online"))
    assert judge(facts, LINUX).indications == "GuestAgent,Online"


@pytest.mark.parametrize(
    ("reason", "cause", "breaks"),
    [
        ("hold_writes_timeout", "hold_writes_timeout", True),
        ("thaw_failed", "unexpected_provider_error", True),
        ("thaw_failed", "provider_veto", True),
        # requester_thaw: "Did you freeze the volumes?" — nothing was frozen by this requester (qemu/qemu
        # qga/vss-win32/requester.cpp:587-596, blob bc260abb96: VSS_E_BAD_STATE when there is no snapshot set).
        ("thaw_failed", "bad_state", False),
        ("linux_freeze_failed", "unknown", False),
    ],
)
def test_thaw_breaks_consistency(reason: str, cause: str, breaks: bool) -> None:
    assert thaw_breaks_consistency(reason, cause) is breaks


@pytest.mark.parametrize(
    ("fixture", "level", "consistency"),
    [
        ("vmsnapshot-succeeded-online-guestagent", 3, "application"),
        ("vmsnapshot-succeeded-quiescetimeout-v1.8", 1, "crash"),
        ("vmsnapshot-failed-quiescefailed-v1.7.0", 0, "failed"),
    ],
)
def test_fixture_snapshots(kubevirt_object, fixture: str, level: int, consistency: str) -> None:
    facts, problems = parse_snapshot(kubevirt_object(fixture))
    assert facts is not None and problems == []
    judgement = judge(facts, WINDOWS)
    assert (judgement.level, judgement.consistency) == (level, consistency)
    if facts.taken_at is not None:
        assert judgement.timestamp == facts.taken_at


def test_explanation_carries_the_controllers_own_words() -> None:
    # sourceIndications messages (snapshot.go:883-895 v1.8.0), excluded volumes with the VM's reason
    # (snapshot.go:962-990 v1.8.0), and a storage error the controller wrote (snapshot.go:476 v1.8.0).
    facts = snapshot(
        indications=("GuestAgent", "Online", "QuiesceTimeout"),
        indication_messages=(("GuestAgent", "x"), ("QuiesceTimeout", "the freeze window timed out")),
        excluded_volumes=("cloudinitdisk", "data", "scratch"),
        error_message="VolumeSnapshot v error: " + "q" * 400,
    )
    context = SnapshotContext(
        partial_volumes=("data",),
        excluded_why=(("cloudinitdisk", "Snapshot is not supported for this volumeSource type [cloudinitdisk]"),),
        storage_failure="volume_snapshot_error",
    )
    lines = judge(facts, context).explanation
    assert lines[:4] == (
        "QuiesceTimeout: the freeze window timed out",
        "volume cloudinitdisk excluded: Snapshot is not supported for this volumeSource type [cloudinitdisk]",
        "volume data excluded: snapshottable, but left out",
        "volume scratch excluded",
    )
    assert lines[4].startswith("storage: VolumeSnapshot v error: ") and len(lines[4]) == 240


def test_snapshots_explained_in_the_same_words_share_the_words_and_labels() -> None:
    # Judgements are kept for every VM: equal explanations are one tuple, labels one string.
    def judged(window: str) -> SnapshotJudgement:
        facts = snapshot(
            indications=("GuestAgent", "Online", "QuiesceTimeout"),
            indication_messages=(("QuiesceTimeout", f"the freeze window timed out after {window}"),),
        )
        return judge(facts, SnapshotContext())

    one, other = judged("10 s"), judged("".join(["10", " s"]))
    assert one.explanation and other.explanation is one.explanation
    assert other.reason is one.reason and other.indications is one.indications
