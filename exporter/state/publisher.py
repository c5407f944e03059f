"""Judging and publishing: a VM's record → its VmState → the sink, only when something visible changed."""

from __future__ import annotations

from collections.abc import Callable

from exporter.state.due_schedule import DueSchedule
from exporter.state.freeze_errors import FreezeErrorLedger
from exporter.state.records import SnapshotJudgement, VmKey, VmState
from exporter.state.storage_failures import StorageFailureLedger
from exporter.state.vm_record import VmRecord
from exporter.state.vm_state import (
    JudgeSettings,
    awaiting_first_report,
    build_vm_state,
    next_change_at,
    snapshot_judge,
)

StateSink = Callable[[VmKey, VmState | None], None]


class Publisher:
    """Judges records with the ledgers' summaries of each VM and hands changed states to the sink."""

    def __init__(
        self,
        *,
        on_state: StateSink,
        settings: JudgeSettings,
        freeze_errors: FreezeErrorLedger,
        storage_failures: StorageFailureLedger,
    ) -> None:
        self._on_state = on_state
        self.settings = settings
        self._freeze_errors = freeze_errors
        self._storage_failures = storage_failures
        # The state last handed to the sink per VM: what /metrics shows.
        self.published: dict[VmKey, VmState] = {}
        self.schedule = DueSchedule()

    def judge(self, record: VmRecord, now: float) -> VmState | None:
        return build_vm_state(
            record,
            now=now,
            settings=self.settings,
            freeze_errors=self._freeze_errors.vm_summary(record.key),
            storage_failures=self._storage_failures.summary(record.key),
        )

    def snapshot_judgements(self, record: VmRecord, now: float) -> list[SnapshotJudgement]:
        """Every finished snapshot of the VM, newest first, judged as its last one is."""
        max_age, summary = self.settings.guest_report_max_age, self._freeze_errors.vm_summary(record.key)
        awaiting = awaiting_first_report(record, now=now, settings=self.settings)
        judge_snapshot = snapshot_judge(
            record, report_max_age=max_age, freeze_errors=summary, awaiting_reports=awaiting
        )
        newest_first = sorted(record.snapshots.values(), key=lambda s: (s.requested_at, s.name), reverse=True)
        judged = (judge_snapshot.settled(s) for s in newest_first if s.finished(now))
        return [judgement for judgement in judged if judgement is not None]

    def publish(self, record: VmRecord, now: float) -> VmState | None:
        """Judge, schedule the next clock-driven change, and publish if the state differs; the state."""
        key = record.key
        state = self.judge(record, now)
        when = next_change_at(record, now=now, settings=self.settings) if state is not None else None
        if when is not None:
            self.schedule.schedule(key, when)
        if state == self.published.get(key):
            return state  # nothing visible changed (a lastProbeTime update, a replayed event): keep the bytes
        if state is None:
            self.published.pop(key, None)
        else:
            self.published[key] = state
        self._on_state(key, state)
        return state
