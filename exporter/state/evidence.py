"""What each check of the checklist was judged from, in words an SRE can verify by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.state.guest_report import GuestCheckThresholds, GuestReport, ServiceState
from exporter.state.records import VmState

MAX_LISTED = 5
WINDOWS = "mswindows"


def iso(value: float | None) -> str | None:
    """UTC time in RFC 3339 at second precision; None stays None."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _not_running(state: VmState) -> str:
    return f"the VM is not running (phase {state.phase or 'unknown'})"


def api_evidence(
    name: str, status: str, state: VmState, *, now: float, stuck_after: float, unsupported_reason: str | None
) -> str:
    """Evidence of the checks the Kubernetes API answers: agent, freeze command, frozen filesystems."""
    if state.agent_connected is None:
        return _not_running(state)
    if name == "agent_connected":
        if state.agent_connected:
            return "the Running VMI has the AgentConnected condition"
        return "the Running VMI has no AgentConnected condition (KubeVirt removes it when the agent goes away)"
    if name == "agent_supported":
        if status == "unknown":
            return "the agent is not connected, so its version is not judged"
        if state.agent_supported:
            return "no AgentVersionNotSupported condition" + (
                f"; agent {state.agent_version}" if state.agent_version else ""
            )
        return "the VMI has the AgentVersionNotSupported condition" + (
            f": {unsupported_reason}" if unsupported_reason else ""
        )
    if name == "fsfreeze_available":
        return _freeze_command_evidence(status, state)
    return _frozen_evidence(status, state, now=now, stuck_after=stuck_after)


def _freeze_command_evidence(status: str, state: VmState) -> str:
    if status == "ok":
        return "guestosinfo lists guest-fsfreeze-freeze as enabled"
    if status == "fail":
        return "guestosinfo lists guest-fsfreeze-freeze as disabled"
    if not state.agent_connected:
        return "the agent is not connected, so guestosinfo cannot be read"
    if state.fs_frozen:
        return "not judged while frozen: qemu-ga disables most commands until the thaw"
    return "no guestosinfo answer for this VMI yet"


def _frozen_evidence(status: str, state: VmState, *, now: float, stuck_after: float) -> str:
    if not state.fs_frozen:
        return "the VMI reports no frozen filesystems (fsFreezeStatus is not 'frozen')"
    if status == "unknown":
        return "the VMI reports fsFreezeStatus 'frozen' now; since when is unknown (only the exporter tracks it)"
    since = state.frozen_since
    if since is None:
        return "the VMI reports fsFreezeStatus 'frozen'"
    held = f"frozen since {iso(since)} ({duration(now - since)})"
    if status == "fail":
        return f"{held}, longer than the {duration(stuck_after)} a snapshot's freeze may take"
    return f"{held}, within the {duration(stuck_after)} a snapshot's freeze may take"


def guest_unknown(state: VmState, receives_reports: bool, max_age: float) -> str:
    """Why an in-guest check has no evidence."""
    if state.phase != "Running":
        return _not_running(state)
    if state.guest_os and state.guest_os != WINDOWS:
        return "not a Windows guest: VSS does not apply"
    if not receives_reports:
        return "unknown here: guest reports reach only the exporter (run diagnose with --exporter)"
    if state.guest_report_timestamp is None:
        return (
            f"no guest report in the last {duration(max_age)}: the guest script "
            "(deploy/windows) reports VSS writers, services, providers and free space"
        )
    return "the guest report has no evidence for this check"


def guest_evidence(name: str, state: VmState, report: GuestReport | None, thresholds: GuestCheckThresholds) -> str:
    """Evidence of an in-guest check, from the full report when there is one, else from the state."""
    received = f" (guest report of {iso(state.guest_report_timestamp)})" if state.guest_report_timestamp else ""
    if name == "writers_stable":
        return _writers_evidence(state) + received
    if name == "system_volume_free_space":
        return _space_evidence(state, report, thresholds) + received
    if report is None:
        return "judged from the guest report" + received
    if name in ("vss_service", "swprv_service"):
        service_name = "VSS" if name == "vss_service" else "SWPRV"
        return _service_text(service_name, report.services.get(service_name)) + received
    if name == "qga_vss_provider":
        names = ", ".join(p.name for p in report.providers[:MAX_LISTED])
        found = "registered" if report.qga_provider_present else "not registered"
        return f"QEMU Guest Agent VSS Provider {found}; providers: {names}" + received
    if name == "shadow_storage":
        full = [a.for_volume or "?" for a in report.shadow_storage if a.full]
        if full:
            return "shadow storage full for " + ", ".join(full[:MAX_LISTED]) + received
        return f"{len(report.shadow_storage)} shadow storage association(s), none full" + received
    return "judged from the guest report" + received


def _service_text(name: str, service: ServiceState | None) -> str:
    if service is None:
        return f"{name}: not in the report"
    if not service.present:
        return f"{name}: not installed"
    return f"{name}: start type {service.start_type or 'unknown'}, status {service.status or 'unknown'}"


def _writers_evidence(state: VmState) -> str:
    if not state.writers_failed:
        return f"{state.writers_total or 0} VSS writer(s), none failed"
    failed = ", ".join(f"{w.name} (state {w.state})" for w in state.failed_writers[:MAX_LISTED])
    return f"{state.writers_failed} of {state.writers_total} VSS writer(s) failed: {failed}"


def _space_evidence(state: VmState, report: GuestReport | None, thresholds: GuestCheckThresholds) -> str:
    if report is not None:
        volumes = [
            (v.drive_letter or v.path, v.free_bytes or 0, v.total_bytes or 0)
            for v in report.volumes
            if v.is_system and v.total_bytes and v.free_bytes is not None
        ]
    else:  # without the full report the system volume cannot be told apart: show them all
        volumes = [(v.mount_point or v.volume, v.free_bytes, v.total_bytes) for v in state.volume_free_space]
    if not volumes:
        return "free space judged from the guest report"
    parts = []
    for where, free, total in volumes[:MAX_LISTED]:
        ratio = free / total if total else 0.0
        parts.append(f"{where} {size(free)} free of {size(total)} ({ratio:.0%})")
    need = f"needs {size(thresholds.min_free_bytes)} and {thresholds.min_free_ratio:.0%} free on the system volume"
    return "; ".join(parts) + f"; {need}"
