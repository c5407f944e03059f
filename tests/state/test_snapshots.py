from __future__ import annotations

from exporter.state.records import VmKey
from exporter.state.snapshots import last_finished, parse_snapshot


def test_in_progress_fixture_keeps_the_error(kubevirt_object) -> None:
    facts, problems = parse_snapshot(kubevirt_object("vmsnapshot-inprogress-freeze-error-windows-vss"))
    assert problems == []
    assert facts is not None
    assert facts.key == VmKey("default", "win2019")
    assert facts.phase == "InProgress"
    assert facts.failure_deadline == 300.0
    assert "failed to add" in (facts.error_message or "")
    assert not facts.finished(facts.requested_at + 60)
    assert facts.finished(facts.requested_at + 301)


def test_last_finished_prefers_newest_finished(kubevirt_object) -> None:
    older, _ = parse_snapshot(kubevirt_object("vmsnapshot-succeeded-quiescetimeout-v1.8"))
    newer, _ = parse_snapshot(kubevirt_object("vmsnapshot-succeeded-online-guestagent"))
    running, _ = parse_snapshot(kubevirt_object("vmsnapshot-inprogress-freeze-error-windows-vss"))
    assert older and newer and running
    assert last_finished([older, newer, running], now=running.requested_at + 10) is newer
    assert last_finished([older, newer, running], now=running.requested_at + 400) is running
    assert last_finished([], now=0) is None


def test_snapshot_of_something_else_is_ignored(kubevirt_object) -> None:
    raw = kubevirt_object("vmsnapshot-succeeded-online-guestagent")
    raw["spec"]["source"]["kind"] = "VirtualMachinePool"
    facts, problems = parse_snapshot(raw)
    assert facts is None and problems == ["source_not_vm"]


def test_malformed_snapshot_degrades(kubevirt_object) -> None:
    raw = kubevirt_object("vmsnapshot-succeeded-online-guestagent")
    raw["status"]["indications"] = ["GuestAgent", 7, "x" * 500, "Online"]
    raw["status"]["creationTime"] = "yesterday"
    raw["spec"]["failureDeadline"] = "soon"
    facts, problems = parse_snapshot(raw)
    assert facts is not None
    assert facts.indications == ("GuestAgent", "Online")
    assert facts.taken_at is None
    assert facts.failure_deadline == 300.0
    assert set(problems) == {"indication_malformed", "creationTime_not_time", "failureDeadline_malformed"}


def test_zero_failure_deadline_never_expires(kubevirt_object) -> None:
    raw = kubevirt_object("vmsnapshot-inprogress-freeze-error-windows-vss")
    raw["spec"]["failureDeadline"] = "0s"
    facts, _ = parse_snapshot(raw)
    assert facts is not None and not facts.past_deadline(facts.requested_at + 10**6)


def test_source_indication_messages_and_excluded_volumes(kubevirt_object) -> None:
    # v1.7+ shapes: status.sourceIndications[{indication, message}] (snapshot.go:883-895 v1.8.0) and
    # status.snapshotVolumes.excludedVolumes (snapshot.go:922-935 v1.8.0).
    raw = kubevirt_object("vmsnapshot-succeeded-quiescetimeout-v1.8")
    raw["status"]["snapshotVolumes"] = {"includedVolumes": ["rootdisk"], "excludedVolumes": ["cloudinitdisk", 7]}
    facts, _ = parse_snapshot(raw)
    assert facts is not None
    assert [name for name, _ in facts.indication_messages] == ["GuestAgent", "Online", "QuiesceTimeout"]
    assert facts.indication_message("QuiesceTimeout").startswith("Guest agent quiesced the filesystem")
    assert facts.indication_message("Paused") == ""
    assert facts.excluded_volumes == ("cloudinitdisk",)


def test_source_indications_alone_give_the_indications(kubevirt_object) -> None:
    raw = kubevirt_object("vmsnapshot-succeeded-quiescetimeout-v1.8")
    del raw["status"]["indications"]
    raw["status"]["sourceIndications"].append({"indication": "not valid!", "message": "x"})
    facts, problems = parse_snapshot(raw)
    assert facts is not None
    assert facts.indications == ("GuestAgent", "Online", "QuiesceTimeout")
    assert "source_indication_malformed" in problems


def test_snapshots_of_one_kind_share_their_indications(kubevirt_object) -> None:
    # Every snapshot carries its own decoded copy; the fleet keeps one tuple per distinct value.
    first, _ = parse_snapshot(kubevirt_object("vmsnapshot-succeeded-quiescetimeout-v1.8"))
    raw = kubevirt_object("vmsnapshot-succeeded-quiescetimeout-v1.8")
    raw["metadata"]["name"] = "another"
    second, _ = parse_snapshot(raw)
    assert first is not None and second is not None and first.name != second.name
    assert second.indications is first.indications
    assert second.indication_messages is first.indication_messages
