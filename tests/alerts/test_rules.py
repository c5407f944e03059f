"""The alerting rules: generated files up to date, promtool-valid and unit-tested, every alert
annotated, documented by a runbook and built only on documented metrics."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

rules = importlib.import_module("alerts.rules")
generate = importlib.import_module("alerts.generate")
contract = importlib.import_module("alerts.contract")
stack = importlib.import_module("tests.e2e.stack")

RULES_FILE = REPO / generate.RULES_FILE
PROMETHEUS_RULE_FILE = REPO / generate.PROMETHEUS_RULE_FILE
UNIT_TESTS = sorted((REPO / "alerts" / "tests").glob("*.yaml"))
RUNBOOKS = REPO / "alerts" / "runbooks"
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")
EXPORTER_ALERTS = {"KubevirtVssExporterNotSynced", "KubevirtVssExporterDown"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES_FILE)["groups"] for rule in group["rules"]]


def test_committed_files_equal_generator_output() -> None:
    for relative, content in generate.render().items():
        committed = (REPO / relative).read_text(encoding="utf-8")
        assert committed == content, f"{relative} is out of date: run python -m alerts.generate"


def test_check_mode_reports_up_to_date() -> None:
    assert generate.main(["--check"]) == 0


def test_prometheus_rule_carries_the_same_groups() -> None:
    prometheus_rule = _load(PROMETHEUS_RULE_FILE)
    assert prometheus_rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert prometheus_rule["kind"] == "PrometheusRule"
    assert prometheus_rule["metadata"]["name"] == "kubevirt-vss-exporter"
    assert prometheus_rule["metadata"]["labels"] == {"app.kubernetes.io/name": "kubevirt-vss-exporter"}
    assert prometheus_rule["spec"]["groups"] == _load(RULES_FILE)["groups"]


@pytest.mark.slow
def test_promtool_check_rules(tmp_path: Path) -> None:
    promtool = stack.require_binary("promtool")
    spec_groups = tmp_path / "prometheusrule-groups.yaml"
    spec_groups.write_text(yaml.safe_dump({"groups": _load(PROMETHEUS_RULE_FILE)["spec"]["groups"]}))
    for path in (RULES_FILE, spec_groups):
        result = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


@pytest.mark.slow
def test_promtool_unit_tests_pass() -> None:
    promtool = stack.require_binary("promtool")
    assert UNIT_TESTS, "no promtool unit tests under alerts/tests/"
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, UNIT_TESTS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_every_alert_is_unit_tested_both_ways() -> None:
    """Each alert has a case where it fires and a case where it stays quiet."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        document = _load(path)
        assert document["rule_files"] == ["../kubevirt-vss-exporter.rules.yaml"], path
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = set(rules.alert_names())
    assert names - fires == set(), "alerts never expected to fire"
    assert names - quiet == set(), "alerts never expected to stay quiet"
    assert (fires | quiet) - names == set(), "tests for alerts that do not exist"


def test_names_follow_the_mixin_convention() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"KubevirtVss[A-Z][A-Za-z]+", name), name


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_alert_is_fully_annotated(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in rules.SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["summary"].endswith(".") and "{{" not in annotations["summary"]
    assert annotations["runbook_url"] == f"{rules.SETTINGS.runbook_base_url}/{rule['alert']}.md"
    if rule["alert"] not in EXPORTER_ALERTS:
        assert "{{ $labels.namespace }}/{{ $labels.name }}" in annotations["description"]


def test_pages_only_for_the_actionable_freeze_problems() -> None:
    critical = {rule["alert"] for rule in _rules() if rule["labels"]["severity"] == "critical"}
    assert critical == {"KubevirtVssFreezeAddVolumeFailed", "KubevirtVssFilesystemStuckFrozen"}
    add_volume = next(rule for rule in _rules() if rule["alert"] == "KubevirtVssFreezeAddVolumeFailed")
    assert "increase(" not in add_volume["expr"] and "rate(" not in add_volume["expr"]


#: Labels an alert may carry besides severity: the ones that name a different problem of the same VM.
IDENTITY = {"namespace", "name", "reason", "check"}
#: Details that change while the problem stays the same; never an alert label.
VOLATILE = ("cause", "hresult", "hresult_name", "volume", "mount_point", "snapshot", "last_error", "source")


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_alert_labels_are_identity_only(rule: dict[str, Any]) -> None:
    """A detail that becomes known later (a cause, an HRESULT) must not resolve and re-open an alert:
    details never reach the alert's labels, only its annotations."""
    expr = rule["expr"]
    for detail in VOLATILE:
        assert not re.search(rf"\b(by|on|group_left|group_right)\s*\([^)]*\b{detail}\b", expr), detail
    assert set(rule["labels"]) == {"severity"}, "extra static labels only through Settings.extra_labels"


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_description_says_what_since_when_risk_and_first_command(rule: dict[str, Any]) -> None:
    alert = next(a for g in rules.groups() for a in g.alerts if a.name == rule["alert"])
    assert alert.what and alert.since and alert.risk and alert.command
    assert rule["annotations"]["description"].endswith(f"First: {alert.command}")
    assert alert.command.startswith(("`", "in the guest, `")) and alert.command.endswith("`.")
    # Words, not template-looking text: no raw check names or state numbers reach the reader.
    assert "$labels.check }}" not in rule["annotations"]["description"]
    assert ".Labels.state " not in rule["annotations"]["description"]


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_alert_uses_only_documented_metrics(rule: dict[str, Any]) -> None:
    used = contract.metric_names(rule["expr"]) | contract.template_metric_names(
        rule["annotations"]["description"]
    )
    assert used, "no metric found in the expression"
    assert contract.undocumented(used) == set()


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (reason) (increase(kubevirt_vss_freeze_errors_total{namespace=~"a|b",name="x"}[5m]))'
        " * on (namespace) group_left (node) kubevirt_vss_vm_info offset 1h > bool 1e3"
        ' or absent(up{job="j"}) unless vector(0) and time() - 0x10'
    )
    assert contract.metric_names(expr) == {"kubevirt_vss_freeze_errors_total", "kubevirt_vss_vm_info", "up"}
    assert contract.undocumented({"kubevirt_vss_nonexistent", "up"}) == {"kubevirt_vss_nonexistent"}
    assert "kubevirt_vss_exporter_guestosinfo_request_duration_seconds_bucket" in contract.documented_metrics()


def test_runbook_for_every_alert_and_no_orphans() -> None:
    names = set(rules.alert_names())
    runbooks = {path.stem for path in RUNBOOKS.glob("*.md")}
    assert names - runbooks == set(), "alerts without a runbook"
    assert runbooks - names == set(), "runbooks without an alert"


@pytest.mark.parametrize("name", rules.alert_names())
def test_runbook_has_the_four_sections(name: str) -> None:
    text = (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
    assert text.startswith(f"# {name}\n")
    positions = [text.find(f"\n{section}\n") for section in RUNBOOK_SECTIONS]
    assert all(position > 0 for position in positions), f"missing sections in {name}.md"
    assert positions == sorted(positions), f"sections out of order in {name}.md"
    assert "kubectl" in text or name in EXPORTER_ALERTS | {"KubevirtVssGuestReportStale"}


def test_tunables_live_in_settings() -> None:
    default = rules.group_dicts()
    tuned = rules.group_dicts(
        rules.Settings(
            rpo="48h",
            stuck_frozen_after="10m",
            agent_disconnected_for="30m",
            guest_report_max_age="1h",
            runbook_base_url="https://runbooks.example.org/vss/",
            exporter_job_selector='job="vss"',
            extra_labels={"team": "platform"},
        )
    )
    by_name = {rule["alert"]: rule for group in tuned for rule in group["rules"]}
    assert "> 172800" in by_name["KubevirtVssNoConsistentSnapshotWithinRPO"]["expr"]
    assert by_name["KubevirtVssFilesystemStuckFrozen"]["for"] == "10m"
    assert by_name["KubevirtVssGuestAgentDisconnected"]["for"] == "30m"
    assert "> 3600" in by_name["KubevirtVssGuestReportStale"]["expr"]
    assert by_name["KubevirtVssExporterDown"]["expr"].startswith('up{job="vss"} == 0')
    assert by_name["KubevirtVssFreezeFailed"]["annotations"]["runbook_url"] == (
        "https://runbooks.example.org/vss/KubevirtVssFreezeFailed.md"
    )
    assert all(rule["labels"]["team"] == "platform" for rule in by_name.values())
    assert tuned != default


def test_duration_parsing() -> None:
    assert rules.seconds("26h") == 93600
    assert rules.seconds("1h30m") == 5400
    with pytest.raises(ValueError):
        rules.seconds("26 hours")


def test_readme_lists_every_alert_with_its_severity_and_for() -> None:
    readme = (REPO / "alerts" / "README.md").read_text(encoding="utf-8")
    for rule in _rules():
        row = f"| {rule['alert']} | {rule['labels']['severity']} |"
        assert row in readme, rule["alert"]
        line = next(line for line in readme.splitlines() if line.startswith(row))
        assert line.rstrip().endswith(f"| {rule.get('for', '—')} |"), line
