from __future__ import annotations

import copy

from exporter.resources import SNAPSHOTS, VMIS
from exporter.state.records import VmKey
from exporter.web.inventory import Inventory
from tests.web.hostile import HOSTILE_KEY, NOW, hostile_fleet, load


def test_rows_are_rebuilt_only_for_vms_whose_state_changed() -> None:
    fleet = hostile_fleet()
    inventory = Inventory(fleet, clock=lambda: NOW)
    first = {(r.namespace, r.name): r for r in inventory.rows()}
    again = {(r.namespace, r.name): r for r in inventory.rows()}
    assert all(again[key] is row for key, row in first.items())
    frozen = copy.deepcopy(load("kubevirt/vmi-windows-agentconnected.json"))
    frozen["metadata"].update(namespace="finance", name="win-ad-01", uid="vmi-uid-2", resourceVersion="9")
    frozen["status"]["fsFreezeStatus"] = "frozen"
    fleet.upsert(VMIS.name, frozen, NOW)
    changed = {(r.namespace, r.name): r for r in inventory.rows()}
    assert changed[("finance", "win-ad-01")] is not first[("finance", "win-ad-01")]
    assert changed[("finance", "win-ad-01")].frozen is True
    assert changed[tuple(HOSTILE_KEY)] is first[tuple(HOSTILE_KEY)]


def test_detail_of_an_unknown_vm_is_none_and_a_known_one_carries_every_section() -> None:
    inventory = Inventory(hostile_fleet(), clock=lambda: NOW, simulated=True)
    assert inventory.detail(VmKey("finance", "nope")) is None
    detail = inventory.detail(HOSTILE_KEY)
    assert detail is not None and detail["simulated"] is True
    for section in ("signals", "last_freeze_error", "freeze_episodes", "snapshots", "guest_report", "checks"):
        assert detail[section], section
    assert detail["freeze_episodes"][0]["reason"] == "add_volume_to_snapshot_set"
    assert detail["snapshots"][0]["level"] == 0
    assert detail["guest_report"]["age_seconds"] == 60.0


def test_storage_failures_are_listed_apart_from_freeze_failures() -> None:
    fleet = hostile_fleet()
    failed = copy.deepcopy(load("kubevirt/vmsnapshot-inprogress-freeze-error-windows-vss.json"))
    failed["metadata"].update(namespace="finance", name="snap-storage", uid="snap-storage", resourceVersion="5")
    failed["spec"]["source"]["name"] = "win-ad-01"
    failed["status"]["phase"] = "Failed"
    failed["status"]["error"] = {"message": "VolumeSnapshot vmsnapshot-1-volume-disk0 error: quota exceeded"}
    fleet.upsert(SNAPSHOTS.name, failed, NOW)
    detail = Inventory(fleet, clock=lambda: NOW).detail(VmKey("finance", "win-ad-01"))
    assert detail is not None
    assert detail["storage_failures"]["counts"] == [{"reason": "volume_snapshot_error", "snapshots": 1}]
    assert detail["last_freeze_error"] is None
    assert "CSI driver" in detail["next_steps"][0]["text"]
