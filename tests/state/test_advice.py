"""Next steps for the snapshot reasons the consistency rules produce below filesystem level."""

from __future__ import annotations

import pytest

from exporter.state import advice

# Reasons exporter.state.consistency gives a crash or failed snapshot that a user can act on.
ACTIONABLE = (
    "quiesce_failed_no_guest_agent",
    "quiesce_failed",
    "thaw_failed",
    "hold_writes_timeout",
    "quiesce_timeout",
    "freeze_skipped_stale_frozen",
    "volume_snapshot_error",
    "volume_snapshots_missing",
    "source_deleted",
)


@pytest.mark.parametrize("reason", ACTIONABLE)
def test_every_actionable_snapshot_reason_has_a_step(reason: str) -> None:
    step, _alert = advice.SNAPSHOT_STEPS[reason]
    assert step.endswith(".") and len(step) > 30


def test_storage_reasons_do_not_blame_the_guest() -> None:
    for reason in ("volume_snapshot_error", "volume_snapshots_missing", "source_deleted"):
        step, alert = advice.SNAPSHOT_STEPS[reason]
        assert "agent" not in step.lower() and alert == ""
