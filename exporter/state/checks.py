"""The seed guide's checklist, judged from outside the guest. Absent checks mean no evidence."""

from __future__ import annotations

from collections.abc import Mapping

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


def api_checks(
    *,
    running: bool,
    agent_connected: bool | None,
    agent_supported: bool | None,
    fsfreeze_available: bool | None,
    frozen_since: float | None,
    now: float,
    stuck_after: float,
) -> dict[str, bool]:
    """Checks that the Kubernetes API alone can judge; only for running VMs."""
    if not running:
        return {}
    checks: dict[str, bool] = {}
    if agent_connected is not None:
        checks["agent_connected"] = agent_connected
    if agent_supported is not None:
        checks["agent_supported"] = agent_supported
    if fsfreeze_available is not None:
        checks["fsfreeze_available"] = fsfreeze_available
    checks["not_stuck_frozen"] = frozen_since is None or now - frozen_since < stuck_after
    return checks


def ordered(checks: Mapping[str, bool]) -> tuple[tuple[str, bool], ...]:
    """Checks in a stable order: known names first, in the checklist's order, then others."""
    known = [(name, checks[name]) for name in CHECK_ORDER if name in checks]
    extra = sorted((name, value) for name, value in checks.items() if name not in CHECK_ORDER)
    return (*known, *extra)
