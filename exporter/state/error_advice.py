"""Advice for a classified freeze error: a one-line summary and what to do, from its labels alone.

Labels alone suffice so that stored episodes (reason, cause, volume) get the same advice as a fresh text.
"""

from __future__ import annotations

from exporter.state.error_templates import GUID_VOLUME
from exporter.state.hresults import CAUSE_ADVICE, GUID_VOLUME_REMEDIATION, REASON_ADVICE

__all__ = ["remediation", "summary"]

# Reasons whose own advice beats the cause's: the agent or the platform failed, not VSS.
_AGENT_OR_PLATFORM_REASONS = frozenset(
    {
        "agent_timeout",
        "agent_not_connected",
        "agent_frozen_state",
        "command_disabled",
        "linux_freeze_failed",
        "fsfreeze_hook_failed",
        "migration_in_progress",
        "vm_not_running",
    }
)


def summary(*, reason: str, cause: str, volume: str | None, command: str | None) -> str:
    """What failed and why, in one line, naming the volume and command where known."""
    text = REASON_ADVICE[reason].summary.replace("{volume}", volume or "a volume")
    text = text.replace("{command}", command or "a command")
    if cause != "unknown" and cause != reason:
        text = f"{text}: {CAUSE_ADVICE[cause].summary}"
    return text


def remediation(reason: str, cause: str, volume: str | None) -> str:
    """What to do about a classified error, from its labels; labels outside the vocabularies count as unknown."""
    reason = reason if reason in REASON_ADVICE else "other"
    cause = cause if cause in CAUSE_ADVICE else "unknown"
    if (
        reason == "add_volume_to_snapshot_set"
        and volume is not None
        and GUID_VOLUME.fullmatch(volume)
        and cause in ("unknown", "volume_not_supported")
    ):
        return GUID_VOLUME_REMEDIATION.replace("{volume}", volume)
    if cause != "unknown" and reason not in _AGENT_OR_PLATFORM_REASONS:
        return CAUSE_ADVICE[cause].remediation
    return REASON_ADVICE[reason].remediation
