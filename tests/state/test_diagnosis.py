from __future__ import annotations

import pytest

from exporter.state.diagnosis import (
    CHECK_ORDER,
    EXPORTER,
    FAIL,
    FREEZE_NOT_FAILING,
    OK,
    SNAPSHOT_CONSISTENT,
    UNKNOWN,
    Context,
    check_statuses,
    diagnose,
    diagnosis_object,
    failing_checks,
    judge_checks,
)
from exporter.state.guest_report import GuestCheckThresholds
from exporter.state.records import FailedWriter, FreezeErrorDetail, SnapshotJudgement, VmKey, VmState
from exporter.state.runbooks import RUNBOOK_BASE_URL

NOW = 1_800_000_000.0
KEY = VmKey("finance", "vm")


def snapshot(level: int, consistency: str, reason: str = "", phase: str = "Succeeded") -> SnapshotJudgement:
    return SnapshotJudgement("snap-1", phase, level, consistency, reason, "GuestAgent,Online", NOW - 600)


HEALTHY = VmState(
    key=KEY,
    phase="Running",
    guest_os="mswindows",
    agent_connected=True,
    agent_supported=True,
    fsfreeze_available=True,
    fs_frozen=False,
    checks=(("agent_connected", True), ("agent_supported", True), ("fsfreeze_available", True)),
    last_snapshot=snapshot(3, "application"),
    last_consistent_snapshot_timestamp=NOW - 600,
    guest_report_timestamp=NOW - 60,
)

ADD_VOLUME_ERROR = FreezeErrorDetail(
    "add_volume_to_snapshot_set",
    "unknown",
    "",
    "",
    "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\",
    "D:\\",
    "snapshot",
    NOW - 30,
)


def statuses(state: VmState, context: Context = EXPORTER) -> dict[str, str]:
    return dict(check_statuses(state, context))


def test_a_healthy_vm_has_no_problems_and_every_check_is_listed() -> None:
    diagnosis = diagnose(HEALTHY, now=NOW)
    assert diagnosis.healthy and diagnosis.problems == () and diagnosis.next_steps == ()
    names = [c.name for c in diagnosis.checks]
    assert names == [*CHECK_ORDER, SNAPSHOT_CONSISTENT, FREEZE_NOT_FAILING]
    assert all(c.runbook.startswith(RUNBOOK_BASE_URL + "/") and c.runbook.endswith(".md") for c in diagnosis.checks)


@pytest.mark.parametrize(
    ("state", "failing"),
    [
        pytest.param(
            VmState(key=KEY, phase="Running", agent_connected=False, checks=(("agent_connected", False),)),
            {"agent_connected"},
            id="agent-disconnected",
        ),
        pytest.param(
            VmState(key=KEY, phase="Running", last_snapshot=snapshot(1, "crash", "no_guest_agent")),
            {SNAPSHOT_CONSISTENT},
            id="crash-consistent",
        ),
        pytest.param(
            VmState(key=KEY, phase="Running", last_snapshot=snapshot(2, "filesystem", "writers_failed")),
            set(),
            id="filesystem-consistent-is-not-failing",
        ),
        pytest.param(
            VmState(
                key=KEY,
                phase="Running",
                last_snapshot=snapshot(3, "application"),
                last_consistent_snapshot_timestamp=NOW - 600,
                last_freeze_error=ADD_VOLUME_ERROR,
            ),
            {FREEZE_NOT_FAILING},
            id="freeze-failure-newer-than-consistent-snapshot",
        ),
        pytest.param(
            VmState(
                key=KEY,
                phase="Running",
                last_snapshot=snapshot(3, "application"),
                last_consistent_snapshot_timestamp=NOW,
                last_freeze_error=ADD_VOLUME_ERROR,
            ),
            set(),
            id="freeze-failure-older-than-consistent-snapshot",
        ),
        pytest.param(
            VmState(key=KEY, phase="Running", last_freeze_error=ADD_VOLUME_ERROR),
            {FREEZE_NOT_FAILING},
            id="freeze-failure-without-any-consistent-snapshot",
        ),
    ],
)
def test_healthy_is_false_exactly_for_a_failing_check_a_low_level_or_a_recent_freeze_failure(
    state: VmState, failing: set[str]
) -> None:
    diagnosis = diagnose(state, now=NOW)
    assert set(diagnosis.failing) == failing
    assert failing_checks(state) == diagnosis.failing  # the fleet table's shortcut agrees
    assert diagnosis.healthy is (not failing)
    assert len(diagnosis.problems) == len(failing)


def test_the_add_volume_failure_names_volume_mount_point_and_the_guid_volume_fix() -> None:
    state = VmState(key=KEY, phase="Running", last_freeze_error=ADD_VOLUME_ERROR)
    diagnosis = diagnose(state, now=NOW)
    (problem,) = diagnosis.problems
    assert "add_volume_to_snapshot_set" in problem.text and ADD_VOLUME_ERROR.volume in problem.text
    assert "(D:\\)" in problem.text
    assert problem.runbook.endswith("/KubevirtVssFreezeAddVolumeFailed.md")
    (step,) = diagnosis.next_steps
    assert "drive letter" in step.text
    check = next(c for c in diagnosis.checks if c.name == FREEZE_NOT_FAILING)
    assert check.runbook == problem.runbook


def test_root_causes_come_before_their_symptoms() -> None:
    state = VmState(
        key=KEY,
        phase="Running",
        agent_connected=False,
        checks=(("agent_connected", False),),
        last_snapshot=snapshot(1, "crash", "no_guest_agent"),
    )
    diagnosis = diagnose(state, now=NOW)
    assert [p.runbook.rsplit("/", 1)[1] for p in diagnosis.problems] == [
        "KubevirtVssGuestAgentDisconnected.md",
        "KubevirtVssGuestAgentDisconnected.md",
    ]
    # The same fix is advised once.
    assert len(diagnosis.next_steps) == 1 and "virtio-win" in diagnosis.next_steps[0].text


def test_writers_failed_advises_reregistering_vss() -> None:
    state = VmState(
        key=KEY,
        phase="Running",
        guest_os="mswindows",
        checks=(("writers_stable", False),),
        writers_total=9,
        writers_failed=1,
        failed_writers=(FailedWriter("SqlServerWriter", 8, "Non-retryable error"),),
        guest_report_timestamp=NOW - 60,
    )
    diagnosis = diagnose(state, now=NOW)
    check = next(c for c in diagnosis.checks if c.name == "writers_stable")
    assert check.status == FAIL and "SqlServerWriter (state 8)" in check.evidence
    assert "SqlServerWriter" in diagnosis.problems[0].text
    assert "Re-register" in diagnosis.next_steps[0].text


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("no_guest_agent_partial", "virtio-win"),
        ("thaw_failed_quiesced_after_retry_partial", "VSS gave up"),
        ("volume_snapshot_error", "CSI driver"),
        ("freeze_skipped_stale_frozen", "virtctl unfreeze"),
    ],
)
def test_a_snapshot_reason_with_notes_gets_its_own_step(reason: str, words: str) -> None:
    state = VmState(key=KEY, phase="Running", last_snapshot=snapshot(1, "crash", reason))
    (step,) = diagnose(state, now=NOW).next_steps
    assert words in step.text


@pytest.mark.parametrize("reason", ["a_reason_from_a_later_version", ""])
def test_an_unknown_snapshot_reason_gets_the_generic_advice(reason: str) -> None:
    state = VmState(key=KEY, phase="Running", last_snapshot=snapshot(0, "failed", reason, phase="Failed"))
    diagnosis = diagnose(state, now=NOW)
    assert diagnosis.failing == (SNAPSHOT_CONSISTENT,)
    assert diagnosis.next_steps[0].runbook.endswith("/KubevirtVssLastSnapshotNotConsistent.md")


def test_an_unknown_extra_check_is_listed_and_fails() -> None:
    state = VmState(key=KEY, phase="Running", checks=(("some_new_check", False),))
    diagnosis = diagnose(state, now=NOW)
    assert "some_new_check" in diagnosis.failing and diagnosis.problems[0].text == "Check some_new_check fails."


def test_stuck_frozen_fails_in_the_exporter_and_is_unknown_from_a_one_shot_read() -> None:
    frozen = VmState(
        key=KEY,
        phase="Running",
        agent_connected=True,
        fs_frozen=True,
        frozen_since=NOW - 900,
        checks=(("agent_connected", True), ("not_stuck_frozen", False)),
    )
    exporter = diagnose(frozen, now=NOW)
    assert exporter.failing == ("not_stuck_frozen",)
    assert "frozen since" in exporter.problems[0].text
    one_shot = Context(tracks_frozen_since=False, receives_guest_reports=False)
    cluster = diagnose(frozen, now=NOW, context=one_shot)
    check = next(c for c in cluster.checks if c.name == "not_stuck_frozen")
    assert check.status == UNKNOWN and "since when is unknown" in check.evidence


def test_guest_checks_say_why_they_are_unknown() -> None:
    windows = VmState(key=KEY, phase="Running", guest_os="mswindows", agent_connected=True)
    evidence = {c.name: c.evidence for c in diagnose(windows, now=NOW).checks}
    assert "no guest report" in evidence["writers_stable"]
    one_shot = Context(receives_guest_reports=False)
    evidence = {c.name: c.evidence for c in diagnose(windows, now=NOW, context=one_shot).checks}
    assert "--exporter" in evidence["writers_stable"]
    linux = VmState(key=KEY, phase="Running", guest_os="rhel", agent_connected=True)
    assert "not a Windows guest" in {c.name: c.evidence for c in diagnose(linux, now=NOW).checks}["vss_service"]
    stopped = VmState(key=KEY, phase="Stopped")
    assert all("not running" in c.evidence for c in diagnose(stopped, now=NOW).checks if c.name in CHECK_ORDER)


def test_statuses_follow_the_published_checks() -> None:
    got = statuses(HEALTHY)
    assert got["agent_connected"] == OK and got["writers_stable"] == UNKNOWN
    assert got[SNAPSHOT_CONSISTENT] == OK and got[FREEZE_NOT_FAILING] == OK


def test_judge_checks_of_a_stopped_vm_are_empty_and_stuck_frozen_has_a_boundary() -> None:
    common = {
        "agent_connected": True,
        "agent_supported": True,
        "fsfreeze_available": None,
        "now": NOW,
        "stuck_after": 300.0,
        "report": None,
        "thresholds": GuestCheckThresholds(),
    }
    assert judge_checks(running=False, frozen_since=None, **common) == ()
    assert dict(judge_checks(running=True, frozen_since=NOW - 299, **common))["not_stuck_frozen"] is True
    assert dict(judge_checks(running=True, frozen_since=NOW - 300, **common))["not_stuck_frozen"] is False
    assert [n for n, _ in judge_checks(running=True, frozen_since=None, **common)] == [
        "agent_connected",
        "agent_supported",
        "not_stuck_frozen",
    ]


def test_the_json_object_has_exactly_the_documented_keys() -> None:
    state = VmState(key=KEY, phase="Running", last_snapshot=snapshot(2, "filesystem", "writers_failed"))
    document = diagnosis_object(state, diagnose(state, now=NOW))
    assert list(document) == ["vm", "healthy", "last_snapshot", "checks", "problems", "next_steps"]
    assert document["vm"] == "finance/vm"
    assert document["last_snapshot"] == {
        "name": "snap-1",
        "phase": "Succeeded",
        "level": 2,
        "consistency": "filesystem",
        "reason": "writers_failed",
        "indications": ["GuestAgent", "Online"],
        "time": "2027-01-15T07:50:00Z",
        "explanation": [],
        "failed_volumes": [],
    }
    assert set(document["checks"][0]) == {"name", "status", "evidence"}
