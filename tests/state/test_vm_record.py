"""Updating one VM's record: VMI lives, guestosinfo history, and guest report history."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from exporter.state.guest_report import parse_guest_report
from exporter.state.records import GuestInfo, VmiFacts, VmKey
from exporter.state.vm_record import FROZEN_INTERVALS, GUEST_REPORT_HISTORY, VmRecord

KEY = VmKey("ns", "win")
REPORTS = Path(__file__).parent.parent / "data" / "guest_reports"
VMI = VmiFacts(KEY, "uid-1", "Running", "node", True, None, False, False, "mswindows", "Windows", "10")


def report(at: float, name: str = "healthy"):
    return parse_guest_report(json.loads((REPORTS / f"{name}.json").read_text()), received_at=at)


def guest(at: float, enabled: bool | None, *, frozen: bool = False) -> GuestInfo:
    return GuestInfo("uid-1", at, "100.0.0", enabled, frozen, "mswindows")


def test_frozen_since_starts_once_and_ends_with_the_thaw() -> None:
    record = VmRecord(KEY)
    record.set_vmi(replace(VMI, fs_frozen=True), now=10)
    record.set_vmi(replace(VMI, fs_frozen=True), now=20)
    assert record.frozen_since == 10
    record.set_vmi(VMI, now=30)
    assert record.frozen_since is None


def test_a_new_vmi_life_drops_what_belonged_to_the_old_one() -> None:
    record = VmRecord(KEY)
    record.set_vmi(VMI, now=5)
    record.set_guest(guest(10, True))
    record.set_vmi(replace(VMI, fs_frozen=True), now=10)
    record.add_guest_report(report(10))
    record.set_vmi(replace(VMI, uid="uid-2"), now=20)
    assert (record.guest, record.guest_report, record.report_evidence, record.frozen_since) == (None, None, (), None)
    assert record.fsfreeze_history == ((10, True),)  # history outlives a VMI life


def test_clear_vmi_keeps_the_vm() -> None:
    record = VmRecord(KEY)
    record.set_vmi(VMI, now=1)
    record.add_guest_report(report(1))
    record.clear_vmi()
    assert record.vmi is None and record.guest_report is None and not record.exists


def test_freeze_availability_is_recorded_only_on_change_and_not_while_frozen() -> None:
    record = VmRecord(KEY)
    record.set_vmi(VMI, now=0)
    for at, enabled, frozen in [(1, True, False), (2, True, False), (3, False, True), (4, False, False)]:
        record.set_guest(guest(at, enabled, frozen=frozen))
    assert record.fsfreeze_history == ((1, True), (4, False))
    assert not record.fsfreeze_unavailable_at(3.5) and record.fsfreeze_unavailable_at(4)


def test_guest_reports_keep_the_newest_and_a_bounded_history() -> None:
    record = VmRecord(KEY)
    for at in range(GUEST_REPORT_HISTORY + 3, 0, -1):  # arriving newest first
        record.add_guest_report(report(float(at)))
    assert record.guest_report is not None and record.guest_report.received_at == GUEST_REPORT_HISTORY + 3
    assert [at for at, _ in record.report_evidence] == [float(at) for at in range(4, GUEST_REPORT_HISTORY + 4)]


def test_evidence_at_a_moment_is_the_last_fresh_report_before_it() -> None:
    record = VmRecord(KEY)
    record.add_guest_report(report(100, "two_failed_writers"))
    record.add_guest_report(report(200))
    assert record.evidence_at(50, max_age=1000) is None
    failed = record.evidence_at(150, max_age=1000)
    assert failed is not None and failed.writers_failed == 2
    assert record.evidence_at(150, max_age=10) is None  # the report was too old by then


def test_the_earliest_report_stands_in_for_a_moment_before_every_report_received() -> None:
    record = VmRecord(KEY)
    record.add_guest_report(report(100, "vss_service_disabled"))
    record.add_guest_report(report(200))
    disabled = record.evidence_standing_in_for(50, max_age=1000)
    assert disabled is not None and disabled.vss_blocker == "vss_service_disabled"
    assert record.evidence_standing_in_for(50, max_age=40) is None  # the first report came too late
    assert record.evidence_standing_in_for(150, max_age=1000) is None  # the moment had its own report


def test_a_trimmed_earlier_report_still_keeps_later_ones_from_standing_in() -> None:
    record = VmRecord(KEY)
    for at in range(GUEST_REPORT_HISTORY + 1):
        record.add_guest_report(report(float(10 * at)))
    assert record.report_evidence[0][0] == 10  # the report at 0 is gone from the history
    assert record.evidence_at(5, max_age=1000) is None
    assert record.evidence_standing_in_for(5, max_age=1000) is None


def test_frozen_intervals_are_bounded_and_the_open_one_closes_at_the_thaw() -> None:
    record = VmRecord(KEY)
    for at in range(FROZEN_INTERVALS + 4):
        record.set_vmi(replace(VMI, fs_frozen=True), now=at * 10)
        record.set_vmi(VMI, now=at * 10 + 5)
    record.set_vmi(replace(VMI, fs_frozen=True), now=1000)
    assert len(record.frozen_intervals) == FROZEN_INTERVALS
    last_closed = ((FROZEN_INTERVALS + 3) * 10, (FROZEN_INTERVALS + 3) * 10 + 5)
    assert record.frozen_intervals[-2:] == (last_closed, (1000, None))
    record.clear_vmi()
    assert record.frozen_intervals[-1] == (1000, 1000)  # gone without a thaw: it claims nothing after


def test_records_share_what_most_vms_hold_alike() -> None:
    # A record is kept per VM: what most VMs never have is one shared empty value, and equal
    # guest evidence (most guests' reports say the same about VSS) is one instance.
    one, other = VmRecord(KEY), VmRecord(VmKey("ns", "other"))
    assert one.snapshot_contents is other.snapshot_contents and not one.snapshot_contents
    assert (one.fsfreeze_history, one.frozen_intervals, one.report_evidence) == ((), (), ())
    one.add_guest_report(report(10))
    other.add_guest_report(report(20))
    assert one.report_evidence[0][1] is other.report_evidence[0][1]
