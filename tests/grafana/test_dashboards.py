"""The Grafana dashboards: valid, generated, provisioning-ready, every query parses and uses only
documented metrics, and the deploy/ copies are identical."""

from __future__ import annotations

import importlib
import json
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

generate = importlib.import_module("grafana.generate")
contract = importlib.import_module("alerts.contract")
dq = importlib.import_module("tests.grafana.queries")
stack = importlib.import_module("tests.e2e.stack")

FILES = {
    "kubevirt-vss-fleet.json": "kubevirt-vss-fleet",
    "kubevirt-vss-vm.json": "kubevirt-vss-vm",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Concrete values for the template variables when checking that queries parse.
EXAMPLE_VALUES = {"namespace": "vms", "vm": "win-sql-01", "job": "kubevirt-vss-exporter.*", "datasource": "prom"}


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((REPO / "grafana" / "dashboards" / name).read_text(encoding="utf-8")) for name in FILES
    }


def _all_exprs() -> list[tuple[str, str]]:
    """(label, expression) of every panel query and every variable selector."""
    exprs: list[tuple[str, str]] = []
    for dashboard in _dashboards().values():
        for query in dq.queries(dashboard):
            exprs.append((f"{query.dashboard}/{query.panel}/{query.ref}", query.expr))
        for name, selector in dq.variable_selectors(dashboard):
            if selector:
                exprs.append((f"{dashboard['uid']}/variable {name}", selector))
    return exprs


def test_committed_files_equal_generator_output() -> None:
    for relative, content in generate.render().items():
        assert (REPO / relative).read_text(encoding="utf-8") == content, (
            f"{relative} is out of date: run python -m grafana.generate"
        )


def test_check_mode_reports_up_to_date() -> None:
    assert generate.main(["--check"]) == 0


def test_deploy_copies_are_identical() -> None:
    for name in FILES:
        source = (REPO / "grafana" / "dashboards" / name).read_bytes()
        assert (REPO / "deploy" / "monitoring" / "dashboards" / name).read_bytes() == source


def test_fixed_unique_uids() -> None:
    dashboards = _dashboards()
    assert {name: dashboard["uid"] for name, dashboard in dashboards.items()} == FILES
    for dashboard in dashboards.values():
        assert dashboard.get("id") is None, "provisioned dashboards must not carry a database id"
        assert "__inputs" not in dashboard, "datasource comes from the variable, not an import input"


@pytest.mark.parametrize("name", FILES)
def test_panel_ids_unique_and_layout_sane(name: str) -> None:
    dashboard = _dashboards()[name]
    all_panels = list(dq.panels(dashboard))
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in all_panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        columns = range(grid["x"], grid["x"] + grid["w"])
        cells = {(x, y) for x in columns for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


@pytest.mark.parametrize("name", FILES)
def test_variables(name: str) -> None:
    variables = {variable["name"]: variable for variable in _dashboards()[name]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in ("namespace", "vm"):
        assert variables[var]["type"] == "query"
        assert variables[var]["definition"].startswith("label_values(")
        assert variables[var]["datasource"] == DATASOURCE
    assert "$namespace" in variables["vm"]["definition"]


@pytest.mark.parametrize("name", FILES)
def test_every_query_uses_the_datasource_variable(name: str) -> None:
    for panel in dq.panels(_dashboards()[name]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
        assert panel.get("description"), f"{panel['title']} has no description"


def test_value_mappings_for_levels_and_states() -> None:
    texts: dict[str, set[tuple[str, str]]] = {}
    for dashboard in _dashboards().values():
        for panel in dq.panels(dashboard):
            field_config = panel.get("fieldConfig", {})
            mapping_lists = [field_config.get("defaults", {}).get("mappings", [])]
            for item in field_config.get("overrides", []):
                mapping_lists += [prop["value"] for prop in item["properties"] if prop["id"] == "mappings"]
            for mappings in mapping_lists:
                for mapping in mappings:
                    for value, option in mapping["options"].items():
                        texts.setdefault(dashboard["uid"], set()).add((value, option["text"]))
    for uid in FILES.values():
        assert {("0", "failed"), ("1", "crash-consistent"), ("2", "filesystem-consistent")} <= texts[uid]
        assert ("3", "application-consistent") in texts[uid]
    assert {("0", "disconnected"), ("1", "connected"), ("0", "thawed"), ("1", "frozen")} <= texts["kubevirt-vss-vm"]


@pytest.mark.slow
def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses each query (variables substituted) as the expression of a recording rule."""
    promtool = stack.require_binary("promtool")
    rules = [
        {"record": f"dashboard:query_{number}", "expr": dq.substitute(expr, EXAMPLE_VALUES)}
        for number, (_, expr) in enumerate(_all_exprs())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize(("label", "expr"), _all_exprs(), ids=[label for label, _ in _all_exprs()])
def test_query_uses_only_documented_metrics(label: str, expr: str) -> None:
    used = contract.metric_names(dq.substitute(expr, EXAMPLE_VALUES))
    assert used, f"{label}: no metric found"
    assert contract.undocumented(used) == set(), label


def test_substitution() -> None:
    expr = 'rate(x{namespace=~"$namespace",name="${vm}"}[$__rate_interval])'
    assert dq.substitute(expr, {"namespace": "a|b", "vm": "v"}) == 'rate(x{namespace=~"a|b",name="v"}[1m])'
    with pytest.raises(KeyError):
        dq.substitute("up{job=~'$job'}", {})


def test_readme_describes_every_panel() -> None:
    readme = (REPO / "grafana" / "README.md").read_text(encoding="utf-8")
    for dashboard in _dashboards().values():
        assert dashboard["uid"] in readme
        for panel in dq.panels(dashboard):
            if panel["type"] != "row":
                assert f"**{panel['title']}**" in readme, panel["title"]


def _panel(uid: str, title: str) -> dict[str, Any]:
    dashboard = next(d for d in _dashboards().values() if d["uid"] == uid)
    return next(p for p in dq.panels(dashboard) if p["title"] == title and p["type"] != "row")


def test_drill_down_to_a_vm_keeps_the_time_range_and_job() -> None:
    links = [
        link["url"]
        for panel in dq.panels(_dashboards()["kubevirt-vss-fleet.json"])
        for item in panel.get("fieldConfig", {}).get("overrides", [])
        for prop in item["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
        if "/d/kubevirt-vss-vm" in link["url"]
    ]
    assert links
    for url in links:
        assert "${__url_time_range}" in url and "${job:queryparam}" in url, url


@pytest.mark.parametrize("name", FILES)
def test_vm_series_collapse_over_exporter_pods(name: str) -> None:
    """During a rollout two exporter pods serve the same VM: no panel may show it twice."""
    variables = {v["name"] for v in _dashboards()[name]["templating"]["list"]}
    assert "job" in variables
    for query in dq.queries(_dashboards()[name]):
        for selector in re.findall(r"kubevirt_vss_(?!exporter_)\w+\{[^{}]*\}", query.expr):
            assert 'job=~"$job"' in selector, (query.panel, selector)
        plain = re.sub(r"max without \(instance, pod\) \(kubevirt_vss_\w+\{[^{}]*\}\)", "", query.expr)
        plain = re.sub(
            r"max without \(instance, pod\) \((increase|rate)\(kubevirt_vss_\w+\{[^{}]*\}\[[^\]]*\]\)\)", "", plain
        )
        assert not re.search(r"kubevirt_vss_(?!exporter_)\w+\{", plain), (query.panel, query.expr)


@pytest.mark.parametrize("uid", FILES.values())
def test_alerts_table_links_each_alert_to_its_runbook(uid: str) -> None:
    panel = _panel(uid, "Alerts")
    assert panel["gridPos"]["y"] <= 1, "the alerts come first"
    assert "ALERTS{" in panel["targets"][0]["expr"]
    (link,) = next(
        prop["value"]
        for item in panel["fieldConfig"]["overrides"]
        if item["matcher"]["options"] == "alertname"
        for prop in item["properties"]
        if prop["id"] == "links"
    )
    assert link["url"] == f"{generate.SETTINGS.runbook_base_url}/${{__data.fields.alertname}}.md"


def test_last_snapshot_tile_shows_a_snapshot_that_is_failing_now() -> None:
    panel = _panel("kubevirt-vss-vm", "Last snapshot")
    expr = panel["targets"][0]["expr"]
    assert "kubevirt_vss_last_freeze_error_timestamp_seconds" in expr and " - 1) or " in expr
    options = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert options["-1"]["text"] == "failing now" and options["-1"]["color"] == "red"
