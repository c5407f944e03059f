"""Every runbook the diagnosis links exists, under the base URL the alert rules use."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from exporter.state import advice, runbooks
from exporter.state.diagnosis import CHECK_RUNBOOKS

REPO = Path(__file__).parents[2]
RUNBOOKS = REPO / "alerts" / "runbooks"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SETTINGS = importlib.import_module("alerts.rules").SETTINGS


def test_the_base_url_is_the_alert_rules_one() -> None:
    assert SETTINGS.runbook_base_url == runbooks.RUNBOOK_BASE_URL


def test_every_linked_runbook_exists() -> None:
    alerts = {value for name, value in vars(runbooks).items() if name.isupper() and name != "RUNBOOK_BASE_URL"}
    alerts |= set(CHECK_RUNBOOKS.values()) | {fix.alert for fix in advice.CHECK_FIXES.values()}
    alerts |= {alert for _, alert in advice.SNAPSHOT_STEPS.values() if alert}
    missing = sorted(alert for alert in alerts if not (RUNBOOKS / f"{alert}.md").is_file())
    assert not missing


def test_runbook_url() -> None:
    assert runbooks.runbook_url("X", "https://example.test/books/") == "https://example.test/books/X.md"
