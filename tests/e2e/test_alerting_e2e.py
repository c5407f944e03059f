"""End to end, with real components: the demo exporter (simulated KubeVirt API), a real Prometheus
evaluating the shipped rules, a real Alertmanager, and a webhook receiver in this test.

It checks that the "failed to add volume to snapshot set" page of the simulated Windows VM reaches
the webhook with the VM, the volume, the cause and the runbook link; that every dashboard query
returns data for the demo fleet; and that a healthy simulated VM raises no alert.

Run: ``pytest -m e2e tests/e2e -s`` (``-s`` shows the webhook payload).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

stack = importlib.import_module("tests.e2e.stack")
dq = importlib.import_module("tests.grafana.queries")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RULES = REPO / "alerts" / "kubevirt-vss-exporter.rules.yaml"
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
JOB = "kubevirt-vss-exporter"
PAGE = "KubevirtVssFreezeAddVolumeFailed"
ADD_VOLUME = "add_volume_to_snapshot_set"
INTERVAL = "2s"
#: ``for`` of every rule in the test's copy; the shipped durations are covered by promtool tests.
SHORT_FOR = "4s"
START_TIMEOUT = 60.0
ALERT_TIMEOUT = 150.0
DATA_TIMEOUT = 60.0

#: A Windows VM that is fine by every signal: its newest snapshot is application-consistent, the
#: agent is connected, no freeze error was ever seen, its guest report arrived and no check fails.
HEALTHY_WINDOWS = """
(kubevirt_vss_last_snapshot_consistency == 3)
and on (namespace, name) kubevirt_vss_vm_info{guest_os="mswindows", phase="Running"}
and on (namespace, name) (kubevirt_vss_agent_connected == 1)
and on (namespace, name) kubevirt_vss_guest_report_timestamp_seconds
unless on (namespace, name) kubevirt_vss_last_freeze_error_timestamp_seconds
unless on (namespace, name) (kubevirt_vss_check_ok == 0)
unless on (namespace, name) (kubevirt_vss_writers_failed > 0)
"""


def shortened_rules() -> dict[str, Any]:
    """The shipped rules with every ``for`` cut to ``SHORT_FOR``."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = SHORT_FOR
    return document


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "test-webhook",
            "group_by": ["alertname", "namespace", "name"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "test-webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }


def _vm(series: dict[str, Any]) -> tuple[str, str]:
    return series["metric"]["namespace"], series["metric"]["name"]


async def _dashboard_gaps(api: Any, vms: list[tuple[str, str]], answered: dict[str, str]) -> list[str]:
    """Queries (and variables) that return no data: fleet queries for all VMs, VM-detail queries for
    at least one demo VM (a Linux guest has no guest report, a healthy one no freeze error).
    ``answered`` receives, per query, the variable values that gave data."""
    gaps: list[str] = []
    fleet_values = {"namespace": ".*", "vm": ".*", "job": f"{JOB}.*"}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        per_vm = any(v["name"] == "vm" and not v.get("multi") for v in dashboard["templating"]["list"])
        for name, selector in dq.variable_selectors(dashboard):
            label = "name" if name == "vm" else name
            values = {"namespace": vms[0][0]} if per_vm else fleet_values
            if not await api.label_values(label, dq.substitute(selector, values)):
                gaps.append(f"{dashboard['uid']}: variable {name}")
        for query in dq.queries(dashboard):
            candidates = [{"namespace": ns, "vm": vm} for ns, vm in vms] if per_vm else [fleet_values]
            for values in candidates:
                if await api.query(dq.substitute(query.expr, {**fleet_values, **values})):
                    answered[f"{dashboard['uid']}: {query.panel} [{query.ref}]"] = (
                        f"{values['namespace']}/{values['vm']}" if per_vm else "all VMs"
                    )
                    break
            else:
                gaps.append(f"{dashboard['uid']}: {query.panel} [{query.ref}]")
    return gaps


async def test_add_volume_failure_pages_dashboards_have_data_healthy_vm_is_quiet() -> None:
    prometheus = stack.require_binary("prometheus")
    alertmanager = stack.require_binary("prometheus-alertmanager")
    with tempfile.TemporaryDirectory(prefix="kubevirt-vss-e2e-") as tmp:
        work = Path(tmp)
        async with contextlib.AsyncExitStack() as resources:
            session = await resources.enter_async_context(aiohttp.ClientSession())
            hook = await resources.enter_async_context(stack.webhook_receiver())

            exporter_address = f"127.0.0.1:{stack.free_port()}"
            exporter = await resources.enter_async_context(
                stack.running(
                    "exporter",
                    [sys.executable, "-m", "exporter", "--demo", "--listen", exporter_address, "--log-format", "json"],
                    workdir=work,
                    cwd=REPO,
                )
            )

            async def exporter_serves_vms() -> bool:
                url = f"http://{exporter_address}/metrics"
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    return response.status == 200 and "kubevirt_vss_vm_info{" in await response.text()

            await stack.wait_until(
                "the demo exporter", exporter_serves_vms, timeout=START_TIMEOUT, processes=[exporter]
            )

            am_address = f"127.0.0.1:{stack.free_port()}"
            (work / "alertmanager.yaml").write_text(yaml.safe_dump(alertmanager_config(hook.url)), encoding="utf-8")
            am = await resources.enter_async_context(
                stack.running(
                    "alertmanager",
                    [
                        alertmanager,
                        f"--config.file={work / 'alertmanager.yaml'}",
                        f"--storage.path={work / 'alertmanager-data'}",
                        f"--web.listen-address={am_address}",
                        "--cluster.listen-address=",
                    ],
                    workdir=work,
                )
            )
            await stack.wait_until(
                "Alertmanager", lambda: stack.http_ok(session, f"http://{am_address}/-/ready"),
                timeout=START_TIMEOUT, processes=[am],
            )

            prom_address = f"127.0.0.1:{stack.free_port()}"
            (work / "rules.yaml").write_text(yaml.safe_dump(shortened_rules()), encoding="utf-8")
            config = stack.prometheus_config(
                job=JOB, interval=INTERVAL, exporter=exporter_address, alertmanager=am_address
            )
            (work / "prometheus.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
            prom = await resources.enter_async_context(
                stack.running(
                    "prometheus",
                    [
                        prometheus,
                        f"--config.file={work / 'prometheus.yaml'}",
                        f"--storage.tsdb.path={work / 'prometheus-data'}",
                        f"--web.listen-address={prom_address}",
                    ],
                    workdir=work,
                )
            )
            processes = [exporter, am, prom]
            api = stack.PrometheusAPI(session, f"http://{prom_address}")
            await stack.wait_until(
                "Prometheus to scrape the exporter", lambda: api.query(f'up{{job="{JOB}"}} == 1'),
                timeout=START_TIMEOUT, processes=processes,
            )

            # (1) The page arrives at the webhook with VM, volume, cause and runbook link.
            async def page() -> dict[str, Any] | None:
                for payload in hook.payloads:
                    for alert in payload.get("alerts", []):
                        if alert["labels"].get("alertname") == PAGE and alert["status"] == "firing":
                            return {"payload": payload, "alert": alert}
                return None

            found = await stack.wait_until(
                f"{PAGE} at the webhook", page, timeout=ALERT_TIMEOUT, processes=processes
            )
            payload, alert = found["payload"], found["alert"]
            print(f"\nAlertmanager webhook payload carrying {PAGE}:")
            print(json.dumps(payload, indent=2, sort_keys=True))

            labels, annotations = alert["labels"], alert["annotations"]
            failing = {
                _vm(series): series["metric"]
                for series in await api.query(f'kubevirt_vss_last_freeze_error_info{{reason="{ADD_VOLUME}"}}')
            }
            assert (labels["namespace"], labels["name"]) in failing, (labels, failing)
            info = failing[(labels["namespace"], labels["name"])]
            assert labels["severity"] == "critical"
            assert labels["reason"] == ADD_VOLUME
            # Identity only in the labels; the volume and cause are in the description.
            assert set(labels) == {"alertname", "severity", "namespace", "name", "reason"}, labels
            assert annotations["runbook_url"].startswith("https://")
            assert annotations["runbook_url"].endswith(f"/{PAGE}.md")
            assert f"{labels['namespace']}/{labels['name']}" in annotations["description"]
            assert info["volume"] and info["volume"] in annotations["description"]
            assert info["cause"] in annotations["description"]

            # (2) Every dashboard query returns data for the demo fleet.
            vms = [_vm(series) for series in await api.query("kubevirt_vss_vm_info")]
            vms.sort(key=lambda vm: vm != (labels["namespace"], labels["name"]))  # the failing VM first
            last_gaps: list[str] = []
            answered: dict[str, str] = {}

            async def dashboards_have_data() -> bool:
                answered.clear()
                last_gaps[:] = await _dashboard_gaps(api, vms, answered)
                return not last_gaps

            try:
                await stack.wait_until(
                    "data for every dashboard query", dashboards_have_data, timeout=DATA_TIMEOUT, interval=2.0,
                    processes=processes,
                )
            except pytest.fail.Exception:
                pytest.fail(f"dashboard queries without data: {last_gaps}")
            print(f"\n{len(answered)} dashboard queries returned data:")
            for query, source in answered.items():
                print(f"  {query}: {source}")

            # (3) A healthy simulated Windows VM raises no alert, pending or firing.
            healthy_series = await stack.wait_until(
                "a healthy Windows VM in the demo fleet", lambda: api.query(HEALTHY_WINDOWS),
                timeout=DATA_TIMEOUT, processes=processes,
            )
            healthy = _vm(healthy_series[0])
            await asyncio.sleep(3 * 2.0)  # three more rule evaluations
            for active in await api.alerts():
                assert _vm({"metric": {"namespace": "", "name": "", **active["labels"]}}) != healthy, active
            for notified in hook.alerts():
                assert _vm({"metric": {"namespace": "", "name": "", **notified["labels"]}}) != healthy, notified
            print(f"healthy VM {healthy[0]}/{healthy[1]}: no alert; failing VM {labels['namespace']}/{labels['name']}")
