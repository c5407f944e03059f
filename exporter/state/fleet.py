"""Facts indexed per VM. Every change re-judges only the VM it touches and hands the result on.

The fleet is the reflectors' sink: ``replace`` (a full list), ``upsert`` and ``delete`` per resource.
A relist upserts everything first and prunes what is missing afterwards, so a scrape taken
during a relist never sees a half-empty fleet.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from exporter import resources
from exporter.state.freeze_errors import (
    FreezeErrorLedger,
    FreezeObservation,
    classify_cached,
    from_backup,
    from_event,
    from_snapshot,
)
from exporter.state.guest_report import GuestReport
from exporter.state.records import GuestInfo, SnapshotFacts, SnapshotJudgement, VmKey, VmState
from exporter.state.snapshots import parse_snapshot
from exporter.state.storage_failures import StorageFailureLedger
from exporter.state.vm import (
    JudgeSettings,
    VmRecord,
    build_state,
    next_change_at,
    report_evidence,
    snapshot_judge,
)
from exporter.state.vmi import parse_guest_info, parse_vm, parse_vmi

VMIS, VMS, SNAPSHOTS = resources.VMIS.name, resources.VMS.name, resources.SNAPSHOTS.name
EVENTS, BACKUPS = resources.EVENTS.name, resources.BACKUPS.name
FSFREEZE_HISTORY = 16
GUEST_REPORT_HISTORY = 12

StateSink = Callable[[VmKey, VmState | None], None]


@dataclass(slots=True)
class Relist:
    """The objects of one resource seen so far in a full list."""

    resource: str
    seen: set[tuple[str, str]] = field(default_factory=set)


ProblemSink = Callable[[str, str], None]


class Fleet:
    """Per-VM facts; pure apart from the callbacks it is given."""

    def __init__(
        self,
        *,
        on_state: StateSink,
        on_problem: ProblemSink | None = None,
        settings: JudgeSettings | None = None,
        owns: Callable[[VmKey], bool] | None = None,
        freeze_episode_gap: float = 600.0,
    ) -> None:
        self._on_state = on_state
        self._on_problem = on_problem or (lambda resource, problem: None)
        self._settings = settings or JudgeSettings()
        self._owns = owns or (lambda key: True)
        self._records: dict[VmKey, VmRecord] = {}
        # Which VM each object belongs to, per resource, so deletes and relist prunes find it.
        self._objects: dict[str, dict[tuple[str, str], VmKey]] = {VMIS: {}, VMS: {}, SNAPSHOTS: {}}
        # The resourceVersion last applied per object, so a relist skips what has not changed
        # (also for objects of other shards, which are parsed only to be dropped).
        self._versions: dict[str, dict[tuple[str, str], str]] = {VMIS: {}, VMS: {}, SNAPSHOTS: {}}
        self.freeze_errors = FreezeErrorLedger(gap=freeze_episode_gap)
        self.storage_failures = StorageFailureLedger()
        self._vmi_uids: dict[str, VmKey] = {}
        self._published: dict[VmKey, VmState] = {}
        # (when, key): VMs whose judgement changes by the clock alone; stale entries are harmless.
        self._due: list[tuple[float, VmKey]] = []
        self._scheduled: dict[VmKey, float] = {}
        self._addresses: dict[str, VmKey] = {}

    # -- reading -------------------------------------------------------------------------------

    def keys(self) -> Iterable[VmKey]:
        return self._records.keys()

    def record(self, key: VmKey) -> VmRecord | None:
        return self._records.get(key)

    def poll_target_uid(self, key: VmKey) -> str | None:
        """The UID of the VM's Running VMI if its agent is connected: what a guestosinfo answer belongs to."""
        record = self._records.get(key)
        vmi = record.vmi if record is not None else None
        return vmi.uid if vmi is not None and vmi.running and vmi.agent_connected else None

    def vm_of_vmi_uid(self, uid: str) -> VmKey | None:
        return self._vmi_uids.get(uid)

    def states(self) -> Iterable[VmState]:
        """Every VM's state as last published (what /metrics shows)."""
        return self._published.values()

    def state(self, key: VmKey) -> VmState | None:
        return self._published.get(key)

    def snapshot_judgements(self, key: VmKey, now: float) -> list[SnapshotJudgement]:
        """The consistency of each of the VM's snapshots, newest first, judged as the last one is."""
        record = self._records.get(key)
        if record is None:
            return []
        judge_snapshot = snapshot_judge(
            record,
            report_max_age=self._settings.guest_report_max_age,
            failure_reason=self._failure_reason,
            thaw_timeout_seen=self._thaw_timeout_seen,
        )
        newest_first = sorted(record.snapshots.values(), key=lambda s: (s.created_at, s.name), reverse=True)
        return [judge_snapshot(s) for s in newest_first if s.finished(now)]

    @property
    def settings(self) -> JudgeSettings:
        return self._settings

    # -- the reflector sink -----------------------------------------------------------------------

    def upsert(self, resource: str, raw: Mapping[str, Any], now: float) -> None:
        key = self._apply(resource, raw, now)
        if key is not None:
            self._publish(key, now)

    def delete(self, resource: str, raw: Mapping[str, Any], now: float) -> None:
        if resource in (EVENTS, BACKUPS):
            return  # an expired Event or a deleted backup does not undo a failure that happened
        identity = _identity(raw)
        if identity is None:
            return
        self._versions.get(resource, {}).pop(identity, None)
        key = self._objects.get(resource, {}).pop(identity, None)
        if key is None:
            return
        self._forget(resource, key, identity, raw)
        self._publish(key, now)

    def replace(self, resource: str, items: Iterable[Mapping[str, Any]], now: float) -> None:
        """A full list: upsert every item, then prune objects of this resource that are gone."""
        relist = self.begin_relist(resource)
        self.relist_chunk(relist, items, now)
        self.end_relist(relist, now)

    def begin_relist(self, resource: str) -> Relist:
        """A full list delivered in chunks (so the caller can yield between them)."""
        return Relist(resource)

    def relist_chunk(self, relist: Relist, items: Iterable[Mapping[str, Any]], now: float) -> None:
        """Upsert part of a full list; its VMs are published at once (upserts never hide a VM)."""
        touched: set[VmKey] = set()
        for raw in items:
            identity = _identity(raw)
            if identity is not None:
                relist.seen.add(identity)
            key = self._apply(relist.resource, raw, now)
            if key is not None:
                touched.add(key)
        for key in touched:
            self._publish(key, now)

    def end_relist(self, relist: Relist, now: float) -> None:
        """Prune what the full list no longer holds. Events and backups are history: never pruned."""
        if relist.resource in (EVENTS, BACKUPS):
            return
        versions = self._versions.get(relist.resource, {})
        for identity in [i for i in versions if i not in relist.seen]:
            del versions[identity]
        known = self._objects.get(relist.resource, {})
        touched: set[VmKey] = set()
        for identity in [i for i in known if i not in relist.seen]:
            key = known.pop(identity)
            self._forget(relist.resource, key, identity, None)
            touched.add(key)
        for key in touched:
            self._publish(key, now)

    # -- other sources ---------------------------------------------------------------------------

    def apply_guest_info(self, key: VmKey, vmi_uid: str, raw: Any, now: float) -> None:
        record = self._records.get(key)
        if record is None or record.vmi is None or record.vmi.uid != vmi_uid:
            return
        info, problems = parse_guest_info(raw, vmi_uid=vmi_uid, observed_at=now)
        for problem in problems:
            self._on_problem("guestosinfo", problem)
        self._set_guest(record, info)
        self._publish(key, now)

    def apply_freeze_observation(self, observation: FreezeObservation, now: float) -> None:
        """A failure seen outside the watched objects (launcher logs)."""
        if self._owns(observation.key) and self.freeze_errors.add(observation):
            self._publish(observation.key, now)

    def resolve_source(self, address: str) -> VmKey | None:
        """The VM whose running VMI reports this interface address (guest report attribution)."""
        key = self._addresses.get(address)
        if key is None:
            return None
        record = self._records.get(key)
        if record is None or record.vmi is None or not record.vmi.running or address not in record.vmi.ip_addresses:
            return None
        return key

    def apply_guest_report(self, key: VmKey, report: GuestReport, now: float) -> None:
        record = self._records.get(key)
        if record is None or record.vmi is None:
            return
        if record.guest_report is None or report.received_at >= record.guest_report.received_at:
            record.guest_report = report
        history = record.report_evidence
        history.append((report.received_at, report_evidence(report)))
        history.sort(key=lambda item: item[0])
        del history[:-GUEST_REPORT_HISTORY]
        self._publish(key, now)

    def tick(self, now: float) -> None:
        """Re-judge the VMs whose state changes with the clock (deadlines, stuck-frozen, report age)."""
        self.freeze_errors.advance(now)
        self.freeze_errors.prune(lambda key: key in self._records)
        self.storage_failures.prune(lambda key: key in self._records)
        due: set[VmKey] = set()
        while self._due and self._due[0][0] <= now:
            when, key = heapq.heappop(self._due)
            if self._scheduled.get(key) == when:
                del self._scheduled[key]
            due.add(key)
        for key in due:
            self._publish(key, now)

    # -- internals -----------------------------------------------------------------------------

    def _apply(self, resource: str, raw: Mapping[str, Any], now: float) -> VmKey | None:
        versions = self._versions.get(resource)
        if versions is not None:
            identity, version = _identity(raw), _resource_version(raw)
            if identity is not None and version:
                # The API server changes resourceVersion on every write: same version, same object.
                if versions.get(identity) == version:
                    return None
                versions[identity] = version
        if resource == VMIS:
            return self._apply_vmi(raw, now)
        if resource == VMS:
            return self._apply_vm(raw)
        if resource == SNAPSHOTS:
            return self._apply_snapshot(raw)
        if resource == EVENTS:
            return self._observe(from_event(raw))
        if resource == BACKUPS:
            return self._observe(from_backup(raw))
        return None

    def _observe(self, observation: FreezeObservation | None) -> VmKey | None:
        if observation is None or not self._owns(observation.key):
            return None
        return observation.key if self.freeze_errors.add(observation) else None

    def _report(self, resource: str, problems: list[str]) -> None:
        for problem in problems:
            self._on_problem(resource, problem)

    def _apply_vmi(self, raw: Mapping[str, Any], now: float) -> VmKey | None:
        facts, problems = parse_vmi(raw)
        self._report(VMIS, problems)
        if facts is None or not self._owns(facts.key):
            return None
        existing = self._records.get(facts.key)
        if existing is not None and existing.vmi == facts:
            return None  # a relist or a heartbeat: nothing we judge has changed
        record = self._records.setdefault(facts.key, VmRecord(facts.key))
        previous = record.vmi
        if previous is not None and previous.uid != facts.uid:
            # A new life of the same VM: what belonged to the old VMI goes.
            record.note_thawed()
            record.frozen_since = None
            record.guest = None
            record.guest_report = None
            record.report_evidence.clear()
        if facts.fs_frozen and facts.running:
            if record.frozen_since is None:
                record.frozen_since = now
                record.note_frozen(now)
        else:
            if record.frozen_since is not None:
                record.note_thawed(now)
            record.frozen_since = None
        if previous is not None:
            self._vmi_uids.pop(previous.uid, None)
        record.vmi = facts
        if facts.uid:
            self._vmi_uids[facts.uid] = facts.key
        if previous is not None:
            for address in previous.ip_addresses:
                if self._addresses.get(address) == facts.key:
                    del self._addresses[address]
        for address in facts.ip_addresses:
            self._addresses[address] = facts.key
        self._objects[VMIS][(facts.key.namespace, facts.key.name)] = facts.key
        return facts.key

    def _apply_vm(self, raw: Mapping[str, Any]) -> VmKey | None:
        facts, problems = parse_vm(raw)
        self._report(VMS, problems)
        if facts is None or not self._owns(facts.key):
            return None
        existing = self._records.get(facts.key)
        if existing is not None and existing.vm == facts:
            return None
        record = self._records.setdefault(facts.key, VmRecord(facts.key))
        record.vm = facts
        self._objects[VMS][(facts.key.namespace, facts.key.name)] = facts.key
        return facts.key

    def _apply_snapshot(self, raw: Mapping[str, Any]) -> VmKey | None:
        facts, problems = parse_snapshot(raw)
        self._report(SNAPSHOTS, [p for p in problems if p != "source_not_vm"])
        if facts is None or not self._owns(facts.key):
            return None
        identity = _identity(raw)
        if identity is None:
            return None
        previous_key = self._objects[SNAPSHOTS].get(identity)
        if previous_key is not None and previous_key != facts.key:
            self._forget(SNAPSHOTS, previous_key, identity, raw)
        existing = self._records.get(facts.key)
        if existing is not None and existing.snapshots.get(f"{identity[0]}/{identity[1]}") == facts:
            return None
        record = self._records.setdefault(facts.key, VmRecord(facts.key))
        record.snapshots[f"{identity[0]}/{identity[1]}"] = facts
        self._objects[SNAPSHOTS][identity] = facts.key
        observation = from_snapshot(facts)
        if observation is not None:
            self.freeze_errors.add(observation)
        self.storage_failures.observe(facts)
        return facts.key

    def _forget(self, resource: str, key: VmKey, identity: tuple[str, str], raw: Mapping[str, Any] | None) -> None:
        record = self._records.get(key)
        if record is None:
            return
        if resource == VMIS:
            if record.vmi is not None:
                self._vmi_uids.pop(record.vmi.uid, None)
                for address in record.vmi.ip_addresses:
                    if self._addresses.get(address) == key:
                        del self._addresses[address]
            record.guest_report = None
            record.report_evidence.clear()
            record.vmi = None
            record.guest = None
            record.note_thawed()
            record.frozen_since = None
        elif resource == VMS:
            record.vm = None
        elif resource == SNAPSHOTS:
            record.snapshots.pop(f"{identity[0]}/{identity[1]}", None)

    def _set_guest(self, record: VmRecord, info: GuestInfo) -> None:
        record.guest = info
        if info.fsfreeze_enabled is not None and not info.fs_frozen and not (record.vmi and record.vmi.fs_frozen):
            history = record.fsfreeze_history
            if not history or history[-1][1] != info.fsfreeze_enabled:
                history.append((info.observed_at, info.fsfreeze_enabled))
                del history[:-FSFREEZE_HISTORY]

    def _publish(self, key: VmKey, now: float) -> None:
        record = self._records.get(key)
        if record is None:
            return
        state = self.judge(record, now)
        if state is None and not record.snapshots:
            del self._records[key]
        when = next_change_at(record, now=now, settings=self._settings) if state is not None else None
        if when is not None and self._scheduled.get(key) != when:
            self._scheduled[key] = when
            heapq.heappush(self._due, (when, key))
        previous = self._published.get(key)
        if state == previous:
            return  # nothing visible changed (a lastProbeTime update, a replayed event): keep the bytes
        if state is None:
            self._published.pop(key, None)
        else:
            self._published[key] = state
        self._on_state(key, state)

    def judge(self, record: VmRecord, now: float) -> VmState | None:
        state = build_state(
            record,
            now=now,
            settings=self._settings,
            failure_reason=self._failure_reason,
            thaw_timeout_seen=self._thaw_timeout_seen,
        )
        if state is None:
            return state
        storage = self.storage_failures.summary(record.key)
        if storage.counts:
            state = replace(
                state,
                storage_failure_counts=storage.counts,
                last_storage_failure_timestamp=storage.last_timestamp,
            )
        if not self.freeze_errors.has(record.key):
            return state
        counts, last_by_reason, detail = self.freeze_errors.summary(record.key, state.volumes)
        return replace(
            state,
            freeze_error_counts=counts,
            last_freeze_error_by_reason=last_by_reason,
            last_freeze_error=detail,
        )

    def _failure_reason(self, snapshot: SnapshotFacts) -> str | None:
        return classify_cached(snapshot.error_message).reason if snapshot.error_message else None

    def _thaw_timeout_seen(self, record: VmRecord, snapshot: SnapshotFacts) -> str | None:
        return self.freeze_errors.thaw_failure(record.key, snapshot)


def _identity(raw: Any) -> tuple[str, str] | None:
    if not isinstance(raw, Mapping):
        return None
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if isinstance(namespace, str) and isinstance(name, str) and namespace and name:
        return namespace, name
    return None


def _resource_version(raw: Any) -> str | None:
    metadata = raw.get("metadata") if isinstance(raw, Mapping) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else None
