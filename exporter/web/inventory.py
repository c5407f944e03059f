"""What the status pages and the JSON API read: the fleet's published states and one VM's evidence.

One VM's detail is a JSON-ready dict; the HTML page renders that same dict, so the page, the
API and ``diagnose --exporter`` show one judgement, the one behind the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.state.diagnosis import Context, diagnose, diagnosis_object
from exporter.state.evidence import iso
from exporter.state.fleet import Fleet
from exporter.state.guest_report import GuestReport
from exporter.state.hresults import HRESULTS
from exporter.state.records import VmKey, VmState
from exporter.state.runbooks import RUNBOOK_BASE_URL
from exporter.state.vm_state import current_report
from exporter.web.fleet_table import FleetRow, fleet_row

MAX_SNAPSHOTS = 20
MAX_EPISODES = 20
MAX_MESSAGE_CHARS = 4096


@dataclass
class Inventory:
    fleet: Fleet
    clock: Callable[[], float] = time.time
    simulated: bool = False
    runbook_base_url: str = RUNBOOK_BASE_URL
    # VM → (the state a row was built from, the row). Published states are replaced, never changed,
    # so a row is rebuilt only for VMs whose state is a new object.
    _rows: dict[VmKey, tuple[VmState, FleetRow]] = field(default_factory=dict, repr=False)

    def states(self) -> Iterable[VmState]:
        return self.fleet.states()

    def rows(self) -> list[FleetRow]:
        """One fleet-table row per exported VM."""
        previous, current = self._rows, {}
        for state in self.fleet.states():
            cached = previous.get(state.key)
            row = cached[1] if cached is not None and cached[0] is state else fleet_row(state)
            current[state.key] = (state, row)
        self._rows = current
        return [row for _, row in current.values()]

    def context(self, key: VmKey, now: float) -> Context:
        """What the exporter knows about one VM beyond its state."""
        record = self.fleet.record(key)
        settings = self.fleet.settings
        report = current_report(record, now, settings.guest_report_max_age) if record is not None else None
        vmi = record.vmi if record is not None else None
        return Context(
            guest_report=report,
            agent_unsupported_reason=vmi.agent_unsupported_reason if vmi is not None else None,
            stuck_frozen_after=settings.stuck_frozen_after,
            guest_report_max_age=settings.guest_report_max_age,
            thresholds=settings.guest_thresholds,
            runbook_base_url=self.runbook_base_url,
        )

    def detail(self, key: VmKey) -> dict[str, Any] | None:
        """Everything known about one VM, with its diagnosis; None when the VM is not exported."""
        state = self.fleet.state(key)
        if state is None:
            return None
        now = self.clock()
        context = self.context(key, now)
        diagnosis = diagnose(state, now=now, context=context)
        detail = diagnosis_object(state, diagnosis)
        detail.update(
            check_runbooks={check.name: check.runbook for check in diagnosis.checks},
            simulated=self.simulated,
            generated=iso(now),
            signals=self._signals(state, context),
            last_consistent_snapshot=iso(state.last_consistent_snapshot_timestamp),
            last_freeze_error=self._freeze_error(key, state),
            freeze_error_counts=[{"reason": r, "cause": c, "episodes": n} for r, c, n in state.freeze_error_counts],
            storage_failures={
                "counts": [{"reason": r, "snapshots": n} for r, n in state.storage_failure_counts],
                "last": iso(state.last_storage_failure_timestamp),
            },
            freeze_episodes=[
                {"reason": e.reason, "start": iso(e.start), "last": iso(e.last), "snapshots": e.snapshots}
                for e in self.fleet.freeze_errors.episodes(key)[:MAX_EPISODES]
            ],
            snapshots=[
                {
                    "name": j.snapshot,
                    "phase": j.phase,
                    "level": j.level,
                    "consistency": j.consistency,
                    "reason": j.reason,
                    "indications": [i for i in j.indications.split(",") if i],
                    "time": iso(j.timestamp),
                }
                for j in self.fleet.snapshot_judgements(key, now)[:MAX_SNAPSHOTS]
            ],
            guest_report=_report_object(context.guest_report, now),
        )
        return detail

    def _signals(self, state: VmState, context: Context) -> dict[str, Any]:
        record = self.fleet.record(state.key)
        description = record.vm.description if record is not None and record.vm is not None else ""
        conditions = []
        if state.agent_connected is not None:
            conditions.append({"type": "AgentConnected", "present": state.agent_connected, "reason": ""})
        if state.agent_supported is not None:
            conditions.append(
                {
                    "type": "AgentVersionNotSupported",
                    "present": not state.agent_supported,
                    "reason": context.agent_unsupported_reason or "",
                }
            )
        return {
            "phase": state.phase,
            "node": state.node,
            "guest_os": state.guest_os,
            "guest_os_version": state.guest_os_version,
            "agent_version": state.agent_version,
            "agent_connected": state.agent_connected,
            "agent_supported": state.agent_supported,
            "fsfreeze_available": state.fsfreeze_available,
            "fs_frozen": state.fs_frozen,
            "frozen_since": iso(state.frozen_since),
            "conditions": conditions,
            "volumes": [
                {"volume": v.disk_name, "mount_point": v.mount_point, "filesystem": v.filesystem}
                for v in state.filesystems
            ],
            "snapshots": state.snapshot_count,
            "description": description,
        }

    def _freeze_error(self, key: VmKey, state: VmState) -> dict[str, Any] | None:
        detail = state.last_freeze_error
        if detail is None:
            return None
        newest = self.fleet.freeze_errors.newest(key)
        classification = newest[1] if newest is not None else None
        meaning = classification.hresult_meaning if classification is not None else None
        if meaning is None and detail.hresult:
            entry = HRESULTS.get(int(detail.hresult, 16)) if _is_hex(detail.hresult) else None
            meaning = entry.meaning if entry is not None else None
        return {
            "reason": detail.reason,
            "cause": detail.cause,
            "hresult": detail.hresult or None,
            "hresult_name": detail.hresult_name or None,
            "hresult_meaning": meaning,
            "volume": detail.volume or None,
            "mount_point": detail.mount_point or None,
            "source": detail.source,
            "time": iso(detail.timestamp),
            "summary": classification.summary if classification is not None else None,
            "remediation": classification.remediation if classification is not None else None,
            "message": newest[0].text[:MAX_MESSAGE_CHARS] if newest is not None else None,
        }


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _report_object(report: GuestReport | None, now: float) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "received": iso(report.received_at),
        "age_seconds": round(now - report.received_at, 1),
        "generated": iso(report.generated_at),
        "hostname": report.hostname,
        "qga_version": report.qga_version,
        "writers": [
            {
                "name": w.name,
                "state": w.state,
                "state_text": w.state_text,
                "last_error": w.last_error,
                "failed": w.failed,
            }
            for w in report.writers
        ],
        "services": [
            {"name": name, "present": s.present, "status": s.status, "start_type": s.start_type}
            for name, s in report.services.items()
        ],
        "providers": [
            {"name": p.name, "type": p.provider_type, "id": p.provider_id, "version": p.version}
            for p in report.providers
        ],
        "volumes": [
            {
                "path": v.path,
                "drive_letter": v.drive_letter,
                "free_bytes": v.free_bytes,
                "total_bytes": v.total_bytes,
                "system": v.is_system,
            }
            for v in report.volumes
        ],
        "shadow_storage": [
            {"for_volume": a.for_volume, "storage_volume": a.storage_volume, "full": a.full}
            for a in report.shadow_storage
        ],
    }
