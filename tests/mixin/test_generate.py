"""The monitoring mixin: committed files equal the generator's output, and Jsonnet evaluates it to the sources.

Evaluating needs the ``jsonnet`` package (test extras). Without it that test skips, except under
CI (env ``CI`` set), where it fails.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

generate = importlib.import_module("mixin.generate")
alerts_generate = importlib.import_module("alerts.generate")
grafana_generate = importlib.import_module("grafana.generate")


def _canonical(rule: dict[str, Any]) -> str:
    return json.dumps(rule, sort_keys=True)


def _evaluate_mixin() -> dict[str, Any]:
    try:
        import _jsonnet
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("the jsonnet package is required (pip install -e '.[test]') and is not installed")
        pytest.skip("jsonnet is not installed")
    snippet = (
        "local mixin = import 'mixin.libsonnet';\n"
        "{ alerts: mixin.prometheusAlerts, rules: mixin.prometheusRules, dashboards: mixin.grafanaDashboards }"
    )
    return json.loads(_jsonnet.evaluate_snippet("test.jsonnet", snippet, jpathdir=[str(REPO / "mixin")]))


def test_committed_mixin_is_the_generated_one() -> None:
    def committed(path: Path) -> str | None:
        return (REPO / path).read_text(encoding="utf-8") if (REPO / path).is_file() else None

    stale = [str(path) for path, content in generate.render().items() if committed(path) != content]
    assert stale == [], "out of date; run `make generate`"
    assert generate.main(["--check"]) == 0


def test_the_mixin_has_the_prometheus_mixin_layout() -> None:
    paths = {str(p) for p in generate.render()}
    assert {
        "mixin/mixin.libsonnet",
        "mixin/alerts/alerts.libsonnet",
        "mixin/rules/rules.libsonnet",
        "mixin/dashboards/dashboards.libsonnet",
        "mixin/jsonnetfile.json",
    } <= paths


def test_jsonnet_evaluates_the_mixin_to_the_shipped_rules_and_dashboards() -> None:
    mixin = _evaluate_mixin()
    shipped = yaml.safe_load((REPO / alerts_generate.RULES_FILE).read_text(encoding="utf-8"))
    alerting = {g["name"]: g for g in mixin["alerts"]["groups"]}
    recording = {g["name"]: g for g in mixin["rules"]["groups"]}
    assert all("alert" in r for g in alerting.values() for r in g["rules"])
    assert all("record" in r for g in recording.values() for r in g["rules"])
    # Every group of the rules file is there, its rules split between alerts and recording rules.
    assert len(alerting) + len(recording) >= len(shipped["groups"]) > 0
    for group in shipped["groups"]:
        rules = [rule for part in (alerting, recording) for rule in part.get(group["name"], {"rules": []})["rules"]]
        assert sorted(map(_canonical, rules)) == sorted(map(_canonical, group["rules"])), group["name"]
    dashboards = REPO / "grafana" / "dashboards"
    assert mixin["dashboards"] == {p.name: json.loads(p.read_text(encoding="utf-8")) for p in dashboards.glob("*.json")}


def test_mixed_groups_are_split_into_alerts_and_recording_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    document = {
        "groups": [
            {"name": "g", "interval": "1m", "rules": [{"record": "r:x", "expr": "x"}, {"alert": "A", "expr": "y"}]},
            {"name": "only-alerts", "rules": [{"alert": "B", "expr": "z"}]},
        ]
    }
    monkeypatch.setattr(alerts_generate, "render", lambda: {alerts_generate.RULES_FILE: yaml.safe_dump(document)})
    alerting, recording = generate.rule_groups()
    assert alerting == [
        {"name": "g", "interval": "1m", "rules": [{"alert": "A", "expr": "y"}]},
        {"name": "only-alerts", "rules": [{"alert": "B", "expr": "z"}]},
    ]
    assert recording == [{"name": "g", "interval": "1m", "rules": [{"record": "r:x", "expr": "x"}]}]
