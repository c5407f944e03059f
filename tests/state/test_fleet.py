"""The fleet: per-VM facts from several resources, relist pruning, and VM lifetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.resources import SNAPSHOT_CONTENTS, SNAPSHOTS, VMIS, VMS
from exporter.state.fleet import Fleet
from exporter.state.records import VmKey, VmState
from exporter.state.vm_state import JudgeSettings

KEY = VmKey("default", "win2019")


class Published:
    def __init__(self) -> None:
        self.states: dict[VmKey, VmState] = {}
        self.problems: list[tuple[str, str]] = []

    def on_state(self, key: VmKey, state: VmState | None) -> None:
        if state is None:
            self.states.pop(key, None)
        else:
            self.states[key] = state


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def fleet(published: Published) -> Fleet:
    return Fleet(on_state=published.on_state, on_problem=lambda r, p: published.problems.append((r, p)))


def vm(name: str = "win2019", status: str = "Running", uid: str = "vm-uid") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name, "uid": uid}, "status": {"printableStatus": status}}


def test_running_windows_vm(fleet: Fleet, published: Published, kubevirt_object) -> None:
    fleet.upsert(VMS.name, vm(), now=100)
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=100)
    state = published.states[KEY]
    assert state.phase == "Running"
    assert state.agent_connected is True and state.agent_supported is True
    assert state.fs_frozen is False and state.frozen_since is None
    assert state.fsfreeze_available is None  # no guestosinfo yet
    assert dict(state.checks) == {"agent_connected": True, "agent_supported": True, "not_stuck_frozen": True}


def test_stopped_vm_has_no_agent_series(fleet: Fleet, published: Published, kubevirt_object) -> None:
    fleet.upsert(VMS.name, vm(status="Stopped"), now=100)
    fleet.upsert(SNAPSHOTS.name, kubevirt_object("vmsnapshot-succeeded-online-guestagent"), now=100)
    state = published.states[KEY]
    assert state.phase == "Stopped"
    assert state.agent_connected is None and state.fs_frozen is None and state.checks == ()
    assert state.last_snapshot is not None and state.snapshot_count == 1


def test_vmi_without_vm_is_exported(fleet: Fleet, published: Published, kubevirt_object) -> None:
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=100)
    assert KEY in published.states


def test_frozen_since_is_kept_until_thaw_and_dropped_on_new_uid(
    fleet: Fleet, published: Published, kubevirt_object
) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    raw["status"]["fsFreezeStatus"] = "frozen"
    fleet.upsert(VMIS.name, raw, now=100)
    fleet.upsert(VMIS.name, raw, now=200)
    fleet.replace(VMIS.name, [raw], now=300)  # a relist keeps it
    assert published.states[KEY].frozen_since == 100
    fleet.tick(now=100 + 301)
    assert dict(published.states[KEY].checks)["not_stuck_frozen"] is False
    reborn = kubevirt_object("vmi-windows-agentconnected")
    reborn["metadata"]["uid"] = "new-life"
    reborn["status"]["fsFreezeStatus"] = "frozen"
    fleet.upsert(VMIS.name, reborn, now=500)
    assert published.states[KEY].frozen_since == 500
    del reborn["status"]["fsFreezeStatus"]
    fleet.upsert(VMIS.name, reborn, now=600)
    assert published.states[KEY].frozen_since is None
    assert published.states[KEY].fs_frozen is False


def test_guest_info_applies_only_to_the_current_vmi_life(fleet: Fleet, published: Published, kubevirt_object) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    fleet.upsert(VMIS.name, raw, now=100)
    fleet.apply_guest_info(KEY, "stale-uid", kubevirt_object("guestosinfo-windows"), now=101)
    assert published.states[KEY].fsfreeze_available is None
    fleet.apply_guest_info(KEY, raw["metadata"]["uid"], kubevirt_object("guestosinfo-windows"), now=102)
    state = published.states[KEY]
    assert state.fsfreeze_available is True
    assert state.agent_version == "100.0.0"
    assert len(state.filesystems) == 2


def test_fsfreeze_not_judged_while_frozen(fleet: Fleet, published: Published, kubevirt_object) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    raw["status"]["fsFreezeStatus"] = "frozen"
    info = kubevirt_object("guestosinfo-windows")
    info["fsFreezeStatus"] = "frozen"
    for command in info["supportedCommands"]:
        command.pop("enabled", None)
    fleet.upsert(VMIS.name, raw, now=100)
    fleet.apply_guest_info(KEY, raw["metadata"]["uid"], info, now=101)
    assert published.states[KEY].fsfreeze_available is None


def test_relist_prunes_objects_gone_while_disconnected(fleet: Fleet, published: Published, kubevirt_object) -> None:
    first = kubevirt_object("vmi-windows-agentconnected")
    second = kubevirt_object("vmi-windows-agentconnected")
    second["metadata"].update(name="linux1", uid="other")
    fleet.replace(VMIS.name, [first, second], now=1)
    assert set(published.states) == {KEY, VmKey("default", "linux1")}
    fleet.replace(VMIS.name, [second], now=2)
    assert set(published.states) == {VmKey("default", "linux1")}


def test_deleting_vm_and_vmi_removes_series_but_snapshots_do_not_keep_it(
    fleet: Fleet, published: Published, kubevirt_object
) -> None:
    fleet.upsert(VMS.name, vm(), now=1)
    fleet.upsert(SNAPSHOTS.name, kubevirt_object("vmsnapshot-succeeded-online-guestagent"), now=1)
    fleet.delete(VMS.name, vm(), now=2)
    assert KEY not in published.states
    fleet.delete(SNAPSHOTS.name, kubevirt_object("vmsnapshot-succeeded-online-guestagent"), now=3)
    assert fleet.record(KEY) is None


def test_malformed_objects_are_counted_and_others_kept(fleet: Fleet, published: Published, kubevirt_object) -> None:
    good = kubevirt_object("vmi-windows-agentconnected")
    broken = {"metadata": {"namespace": "default", "name": "broken"}, "status": {"conditions": "yes"}}
    nameless = {"metadata": {}, "status": {}}
    fleet.replace(VMIS.name, [good, broken, nameless], now=1)
    assert set(published.states) == {KEY, VmKey("default", "broken")}
    assert published.states[VmKey("default", "broken")].agent_connected is None
    assert (VMIS.name, "conditions_not_list") in published.problems
    assert (VMIS.name, "missing_name") in published.problems


def test_ownership_predicate_filters_vms(published: Published, kubevirt_object) -> None:
    fleet = Fleet(on_state=published.on_state, owns=lambda key: key.name != "win2019")
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=1)
    assert published.states == {}


def test_last_consistent_snapshot_skips_crash_consistent_ones(
    fleet: Fleet, published: Published, kubevirt_object
) -> None:
    fleet.upsert(VMS.name, vm(), now=1)
    good = kubevirt_object("vmsnapshot-succeeded-online-guestagent")
    crash = kubevirt_object("vmsnapshot-succeeded-quiescetimeout-v1.8")
    crash["metadata"]["creationTimestamp"] = "2026-09-01T00:00:00Z"
    crash["status"]["creationTime"] = "2026-09-01T00:00:05Z"
    fleet.upsert(SNAPSHOTS.name, good, now=1)
    fleet.upsert(SNAPSHOTS.name, crash, now=1)
    state = published.states[KEY]
    assert state.last_snapshot is not None and state.last_snapshot.consistency == "crash"
    assert state.last_consistent_snapshot_timestamp == datetime(2026, 8, 20, 2, 0, 9, tzinfo=UTC).timestamp()
    assert state.snapshot_count == 2


def test_unchanged_state_is_not_republished(kubevirt_object) -> None:
    calls: list[VmKey] = []
    fleet = Fleet(on_state=lambda key, state: calls.append(key))
    raw = kubevirt_object("vmi-windows-agentconnected")
    fleet.upsert(VMIS.name, raw, now=1)
    raw["status"]["conditions"][2]["lastProbeTime"] = "2022-04-13T07:00:00Z"  # a heartbeat, nothing visible
    fleet.upsert(VMIS.name, raw, now=2)
    fleet.tick(now=3)
    assert calls == [KEY]


def test_tick_rejudges_exactly_when_a_deadline_passes(published: Published, kubevirt_object) -> None:
    judged: list[float] = []
    fleet = Fleet(on_state=lambda key, state: judged.append(state.last_snapshot.level if state.last_snapshot else -1))
    fleet.upsert(VMS.name, vm(), now=0)
    running = kubevirt_object("vmsnapshot-inprogress-freeze-error-windows-vss")
    fleet.upsert(SNAPSHOTS.name, running, now=0)
    deadline = datetime(2026, 8, 21, 2, 5, tzinfo=UTC).timestamp()
    assert judged == [-1, -1]  # the VM, then its snapshot in progress: no finished snapshot yet
    fleet.tick(now=deadline - 1)
    assert judged == [-1, -1]
    fleet.tick(now=deadline + 1)
    assert judged == [-1, -1, 0]


def _report(profile: str, received_at: float):
    from exporter.simulator.guest_reporter import build_report_document
    from exporter.state.guest_report import parse_guest_report

    return parse_guest_report(
        build_report_document(profile, hostname="WIN", generated_at=received_at), received_at=received_at
    )


def _succeeded_at(kubevirt_object, when: str) -> dict:
    raw = kubevirt_object("vmsnapshot-succeeded-online-guestagent")
    raw["metadata"]["creationTimestamp"] = when
    raw["status"]["creationTime"] = when
    return raw


def test_snapshot_is_judged_by_the_report_current_at_its_creation(published: Published, kubevirt_object) -> None:
    fleet = Fleet(on_state=published.on_state, settings=JudgeSettings(guest_report_max_age=1800))
    vmi = kubevirt_object("vmi-windows-agentconnected")
    created = datetime(2026, 8, 20, 2, 0, 9, tzinfo=UTC).timestamp()
    fleet.upsert(VMIS.name, vmi, now=created - 600)
    assert fleet.resolve_source("10.0.2.2") == KEY
    fleet.apply_guest_report(KEY, _report("two_failed_writers", created - 300), now=created - 300)
    fleet.upsert(SNAPSHOTS.name, _succeeded_at(kubevirt_object, "2026-08-20T02:00:09Z"), now=created)
    fleet.apply_guest_report(KEY, _report("healthy", created + 300), now=created + 300)
    state = published.states[KEY]
    assert state.writers_failed == 0  # the present
    assert state.last_snapshot is not None
    assert (state.last_snapshot.level, state.last_snapshot.reason) == (2, "writers_failed")  # that snapshot's time
    assert state.last_consistent_snapshot_timestamp == created


def test_report_too_old_at_snapshot_time_is_no_evidence(published: Published, kubevirt_object) -> None:
    fleet = Fleet(on_state=published.on_state, settings=JudgeSettings(guest_report_max_age=1800))
    created = datetime(2026, 8, 20, 2, 0, 9, tzinfo=UTC).timestamp()
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=created - 4000)
    fleet.apply_guest_report(KEY, _report("vss_service_disabled", created - 3600), now=created - 3600)
    fleet.upsert(SNAPSHOTS.name, _succeeded_at(kubevirt_object, "2026-08-20T02:00:09Z"), now=created)
    state = published.states[KEY]
    assert state.last_snapshot is not None and state.last_snapshot.consistency == "application"
    assert state.writers_total is None  # the report expired: its series are gone


def test_vss_disabled_at_snapshot_time_means_crash_consistent(published: Published, kubevirt_object) -> None:
    fleet = Fleet(on_state=published.on_state)
    created = datetime(2026, 8, 20, 2, 0, 9, tzinfo=UTC).timestamp()
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=created - 100)
    fleet.apply_guest_report(KEY, _report("vss_service_disabled", created - 60), now=created - 60)
    fleet.upsert(SNAPSHOTS.name, _succeeded_at(kubevirt_object, "2026-08-20T02:00:09Z"), now=created)
    state = published.states[KEY]
    assert state.last_snapshot is not None
    assert (state.last_snapshot.level, state.last_snapshot.reason) == (1, "vss_service_disabled")
    assert dict(state.checks)["vss_service"] is False


def test_an_object_whose_version_was_applied_is_not_parsed_again(kubevirt_object) -> None:
    problems: list[tuple[str, str]] = []
    fleet = Fleet(on_state=lambda key, state: None, on_problem=lambda r, p: problems.append((r, p)))
    raw = kubevirt_object("vmi-windows-agentconnected")
    raw["metadata"]["resourceVersion"] = "7"
    raw["status"]["nodeName"] = 42  # malformed: counted when parsed
    fleet.replace(VMIS.name, [raw], now=1)
    fleet.replace(VMIS.name, [raw], now=2)
    assert problems == [(VMIS.name, "nodeName_not_string")]
    raw["metadata"]["resourceVersion"] = "8"
    fleet.upsert(VMIS.name, raw, now=3)
    assert len(problems) == 2
    fleet.replace(VMIS.name, [], now=4)  # pruned: a later object with the same name and version is new
    fleet.upsert(VMIS.name, raw, now=5)
    assert len(problems) == 3


def running_vmi(namespace: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": f"{namespace}/{name}"},
        "status": {"phase": "Running"},
    }


def test_a_namespace_list_prunes_only_its_own_namespace(fleet: Fleet, published: Published) -> None:
    fleet.replace(VMIS.name, [running_vmi("a", "web"), running_vmi("a", "db")], now=1, namespace="a")
    fleet.replace(VMIS.name, [running_vmi("b", "app")], now=1, namespace="b")
    fleet.replace(VMIS.name, [running_vmi("a", "web")], now=2, namespace="a")  # a relist of "a": db is gone
    assert set(published.states) == {VmKey("a", "web"), VmKey("b", "app")}
    fleet.replace(VMIS.name, [running_vmi("b", "app")], now=3)  # a list of every namespace prunes everywhere
    assert set(published.states) == {VmKey("b", "app")}


def test_a_content_listed_before_its_vm_is_kept_and_dropped_with_it(fleet: Fleet, published: Published) -> None:
    # Reflectors list concurrently: a content may arrive before the VMI and the snapshot it explains.
    quota = "rpc error: code = ResourceExhausted desc = quota"
    content = {
        "metadata": {"namespace": "default", "name": "vmsnapshot-content-s1", "resourceVersion": "1"},
        "spec": {
            "virtualMachineSnapshotName": "snap-1",
            "source": {"virtualMachine": {"metadata": {"name": "win2019"}}},
            "volumeBackups": [{"volumeName": "data", "volumeSnapshotName": "vs-data"}],
        },
        "status": {"volumeSnapshotStatus": [{"volumeSnapshotName": "vs-data", "error": {"message": quota}}]},
    }
    snapshot = {
        "metadata": {
            "namespace": "default",
            "name": "snap-1",
            "uid": "s1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "win2019"}},
        "status": {
            "phase": "Failed",
            "indications": ["GuestAgent", "Online"],
            "error": {"message": f"VolumeSnapshot vs-data error: {quota}"},
        },
    }
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC).timestamp()
    fleet.upsert(SNAPSHOT_CONTENTS.name, content, now)
    fleet.upsert(VMS.name, vm(), now)
    fleet.upsert(SNAPSHOTS.name, snapshot, now)
    last = published.states[KEY].last_snapshot
    assert last is not None and last.failed_volumes == (("data", "resource_exhausted"),)
    fleet.delete(SNAPSHOT_CONTENTS.name, content, now)
    last = published.states[KEY].last_snapshot
    assert last is not None and last.failed_volumes == (("vs-data", "resource_exhausted"),)  # only the error's name


def test_the_schedule_judges_a_waiting_snapshot_when_the_start_up_grace_ends(
    published: Published, kubevirt_object
) -> None:
    created = datetime(2026, 8, 20, 2, 0, 9, tzinfo=UTC).timestamp()
    started = created + 600
    fleet = Fleet(on_state=published.on_state, settings=JudgeSettings(started_at=started, guest_report_grace=300))
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=started)
    fleet.upsert(SNAPSHOTS.name, _succeeded_at(kubevirt_object, "2026-08-20T02:00:09Z"), now=started)
    assert published.states[KEY].snapshot_count == 1 and published.states[KEY].last_snapshot is None
    fleet.tick(now=started + 299)
    assert published.states[KEY].last_snapshot is None
    fleet.tick(now=started + 301)
    last = published.states[KEY].last_snapshot
    assert last is not None and last.consistency == "application"  # no report came: judged without one


class Counting(Published):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[VmKey] = []

    def on_state(self, key: VmKey, state: VmState | None) -> None:
        self.calls.append(key)
        super().on_state(key, state)


def test_while_publishing_is_held_each_vm_is_judged_once_at_the_end(kubevirt_object) -> None:
    counting = Counting()
    fleet = Fleet(on_state=counting.on_state)
    fleet.hold_publishing()
    for name in ("a", "b", "c"):
        fleet.upsert(VMS.name, vm(name, uid=f"uid-{name}"), now=100)
        fleet.upsert(VMS.name, vm(name, status="Stopped", uid=f"uid-{name}"), now=101)
    fleet.upsert(VMIS.name, kubevirt_object("vmi-windows-agentconnected"), now=102)
    assert counting.calls == [] and list(fleet.states()) == []

    assert fleet.publish_held(now=110, limit=3) == 1
    assert fleet.publish_held(now=110, limit=3) == 0
    assert sorted(k.name for k in counting.calls) == ["a", "b", "c", "win2019"]  # once each
    assert counting.states[VmKey("default", "a")].phase == "Stopped"  # as it was last

    fleet.delete(VMS.name, vm("a", uid="uid-a"), now=120)  # publishing is immediate again
    assert counting.calls[-1] == VmKey("default", "a") and VmKey("default", "a") not in counting.states
    assert fleet.publish_held(now=120, limit=10) == 0


def test_a_vm_gone_while_publishing_was_held_is_never_published(fleet: Fleet, published: Published) -> None:
    fleet.hold_publishing()
    fleet.upsert(VMS.name, vm("gone", uid="uid-gone"), now=100)
    fleet.delete(VMS.name, vm("gone", uid="uid-gone"), now=101)
    assert fleet.publish_held(now=110, limit=10) == 0
    assert published.states == {}
