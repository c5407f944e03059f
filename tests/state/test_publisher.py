"""Judging and publishing: a repeated freeze failure re-judges only what it can change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exporter.resources import EVENTS, SNAPSHOTS, VMIS
from exporter.state import publisher
from exporter.state.fleet import Fleet
from exporter.state.records import VmKey, VmState

KEY = VmKey("default", "win2019")
FREEZE_FAILED = (
    "Failed to freeze VMI: server error. command Freeze failed: \"LibvirtError(Code=1, Domain=10, Message='internal "
    "error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': failed to add "
    "\\\\\\\\?\\\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\\\ to snapshot set: ')\""
)
THAW_TIMED_OUT = (
    "Failed to freeze VMI: server error. command Unfreeze failed: \"LibvirtError(Code=1, Domain=10, Message='internal "
    "error: unable to execute QEMU agent command 'guest-fsfreeze-thaw': couldn't hold writes: fsfreeze is limited "
    "up to 10 seconds: ')\""
)
ADD_VOLUME = ("add_volume_to_snapshot_set", "unknown", 1)


def freeze_error_event(
    count: int, last: str, *, version: str = "1", message: str = FREEZE_FAILED
) -> dict[str, Any]:
    """virt-handler's FreezeError Event as the Event recorder aggregates it: repeats raise count and lastTimestamp."""
    return {
        "kind": "Event",
        "metadata": {"namespace": "default", "name": "win2019.17f1", "uid": "ev-1", "resourceVersion": version},
        "involvedObject": {"kind": "VirtualMachineInstance", "namespace": "default", "name": "win2019"},
        "reason": "FreezeError",
        "type": "Warning",
        "message": message,
        "count": count,
        "firstTimestamp": "2026-01-15T08:00:00Z",
        "lastTimestamp": last,
    }


class Recorder:
    def __init__(self) -> None:
        self.states: list[tuple[VmKey, VmState | None]] = []

    def __call__(self, key: VmKey, state: VmState | None) -> None:
        self.states.append((key, state))


@pytest.fixture
def judged_snapshots(monkeypatch: pytest.MonkeyPatch) -> list[VmKey]:
    """Every VM whose snapshots the publisher judges on its fast path (a full publish judges them anyway)."""
    calls: list[VmKey] = []
    real = publisher.snapshot_part

    def counting(record: Any, **kwargs: Any) -> Any:
        calls.append(record.key)
        return real(record, **kwargs)

    monkeypatch.setattr(publisher, "snapshot_part", counting)
    return calls


def windows_vm_with_a_snapshot(kubevirt_object: Any) -> tuple[Fleet, Recorder]:
    recorder = Recorder()
    fleet = Fleet(on_state=recorder, on_problem=lambda resource, problem: None)
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=100)
    fleet.upsert(SNAPSHOTS.name, kubevirt_object("vmsnapshot-succeeded-online-guestagent"), now=100)
    fleet.upsert(EVENTS.name, freeze_error_event(1, "2026-01-15T08:00:00Z"), now=100)
    return fleet, recorder


def test_an_event_update_of_only_count_series_or_version_publishes_nothing(kubevirt_object: Any) -> None:
    fleet, recorder = windows_vm_with_a_snapshot(kubevirt_object)
    published = len(recorder.states)
    same_moment = freeze_error_event(2, "2026-01-15T08:00:00Z", version="2")
    same_moment["series"] = {"count": 2, "lastObservedTime": "2026-01-15T08:00:00.500000Z"}
    fleet.upsert(EVENTS.name, same_moment, now=101)

    assert len(recorder.states) == published
    state = fleet.state(KEY)
    assert state is not None and state.freeze_error_counts == (ADD_VOLUME,)


def test_a_repeated_failure_moves_its_time_keeps_one_episode_and_judges_no_snapshot(
    kubevirt_object: Any, judged_snapshots: list[VmKey]
) -> None:
    fleet, recorder = windows_vm_with_a_snapshot(kubevirt_object)
    for attempt in range(1, 6):  # the snapshot controller retries every 5 s
        fleet.upsert(EVENTS.name, freeze_error_event(1 + attempt, f"2026-01-15T08:00:{5 * attempt:02d}Z"), now=110)

    state = fleet.state(KEY)
    assert state is not None
    assert state.freeze_error_counts == (ADD_VOLUME,)  # counted once, exactly
    ((_, last),) = state.last_freeze_error_by_reason
    assert last == 1768464025.0  # 08:00:25
    assert recorder.states[-1] == (KEY, state)
    assert judged_snapshots == [KEY]  # judged at the first repeat, reused for the four after it


def test_the_fast_path_publishes_exactly_what_a_full_judgement_gives(kubevirt_object: Any) -> None:
    fleet, _ = windows_vm_with_a_snapshot(kubevirt_object)
    for attempt in range(1, 4):
        fleet.upsert(EVENTS.name, freeze_error_event(1 + attempt, f"2026-01-15T08:01:{attempt:02d}Z"), now=120)
    fast = fleet.state(KEY)
    record = fleet._records[KEY]  # the same record, judged from scratch
    assert fast == fleet._publisher.judge(record, 120)


def test_any_other_change_makes_the_next_repeat_judge_the_snapshots_again(
    kubevirt_object: Any, judged_snapshots: list[VmKey]
) -> None:
    fleet, _ = windows_vm_with_a_snapshot(kubevirt_object)
    fleet.upsert(EVENTS.name, freeze_error_event(2, "2026-01-15T08:00:05Z"), now=105)
    snapshot = kubevirt_object("vmsnapshot-succeeded-online-guestagent")
    newer = copy.deepcopy(snapshot)
    newer["metadata"]["name"] = "second"
    newer["metadata"]["uid"] = "snap-2"
    fleet.upsert(SNAPSHOTS.name, newer, now=106)
    fleet.upsert(EVENTS.name, freeze_error_event(3, "2026-01-15T08:00:10Z"), now=110)

    assert judged_snapshots == [KEY, KEY]  # at the first Event, and after the snapshot
    state = fleet.state(KEY)
    assert state is not None and state.snapshot_count == 2


def test_a_repeated_thaw_failure_judges_the_snapshots_again(
    kubevirt_object: Any, judged_snapshots: list[VmKey]
) -> None:
    # A thaw failure can turn a snapshot's verdict, so each new one is judged against the snapshots.
    fleet, _ = windows_vm_with_a_snapshot(kubevirt_object)
    for second in (5, 10):
        raw = freeze_error_event(2, f"2026-01-15T08:00:{second:02d}Z", message=THAW_TIMED_OUT)
        raw["metadata"]["uid"] = "ev-2"
        fleet.upsert(EVENTS.name, raw, now=110)

    assert judged_snapshots == [KEY, KEY, KEY]
