"""Building a VmState: the agent, guest report and snapshot parts, and the ledger's summary as a value."""

from __future__ import annotations

import json
from pathlib import Path

from exporter.state.classifier import classify
from exporter.state.freeze_errors import NO_FREEZE_ERRORS, NewestFreezeError, VmFreezeErrors
from exporter.state.guest_report import parse_guest_report
from exporter.state.records import GuestFilesystem, GuestInfo, SnapshotFacts, VmFacts, VmiFacts, VmKey
from exporter.state.vm_record import VmRecord
from exporter.state.vm_state import (
    GuestReportPart,
    JudgeSettings,
    agent_part,
    build_vm_state,
    current_report,
    guest_report_part,
    is_windows,
    next_change_at,
    snapshot_part,
)

KEY = VmKey("ns", "win")
SETTINGS = JudgeSettings()
REPORTS = Path(__file__).parent.parent / "data" / "guest_reports"
VMI = VmiFacts(KEY, "uid-1", "Running", "node-1", True, None, False, False, "mswindows", "Windows", "10")
ADD_VOLUME = "failed to add \\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\ to snapshot set"


def running_record() -> VmRecord:
    record = VmRecord(KEY, vm=VmFacts(KEY, "vm-uid", "Running"))
    record.set_vmi(VMI, now=0)
    volume = GuestFilesystem("\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\", "D:\\", "NTFS")
    record.set_guest(GuestInfo("uid-1", 1, "100.0.0", True, False, "mswindows", (volume,)))
    return record


def snapshot(name: str, requested_at: float, phase: str = "Succeeded", **extra) -> SnapshotFacts:
    return SnapshotFacts(KEY, f"uid-{name}", name, requested_at, phase, ("Online", "GuestAgent"), **extra)


def test_no_vm_and_no_vmi_is_no_state() -> None:
    record = VmRecord(KEY)
    record.snapshots["ns/a"] = snapshot("a", 10)
    assert build_vm_state(record, now=100, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS) is None


def test_agent_part_of_a_stopped_vm_has_no_evidence() -> None:
    part = agent_part(VmRecord(KEY, vm=VmFacts(KEY, "vm-uid", "Stopped")))
    assert (part.running, part.phase, part.agent_connected, part.fs_frozen) == (False, "Stopped", None, None)


def test_agent_part_of_a_running_vm() -> None:
    record = running_record()
    part = agent_part(record)
    assert (part.node, part.agent_version) == ("node-1", "100.0.0")
    assert part.running is True and part.fsfreeze_available is True and is_windows(record)
    state = build_vm_state(record, now=100, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS)
    assert state is not None
    assert state.checks == (
        ("agent_connected", True),
        ("agent_supported", True),
        ("fsfreeze_available", True),
        ("not_stuck_frozen", True),
    )


def test_guest_report_part_only_while_the_report_is_fresh() -> None:
    record = running_record()
    document = json.loads((REPORTS / "two_failed_writers.json").read_text())
    record.add_guest_report(parse_guest_report(document, received_at=1000))
    max_age = SETTINGS.guest_report_max_age
    fresh = guest_report_part(current_report(record, 1000 + max_age, max_age))
    assert fresh.writers_failed == 2 and len(fresh.failed_writers) == 2
    assert guest_report_part(current_report(record, 1001 + max_age, max_age)) == GuestReportPart()
    state = build_vm_state(record, now=1000 + max_age, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS)
    assert state is not None and dict(state.checks)["writers_stable"] is False


def test_snapshot_part_judges_the_last_finished_and_the_last_consistent() -> None:
    record = running_record()
    record.snapshots["ns/a"] = snapshot("a", 10)
    record.snapshots["ns/b"] = snapshot("b", 20, phase="Failed", error_message=ADD_VOLUME)
    record.snapshots["ns/c"] = snapshot("c", 30, phase="InProgress")
    part = snapshot_part(record, now=40, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS)
    assert (part.snapshot_count, part.oldest_snapshot_timestamp, part.last_consistent_snapshot_timestamp) == (3, 10, 10)
    assert part.last_snapshot is not None and part.last_snapshot.snapshot == "b"
    assert part.last_snapshot.reason == classify(ADD_VOLUME).reason


def test_a_thaw_timeout_in_the_summary_lowers_the_snapshot_it_belongs_to() -> None:
    record = running_record()
    record.snapshots["ns/a"] = snapshot("a", 10)
    seen = VmFreezeErrors(thaw_failures=((12.0, "uid-a", "hold_writes_timeout"),))
    plain = snapshot_part(record, now=40, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS)
    timed_out = snapshot_part(record, now=40, settings=SETTINGS, freeze_errors=seen)
    assert plain.last_snapshot is not None and timed_out.last_snapshot is not None
    assert timed_out.last_snapshot.level < plain.last_snapshot.level


def test_freeze_errors_come_from_the_summary_with_the_guest_mount_point() -> None:
    summary = VmFreezeErrors(
        counts=(("add_volume_to_snapshot_set", "unknown", 2),),
        last_by_reason=(("add_volume_to_snapshot_set", 50.0),),
        newest=NewestFreezeError(classify(ADD_VOLUME), "event", 50.0),
    )
    state = build_vm_state(running_record(), now=100, settings=SETTINGS, freeze_errors=summary)
    assert state is not None and state.last_freeze_error is not None
    assert state.freeze_error_counts == summary.counts
    assert state.last_freeze_error_by_reason == summary.last_by_reason
    assert (state.last_freeze_error.mount_point, state.last_freeze_error.source) == ("D:\\", "event")


def test_next_change_is_the_earliest_clock_driven_boundary() -> None:
    record = running_record()
    assert next_change_at(record, now=0, settings=SETTINGS) is None
    record.snapshots["ns/a"] = snapshot("a", 10, phase="InProgress", failure_deadline=60.0)
    assert next_change_at(record, now=0, settings=SETTINGS) == 70.001
    assert next_change_at(record, now=80, settings=SETTINGS) is None


def vss_disabled_report(at: float):
    document = json.loads((REPORTS / "vss_service_disabled.json").read_text())
    return parse_guest_report(document, received_at=at)


GRACE = JudgeSettings(started_at=1000, guest_report_grace=300)


def test_after_a_restart_the_first_report_stands_in_for_an_older_snapshot() -> None:
    record = running_record()
    record.snapshots["ns/a"] = snapshot("a", 900)  # taken before the exporter started at 1000
    record.add_guest_report(vss_disabled_report(1100))
    part = snapshot_part(record, now=1100, settings=GRACE, freeze_errors=NO_FREEZE_ERRORS)
    assert part.last_snapshot is not None
    assert (part.last_snapshot.consistency, part.last_snapshot.reason) == ("crash", "vss_service_disabled")
    assert part.last_consistent_snapshot_timestamp is None


def test_a_first_report_later_than_the_max_age_does_not_stand_in() -> None:
    record = running_record()
    record.snapshots["ns/a"] = snapshot("a", 900)
    record.add_guest_report(vss_disabled_report(900 + SETTINGS.guest_report_max_age + 1))
    part = snapshot_part(record, now=3000, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS)
    assert part.last_snapshot is not None and part.last_snapshot.consistency == "application"


def test_during_the_grace_a_verdict_waiting_for_the_first_report_is_unknown() -> None:
    record = running_record()
    record.snapshots["ns/a"] = snapshot("a", 900)
    waiting = snapshot_part(record, now=1100, settings=GRACE, freeze_errors=NO_FREEZE_ERRORS)
    assert waiting.snapshot_count == 1
    assert (waiting.last_snapshot, waiting.last_consistent_snapshot_timestamp) == (None, None)
    assert next_change_at(record, now=1100, settings=GRACE) == 1300.001  # re-judged when the grace ends
    ended = snapshot_part(record, now=1300.001, settings=GRACE, freeze_errors=NO_FREEZE_ERRORS)
    assert ended.last_snapshot is not None and ended.last_snapshot.consistency == "application"
    assert next_change_at(record, now=1300.001, settings=GRACE) is None


def test_the_grace_holds_back_only_verdicts_that_need_the_guest() -> None:
    record = running_record()
    record.snapshots["ns/a"] = snapshot("a", 900, phase="Failed", error_message=ADD_VOLUME)
    failed = snapshot_part(record, now=1100, settings=GRACE, freeze_errors=NO_FREEZE_ERRORS)
    assert failed.last_snapshot is not None and failed.last_snapshot.consistency == "failed"
    linux = running_record()
    linux.set_vmi(VmiFacts(KEY, "uid-1", "Running", "node-1", True, None, False, False, "ubuntu", "Ubuntu", "24.04"), 0)
    linux.set_guest(GuestInfo("uid-1", 1, "100.0.0", True, False, "ubuntu"))
    linux.snapshots["ns/a"] = snapshot("a", 900)
    judged = snapshot_part(linux, now=1100, settings=GRACE, freeze_errors=NO_FREEZE_ERRORS)
    assert judged.last_snapshot is not None and judged.last_snapshot.consistency == "filesystem"
    no_ingest = snapshot_part(record_with_snapshot(), now=1100, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS)
    assert no_ingest.last_snapshot is not None and no_ingest.last_snapshot.consistency == "application"


def record_with_snapshot() -> VmRecord:
    record = running_record()
    record.snapshots["ns/a"] = snapshot("a", 900)
    return record


def test_each_snapshot_is_judged_once_per_judgement(monkeypatch) -> None:
    # The last snapshot is usually also the newest consistent one: one verdict serves both.
    from exporter.state import vm_state

    judged: list[str] = []
    real = vm_state.judge

    def counting(facts: SnapshotFacts, context):  # type: ignore[no-untyped-def]
        judged.append(facts.name)
        return real(facts, context)

    monkeypatch.setattr(vm_state, "judge", counting)
    record = running_record()
    for name, at in (("a", 10), ("b", 20), ("c", 30)):
        record.snapshots[f"ns/{name}"] = snapshot(name, at)
    part = snapshot_part(record, now=100, settings=SETTINGS, freeze_errors=NO_FREEZE_ERRORS)

    assert part.last_snapshot is not None and part.last_snapshot.timestamp == 30
    assert part.last_consistent_snapshot_timestamp == 30
    assert judged == ["c"]
