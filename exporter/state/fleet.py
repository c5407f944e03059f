"""Facts indexed per VM. Every change re-judges only the VM it touches and hands the result on.

The fleet is the reflectors' sink: ``replace`` (a full list), ``upsert`` and ``delete`` per resource.
A relist upserts everything first and prunes what is missing afterwards, so a scrape taken
during a relist never sees a half-empty fleet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.state.records import GuestInfo, VmKey, VmState
from exporter.state.snapshots import parse_snapshot
from exporter.state.vm import JudgeSettings, VmRecord, build_state
from exporter.state.vmi import parse_guest_info, parse_vm, parse_vmi

VMIS = "virtualmachineinstances"
VMS = "virtualmachines"
SNAPSHOTS = "virtualmachinesnapshots"
FSFREEZE_HISTORY = 16

StateSink = Callable[[VmKey, VmState | None], None]
ProblemSink = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Ownership:
    """Which VMs this instance exports (sharding); the default owns every VM."""

    accepts: Callable[[VmKey], bool] = lambda key: True


class Fleet:
    """Per-VM facts; pure apart from the callbacks it is given."""

    def __init__(
        self,
        *,
        on_state: StateSink,
        on_problem: ProblemSink | None = None,
        settings: JudgeSettings | None = None,
        owns: Callable[[VmKey], bool] | None = None,
    ) -> None:
        self._on_state = on_state
        self._on_problem = on_problem or (lambda resource, problem: None)
        self._settings = settings or JudgeSettings()
        self._owns = owns or (lambda key: True)
        self._records: dict[VmKey, VmRecord] = {}
        # Which VM each object belongs to, per resource, so deletes and relist prunes find it.
        self._objects: dict[str, dict[tuple[str, str], VmKey]] = {VMIS: {}, VMS: {}, SNAPSHOTS: {}}
        self.extra_evidence: Any = None

    # -- reading -------------------------------------------------------------------------------

    def keys(self) -> Iterable[VmKey]:
        return self._records.keys()

    def record(self, key: VmKey) -> VmRecord | None:
        return self._records.get(key)

    def running_with_agent(self) -> list[tuple[VmKey, str]]:
        """(key, VMI uid) of every Running VMI whose agent is connected: the guestosinfo poll set."""
        return [
            (key, record.vmi.uid)
            for key, record in self._records.items()
            if record.vmi is not None and record.vmi.agent_connected
        ]

    def object_count(self, resource: str) -> int:
        return len(self._objects.get(resource, {}))

    # -- the reflector sink -----------------------------------------------------------------------

    def upsert(self, resource: str, raw: Mapping[str, Any], now: float) -> None:
        key = self._apply(resource, raw, now)
        if key is not None:
            self._publish(key, now)

    def delete(self, resource: str, raw: Mapping[str, Any], now: float) -> None:
        identity = _identity(raw)
        if identity is None:
            return
        key = self._objects.get(resource, {}).pop(identity, None)
        if key is None:
            return
        self._forget(resource, key, identity, raw)
        self._publish(key, now)

    def replace(self, resource: str, items: Iterable[Mapping[str, Any]], now: float) -> None:
        """A full list: upsert every item, then prune objects of this resource that are gone."""
        seen: set[tuple[str, str]] = set()
        touched: set[VmKey] = set()
        for raw in items:
            identity = _identity(raw)
            if identity is not None:
                seen.add(identity)
            key = self._apply(resource, raw, now)
            if key is not None:
                touched.add(key)
        known = self._objects.get(resource, {})
        for identity in [i for i in known if i not in seen]:
            key = known.pop(identity)
            self._forget(resource, key, identity, None)
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

    def tick(self, now: float) -> None:
        """Re-judge VMs whose state depends on the clock (deadlines, stuck-frozen, report age)."""
        for key, record in list(self._records.items()):
            in_progress = any(s.phase == "InProgress" for s in record.snapshots.values())
            if in_progress or record.frozen_since is not None or self._time_dependent(record):
                self._publish(key, now)

    def _time_dependent(self, record: VmRecord) -> bool:
        return False

    # -- internals -----------------------------------------------------------------------------

    def _apply(self, resource: str, raw: Mapping[str, Any], now: float) -> VmKey | None:
        if resource == VMIS:
            return self._apply_vmi(raw, now)
        if resource == VMS:
            return self._apply_vm(raw)
        if resource == SNAPSHOTS:
            return self._apply_snapshot(raw)
        return None

    def _report(self, resource: str, problems: list[str]) -> None:
        for problem in problems:
            self._on_problem(resource, problem)

    def _apply_vmi(self, raw: Mapping[str, Any], now: float) -> VmKey | None:
        facts, problems = parse_vmi(raw)
        self._report(VMIS, problems)
        if facts is None or not self._owns(facts.key):
            return None
        record = self._records.setdefault(facts.key, VmRecord(facts.key))
        previous = record.vmi
        if previous is not None and previous.uid != facts.uid:
            # A new life of the same VM: what belonged to the old VMI goes.
            record.frozen_since = None
            record.guest = None
        if facts.fs_frozen and facts.running:
            if record.frozen_since is None:
                record.frozen_since = now
        else:
            record.frozen_since = None
        record.vmi = facts
        self._objects[VMIS][(facts.key.namespace, facts.key.name)] = facts.key
        return facts.key

    def _apply_vm(self, raw: Mapping[str, Any]) -> VmKey | None:
        facts, problems = parse_vm(raw)
        self._report(VMS, problems)
        if facts is None or not self._owns(facts.key):
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
        record = self._records.setdefault(facts.key, VmRecord(facts.key))
        record.snapshots[f"{identity[0]}/{identity[1]}"] = facts
        self._objects[SNAPSHOTS][identity] = facts.key
        return facts.key

    def _forget(self, resource: str, key: VmKey, identity: tuple[str, str], raw: Mapping[str, Any] | None) -> None:
        record = self._records.get(key)
        if record is None:
            return
        if resource == VMIS:
            record.vmi = None
            record.guest = None
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
        self._on_state(key, state)

    def judge(self, record: VmRecord, now: float) -> VmState | None:
        return build_state(record, now=now, settings=self._settings)


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
