"""Alertmanager routing and inhibition: a file amtool accepts, the same as an AlertmanagerConfig, causes
that fire before their symptoms could notify, and routes that send each severity where it belongs."""

from __future__ import annotations

import importlib
import os
import shutil
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
routing = importlib.import_module("alerts.routing")
generate = importlib.import_module("alerts.generate")
stack = importlib.import_module("tests.e2e.stack")

ALERTMANAGER_FILE = REPO / generate.ALERTMANAGER_FILE
OPERATOR_FILE = REPO / generate.ALERTMANAGER_CONFIG_FILE
MATCH_TYPES = {"=", "!=", "=~", "!~"}


class _KubernetesYaml(yaml.SafeLoader):
    """YAML as Kubernetes reads it: a bare ``=`` (kustomize prints ``matchType: =``) is a string."""


_KubernetesYaml.yaml_implicit_resolvers = {
    first: [resolver for resolver in resolvers if resolver[0] != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _alerts() -> dict[str, Any]:
    return {alert.name: alert for group in rules.groups() for alert in group.alerts}


@pytest.mark.slow
def test_amtool_accepts_the_configuration() -> None:
    amtool = stack.require_binary("amtool")
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_FILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(routing.INHIBITIONS)} inhibit rules" in result.stdout
    assert f"{len(routing.RECEIVERS)} receivers" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", routing.PAGER), ("warning", routing.TICKETS), ("info", routing.INFO)],
)
def test_each_severity_reaches_its_receiver(severity: str, receiver: str) -> None:
    amtool = stack.require_binary("amtool")
    alert = next(a for a in _alerts().values() if a.severity == severity)
    result = subprocess.run(
        [
            amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_FILE}",
            f"alertname={alert.name}", f"severity={severity}", "namespace=ns", "name=vm",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


def test_every_inhibited_or_inhibiting_alert_exists() -> None:
    names = set(_alerts())
    for rule in routing.INHIBITIONS:
        assert set(rule.causes) <= names and set(rule.symptoms) <= names, rule
        assert not set(rule.causes) & set(rule.symptoms), rule


@pytest.mark.parametrize("rule", routing.INHIBITIONS, ids=lambda r: "+".join(r.causes))
def test_causes_fire_before_their_symptoms(rule: Any) -> None:
    """Alertmanager inhibits only while the cause fires: its ``for`` must end before the symptom's does."""
    alerts = _alerts()
    lead = rules.seconds(routing.CAUSE_LEAD)
    for cause in rule.causes:
        for symptom in rule.symptoms:
            cause_for = rules.seconds(alerts[cause].for_ or "0s")
            symptom_for = rules.seconds(alerts[symptom].for_ or "0s")
            assert cause_for + lead <= symptom_for, f"{cause} ({cause_for} s) must lead {symptom} ({symptom_for} s)"


def test_every_vm_alert_groups_per_vm_and_alert() -> None:
    route = yaml.safe_load(ALERTMANAGER_FILE.read_text())["route"]["routes"][0]
    assert route["group_by"] == ["alertname", "namespace", "name"]
    assert route["matchers"] == ['alertname=~"KubevirtVss.+"']


def _from_operator(matchers: list[dict[str, str]]) -> list[str]:
    for matcher in matchers:
        assert set(matcher) == {"name", "value", "matchType"}
        assert matcher["matchType"] in MATCH_TYPES
    return [f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in matchers]


def _operator_route_as_file(route: dict[str, Any]) -> dict[str, Any]:
    keys = {"receiver", "matchers", "groupBy", "groupWait", "groupInterval", "repeatInterval", "routes", "continue"}
    assert set(route) <= keys, set(route) - keys
    converted: dict[str, Any] = {"receiver": route["receiver"], "matchers": _from_operator(route["matchers"])}
    for operator_key, file_key in (
        ("groupBy", "group_by"), ("groupWait", "group_wait"), ("groupInterval", "group_interval"),
        ("repeatInterval", "repeat_interval"),
    ):  # fmt: skip
        if operator_key in route:
            converted[file_key] = route[operator_key]
    if "routes" in route:
        converted["routes"] = [_operator_route_as_file(child) for child in route["routes"]]
    return converted


def test_alertmanager_config_object_is_the_same_routing() -> None:
    document = yaml.safe_load(OPERATOR_FILE.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    assert document["kind"] == "AlertmanagerConfig"
    assert set(document) == {"apiVersion", "kind", "metadata", "spec"}
    spec = document["spec"]
    assert set(spec) == {"route", "inhibitRules", "receivers"}
    plain = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    assert _operator_route_as_file(spec["route"]) == plain["route"]["routes"][0]
    inhibit = [
        {
            "source_matchers": _from_operator(rule["sourceMatch"]),
            "target_matchers": _from_operator(rule["targetMatch"]),
            "equal": rule["equal"],
        }
        for rule in spec["inhibitRules"]
    ]
    assert inhibit == plain["inhibit_rules"]
    assert spec["receivers"] == plain["receivers"]
    names = {receiver["name"] for receiver in spec["receivers"]}

    def receivers(route: dict[str, Any]) -> set[str]:
        return {route["receiver"]} | {r for child in route.get("routes", []) for r in receivers(child)}

    assert receivers(spec["route"]) <= names


@pytest.mark.slow
def test_kustomize_renders_the_alertmanager_config_in_a_namespace(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        message = "kubectl (with kustomize v5) is required to render deploy/alertmanager"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "kubevirt-vss-exporter",
                "components": [os.path.relpath(REPO / "deploy" / "alertmanager", tmp_path)],
            }
        )
    )
    result = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (rendered,) = list(yaml.load_all(result.stdout, Loader=_KubernetesYaml))
    assert rendered["metadata"]["namespace"] == "kubevirt-vss-exporter"
    assert rendered["spec"] == yaml.safe_load(OPERATOR_FILE.read_text())["spec"]
