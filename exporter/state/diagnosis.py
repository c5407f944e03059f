"""One diagnosis of one VM for every surface: the checklist, the problems and what to do next.

``judge_checks`` decides the ``check_ok`` series when a VM is judged; ``diagnose`` reads a judged
``VmState`` (plus the full guest report where there is one) and adds the evidence behind every
check, the problems and the seed guide's quick-fix decisions, each with its runbook. The status
pages, the JSON API and the ``diagnose`` command all go through ``diagnose``, so they agree with
the metrics by construction. Pure: ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.state import runbooks
from exporter.state.advice import Finding, findings
from exporter.state.consistency import FILESYSTEM
from exporter.state.evidence import api_evidence, guest_evidence, guest_unknown, iso
from exporter.state.guest_report import GuestCheckThresholds, GuestReport
from exporter.state.records import VmState
from exporter.state.shared import SharedValues

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"

CHECK_ORDER = (
    "agent_connected",
    "agent_supported",
    "fsfreeze_available",
    "not_stuck_frozen",
    "vss_service",
    "swprv_service",
    "qga_vss_provider",
    "writers_stable",
    "system_volume_free_space",
    "shadow_storage",
)
API_CHECKS = frozenset(CHECK_ORDER[:4])
# Verdicts on the VM's snapshots and freezes; they have no check_ok series of their own (the
# consistency and freeze-error families carry them) but count in the diagnosis.
SNAPSHOT_CONSISTENT = "last_snapshot_consistent"
# Most VMs of a fleet pass (or fail) the same checks: their VmStates hold one tuple of results.
_SHARED_CHECKS: SharedValues = SharedValues()
FREEZE_NOT_FAILING = "freeze_not_failing"

CHECK_RUNBOOKS: Mapping[str, str] = {
    "agent_connected": runbooks.AGENT_DISCONNECTED,
    "agent_supported": runbooks.AGENT_UNSUPPORTED,
    "fsfreeze_available": runbooks.FREEZE_UNAVAILABLE,
    "not_stuck_frozen": runbooks.STUCK_FROZEN,
    "vss_service": runbooks.SERVICE_DISABLED,
    "swprv_service": runbooks.SERVICE_DISABLED,
    "qga_vss_provider": runbooks.PROVIDER_MISSING,
    "writers_stable": runbooks.WRITERS_FAILED,
    "system_volume_free_space": runbooks.LOW_FREE_SPACE,
    "shadow_storage": runbooks.LOW_FREE_SPACE,
    SNAPSHOT_CONSISTENT: runbooks.SNAPSHOT_NOT_CONSISTENT,
    FREEZE_NOT_FAILING: runbooks.FREEZE_FAILED,
}


# -- judging the checklist (the check_ok series) ------------------------------------------------


def judge_checks(
    *,
    running: bool,
    agent_connected: bool | None,
    agent_supported: bool | None,
    fsfreeze_available: bool | None,
    frozen_since: float | None,
    now: float,
    stuck_after: float,
    report: GuestReport | None,
    thresholds: GuestCheckThresholds,
) -> tuple[tuple[str, bool], ...]:
    """The checklist of a running VM in a stable order; a check without evidence is absent."""
    if not running:
        return ()
    checks: dict[str, bool] = {}
    if agent_connected is not None:
        checks["agent_connected"] = agent_connected
    if agent_supported is not None:
        checks["agent_supported"] = agent_supported
    if fsfreeze_available is not None:
        checks["fsfreeze_available"] = fsfreeze_available
    checks["not_stuck_frozen"] = frozen_since is None or now - frozen_since < stuck_after
    if report is not None:
        checks.update(judge_guest_checks(report, thresholds))
    return ordered(checks)


def judge_guest_checks(report: GuestReport, thresholds: GuestCheckThresholds) -> dict[str, bool]:
    """The in-guest checks of the checklist; a check without evidence in the report is absent."""
    checks: dict[str, bool] = {}
    for check, service_name in (("vss_service", "VSS"), ("swprv_service", "SWPRV")):
        service = report.services.get(service_name)
        if service is not None:
            # VSS and SWPRV are Manual-start and Stopped at rest; VSS starts them on demand, so only a
            # missing or Disabled service is a fault. Judging by "Running" would flag every healthy guest.
            checks[check] = service.present and not service.disabled
    if report.providers:
        # An empty provider list means vssadmin could not list them: no evidence, not "missing".
        checks["qga_vss_provider"] = report.qga_provider_present
    if report.writers:
        checks["writers_stable"] = report.writers_failed == 0
    system_volumes = [v for v in report.volumes if v.is_system and v.total_bytes and v.free_bytes is not None]
    if system_volumes:
        checks["system_volume_free_space"] = all(
            enough_free(v.free_bytes or 0, v.total_bytes or 0, thresholds) for v in system_volumes
        )
    judged = [association.full for association in report.shadow_storage if association.full is not None]
    if judged:
        # Without associations the check is absent: qemu-ga's own freezes never commit a shadow copy,
        # so shadow storage only matters where an association exists.
        checks["shadow_storage"] = not any(judged)
    return checks


def enough_free(free: int, total: int, thresholds: GuestCheckThresholds) -> bool:
    return free >= thresholds.min_free_bytes and free >= thresholds.min_free_ratio * total


def ordered(checks: Mapping[str, bool]) -> tuple[tuple[str, bool], ...]:
    """Checks in a stable order: known names first, in the checklist's order, then others."""
    known = [(name, checks[name]) for name in CHECK_ORDER if name in checks]
    extra = sorted((name, value) for name, value in checks.items() if name not in CHECK_ORDER)
    return _SHARED_CHECKS((*known, *extra))


# -- the diagnosis -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What the diagnosis knows beyond the VmState, and what the caller cannot know.

    The exporter tracks when filesystems were first seen frozen and receives guest reports; a
    one-shot read of the cluster does neither, so those checks are unknown there, never "ok".
    """

    guest_report: GuestReport | None = None
    agent_unsupported_reason: str | None = None
    stuck_frozen_after: float = 300.0
    guest_report_max_age: float = 1800.0
    thresholds: GuestCheckThresholds = field(default_factory=GuestCheckThresholds)
    tracks_frozen_since: bool = True
    receives_guest_reports: bool = True
    runbook_base_url: str = runbooks.RUNBOOK_BASE_URL


EXPORTER = Context()


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist: ``ok``, ``fail`` or ``unknown``, and what it was judged from."""

    name: str
    status: str
    evidence: str
    runbook: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    vm: str
    checks: tuple[Check, ...]
    problems: tuple[Finding, ...]
    next_steps: tuple[Finding, ...]

    @property
    def healthy(self) -> bool:
        return not any(check.status == FAIL for check in self.checks)

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks if check.status == FAIL)


def check_statuses(state: VmState, context: Context = EXPORTER) -> tuple[tuple[str, str], ...]:
    """Every check's status; ``healthy`` is false exactly when one of them fails."""
    judged = dict(state.checks)
    statuses: list[tuple[str, str]] = []
    for name in (*CHECK_ORDER, *(n for n in judged if n not in CHECK_ORDER)):
        ok = judged.get(name)
        if name == "not_stuck_frozen" and state.fs_frozen and not context.tracks_frozen_since:
            statuses.append((name, UNKNOWN))  # first seen frozen "now" says nothing about how long
        else:
            statuses.append((name, UNKNOWN if ok is None else OK if ok else FAIL))
    last = state.last_snapshot
    statuses.append((SNAPSHOT_CONSISTENT, UNKNOWN if last is None else OK if last.level >= FILESYSTEM else FAIL))
    statuses.append((FREEZE_NOT_FAILING, FAIL if freeze_failing(state) else OK))
    return tuple(statuses)


def failing_checks(state: VmState) -> tuple[str, ...]:
    """The ``fail`` entries of ``check_statuses`` with the exporter's context, cheaply (the fleet table)."""
    failing = [name for name, ok in state.checks if not ok]
    last = state.last_snapshot
    if last is not None and last.level < FILESYSTEM:
        failing.append(SNAPSHOT_CONSISTENT)
    if freeze_failing(state):
        failing.append(FREEZE_NOT_FAILING)
    return tuple(failing)


def freeze_failing(state: VmState) -> bool:
    """The newest freeze failure is newer than the newest consistent snapshot (the alerting rule)."""
    error = state.last_freeze_error
    if error is None:
        return False
    consistent = state.last_consistent_snapshot_timestamp
    return consistent is None or error.timestamp > consistent


def diagnose(state: VmState, *, now: float, context: Context = EXPORTER) -> Diagnosis:
    """The checklist with evidence, the problems and the next steps of one judged VM."""
    checks = tuple(
        Check(
            name,
            status,
            _evidence(name, status, state, now=now, context=context),
            runbooks.runbook_url(_runbook_of(name, state), context.runbook_base_url),
        )
        for name, status in check_statuses(state, context)
    )
    failing = {check.name for check in checks if check.status == FAIL}
    problems, next_steps = findings(state, failing, context.agent_unsupported_reason, base_url=context.runbook_base_url)
    return Diagnosis(f"{state.key.namespace}/{state.key.name}", checks, problems, next_steps)


def _runbook_of(check: str, state: VmState) -> str:
    error = state.last_freeze_error
    if check == FREEZE_NOT_FAILING and error is not None and error.reason == "add_volume_to_snapshot_set":
        return runbooks.ADD_VOLUME_FAILED  # the alert that pages for this failure has its own runbook
    return CHECK_RUNBOOKS.get(check, runbooks.FREEZE_FAILED)


def _evidence(name: str, status: str, state: VmState, *, now: float, context: Context) -> str:
    if name == SNAPSHOT_CONSISTENT:
        return _snapshot_evidence(state, context)
    if name == FREEZE_NOT_FAILING:
        return _freeze_evidence(state)
    if name in API_CHECKS:
        return api_evidence(
            name,
            status,
            state,
            now=now,
            stuck_after=context.stuck_frozen_after,
            unsupported_reason=context.agent_unsupported_reason,
        )
    if status == UNKNOWN:
        return guest_unknown(state, context.receives_guest_reports, context.guest_report_max_age)
    return guest_evidence(name, state, context.guest_report, context.thresholds)


def _snapshot_evidence(state: VmState, context: Context) -> str:
    last = state.last_snapshot
    if last is None:
        count = state.snapshot_count
        return f"no finished snapshot among {count} snapshot(s)" if count else "no snapshots"
    why = f" ({last.reason})" if last.reason else ""
    text = (
        f"{last.snapshot}: {last.phase} at {iso(last.timestamp)}, level {last.level} {last.consistency}{why}; "
        f"indications [{last.indications}]"
    )
    if last.explanation:
        text += "; " + "; ".join(last.explanation)
    guesswork = last.consistency == "application" and state.guest_os == "mswindows"
    if guesswork and not context.receives_guest_reports:
        text += "; whether VSS writers were stable then is unknown without the exporter's guest reports"
    return text


def _freeze_evidence(state: VmState) -> str:
    error = state.last_freeze_error
    consistent = state.last_consistent_snapshot_timestamp
    since = "any consistent snapshot"
    if consistent is not None:
        since = f"the newest consistent snapshot ({iso(consistent)})"
    if error is None:
        return "no freeze failure recorded"
    relation = "newer than" if freeze_failing(state) else "older than"
    return f"newest freeze failure {error.reason} at {iso(error.timestamp)} is {relation} {since}"


# -- JSON ------------------------------------------------------------------------------------------


def snapshot_object(state: VmState) -> dict[str, Any] | None:
    last = state.last_snapshot
    if last is None:
        return None
    return {
        "name": last.snapshot,
        "phase": last.phase,
        "level": last.level,
        "consistency": last.consistency,
        "reason": last.reason,
        "indications": [i for i in last.indications.split(",") if i],
        "time": iso(last.timestamp),
        "explanation": list(last.explanation),
        "failed_volumes": [{"volume": volume, "reason": reason} for volume, reason in last.failed_volumes],
    }


def diagnosis_object(state: VmState, diagnosis: Diagnosis) -> dict[str, Any]:
    """The one JSON object of a diagnosis, as ``diagnose --json`` prints it."""
    return {
        "vm": diagnosis.vm,
        "healthy": diagnosis.healthy,
        "last_snapshot": snapshot_object(state),
        "checks": [{"name": c.name, "status": c.status, "evidence": c.evidence} for c in diagnosis.checks],
        "problems": [p.to_dict() for p in diagnosis.problems],
        "next_steps": [s.to_dict() for s in diagnosis.next_steps],
    }
