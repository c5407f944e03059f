from __future__ import annotations

import pytest

from exporter.state.evidence import api_evidence, duration, guest_unknown, iso, size
from exporter.state.records import VmKey, VmState


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (45, "45s"), (60, "1m"), (3599, "59m"), (3600 + 300, "1h 5m"), (2 * 86400 + 4 * 3600, "2d 4h")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0 B"), (1536, "1.5 KiB"), (300 * 2**20, "300.0 MiB"), (2**41, "2.0 TiB")]
)
def test_size(value: float, text: str) -> None:
    assert size(value) == text


def test_iso() -> None:
    assert iso(None) is None
    assert iso(0) == "1970-01-01T00:00:00Z"


def test_frozen_evidence_names_since_when_and_the_limit() -> None:
    state = VmState(key=VmKey("ns", "vm"), phase="Running", agent_connected=True, fs_frozen=True, frozen_since=100.0)
    text = api_evidence("not_stuck_frozen", "fail", state, now=1000.0, stuck_after=300.0, unsupported_reason=None)
    assert text == "frozen since 1970-01-01T00:01:40Z (15m), longer than the 5m a snapshot's freeze may take"


def test_an_unsupported_agent_names_the_condition_reason() -> None:
    state = VmState(key=VmKey("ns", "vm"), phase="Running", agent_connected=True, agent_supported=False)
    text = api_evidence("agent_supported", "fail", state, now=0.0, stuck_after=300.0, unsupported_reason="old")
    assert text == "the VMI has the AgentVersionNotSupported condition: old"


def test_a_stale_or_missing_guest_report_says_how_to_get_one() -> None:
    windows = VmState(key=VmKey("ns", "vm"), phase="Running", guest_os="mswindows")
    assert "no guest report in the last 30m" in guest_unknown(windows, True, 1800.0)
    assert "deploy/windows" in guest_unknown(windows, True, 1800.0)
