"""docs/metrics.md, the alert rules and the dashboards speak of exactly the families the code declares.

The per-VM table of the reference lists FAMILIES (name, type and extra labels); the table of the
exporter's own metrics lists what SelfMetrics registers; every metric an alert rule or a
dashboard query names is one of those (or Prometheus' own ``up``).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import yaml

from exporter.render.families import FAMILIES
from exporter.self_metrics import SelfMetrics

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
contract = importlib.import_module("alerts.contract")
DOC = REPO / "docs" / "metrics.md"
RULES = REPO / "alerts" / "kubevirt-vss-exporter.rules.yaml"
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
_ROW = re.compile(r"^\|\s*`(?P<name>[a-z_:][a-z0-9_:]*)`\s*\|(?P<kind>[^|]*)\|(?P<labels>[^|]*)\|")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def documented(section: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name → (type, labels) of the rows in one ``## section`` table of the reference."""
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
        elif current == section and (match := _ROW.match(line)):
            labels = tuple(label.strip() for label in match["labels"].strip().strip("`").split(",") if label.strip())
            rows[match["name"]] = (match["kind"].split()[0], labels)
    return rows


def self_metric_series() -> dict[str, str]:
    """name (with ``_total`` on counters, ``_info`` on info metrics) → type of every metric SelfMetrics registers."""
    registry = SelfMetrics().registry
    suffixes = {"counter": "_total", "info": "_info"}
    return {family.name + suffixes.get(family.type, ""): family.type for family in registry.collect()}


def known_series() -> set[str]:
    names = {family.name for family in FAMILIES} | set(contract.PROMETHEUS_SERIES)
    for name, kind in self_metric_series().items():
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in _HISTOGRAM_SERIES)
    return names


def test_the_per_vm_table_lists_exactly_the_families() -> None:
    declared = {family.name: (family.kind, family.labels) for family in FAMILIES}
    assert documented("Per VM") == declared


def test_the_exporter_table_lists_exactly_the_self_metrics() -> None:
    rows = documented("The exporter itself")
    assert {name: kind for name, (kind, _) in rows.items()} == self_metric_series()


def test_alert_rules_use_only_declared_families() -> None:
    used: set[str] = set()
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            used |= contract.metric_names(rule["expr"])
            used |= contract.template_metric_names(rule.get("annotations", {}).get("description", ""))
    assert used and used - known_series() == set()


def test_dashboards_use_only_declared_families() -> None:
    used: set[str] = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for nested in [panel, *panel.get("panels", [])]:
                for target in nested.get("targets", []):
                    used |= contract.metric_names(re.sub(r"\$\{?\w+(?::\w+)?\}?", "x", target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else query or ""
            if text.startswith("label_values("):
                used |= contract.metric_names(text.removeprefix("label_values(").rsplit(",", 1)[0])
    assert used and used - known_series() == set()
