from __future__ import annotations

import pytest

from exporter.state.classifier import classify
from exporter.state.error_advice import remediation, summary
from exporter.state.hresults import CAUSE_ADVICE, REASON_ADVICE

GUID_VOLUME = "\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\"


def test_remediation_from_stored_labels_matches_classify() -> None:
    result = classify(f"failed to add {GUID_VOLUME} to snapshot set: Windows error 0x80042304: ")

    assert remediation(result.reason, result.cause, result.volume) == result.remediation


@pytest.mark.parametrize(
    ("reason", "cause", "expected"),
    [
        pytest.param("no_such_reason", "", REASON_ADVICE["other"].remediation, id="unknown-reason"),
        pytest.param(
            "start_snapshot_set", "no_such_cause", REASON_ADVICE["start_snapshot_set"].remediation, id="unknown-cause"
        ),
        pytest.param(
            "do_snapshot_set", "insufficient_storage", CAUSE_ADVICE["insufficient_storage"].remediation, id="cause-wins"
        ),
        pytest.param(
            "agent_timeout", "insufficient_storage", REASON_ADVICE["agent_timeout"].remediation, id="agent-reason-wins"
        ),
    ],
)
def test_remediation_from_labels(reason: str, cause: str, expected: str) -> None:
    assert remediation(reason, cause, None) == expected


def test_guid_volume_gets_the_volume_specific_fix() -> None:
    advice = remediation("add_volume_to_snapshot_set", "volume_not_supported", GUID_VOLUME)

    assert advice.startswith(GUID_VOLUME)
    assert remediation("add_volume_to_snapshot_set", "volume_not_supported", "C:\\") != advice


def test_summary_names_volume_and_cause() -> None:
    text = summary(reason="add_volume_to_snapshot_set", cause="insufficient_storage", volume="D:", command=None)

    assert "D:" in text
    assert text.endswith(CAUSE_ADVICE["insufficient_storage"].summary)
    assert "{volume}" not in summary(reason="add_volume_to_snapshot_set", cause="unknown", volume=None, command=None)
