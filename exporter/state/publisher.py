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
    SnapshotPart,
    awaiting_first_report,
    build_vm_state,
    next_change_at,
    snapshot_judge,
    snapshot_part,
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
        # The snapshot judgement of VMs whose last publishes changed only their freeze failures, with
        # the thaw failures it was made with: a repeated failure (an Event's count going up every 5 s)
        # need not judge every snapshot again. Any other publish of the VM forgets it.
        self._snapshot_parts: dict[VmKey, tuple[tuple[tuple[float, str | None, str], ...], SnapshotPart]] = {}

    def judge(self, record: VmRecord, now: float, *, freeze_errors_only: bool = False) -> VmState | None:
        """The VM's state; ``freeze_errors_only``: nothing but its freeze failures changed since it was last judged."""
        key = record.key
        summary = self._freeze_errors.vm_summary(key)
        snapshots = None
        if freeze_errors_only and record.exists:
            cached = self._snapshot_parts.get(key)
            if cached is not None and cached[0] == summary.thaw_failures:
                snapshots = cached[1]
            else:
                snapshots = snapshot_part(record, now=now, settings=self.settings, freeze_errors=summary)
                self._snapshot_parts[key] = (summary.thaw_failures, snapshots)
        else:
            self._snapshot_parts.pop(key, None)
        return build_vm_state(
            record,
            now=now,
            settings=self.settings,
            freeze_errors=summary,
            storage_failures=self._storage_failures.summary(key),
            snapshots=snapshots,
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

    def publish(self, record: VmRecord, now: float, *, freeze_errors_only: bool = False) -> VmState | None:
        """Judge, schedule the next clock-driven change, and publish if the state differs; the state."""
        key = record.key
        state = self.judge(record, now, freeze_errors_only=freeze_errors_only)
        when = next_change_at(record, now=now, settings=self.settings) if state is not None else None
        if when is not None:
            self.schedule.schedule(key, when)
        if state == self.published.get(key):
            return state  # nothing visible changed (a lastProbeTime update, a replayed event): keep the bytes
        if state is None:
            self.published.pop(key, None)
            self._snapshot_parts.pop(key, None)
        else:
            self.published[key] = state
        self._on_state(key, state)
        return state
