"""The table of per-resource handlers: which resources are indexed state and which are history."""

from __future__ import annotations

import copy
from typing import Any

from exporter import resources
from exporter.state.freeze_errors import FreezeErrorLedger
from exporter.state.object_index import ObjectIndex
from exporter.state.records import VmKey
from exporter.state.resource_handlers import HANDLERS, Facts, apply_snapshot
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
    watched = [resources.VMIS, resources.VMS, resources.SNAPSHOTS, resources.EVENTS, resources.BACKUPS]
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
