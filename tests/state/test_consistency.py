"""Every row of the consistency table (DESIGN §4) that API data and guest evidence decide."""

from __future__ import annotations

import pytest

from exporter.state.consistency import GuestEvidence, judge
from exporter.state.records import SnapshotFacts, VmKey
from exporter.state.snapshots import parse_snapshot

KEY = VmKey("default", "win2019")


def snapshot(
    phase: str = "Succeeded", indications: tuple[str, ...] = ("GuestAgent", "Online"), **extra
) -> SnapshotFacts:
    return SnapshotFacts(
        key=KEY,
        uid="u",
        name="snap",
        created_at=1000.0,
        phase=phase,
        indications=indications,
        creation_time=1010.0 if phase == "Succeeded" else None,
        **extra,
    )


CASES = [
    # id, snapshot, windows, evidence, thaw timeout, failure reason → level, consistency, reason
    (
        "failed-phase",
        snapshot("Failed", error_message="x"),
        True,
        None,
        False,
        "add_volume_to_snapshot_set",
        0,
        "failed",
        "add_volume_to_snapshot_set",
    ),
    (
        "failed-no-error",
        snapshot("Failed", deadline_exceeded=True),
        True,
        None,
        False,
        None,
        0,
        "failed",
        "deadline_exceeded",
    ),
    (
        "in-progress-past-deadline",
        snapshot("InProgress", error_message="x", failure_deadline=60.0),
        False,
        None,
        False,
        "linux_freeze_failed",
        0,
        "failed",
        "linux_freeze_failed",
    ),
    ("offline", snapshot(indications=()), True, None, False, None, 3, "offline", ""),
    (
        "no-guest-agent",
        snapshot(indications=("NoGuestAgent", "Online")),
        True,
        None,
        False,
        None,
        1,
        "crash",
        "no_guest_agent",
    ),
    ("paused", snapshot(indications=("Online", "Paused")), False, None, False, None, 1, "crash", "paused"),
    (
        "quiesce-timeout",
        snapshot(indications=("GuestAgent", "Online", "QuiesceTimeout")),
        True,
        None,
        False,
        None,
        1,
        "crash",
        "quiesce_timeout",
    ),
    (
        "quiesce-failed",
        snapshot(indications=("GuestAgent", "Online", "QuiesceFailed")),
        True,
        None,
        False,
        None,
        1,
        "crash",
        "quiesce_failed",
    ),
    (
        "sticky-agent-flap",
        snapshot(indications=("GuestAgent", "NoGuestAgent", "Online")),
        False,
        None,
        False,
        None,
        1,
        "crash",
        "no_guest_agent",
    ),
    ("linux-quiesced", snapshot(), False, None, False, None, 2, "filesystem", ""),
    (
        "windows-writers-failed",
        snapshot(),
        True,
        GuestEvidence(writers_failed=2),
        False,
        None,
        2,
        "filesystem",
        "writers_failed",
    ),
    (
        "windows-vss-disabled",
        snapshot(),
        True,
        GuestEvidence(writers_failed=0, vss_blocker="vss_service_disabled"),
        False,
        None,
        1,
        "crash",
        "vss_service_disabled",
    ),
    (
        "windows-provider-missing",
        snapshot(),
        True,
        GuestEvidence(vss_blocker="qga_provider_missing"),
        False,
        None,
        1,
        "crash",
        "qga_provider_missing",
    ),
    ("windows-application", snapshot(), True, GuestEvidence(writers_failed=0), False, None, 3, "application", ""),
    ("windows-no-report", snapshot(), True, None, False, None, 3, "application", ""),
    ("thaw-timeout-old-kubevirt", snapshot(), True, None, True, None, 1, "crash", "hold_writes_timeout"),
    (
        "partial-linux",
        snapshot(indications=("GuestAgent", "Online", "PartialSnapshot")),
        False,
        None,
        False,
        None,
        2,
        "filesystem",
        "partial",
    ),
    (
        "partial-crash",
        snapshot(indications=("NoGuestAgent", "Online", "PartialSnapshot")),
        False,
        None,
        False,
        None,
        1,
        "crash",
        "no_guest_agent_partial",
    ),
    (
        "unknown-future-indication",
        snapshot(indications=("GuestAgent", "Online", "SomethingNew")),
        False,
        None,
        False,
        None,
        2,
        "filesystem",
        "",
    ),
    (
        "online-without-agent-indication",
        snapshot(indications=("Online",)),
        False,
        None,
        False,
        None,
        1,
        "crash",
        "not_quiesced",
    ),
]


@pytest.mark.parametrize(
    ("facts", "windows", "evidence", "thaw", "failure", "level", "consistency", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_judge(facts, windows, evidence, thaw, failure, level, consistency, reason) -> None:
    judgement = judge(facts, is_windows=windows, evidence=evidence, thaw_timeout_seen=thaw, failure_reason=failure)
    assert (judgement.level, judgement.consistency, judgement.reason) == (level, consistency, reason)


def test_indications_label_is_sorted_and_deduplicated() -> None:
    facts = snapshot(indications=("Online", "GuestAgent", "Online"))
    assert judge(facts, is_windows=False, evidence=None, thaw_timeout_seen=False, failure_reason=None).indications == (
        "GuestAgent,Online"
    )


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
    judgement = judge(facts, is_windows=True, evidence=None, thaw_timeout_seen=False, failure_reason=None)
    assert (judgement.level, judgement.consistency) == (level, consistency)
    if facts.creation_time is not None:
        assert judgement.timestamp == facts.creation_time
