"""Error chains, Go quoting, versions and timestamps."""

from __future__ import annotations

import pytest

from exporter.simulator.clock import SimClock, go_duration, parse_rfc3339, rfc3339, rfc3339_micro
from exporter.simulator.messages import (
    HOLD_WRITES_TIMEOUT,
    LINUX_PERMISSION_DENIED,
    failure_texts,
    go_quote,
    vss_add_volume,
)
from exporter.simulator.versions import KubeVirtVersion

V = KubeVirtVersion.parse


def test_go_quote_escapes_like_go() -> None:
    assert go_quote("a\\b\"c'") == '"a\\\\b\\"c\'"'
    assert go_quote("tab\there\x01\x7f") == '"tab\\there\\x01\\x7f"'


def test_volume_message_shapes() -> None:
    volume = "\\\\?\\Volume{1}\\"
    assert vss_add_volume(volume, "plain") == "failed to add \\\\?\\Volume{1}\\ to snapshot set: "
    assert vss_add_volume(volume, "hex").endswith("to snapshot set: Windows error 0x8004230e: ")
    assert vss_add_volume(volume, "old").endswith("to snapshot set:  (error: 8004230e)")


def test_linux_chain_matches_the_reference_text() -> None:
    texts = failure_texts(agent_message=LINUX_PERMISSION_DENIED, thaw=False, vm_name="vm", version=V("1.8.0"))
    assert texts.launcher_reason == (
        "LibvirtError(Code=1, Domain=10, Message='internal error: unable to execute QEMU agent command "
        "'guest-fsfreeze-freeze': failed to open /.snapshots: Permission denied')")
    assert texts.status_message == (
        "Internal error occurred: unexpected return code 400 (400 Bad Request), message: server error. command "
        f"Freeze failed: \"{texts.launcher_reason}\"")
    assert texts.event_message == (
        f"Failed to freeze VMI: server error. command Freeze failed: \"{texts.launcher_reason}\"")


def test_chain_by_version() -> None:
    old = failure_texts(agent_message="x", thaw=False, vm_name="vm", version=V("1.3.0"))
    mid = failure_texts(agent_message="x", thaw=False, vm_name="vm", version=V("1.7.1"))
    thaw = failure_texts(agent_message=HOLD_WRITES_TIMEOUT, thaw=True, vm_name="vm", version=V("1.7.1"))
    assert old.status_message == "Internal error occurred: unexpected return code 400 (400 Bad Request)"
    assert mid.status_message.startswith("Failed freezing vm vm: Internal error occurred:")
    assert "command Unfreeze failed" in thaw.status_message and "'guest-fsfreeze-thaw'" in thaw.launcher_reason
    assert not thaw.status_message.startswith("Failed freezing vm")


@pytest.mark.parametrize(("version", "failed", "timeout", "paused", "ordered"), [
    ("1.4.0", False, False, False, False),
    ("1.5.0", False, False, False, False),
    ("1.5.2", True, False, False, True),
    ("1.5.3", True, False, True, True),
    ("1.6.0", True, False, False, True),
    ("1.6.4", False, True, True, True),
    ("1.7.1", True, False, True, True),
    ("1.7.2", False, True, True, True),
    ("1.9.0", False, True, True, True),
])
def test_version_features(version: str, failed: bool, timeout: bool, paused: bool, ordered: bool) -> None:
    v = V(version)
    assert (v.quiesce_failed, v.quiesce_timeout, v.paused_indication, v.sorted_indications) == (
        failed, timeout, paused, ordered)


def test_version_parsing() -> None:
    assert V("v1.8.0") == V("1.8.0") and V("1.8.0").tag == "v1.8.0"
    with pytest.raises(ValueError):
        V("1.8")


def test_clock_runs_at_its_speed_from_its_start() -> None:
    now = [100.0]
    clock = SimClock(start=1_000.0, speed=30.0, monotonic=lambda: now[0])
    now[0] = 102.0
    assert clock.now() == 1_060.0
    assert clock.real_seconds(300.0) == 10.0
    with pytest.raises(ValueError):
        SimClock(start=0.0, speed=0.0)


def test_time_formats() -> None:
    assert rfc3339(1_800_000_000.5) == "2027-01-15T08:00:00Z"
    assert rfc3339_micro(1715151952.147294) == "2024-05-08T07:05:52.147294Z"
    assert parse_rfc3339("2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert [go_duration(s) for s in (45, 300, 3600, 3725)] == ["45s", "5m0s", "1h0m0s", "1h2m5s"]

