"""Problems and next steps: the quick-fix decisions of the troubleshooting guide, each with its runbook.

Root causes come first (agent, then freeze command, then the guest's VSS set-up), their symptoms
(failing freezes, inconsistent snapshots) after, so the first next step is the one to take first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from exporter.state import runbooks
from exporter.state.consistency import FILESYSTEM
from exporter.state.error_advice import remediation
from exporter.state.evidence import iso
from exporter.state.records import FreezeErrorDetail, VmState

ADD_VOLUME = "add_volume_to_snapshot_set"
AGENT_REASONS = frozenset({"agent_not_connected", "agent_timeout", "agent_frozen_state", "command_disabled"})


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem or a next step: one sentence and the runbook that explains it."""

    text: str
    runbook: str

    def to_dict(self) -> dict[str, str]:
        return {"text": self.text, "runbook": self.runbook}


@dataclass(frozen=True, slots=True)
class _Fix:
    problem: str
    step: str
    alert: str


INSTALL_AGENT = (
    "Install the QEMU guest agent and make sure its service runs: on Windows from the virtio-win guest tools "
    "(they include VSS support), on Linux the distribution's qemu-guest-agent package."
)
RESTART_VSS = (
    "Restart the VSS services (VSS, SWPRV) and the QEMU Guest Agent service in the guest, then take a snapshot again."
)
REINSTALL_WITH_VSS = (
    "Reinstall the guest agent from the virtio-win package: it registers the QEMU Guest Agent VSS Provider "
    "that freezes need."
)

CHECK_FIXES: dict[str, _Fix] = {
    "agent_connected": _Fix("The guest agent is not connected.", INSTALL_AGENT, runbooks.AGENT_DISCONNECTED),
    "agent_supported": _Fix(
        "KubeVirt does not support this guest agent version.",
        "Upgrade the guest agent: virtio-win guest tools on Windows, qemu-guest-agent on Linux.",
        runbooks.AGENT_UNSUPPORTED,
    ),
    "fsfreeze_available": _Fix(
        "The guest agent is connected but its freeze command is disabled.",
        "Reinstall the guest agent with VSS support (virtio-win) and take guest-fsfreeze-* off its block list.",
        runbooks.FREEZE_UNAVAILABLE,
    ),
    "not_stuck_frozen": _Fix(
        "Guest filesystems are stuck frozen.",
        "Thaw the guest (`virtctl unfreeze`) and find the snapshot or backup that left it frozen; on Windows "
        "the status can be stale after VSS thawed by itself, and the agent refuses commands until the thaw.",
        runbooks.STUCK_FROZEN,
    ),
    "vss_service": _Fix(
        "The Volume Shadow Copy (VSS) service is missing or disabled.",
        "Set the VSS service's start type back to Manual, then restart the QEMU Guest Agent service.",
        runbooks.SERVICE_DISABLED,
    ),
    "swprv_service": _Fix(
        "The Microsoft Software Shadow Copy Provider (SWPRV) service is missing or disabled.",
        "Set the SWPRV service's start type back to Manual, then restart the QEMU Guest Agent service.",
        runbooks.SERVICE_DISABLED,
    ),
    "qga_vss_provider": _Fix(
        "The QEMU Guest Agent VSS Provider is not registered: the agent was installed without VSS support.",
        REINSTALL_WITH_VSS,
        runbooks.PROVIDER_MISSING,
    ),
    "writers_stable": _Fix(
        "VSS writers are in a failed state: snapshots are at best filesystem-consistent.",
        "Re-register the VSS components and restart the failed writers' services (or the guest); "
        "`vssadmin list writers` must show them Stable.",
        runbooks.WRITERS_FAILED,
    ),
    "system_volume_free_space": _Fix(
        "The system volume is low on free space; VSS needs room to work.",
        "Free space on the system volume (at least 300 MB, and keep 15 % free).",
        runbooks.LOW_FREE_SPACE,
    ),
    "shadow_storage": _Fix(
        "A shadow storage area is full.",
        "Enlarge it or delete old shadow copies (`vssadmin resize shadowstorage`).",
        runbooks.LOW_FREE_SPACE,
    ),
}

# What to do about an inconsistent snapshot, by its reason; anything else (storage failures, reasons
# added later) gets the generic step of the runbook.
SNAPSHOT_STEPS: dict[str, tuple[str, str]] = {
    "no_guest_agent": (INSTALL_AGENT, runbooks.AGENT_DISCONNECTED),
    "paused": ("Unpause the VM before it is snapshotted: a paused guest cannot be quiesced.", ""),
    "quiesce_timeout": (
        "The guest could not hold writes within VSS's 10-second limit: snapshot when I/O is lower, and check "
        "that the storage snapshot is fast.",
        "",
    ),
    "hold_writes_timeout": (
        "The guest could not hold writes within VSS's 10-second limit: snapshot when I/O is lower, and check "
        "that the storage snapshot is fast.",
        "",
    ),
    "vss_service_disabled": (CHECK_FIXES["vss_service"].step, runbooks.SERVICE_DISABLED),
    "qga_provider_missing": (REINSTALL_WITH_VSS, runbooks.PROVIDER_MISSING),
    "fsfreeze_unavailable": (CHECK_FIXES["fsfreeze_available"].step, runbooks.FREEZE_UNAVAILABLE),
    "thaw_failed": (
        "VSS gave up the snapshot set while the writes were held (see the thaw error): check the QEMU Guest "
        "Agent VSS Provider service and the guest's Application event log, then snapshot again.",
        runbooks.FREEZE_FAILED,
    ),
    "quiesce_failed_no_guest_agent": (
        "The guest agent went away while the freeze was being retried: keep it running (and connected) during "
        "snapshots.",
        runbooks.AGENT_DISCONNECTED,
    ),
    "quiesce_failed": (
        "Freezes failed until KubeVirt gave up quiescing: fix the freeze failure, then snapshot again.",
        runbooks.FREEZE_FAILED,
    ),
    "volume_snapshot_error": (
        "The storage failed the VolumeSnapshot (see the snapshot's status.error): check the CSI driver, its "
        "VolumeSnapshotClass and the storage quota. The guest is not at fault.",
        "",
    ),
    "volume_snapshots_missing": (
        "VolumeSnapshots of this snapshot were deleted: it cannot be restored. Delete it and take a new one, and "
        "find what removed the VolumeSnapshots.",
        "",
    ),
    "source_deleted": ("The snapshot was deleted before its volumes were snapshotted; take a new one.", ""),
    "freeze_skipped_stale_frozen": (
        "Thaw the guest (`virtctl unfreeze`) before the next snapshot: KubeVirt skipped the freeze because "
        "the VMI still said frozen.",
        runbooks.STUCK_FROZEN,
    ),
}


def findings(
    state: VmState, failing: Collection[str], unsupported_reason: str | None, *, base_url: str
) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """(problems, next steps) for the failing checks of one VM, in the order to act on them."""
    problems: list[Finding] = []
    steps: list[Finding] = []

    def add(problem: str, step: str, alert: str) -> None:
        url = runbooks.runbook_url(alert, base_url)
        problems.append(Finding(problem, url))
        if step and all(existing.text != step for existing in steps):
            steps.append(Finding(step, url))

    for name, fix in CHECK_FIXES.items():
        if name in failing:
            add(_check_problem(name, fix, state, unsupported_reason), fix.step, fix.alert)
    for name in sorted(n for n in failing if n not in CHECK_FIXES and n not in _VERDICTS):
        add(f"Check {name} fails.", "", runbooks.FREEZE_FAILED)
    if "freeze_not_failing" in failing and state.last_freeze_error is not None:
        add(*_freeze_finding(state.last_freeze_error))
    last = state.last_snapshot
    if "last_snapshot_consistent" in failing and last is not None and last.level < FILESYSTEM:
        why = f" ({last.reason})" if last.reason else ""
        step, alert = SNAPSHOT_STEPS.get(
            last.reason.removesuffix("_partial").removesuffix("_quiesced_after_retry"), ("", "")
        )
        add(
            f"The last snapshot {last.snapshot} is {last.consistency}{why}, taken {iso(last.timestamp)}.",
            step or "Fix the problems above, then take a new snapshot and check that it is consistent.",
            alert or runbooks.SNAPSHOT_NOT_CONSISTENT,
        )
    return tuple(problems), tuple(steps)


_VERDICTS = frozenset({"freeze_not_failing", "last_snapshot_consistent"})


def _check_problem(name: str, fix: _Fix, state: VmState, unsupported_reason: str | None) -> str:
    if name == "agent_supported" and unsupported_reason:
        return f"{fix.problem[:-1]}: {unsupported_reason}."
    if name == "not_stuck_frozen" and state.frozen_since is not None:
        return f"Guest filesystems have been frozen since {iso(state.frozen_since)}."
    if name == "writers_stable" and state.failed_writers:
        names = ", ".join(w.name for w in state.failed_writers[:5])
        return f"{state.writers_failed} VSS writer(s) failed ({names}): snapshots are at best filesystem-consistent."
    return fix.problem


def _freeze_finding(error: FreezeErrorDetail) -> tuple[str, str, str]:
    where = ""
    if error.volume:
        where = f", on volume {error.volume}" + (f" ({error.mount_point})" if error.mount_point else "")
    hresult = f", HRESULT {error.hresult} {error.hresult_name}".rstrip() if error.hresult else ""
    problem = (
        f"Freezes fail: {error.reason}, cause {error.cause}{hresult}{where}, newest at {iso(error.timestamp)} "
        "and no consistent snapshot since."
    )
    step = remediation(error.reason, error.cause, error.volume or None)
    if error.cause == "unknown" and error.reason not in AGENT_REASONS and error.reason != ADD_VOLUME:
        step = f"{step} {RESTART_VSS}"
    alert = runbooks.ADD_VOLUME_FAILED if error.reason == ADD_VOLUME else runbooks.FREEZE_FAILED
    return problem, step, alert
