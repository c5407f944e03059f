"""The table of per-resource handlers: which resources are indexed state and which are history."""

from __future__ import annotations

import copy
from typing import Any

from exporter import resources
from exporter.state.freeze_errors import FreezeErrorLedger
from exporter.state.object_index import ObjectIndex
from exporter.state.records import VmKey
from exporter.state.resource_handlers import (
    HANDLERS,
    Facts,
    apply_snapshot,
    apply_snapshot_content,
    apply_vmi,
    forget_snapshot_content,
)
from exporter.state.storage_failures import StorageFailureLedger


def facts() -> Facts:
    indexed = [name for name, handler in HANDLERS.items() if not handler.is_history]
    return Facts(
        owns=lambda key: True,
        report_problem=lambda r, p: None,
        freeze_errors=FreezeErrorLedger(),
        storage_failures=StorageFailureLedger(),
        index=ObjectIndex(indexed),
    )


def test_every_watched_resource_has_a_handler() -> None:
    watched = [
        resources.VMIS,
        resources.VMS,
        resources.SNAPSHOTS,
        resources.SNAPSHOT_CONTENTS,
        resources.EVENTS,
        resources.BACKUPS,
    ]
    assert set(HANDLERS) == {r.name for r in watched}
    assert {name for name, handler in HANDLERS.items() if handler.is_history} == {"events", "virtualmachinebackups"}


def test_a_snapshot_whose_source_changes_moves_to_the_other_vm(kubevirt_object: Any) -> None:
    state = facts()
    raw = kubevirt_object("vmsnapshot-succeeded-online-guestagent")
    first = apply_snapshot(state, raw, 0.0)
    moved = copy.deepcopy(raw)
    moved["spec"]["source"]["name"] = "other"
    second = apply_snapshot(state, moved, 1.0)
    assert first is not None and second == VmKey(first.namespace, "other")
    assert state.records[first].snapshots == {}
    assert len(state.records[second].snapshots) == 1


def test_the_facts_of_one_vm_hold_its_record_key_not_one_key_per_object(kubevirt_object: Any) -> None:
    state = facts()
    vmi = kubevirt_object("vmi-windows-agentconnected")
    key = apply_vmi(state, vmi, 0.0)
    assert key is not None
    record = state.records[key]
    snapshot = kubevirt_object("vmsnapshot-succeeded-online-guestagent")
    snapshot["metadata"]["namespace"] = key.namespace
    snapshot["spec"]["source"]["name"] = key.name
    assert apply_snapshot(state, snapshot, 1.0) == key
    changed = copy.deepcopy(vmi)
    changed["status"]["phase"] = "Succeeded"
    assert apply_vmi(state, changed, 2.0) == key
    (facts_of_snapshot,) = record.snapshots.values()
    assert record.vmi is not None and record.vmi.key is record.key
    assert facts_of_snapshot.key is record.key


def content(errors: dict[str, str | None], *, resource_version: str = "1") -> dict[str, Any]:
    """A VirtualMachineSnapshotContent of finance/vm's snap-1 (v1beta1)."""
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshotContent",
        "metadata": {"namespace": "finance", "name": "vmsnapshot-content-u1", "resourceVersion": resource_version},
        "spec": {
            "virtualMachineSnapshotName": "snap-1",
            "source": {"virtualMachine": {"metadata": {"name": "vm", "namespace": "finance"}}},
            "volumeBackups": [
                {"volumeName": volume, "volumeSnapshotName": f"vmsnapshot-u1-volume-{volume}"} for volume in errors
            ],
        },
        "status": {
            "volumeSnapshotStatus": [
                {"volumeSnapshotName": f"vmsnapshot-u1-volume-{volume}"}
                | ({"error": {"message": error}} if error is not None else {})
                for volume, error in errors.items()
            ]
        },
    }


QUOTA = 'failed to take snapshot of the volume pvc-1: "rpc error: code = ResourceExhausted desc = quota"'


def test_a_content_with_failed_volumes_is_kept_for_its_vm_and_snapshot() -> None:
    state = facts()
    key = apply_snapshot_content(state, content({"rootdisk": None, "data": QUOTA}), 0.0)
    assert key == VmKey("finance", "vm")
    failures = state.records[key].volume_failures("snap-1")
    assert [(f.volume, f.reason) for f in failures] == [("data", "resource_exhausted")]
    assert state.records[key].volume_failures("snap-2") == ()
    assert state.index.vm_of(resources.SNAPSHOT_CONTENTS.name, ("finance", "vmsnapshot-content-u1")) == key


def test_a_content_without_failures_is_not_kept_and_a_cleared_one_is_dropped() -> None:
    state = facts()
    assert apply_snapshot_content(state, content({"rootdisk": None}), 0.0) is None
    assert state.records == {}
    key = apply_snapshot_content(state, content({"data": QUOTA}), 1.0)
    assert key is not None
    assert apply_snapshot_content(state, content({"data": QUOTA}), 2.0) is None  # nothing changed
    # The CSI driver's retry succeeded: the controller clears the volume's error.
    assert apply_snapshot_content(state, content({"data": None}), 3.0) == key
    assert state.records[key].snapshot_contents == {}


def test_a_deleted_content_is_forgotten() -> None:
    state = facts()
    key = apply_snapshot_content(state, content({"data": QUOTA}), 0.0)
    assert key is not None
    forget_snapshot_content(state, state.records[key], ("finance", "vmsnapshot-content-u1"))
    assert state.records[key].volume_failures("snap-1") == ()


def test_a_content_of_another_shard_is_dropped() -> None:
    state = facts()
    state.owns = lambda key: False
    assert apply_snapshot_content(state, content({"data": QUOTA}), 0.0) is None
    assert state.records == {}
