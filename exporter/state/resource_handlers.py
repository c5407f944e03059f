"""What each watched resource does to the per-VM facts: one handler per resource, in one table.

A handler ``apply``s an object (returning the VM it changed, or None when nothing visible changed)
and ``forget``s one that was deleted or is missing from a full list. Resources without ``forget``
are history — Events and backups record failures that happened, so deleting them undoes nothing —
and are neither indexed nor pruned. To watch a new resource, add its handler to ``HANDLERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from exporter import resources
from exporter.state.freeze_errors import FreezeErrorLedger, FreezeObservation, from_backup, from_event, from_snapshot
from exporter.state.object_index import ObjectId, ObjectIndex, object_id
from exporter.state.records import VmKey
from exporter.state.snapshot_contents import parse_snapshot_content
from exporter.state.snapshots import parse_snapshot
from exporter.state.storage_failures import StorageFailureLedger
from exporter.state.vm_record import VmRecord
from exporter.state.vmi import parse_vm, parse_vmi
from exporter.state.vmi_lookups import VmiLookups

ProblemSink = Callable[[str, str], None]
RawObject = Mapping[str, Any]


@dataclass(slots=True)
class Facts:
    """The per-VM records and everything kept beside them, as the handlers update them."""

    owns: Callable[[VmKey], bool]
    report_problem: ProblemSink
    freeze_errors: FreezeErrorLedger
    storage_failures: StorageFailureLedger
    index: ObjectIndex
    records: dict[VmKey, VmRecord] = field(default_factory=dict)
    lookups: VmiLookups = field(default_factory=VmiLookups)

    def record(self, key: VmKey) -> VmRecord:
        """The record of ``key``, created empty if there is none yet."""
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = VmRecord(key)
        return record

    def report(self, resource: str, problems: list[str]) -> None:
        for problem in problems:
            self.report_problem(resource, problem)

    def observe(self, observation: FreezeObservation | None) -> VmKey | None:
        """A freeze failure for a VM of this shard; the VM when its numbers changed."""
        if observation is None or not self.owns(observation.key):
            return None
        return observation.key if self.freeze_errors.add(observation) else None


Apply = Callable[[Facts, RawObject, float], VmKey | None]
Forget = Callable[[Facts, VmRecord, ObjectId], None]


@dataclass(frozen=True, slots=True)
class ResourceHandler:
    apply: Apply
    forget: Forget | None = None  # None: history, never indexed, pruned or undone

    @property
    def is_history(self) -> bool:
        return self.forget is None


class _Keyed(Protocol):
    @property
    def key(self) -> VmKey: ...


Parsed = TypeVar("Parsed", bound=_Keyed)


def _of_this_shard(facts: Facts, resource: str, parsed: tuple[Parsed | None, list[str]]) -> Parsed | None:
    """The parsed object when it belongs to a VM of this shard; its problems are reported either way."""
    value, problems = parsed
    facts.report(resource, problems)
    return value if value is not None and facts.owns(value.key) else None


def _record_to_change(facts: Facts, parsed: Parsed | None, current: Callable[[VmRecord], object]) -> VmRecord | None:
    """The record ``parsed`` updates; None when there is nothing to apply or it holds this already
    (a relist or a heartbeat: nothing we judge has changed)."""
    if parsed is None:
        return None
    existing = facts.records.get(parsed.key)
    if existing is not None and current(existing) == parsed:
        return None
    return facts.record(parsed.key)


def _keyed_as(parsed: Parsed, record: VmRecord) -> Parsed:
    """``parsed`` holding its record's own VmKey: a VM's facts share one key, not one per object."""
    return parsed if parsed.key is record.key else replace(parsed, key=record.key)  # type: ignore[type-var]


def apply_vmi(facts: Facts, raw: RawObject, now: float) -> VmKey | None:
    vmi = _of_this_shard(facts, resources.VMIS.name, parse_vmi(raw))
    record = _record_to_change(facts, vmi, lambda r: r.vmi)
    if vmi is None or record is None:
        return None
    vmi = _keyed_as(vmi, record)
    facts.lookups.replace(vmi.key, record.vmi, vmi)
    record.set_vmi(vmi, now)
    facts.index.remember(resources.VMIS.name, vmi.key, vmi.key)  # a VMI is named as its VM is
    return vmi.key


def forget_vmi(facts: Facts, record: VmRecord, identity: ObjectId) -> None:
    facts.lookups.replace(record.key, record.vmi, None)
    record.clear_vmi()


def apply_vm(facts: Facts, raw: RawObject, now: float) -> VmKey | None:
    vm = _of_this_shard(facts, resources.VMS.name, parse_vm(raw))
    record = _record_to_change(facts, vm, lambda r: r.vm)
    if vm is None or record is None:
        return None
    vm = _keyed_as(vm, record)
    record.vm = vm
    facts.index.remember(resources.VMS.name, vm.key, vm.key)
    return vm.key


def forget_vm(facts: Facts, record: VmRecord, identity: ObjectId) -> None:
    record.vm = None


def apply_snapshot(facts: Facts, raw: RawObject, now: float) -> VmKey | None:
    parsed, problems = parse_snapshot(raw)
    # Snapshots of other kinds of source are not ours to judge, and not malformed.
    wellformed = [p for p in problems if p != "source_not_vm"]
    snapshot = _of_this_shard(facts, resources.SNAPSHOTS.name, (parsed, wellformed))
    if snapshot is None:
        return None
    identity = object_id(raw)
    if identity is None:
        return None
    previous_key = facts.index.vm_of(resources.SNAPSHOTS.name, identity)
    if previous_key is not None and previous_key != snapshot.key and (moved := facts.records.get(previous_key)):
        forget_snapshot(facts, moved, identity)
    existing = facts.records.get(snapshot.key)
    if existing is not None and existing.snapshots.get(snapshot_id(identity)) == snapshot:
        return None
    record = facts.record(snapshot.key)
    snapshot = _keyed_as(snapshot, record)
    record.snapshots[snapshot_id(identity)] = snapshot
    facts.index.remember(resources.SNAPSHOTS.name, identity, record.key)
    observation = from_snapshot(snapshot)
    if observation is not None:
        facts.freeze_errors.add(observation)
    facts.storage_failures.observe(snapshot)
    return snapshot.key


def forget_snapshot(facts: Facts, record: VmRecord, identity: ObjectId) -> None:
    record.snapshots.pop(snapshot_id(identity), None)


def apply_snapshot_content(facts: Facts, raw: RawObject, now: float) -> VmKey | None:
    """Keep the failed volumes of a snapshot's content; a content without failures is not kept."""
    content = _of_this_shard(facts, resources.SNAPSHOT_CONTENTS.name, parse_snapshot_content(raw))
    identity = object_id(raw)
    if content is None or identity is None:
        return None
    existing = facts.records.get(content.key)
    known = existing.snapshot_contents.get(snapshot_id(identity)) if existing is not None else None
    if known == content or (known is None and not content.failures):
        return None
    if not content.failures:
        forget_snapshot_content(facts, facts.record(content.key), identity)
        return content.key
    facts.record(content.key).set_content(snapshot_id(identity), content)
    facts.index.remember(resources.SNAPSHOT_CONTENTS.name, identity, content.key)
    return content.key


def forget_snapshot_content(facts: Facts, record: VmRecord, identity: ObjectId) -> None:
    record.drop_content(snapshot_id(identity))


def snapshot_id(identity: ObjectId) -> str:
    """The key of a snapshot in ``VmRecord.snapshots`` (and of a content in ``snapshot_contents``): its name,
    the string its facts already hold; snapshots and contents live in their VM's namespace."""
    return identity[1]


HANDLERS: dict[str, ResourceHandler] = {
    resources.VMIS.name: ResourceHandler(apply_vmi, forget_vmi),
    resources.VMS.name: ResourceHandler(apply_vm, forget_vm),
    resources.SNAPSHOTS.name: ResourceHandler(apply_snapshot, forget_snapshot),
    resources.SNAPSHOT_CONTENTS.name: ResourceHandler(apply_snapshot_content, forget_snapshot_content),
    resources.EVENTS.name: ResourceHandler(lambda facts, raw, now: facts.observe(from_event(raw))),
    resources.BACKUPS.name: ResourceHandler(lambda facts, raw, now: facts.observe(from_backup(raw))),
}
