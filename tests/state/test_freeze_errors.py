"""Observations from each source, and episode counting across retries, sources and replays."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.state.freeze_errors import (
    NO_FREEZE_ERRORS,
    FreezeErrorLedger,
    FreezeObservation,
    from_backup,
    from_event,
    from_log_line,
    from_snapshot,
    mount_point_of,
)
from exporter.state.records import GuestFilesystem, SnapshotFacts, VmKey
from exporter.state.snapshots import parse_snapshot

KEY = VmKey("default", "win2019")
ADD_VOLUME = (
    "Internal error occurred: unexpected return code 400 (400 Bad Request), message: server error. command Freeze "
    "failed: \"LibvirtError(Code=1, Domain=10, Message='internal error: unable to execute QEMU agent command "
    "'guest-fsfreeze-freeze': failed to add \\\\\\\\?\\\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\\\ to "
    "snapshot set: ')\""
)
THAW_TIMEOUT = (
    "server error. command Unfreeze failed: \"LibvirtError(Code=1, Domain=10, Message='internal error: unable to "
    "execute QEMU agent command 'guest-fsfreeze-thaw': couldn't hold writes: fsfreeze is limited up to 10 seconds: ')\""
)
VOLUMES = (GuestFilesystem("\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\", "System Reserved", "NTFS"),)


def observation(
    at: float,
    *,
    source: str = "snapshot",
    snapshot: str | None = "snap-1",
    text: str = ADD_VOLUME,
    identity: str | None = None,
) -> FreezeObservation:
    return FreezeObservation(KEY, at, text, source, identity or f"{source}/{at}", snapshot)


def test_retries_of_one_snapshot_are_one_episode() -> None:
    ledger = FreezeErrorLedger(gap=600)
    for attempt in range(60):  # every 5 s for the 5 minute deadline
        ledger.add(observation(1000 + 5 * attempt))
    summary = ledger.vm_summary(KEY)
    counts, last, detail = summary.counts, summary.last_by_reason, summary.newest_detail(VOLUMES)
    assert counts == (("add_volume_to_snapshot_set", "unknown", 1),)
    assert last == (("add_volume_to_snapshot_set", 1295.0),)
    assert detail is not None and detail.mount_point == "System Reserved" and detail.source == "snapshot"


def test_the_same_failure_through_several_sources_counts_once() -> None:
    ledger = FreezeErrorLedger(gap=600)
    ledger.add(observation(1000, source="snapshot"))
    ledger.add(observation(1001, source="event", snapshot=None, text="Failed to freeze VMI: " + ADD_VOLUME))
    ledger.add(observation(1002, source="launcher_log", snapshot=None))
    summary = ledger.vm_summary(KEY)
    counts, detail = summary.counts, summary.newest_detail(())
    assert counts == (("add_volume_to_snapshot_set", "unknown", 1),)
    assert detail is not None and detail.source == "launcher_log"


def test_episodes_further_apart_than_the_gap_count_separately() -> None:
    ledger = FreezeErrorLedger(gap=600)
    ledger.add(observation(1000, snapshot="snap-1"))
    ledger.add(observation(1000 + 3600, snapshot="snap-2"))
    ledger.add(observation(1000 + 3605, snapshot="snap-2"))
    assert ledger.vm_summary(KEY).counts == (("add_volume_to_snapshot_set", "unknown", 2),)


def test_replayed_observations_are_ignored() -> None:
    ledger = FreezeErrorLedger(gap=10)
    assert ledger.add(observation(1000, identity="event/x/1000"))
    assert not ledger.add(observation(1000, identity="event/x/1000"))
    assert not ledger.add(observation(5000, identity="event/x/1000"))
    assert ledger.vm_summary(KEY).counts == (("add_volume_to_snapshot_set", "unknown", 1),)


def test_different_reasons_are_different_episodes() -> None:
    ledger = FreezeErrorLedger(gap=600)
    ledger.add(observation(1000))
    ledger.add(observation(1001, text=THAW_TIMEOUT, snapshot="snap-1"))
    summary = ledger.vm_summary(KEY)
    counts, detail = summary.counts, summary.newest_detail(())
    assert [c[0] for c in counts] == ["add_volume_to_snapshot_set", "hold_writes_timeout"]
    assert detail is not None and detail.reason == "hold_writes_timeout"


def test_thaw_timeout_is_matched_to_its_snapshot(kubevirt_object) -> None:
    facts, _ = parse_snapshot(kubevirt_object("vmsnapshot-succeeded-online-guestagent"))
    assert facts is not None
    ledger = FreezeErrorLedger(gap=600)
    assert ledger.vm_summary(KEY).thaw_failure_during(facts) is None
    ledger.add(observation(facts.requested_at + 12, text=THAW_TIMEOUT, snapshot=None, source="launcher_log"))
    assert ledger.vm_summary(KEY).thaw_failure_during(facts) == "hold_writes_timeout"


def test_thaw_failure_that_broke_the_hold_is_matched_and_the_hold_limit_wins(kubevirt_object) -> None:
    # qemu/qemu qga/vss-win32/requester.cpp (7dfce9bd) requester_thaw(): "unexpected error in VSS provider" (:575) and
    # the default "failed to do snapshot set" come after VSS gave up the snapshot set; "Did you freeze the
    # volumes?" means nothing was frozen.
    facts, _ = parse_snapshot(kubevirt_object("vmsnapshot-succeeded-online-guestagent"))
    assert facts is not None
    thaw = "internal error: unable to execute QEMU agent command 'guest-fsfreeze-thaw': "
    ledger = FreezeErrorLedger(gap=600)
    ledger.add(
        observation(
            facts.requested_at + 5,
            text=thaw + "AsyncSnapshot set is missing. Did you freeze the volumes?",
            snapshot=None,
        )
    )
    assert ledger.vm_summary(KEY).thaw_failure_during(facts) is None
    ledger.add(
        observation(
            facts.requested_at + 6,
            text=thaw + "unexpected error in VSS provider: Windows error 0x8004230f: ",
            snapshot=None,
        )
    )
    assert ledger.vm_summary(KEY).thaw_failure_during(facts) == "thaw_failed"
    ledger.add(observation(facts.requested_at + 7, text=THAW_TIMEOUT, snapshot=None))
    assert ledger.vm_summary(KEY).thaw_failure_during(facts) == "hold_writes_timeout"


def test_storage_errors_of_a_snapshot_are_not_freeze_failures(kubevirt_object) -> None:
    # snapshot.go:463/466/476 (v1.8.0): errors the controller writes itself into status.error.
    facts, _ = parse_snapshot(kubevirt_object("vmsnapshot-succeeded-online-guestagent"))
    assert facts is not None
    for message in (
        "VolumeSnapshot vmsnapshot-1-volume-disk0 error: Failed to check and update snapshot content",
        "VolumeSnapshots (vmsnapshot-1-volume-disk0) missing",
        "VolumeSnapshots (vmsnapshot-1-volume-disk0) skipped because vm snapshot is deleted",
    ):
        assert from_snapshot(dataclasses.replace(facts, error_message=message, error_time=1.0)) is None
    freeze = "Failed freezing vm w: Internal error occurred: Guest agent not available for now"
    assert from_snapshot(dataclasses.replace(facts, error_message=freeze, error_time=1.0)) is not None


def test_from_snapshot_fixture(kubevirt_object) -> None:
    facts, _ = parse_snapshot(kubevirt_object("vmsnapshot-inprogress-freeze-error-windows-vss"))
    assert facts is not None
    seen = from_snapshot(facts)
    assert seen is not None and seen.snapshot == facts.uid and seen.at == facts.error_time
    ledger = FreezeErrorLedger()
    ledger.add(seen)
    detail = ledger.vm_summary(facts.key).newest_detail(())
    assert detail is not None and detail.volume == "\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\"


def freeze_event(**overrides) -> dict:
    raw = {
        "metadata": {"namespace": "default", "name": "win2019.17f", "uid": "e1"},
        "involvedObject": {"kind": "VirtualMachineInstance", "name": "win2019", "namespace": "default"},
        "reason": "FreezeError",
        "type": "Warning",
        "count": 7,
        "message": "Failed to freeze VMI: " + ADD_VOLUME,
        "firstTimestamp": "2026-08-21T02:00:07Z",
        "lastTimestamp": "2026-08-21T02:00:37Z",
    }
    raw.update(overrides)
    return raw


def test_from_event() -> None:
    seen = from_event(freeze_event())
    assert seen is not None and seen.key == KEY and seen.source == "event"
    assert from_event(freeze_event(reason="Started")) is None
    assert from_event(freeze_event(involvedObject={"kind": "Pod", "name": "x"})) is None
    assert from_event(freeze_event(lastTimestamp=None, firstTimestamp=None)) is None
    assert from_event("garbage") is None


def test_from_log_line() -> None:
    line = json.dumps(
        {
            "component": "virt-launcher",
            "kind": "",
            "level": "error",
            "msg": "Failed to freeze vmi",
            "name": "win2019",
            "namespace": "default",
            "pos": "server.go:1",
            "reason": ADD_VOLUME,
            "timestamp": "2026-08-21T02:00:07.123456Z",
            "uid": "u",
        },
        sort_keys=True,
    )
    seen = from_log_line(line, KEY, stream="pod")
    assert seen is not None and seen.source == "launcher_log"
    assert from_log_line('{"msg":"Domain defined.","timestamp":"2026-08-21T02:00:07Z"}', KEY, stream="p") is None
    assert from_log_line("\x00\xff not json", KEY, stream="p") is None
    assert from_log_line("{" * 100_000, KEY, stream="p") is None


def test_from_backup_with_quiesce_failed() -> None:
    raw = {
        "metadata": {"namespace": "default", "name": "b1", "uid": "b"},
        "spec": {"source": {"kind": "VirtualMachine", "name": "win2019"}},
        "status": {
            "conditions": [
                {
                    "type": "Quiesced",
                    "status": "False",
                    "reason": "QuiesceFailed",
                    "message": "Guest filesystem quiesce failed",
                    "lastTransitionTime": "2026-08-21T02:00:07Z",
                },
                {
                    "type": "Complete",
                    "status": "True",
                    "reason": "CompletedWithWarning",
                    "message": "Completed VirtualMachineBackup, warning: " + ADD_VOLUME,
                },
            ]
        },
    }
    seen = from_backup(raw)
    assert seen is not None and seen.text == ADD_VOLUME and seen.key == KEY
    raw["status"]["conditions"][0]["reason"] = "QuiesceSkipped"
    assert from_backup(raw) is None


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ("\\\\?\\Volume{2A1F8D64-0000-0000-0000-100000000000}\\", "System Reserved"),
        ("\\\\?\\Volume{00000000-0000-0000-0000-000000000000}\\", ""),
        ("D:", "D:\\"),
        ("/.snapshots", "/.snapshots"),
        ("", ""),
    ],
)
def test_mount_point_of(volume: str, expected: str) -> None:
    assert mount_point_of(volume, VOLUMES) == expected


def test_prune_keeps_unknown_vms_for_a_while() -> None:
    ledger = FreezeErrorLedger(gap=100)
    ledger.add(observation(1000))
    ledger.advance(1150)
    ledger.prune(lambda key: False)
    assert ledger.vm_summary(KEY) != NO_FREEZE_ERRORS
    ledger.advance(1300)
    ledger.prune(lambda key: False)
    assert ledger.vm_summary(KEY) == NO_FREEZE_ERRORS


def test_late_older_observation_joins_its_own_episode() -> None:
    """After a restart an Event may be listed after newer snapshots; it must not count again."""
    ledger = FreezeErrorLedger(gap=600)
    ledger.add(observation(1295, snapshot="snap-1"))
    ledger.add(observation(4805, snapshot="snap-2"))
    ledger.add(observation(1030, source="event", snapshot=None))
    assert ledger.vm_summary(KEY).counts == (("add_volume_to_snapshot_set", "unknown", 2),)


def test_from_backup_v1_8_done_condition_warning() -> None:
    # v1.8.0 has no Quiesced condition (staging/src/kubevirt.io/api/backup/v1alpha1/types.go:229-252): the
    # launcher sets BackupMsg "Failed freezing guest filesystem: %s" (pkg/virt-launcher/virtwrap/storage/
    # backup.go:49,183-185) and the controller puts "Completed VirtualMachineBackup, warning: %s" into the
    # reason of Done=True (pkg/storage/cbt/backup.go:79,1278-1283,1430).
    done = {
        "type": "Done",
        "status": "True",
        "reason": "Completed VirtualMachineBackup, warning: Failed freezing guest filesystem: " + ADD_VOLUME,
        "lastTransitionTime": "2026-08-21T02:00:07Z",
    }
    raw = {
        "metadata": {"namespace": "default", "name": "b1", "uid": "b"},
        "spec": {"source": {"kind": "VirtualMachine", "name": "win2019"}},
        "status": {"conditions": [done]},
    }
    seen = from_backup(raw)
    assert seen is not None and seen.text == ADD_VOLUME and seen.key == KEY
    clean = dict(done, reason="Successfully completed VirtualMachineBackup")
    assert from_backup({**raw, "status": {"conditions": [clean]}}) is None
    unfreeze = dict(done, reason="Completed VirtualMachineBackup, warning: Failed to unfreeze filesystem after backup")
    assert from_backup({**raw, "status": {"conditions": [unfreeze]}}) is None


ADD_VOLUME_WITH_HRESULT = (
    "internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': failed to add "
    "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\ to snapshot set: Windows error 0x8004230e: "
    "The specified volume is not supported by the specified shadow copy provider"
)


def _summary_of(observations: list[FreezeObservation]) -> tuple:
    ledger = FreezeErrorLedger(gap=600)
    for item in observations:
        ledger.add(item)
    summary = ledger.vm_summary(KEY)
    return summary.counts, summary.last_by_reason, summary.newest_detail(VOLUMES)


def test_an_observation_that_bridges_two_episodes_merges_them_in_any_order() -> None:
    early = observation(1000, snapshot=None, source="event", identity="event/a")
    late = observation(2100, snapshot=None, source="event", identity="event/b")
    bridge = observation(1550, snapshot=None, source="launcher_log", identity="log/c")
    orders = [[early, late, bridge], [bridge, early, late], [late, bridge, early]]
    assert {_summary_of(order)[0] for order in orders} == {(("add_volume_to_snapshot_set", "unknown", 1),)}


def test_a_snapshot_links_its_far_apart_retries_and_whatever_falls_between() -> None:
    first = observation(1000, snapshot="snap-1", identity="snap/1")
    last = observation(3000, snapshot="snap-1", identity="snap/2")
    between = observation(2000, snapshot=None, source="event", identity="event/x")
    assert _summary_of([between, first, last])[0] == _summary_of([first, last, between])[0]
    assert _summary_of([between, first, last])[0] == (("add_volume_to_snapshot_set", "unknown", 1),)


def test_a_cause_known_from_any_observation_names_the_episode_whatever_came_first() -> None:
    unknown = observation(1000, text=ADD_VOLUME, identity="snap/1")
    known = observation(1005, text=ADD_VOLUME_WITH_HRESULT, source="event", snapshot=None, identity="event/1")
    expected = (("add_volume_to_snapshot_set", "volume_not_supported", 1),)
    assert _summary_of([unknown, known])[0] == expected
    assert _summary_of([known, unknown])[0] == expected


def test_the_newest_error_does_not_depend_on_arrival_order_at_equal_times() -> None:
    from_snapshot_source = observation(1000, identity="snap/1")
    from_event_source = observation(1000, source="event", snapshot=None, identity="event/1")
    one = _summary_of([from_snapshot_source, from_event_source])
    other = _summary_of([from_event_source, from_snapshot_source])
    assert one == other and one[2] is not None and one[2].source == "snapshot"


_observations = st.lists(
    st.builds(
        lambda at, snapshot, source, known, n: observation(
            float(at),
            snapshot=snapshot,
            source=source,
            text=ADD_VOLUME_WITH_HRESULT if known else ADD_VOLUME,
            identity=f"{source}/{n}",
        ),
        at=st.integers(0, 7200),
        snapshot=st.sampled_from([None, "snap-1", "snap-2", "snap-3"]),
        source=st.sampled_from(["snapshot", "event", "launcher_log"]),
        known=st.booleans(),
        n=st.integers(0, 10_000),
    ),
    max_size=25,
    unique_by=lambda o: o.identity,
)


@given(_observations, st.randoms(use_true_random=False))
def test_episodes_counts_and_details_do_not_depend_on_arrival_order(observations, rng) -> None:
    """After a restart the same objects arrive in another order; the numbers must come back the same."""
    shuffled = list(observations)
    rng.shuffle(shuffled)
    assert _summary_of(shuffled) == _summary_of(observations)


def _launcher_line(msg: str, at: str) -> str:
    return json.dumps(
        {"component": "virt-launcher", "kind": "", "level": "info", "msg": msg, "name": "win2019",
         "namespace": "default", "pos": "server.go:277", "timestamp": at, "uid": "u-1"}
    )  # fmt: skip


def test_a_successful_freeze_in_the_launcher_log_says_when_the_vm_froze() -> None:
    # virt-launcher logs "Freezed vmi" / "Unfreezed vmi" after a freeze / thaw succeeded:
    # kubevirt/kubevirt v1.8.0 pkg/virt-launcher/virtwrap/cmd-server/server.go:277 and :294.
    froze = from_log_line(_launcher_line("Freezed vmi", "2026-11-29T02:00:07.000000Z"), KEY, stream="pod")
    thawed = from_log_line(_launcher_line("Unfreezed vmi", "2026-11-29T02:00:19.000000Z"), KEY, stream="pod")
    assert froze is not None and froze.transition == "frozen"
    assert thawed is not None and thawed.transition == "thawed"
    ledger = FreezeErrorLedger(gap=600)
    assert ledger.vm_summary(KEY).frozen_at is None
    assert ledger.add(froze)
    assert ledger.vm_summary(KEY).frozen_at == froze.at
    summary = ledger.vm_summary(KEY)
    assert (summary.counts, summary.last_by_reason, summary.newest) == ((), (), None), "no failure"
    assert ledger.add(thawed)
    assert ledger.vm_summary(KEY).frozen_at is None
    # Replayed after a reconnect, in any order: the newest transition still wins.
    assert not ledger.add(froze)
    assert ledger.vm_summary(KEY).frozen_at is None


def test_the_newest_transition_wins_whatever_the_order() -> None:
    lines = [("Freezed vmi", "2026-11-29T02:00:07.000000Z"), ("Unfreezed vmi", "2026-11-29T02:00:19.000000Z"),
             ("Freezed vmi", "2026-11-29T03:00:07.000000Z")]  # fmt: skip
    observations = [from_log_line(_launcher_line(msg, at), KEY, stream="pod") for msg, at in lines]
    for order in (observations, observations[::-1], [observations[2], observations[0], observations[1]]):
        ledger = FreezeErrorLedger(gap=600)
        for observation in order:
            ledger.add(observation)
        assert ledger.vm_summary(KEY).frozen_at == observations[2].at


def test_the_summary_is_kept_until_an_observation_changes_the_ledger() -> None:
    # Every publish of a VM asks for its summary; building it anew each time cost CPU at scale.
    ledger = FreezeErrorLedger(gap=600)
    ledger.add(observation(1000))
    first = ledger.vm_summary(KEY)
    assert ledger.vm_summary(KEY) is first
    assert not ledger.add(observation(1000))  # a replay changes nothing
    assert ledger.vm_summary(KEY) == first
    ledger.add(observation(1005))
    second = ledger.vm_summary(KEY)
    assert second is not first and second.last_by_reason == (("add_volume_to_snapshot_set", 1005.0),)
    assert second.counts == first.counts == (("add_volume_to_snapshot_set", "unknown", 1),)


SNAPSHOT_FACTS = SnapshotFacts(KEY, "uid-1", "snap-1", 0.0, "Succeeded", ("Online", "GuestAgent"))
_THAW_REASONS = st.sampled_from(["hold_writes_timeout", "thaw_failed", "thaw_other"])


@given(
    failures=st.lists(
        st.tuples(st.floats(0, 400), st.sampled_from([None, "uid-1", "uid-2"]), _THAW_REASONS), max_size=8
    ),
    requested=st.floats(0, 300),
    taken=st.one_of(st.none(), st.floats(0, 300)),
)
def test_thaw_failure_during_picks_the_hold_limit_else_the_first_reason_by_name(
    failures: list[tuple[float, str | None, str]], requested: float, taken: float | None
) -> None:
    snapshot = dataclasses.replace(SNAPSHOT_FACTS, uid="uid-1", requested_at=requested, taken_at=taken)
    end = (taken or requested) + 120.0
    matching = {
        reason
        for at, uid, reason in failures
        if uid == "uid-1" or (uid is None and requested <= at <= end)
    }
    expected = None if not matching else "hold_writes_timeout" if "hold_writes_timeout" in matching else min(matching)
    summary = dataclasses.replace(NO_FREEZE_ERRORS, thaw_failures=tuple(failures))
    assert summary.thaw_failure_during(snapshot) == expected
