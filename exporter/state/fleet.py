"""Facts indexed per VM. Every change re-judges only the VM it touches and hands the result on.

The fleet is the reflectors' sink: ``replace`` (a full list), ``upsert`` and ``delete`` per resource,
each dispatched to the resource's handler (``state/resource_handlers.py``). A relist upserts
everything first and prunes what is missing afterwards, so a scrape taken during a relist never
sees a half-empty fleet. Judging and publishing is the ``Publisher``'s job; the clock-driven
re-judging is its ``DueSchedule``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.state.freeze_errors import FreezeErrorLedger, FreezeObservation
from exporter.state.guest_report import GuestReport
from exporter.state.object_index import ObjectId, ObjectIndex, object_id
from exporter.state.publisher import Publisher, StateSink
from exporter.state.records import SnapshotJudgement, VmKey, VmState
from exporter.state.resource_handlers import HANDLERS, Facts, ProblemSink, ResourceHandler
from exporter.state.storage_failures import StorageFailureLedger
from exporter.state.vm_record import VmRecord
from exporter.state.vm_state import JudgeSettings
from exporter.state.vmi import parse_guest_info


@dataclass(slots=True)
class Relist:
    """The objects of one resource seen so far in a full list of one namespace (``None``: all)."""

    resource: str
    seen: set[ObjectId] = field(default_factory=set)
    namespace: str | None = None


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
        self._on_problem = on_problem or (lambda resource, problem: None)
        self.freeze_errors = FreezeErrorLedger(gap=freeze_episode_gap)
        self.storage_failures = StorageFailureLedger()
        self._facts = Facts(
            owns=owns or (lambda key: True),
            report_problem=self._on_problem,
            freeze_errors=self.freeze_errors,
            storage_failures=self.storage_failures,
            index=ObjectIndex(name for name, handler in HANDLERS.items() if not handler.is_history),
        )
        self._records = self._facts.records
        # VMs changed while publishing is held (see ``hold_publishing``); None: publishing at once.
        self._held: set[VmKey] | None = None
        self._publisher = Publisher(
            on_state=on_state,
            settings=settings or JudgeSettings(),
            freeze_errors=self.freeze_errors,
            storage_failures=self.storage_failures,
        )

    # -- reading -------------------------------------------------------------------------------

    def keys(self) -> Iterable[VmKey]:
        return self._records.keys()

    def record(self, key: VmKey) -> VmRecord | None:
        return self._records.get(key)

    def judge(self, record: VmRecord, now: float) -> VmState | None:
        return self._publisher.judge(record, now)

    def poll_target_uid(self, key: VmKey) -> str | None:
        """The UID of the VM's Running VMI if its agent is connected: what a guestosinfo answer belongs to."""
        record = self._records.get(key)
        vmi = record.vmi if record is not None else None
        return vmi.uid if vmi is not None and vmi.running and vmi.agent_connected else None

    def vm_of_vmi_uid(self, uid: str) -> VmKey | None:
        return self._facts.lookups.vm_of_uid(uid)

    def resolve_source(self, address: str) -> VmKey | None:
        """The VM whose running VMI reports this interface address (guest report attribution)."""
        key = self._facts.lookups.vm_at(address)
        record = self._records.get(key) if key is not None else None
        if record is None or record.vmi is None or not record.vmi.running or address not in record.vmi.ip_addresses:
            return None
        return key

    def states(self) -> Iterable[VmState]:
        """Every VM's state as last published (what /metrics shows)."""
        return self._publisher.published.values()

    def state(self, key: VmKey) -> VmState | None:
        return self._publisher.published.get(key)

    def snapshot_judgements(self, key: VmKey, now: float) -> list[SnapshotJudgement]:
        """The consistency of each of the VM's snapshots, newest first, judged as the last one is."""
        record = self._records.get(key)
        return self._publisher.snapshot_judgements(record, now) if record is not None else []

    @property
    def settings(self) -> JudgeSettings:
        return self._publisher.settings

    # -- the reflector sink -----------------------------------------------------------------------

    def upsert(self, resource: str, raw: Mapping[str, Any], now: float) -> None:
        key = self._apply(resource, raw, now)
        if key is not None:
            self._publish(key, now, freeze_errors_only=_only_freeze_errors(resource))

    def delete(self, resource: str, raw: Mapping[str, Any], now: float) -> None:
        handler = HANDLERS.get(resource)
        identity = object_id(raw)
        if handler is None or handler.forget is None or identity is None:
            return  # an expired Event or a deleted backup does not undo a failure that happened
        key = self._facts.index.remove(resource, identity)
        if key is not None:
            self._forget(handler, key, identity)
            self._publish(key, now)

    def replace(
        self, resource: str, items: Iterable[Mapping[str, Any]], now: float, *, namespace: str | None = None
    ) -> None:
        """A full list: upsert every item, then prune objects of this resource that are gone."""
        relist = self.begin_relist(resource, namespace=namespace)
        self.relist_chunk(relist, items, now)
        self.end_relist(relist, now)

    def begin_relist(self, resource: str, *, namespace: str | None = None) -> Relist:
        """A full list delivered in chunks (so the caller can yield between them).

        With ``namespace`` it is the list of that namespace only, and prunes nothing elsewhere:
        several watched namespaces are listed separately and must not prune each other."""
        return Relist(resource, namespace=namespace)

    def relist_chunk(self, relist: Relist, items: Iterable[Mapping[str, Any]], now: float) -> None:
        """Upsert part of a full list; its VMs are published at once (upserts never hide a VM)."""
        touched: set[VmKey] = set()
        for raw in items:
            identity = object_id(raw)
            if identity is not None:
                relist.seen.add(identity)
            key = self._apply(relist.resource, raw, now)
            if key is not None:
                touched.add(key)
        only_freeze_errors = _only_freeze_errors(relist.resource)
        for key in touched:
            self._publish(key, now, freeze_errors_only=only_freeze_errors)

    def end_relist(self, relist: Relist, now: float) -> None:
        """Prune what the full list no longer holds. Events and backups are history: never pruned."""
        handler = HANDLERS.get(relist.resource)
        if handler is None or handler.forget is None:
            return
        touched: set[VmKey] = set()
        for identity, key in self._facts.index.remove_missing(relist.resource, relist.seen, namespace=relist.namespace):
            self._forget(handler, key, identity)
            touched.add(key)
        for key in touched:
            self._publish(key, now)

    # -- other sources ---------------------------------------------------------------------------

    def apply_guest_info(self, key: VmKey, vmi_uid: str, raw: Any, now: float) -> None:
        record = self._records.get(key)
        if record is None or record.vmi is None or record.vmi.uid != vmi_uid:
            return
        info, problems = parse_guest_info(raw, vmi_uid=vmi_uid, observed_at=now)
        self._facts.report("guestosinfo", problems)
        record.set_guest(info)
        self._publish(key, now)

    def apply_freeze_observation(self, observation: FreezeObservation, now: float) -> None:
        """A failure seen outside the watched objects (launcher logs)."""
        if self._facts.observe(observation) is not None:
            self._publish(observation.key, now, freeze_errors_only=True)

    def apply_guest_report(self, key: VmKey, report: GuestReport, now: float) -> None:
        record = self._records.get(key)
        if record is None or record.vmi is None:
            return
        record.add_guest_report(report)
        self._publish(key, now)

    def tick(self, now: float) -> None:
        """Re-judge the VMs whose state changes with the clock (deadlines, stuck-frozen, report age)."""
        self.freeze_errors.advance(now)
        self.freeze_errors.prune(lambda key: key in self._records)
        self.storage_failures.prune(lambda key: key in self._records)
        for key in self._publisher.schedule.pop_due(now):
            self._publish(key, now)

    # -- internals -----------------------------------------------------------------------------

    def _apply(self, resource: str, raw: Mapping[str, Any], now: float) -> VmKey | None:
        handler = HANDLERS.get(resource)
        if handler is None:
            return None
        if not handler.is_history and self._facts.index.already_applied(resource, raw):
            return None
        return handler.apply(self._facts, raw, now)

    def _forget(self, handler: ResourceHandler, key: VmKey, identity: ObjectId) -> None:
        record = self._records.get(key)
        if record is not None and handler.forget is not None:
            handler.forget(self._facts, record, identity)

    def hold_publishing(self) -> None:
        """Judge nothing until ``publish_held``: while the first lists of a large fleet come in, every
        VM would otherwise be judged and rendered again at each of its objects, reports and Events."""
        if self._held is None:
            self._held = set()

    def publish_held(self, now: float, limit: int) -> int:
        """Publish up to ``limit`` of the VMs changed while publishing was held; how many are left.
        At none left, publishing is immediate again."""
        held = self._held
        if held is None:
            return 0
        for _ in range(min(limit, len(held))):
            self._publish_now(held.pop(), now, freeze_errors_only=False)
        if held:
            return len(held)
        self._held = None
        return 0

    def _publish(self, key: VmKey, now: float, *, freeze_errors_only: bool = False) -> None:
        if self._held is not None:
            self._held.add(key)
            return
        self._publish_now(key, now, freeze_errors_only=freeze_errors_only)

    def _publish_now(self, key: VmKey, now: float, *, freeze_errors_only: bool) -> None:
        record = self._records.get(key)
        if record is None:
            return
        state = self._publisher.publish(record, now, freeze_errors_only=freeze_errors_only)
        if state is None and not record.snapshots and not record.snapshot_contents:
            del self._records[key]


def _only_freeze_errors(resource: str) -> bool:
    """Whether applying this resource changes nothing of a VM but its freeze failures (Events, backups)."""
    handler = HANDLERS.get(resource)
    return handler is not None and handler.is_history
