"""The due-time schedule: each VM comes due once per scheduled time; stale entries are harmless."""

from __future__ import annotations

from exporter.state.due_schedule import DueSchedule
from exporter.state.records import VmKey

A, B = VmKey("ns", "a"), VmKey("ns", "b")


def test_only_what_is_due_comes_out_once() -> None:
    schedule = DueSchedule()
    schedule.schedule(A, 10.0)
    schedule.schedule(B, 20.0)
    assert schedule.pop_due(5.0) == set()
    assert schedule.pop_due(10.0) == {A}
    assert schedule.pop_due(15.0) == set()
    assert schedule.pop_due(25.0) == {B}


def test_rescheduling_keeps_the_old_entry_and_the_new_one() -> None:
    schedule = DueSchedule()
    schedule.schedule(A, 10.0)
    schedule.schedule(A, 10.0)  # the same time again: no second entry
    schedule.schedule(A, 30.0)
    assert schedule.pop_due(10.0) == {A}  # the stale entry: re-judging early changes nothing
    assert schedule.pop_due(30.0) == {A}
    assert schedule.pop_due(100.0) == set()
