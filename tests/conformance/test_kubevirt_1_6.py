"""KubeVirt 1.6 (v1.6.0–v1.6.3 with QuiesceFailed, v1.6.4–v1.6.6 with QuiesceTimeout): shapes → verdicts."""

from __future__ import annotations

from tests.conformance.harness import NAME, T0, THAW, api_error, prefixed, snapshot, verdict, vmi

HOLD = "couldn't hold writes: fsfreeze is limited up to 10 seconds: Windows error 0x80042314: "
TIMEOUT = "Guest agent not available for now"


def test_v1_6_0_quiesce_failed_and_agent_lost_between_retries_is_crash() -> None:
    # snapshot.go:831-846 (v1.6.0): the set is seeded with the old indications, so GuestAgent and QuiesceFailed
    # stay when a later reconcile adds NoGuestAgent; Freeze() returns nil without an agent
    # (source.go:431-437, v1.6.0), so the snapshot that follows was not frozen.
    error = prefixed(NAME, api_error(TIMEOUT))
    sticky = ["GuestAgent", "NoGuestAgent", "Online", "QuiesceFailed"]
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 1, snapshot(phase="InProgress", indications=["GuestAgent", "Online", "QuiesceFailed"], error=error)),
            (T0 + 6, vmi(agent=False)),
            (T0 + 12, snapshot(phase="Succeeded", indications=sticky, creation_time=T0 + 8)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (1, "crash", "quiesce_failed_no_guest_agent")
    assert result.freeze_errors == {"agent_timeout": 1}


def test_v1_6_4_thaw_past_the_hold_limit_sets_quiesce_timeout() -> None:
    # snapshot.go:474-486 (v1.6.4): a thaw error containing "fsfreeze is limited" is written into the content
    # and retried; snapshot.go:854-858 (v1.6.4) adds QuiesceTimeout while that error is present.
    error = api_error(HOLD, command=THAW)
    result = verdict(
        [
            (T0 - 60, vmi()),
            (
                T0 + 14,
                snapshot(phase="InProgress", indications=["GuestAgent", "Online", "QuiesceTimeout"], error=error),
            ),
            (
                T0 + 20,
                snapshot(
                    phase="Succeeded", indications=["GuestAgent", "Online", "QuiesceTimeout"], creation_time=T0 + 19
                ),
            ),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (1, "crash", "quiesce_timeout")
    assert result.freeze_errors == {"hold_writes_timeout": 1}


def test_v1_6_4_failed_freeze_then_success_has_no_quiesce_failed() -> None:
    # source.go:455-461 (v1.6.4) logs "Failed freezing vm" and returns the bare error, so no QuiesceFailed.
    error = api_error("failed to start snapshot set: Windows error 0x80042316: ")
    result = verdict(
        [
            (T0 - 60, vmi()),
            (T0 + 1, snapshot(phase="InProgress", indications=["GuestAgent", "Online"], error=error)),
            (T0 + 12, snapshot(phase="Succeeded", indications=["GuestAgent", "Online"], creation_time=T0 + 7)),
        ]
    )
    assert (result.level, result.consistency, result.reason) == (3, "application", "")
    assert result.freeze_errors == {"start_snapshot_set": 1}
