"""KubeVirt 1.7.2–1.7.4: QuiesceFailed replaced by QuiesceTimeout, thaw errors retried: shapes → verdicts."""

from __future__ import annotations

from tests.conformance.harness import T0, THAW, api_error, launcher_error, launcher_log, snapshot, verdict, vmi

HOLD = "couldn't hold writes: fsfreeze is limited up to 10 seconds: Windows error 0x80042314: "


def test_v1_7_2_hold_limit_at_thaw_gives_quiesce_timeout() -> None:
    # snapshot.go:485-494 (v1.7.2): "fsfreeze is limited" (VSSFreezeLimitReached, source.go:55-57) goes into
    # the content error and is retried; snapshot.go:873-878 (v1.7.2) adds QuiesceTimeout meanwhile.
    marks = ["GuestAgent", "Online", "QuiesceTimeout"]
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 14, snapshot(phase="InProgress", indications=marks, error=api_error(HOLD, command=THAW))),
            (T0 + 20, snapshot(phase="Succeeded", indications=marks, creation_time=T0 + 19)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (1, "crash", "quiesce_timeout")
    assert result.freeze_errors == {"hold_writes_timeout": 1}


def test_v1_7_2_other_thaw_failures_are_retried_out_of_sight() -> None:
    # snapshot.go:494-495 (v1.7.2): any other thaw error is returned (rate-limited retry) and never written;
    # qemu-ga's requester_thaw (qga/vss-win32/requester.cpp:573-575, 7dfce9bd) reports "unexpected error in VSS
    # provider" when the provider failed without its timeout event, after which the retried thaw is a no-op.
    # The launcher log (pkg/virt-launcher/virtwrap/cmd-server/server.go:288, v1.8.0) is the only trace.
    error = launcher_error("unexpected error in VSS provider: Windows error 0x8004230f: ", command=THAW)
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 4, launcher_log("Failed to unfreeze vmi", error, at=T0 + 4)),
            (T0 + 9, snapshot(phase="Succeeded", indications=["GuestAgent", "Online"], creation_time=T0 + 3)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (1, "crash", "thaw_failed")
    assert result.freeze_errors == {"thaw_failed": 1}


def test_v1_7_2_failed_freeze_then_success_has_no_trace_in_the_snapshot() -> None:
    # source.go:461-465 (v1.7.2) returns the bare error: no QuiesceFailed; the error is cleared on success.
    error = api_error("failed to start snapshot set: Windows error 0x80042316: ")
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 1, snapshot(phase="InProgress", indications=["GuestAgent", "Online"], error=error)),
            (T0 + 12, snapshot(phase="Succeeded", indications=["GuestAgent", "Online"], creation_time=T0 + 7)),
        ]
    )
    assert (result.level, result.reason) == (3, "")
    assert result.freeze_errors == {"start_snapshot_set": 1}
