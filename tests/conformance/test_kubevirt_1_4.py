"""KubeVirt 1.4 (v1.4.0, v1.4.1): objects in this release's shapes → the exporter's verdict.

v1.4.0 never writes a freeze error into the snapshot; v1.4.1 does, without a prefix, and never sets
QuiesceFailed; indications are appended (v1.4.0) or a sorted set (v1.4.1); there is no QuiesceTimeout.
"""

from __future__ import annotations

from tests.conformance.harness import (
    T0,
    THAW,
    api_error,
    freeze_event,
    handler_error,
    launcher_error,
    launcher_log,
    snapshot,
    verdict,
    vmi,
)

VSS_REFUSED = "failed to add D:\\\\ to snapshot set: "
HOLD = "couldn't hold writes: fsfreeze is limited up to 10 seconds: "


def test_v1_4_0_freeze_failure_leaves_the_snapshot_without_error_until_the_deadline() -> None:
    # pkg/storage/snapshot/snapshot.go:418-421 (v1.4.0): a failed Freeze() is returned, nothing is written;
    # the only trace is the FreezeError Event (pkg/virt-handler/rest/lifecycle.go:127, v1.4.0) whose text is
    # the cmd-client error (pkg/virt-handler/cmd-client/client.go:339, v1.4.0). Indications are appended,
    # Online first (snapshot.go:834-844, v1.4.0).
    event = "Failed to freeze VMI: " + handler_error(VSS_REFUSED)
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0, snapshot(phase="InProgress", indications=["Online", "GuestAgent"])),
            (T0 + 1, freeze_event(event, first=T0 + 1, last=T0 + 1, count=1)),
            (T0 + 290, freeze_event(event, first=T0 + 1, last=T0 + 290, count=58)),
            (T0 + 301, snapshot(phase="Failed", indications=["Online", "GuestAgent"], failed_deadline=True)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (0, "failed", "deadline_exceeded")
    assert result.freeze_errors == {"add_volume_to_snapshot_set": 1}
    assert result.state.last_snapshot is not None and result.state.last_snapshot.indications == "GuestAgent,Online"


def test_v1_4_0_succeeded_windows_snapshot_is_application_consistent() -> None:
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 9, snapshot(phase="Succeeded", indications=["Online", "GuestAgent"], creation_time=T0 + 5)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (3, "application", "")
    assert result.freeze_errors == {}


def test_v1_4_1_retried_freeze_succeeds_without_quiesce_failed() -> None:
    # snapshot.go:418-426 (v1.4.1) writes err.Error() into content status and retries in 5 s; source.go:352-353
    # (v1.4.1) logs with the "Failed freezing vm" prefix but returns the bare error, so the QuiesceFailed check
    # at snapshot.go:866-868 (v1.4.1) never matches. The list is a sorted set (snapshot.go:855-873, v1.4.1).
    error = api_error("failed to start snapshot set: Windows error 0x80042316: ")
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 1, snapshot(phase="InProgress", indications=["GuestAgent", "Online"], error=error)),
            (T0 + 6, snapshot(phase="InProgress", indications=["GuestAgent", "Online"], error=error, error_at=T0 + 6)),
            (T0 + 14, snapshot(phase="Succeeded", indications=["GuestAgent", "Online"], creation_time=T0 + 8)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (3, "application", "")
    assert result.freeze_errors == {"start_snapshot_set": 1}


def test_v1_4_thaw_past_the_hold_limit_is_only_in_the_launcher_log() -> None:
    # Before QuiesceTimeout, unfreezeSource's error is returned (snapshot.go:487-490, v1.4.0) and the retry's
    # thaw is a no-op, so the snapshot Succeeds with GuestAgent,Online. The launcher logs the thaw error
    # (pkg/virt-launcher/virtwrap/cmd-server/server.go:286, v1.4.0).
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 14, launcher_log("Failed to unfreeze vmi", launcher_error(HOLD, command=THAW), at=T0 + 14)),
            (T0 + 20, snapshot(phase="Succeeded", indications=["GuestAgent", "Online"], creation_time=T0 + 3)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (1, "crash", "hold_writes_timeout")
    assert result.freeze_errors == {"hold_writes_timeout": 1}
