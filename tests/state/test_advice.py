from __future__ import annotations

from exporter.state.advice import CHECK_FIXES, findings
from exporter.state.diagnosis import CHECK_ORDER
from exporter.state.records import VmKey, VmState
from exporter.state.runbooks import RUNBOOK_BASE_URL

STATE = VmState(key=VmKey("ns", "vm"), phase="Running")


def test_every_check_of_the_checklist_has_a_fix() -> None:
    assert set(CHECK_FIXES) == set(CHECK_ORDER)


def test_problems_follow_the_checklist_order_and_shared_steps_are_given_once() -> None:
    problems, steps = findings(
        STATE, {"swprv_service", "agent_connected", "vss_service"}, None, base_url=RUNBOOK_BASE_URL
    )
    assert [p.runbook.rsplit("/", 1)[1] for p in problems] == [
        "KubevirtVssGuestAgentDisconnected.md",
        "KubevirtVssServiceDisabled.md",
        "KubevirtVssServiceDisabled.md",
    ]
    assert len(steps) == 3 and steps[0].text.startswith("Install the QEMU guest agent")


def test_nothing_failing_means_no_findings() -> None:
    assert findings(STATE, set(), None, base_url=RUNBOOK_BASE_URL) == ((), ())
