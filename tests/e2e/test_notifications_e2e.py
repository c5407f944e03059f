"""What a person on call receives: the simulated fleet, the exporter, a real Prometheus evaluating the
shipped rules and a real Alertmanager with the shipped routing and inhibit rules, notifying a webhook.

The exporter is restarted in the middle of the run against the unchanged simulator. Then, at the
webhook: no alert was resolved and fired again, no VM got a symptom while its cause was notified,
and notifications per (VM, problem) are counted — the figure is printed (1.0 is one message per
problem). Every ``for`` is divided by ``SCALE`` (their order, which the inhibition relies on, is kept).

Run: ``pytest -m e2e tests/e2e/test_notifications_e2e.py -s``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

stack = importlib.import_module("tests.e2e.stack")
rules = importlib.import_module("alerts.rules")
routing = importlib.import_module("alerts.routing")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RULES = REPO / "alerts" / "kubevirt-vss-exporter.rules.yaml"
ALERTMANAGER = REPO / "alerts" / "alertmanager.yaml"
JOB = "kubevirt-vss-exporter"
#: Every ``for`` in the test's copy of the rules is divided by this: 20m becomes 20s.
SCALE = 60
#: Freezes are not scaled: a simulated snapshot holds the guest frozen for up to 12 real seconds, so
#: "stuck" must mean longer than that (no demo VM is both stuck frozen and failing to freeze).
STUCK_FROZEN_FOR = "20s"
#: Restart the exporter once this many problems have been notified: some alerts firing, others pending.
RESTART_AFTER_NOTIFIED = 5
INTERVAL = "1s"
GUEST_REPORT_INTERVAL = 5.0
START_TIMEOUT = 60.0
#: The longest ``for`` (scaled) plus the time the demo story needs to show every problem.
STORY_TIMEOUT = 120.0
#: After the last new notification, how long to keep listening for repeats and re-fires.
QUIET_PERIOD = 20.0
RESTART_DOWNTIME = 3.0

#: What each demo VM should page or ticket about — one alert per root cause — and nothing else.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("finance", "win-exchange-01"): {"KubevirtVssFreezeAddVolumeFailed"},
    ("finance", "win-sql-01"): {"KubevirtVssWritersFailed"},
    ("finance", "win-files-01"): {"KubevirtVssLastSnapshotNotConsistent", "KubevirtVssSystemVolumeLowFreeSpace"},
    ("engineering", "win-build-01"): {"KubevirtVssGuestAgentUnsupported", "KubevirtVssProviderMissing"},
    ("engineering", "win-legacy-01"): {"KubevirtVssServiceDisabled"},
    ("engineering", "linux-db-01"): {"KubevirtVssFilesystemStuckFrozen"},
    ("engineering", "linux-ci-01"): {"KubevirtVssFreezeFailed"},
    ("infra", "linux-mon-01"): {"KubevirtVssGuestAgentDisconnected"},
    ("infra", "linux-cache-01"): {"KubevirtVssGuestAgentDisconnected"},
    ("infra", "linux-batch-01"): {"KubevirtVssLastSnapshotNotConsistent"},
    ("infra", "linux-store-01"): {"KubevirtVssSnapshotStorageFailed"},
}


def scaled(duration: str) -> str:
    return f"{max(1, rules.seconds(duration) // SCALE)}s"


def scaled_rules() -> dict[str, Any]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = scaled(rule["for"])
            if rule["alert"] == "KubevirtVssFilesystemStuckFrozen":
                rule["for"] = STUCK_FROZEN_FOR
    return document


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """The shipped routing and inhibit rules; every receiver posts to the webhook, timings scaled."""
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]

    def scale_route(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        if "repeat_interval" in route:
            route["repeat_interval"] = "1h"  # a repeat would be a second message for the same problem
        for child in route.get("routes", []):
            scale_route(child)

    scale_route(config["route"])
    return config


def problem(alert: dict[str, Any]) -> tuple[str, ...]:
    """What a notification is about: the VM and the alert's identity (its labels)."""
    labels = alert["labels"]
    return tuple(sorted((k, v) for k, v in labels.items()))


def vm_of(alert: dict[str, Any]) -> tuple[str, str]:
    return alert["labels"].get("namespace", ""), alert["labels"].get("name", "")


class Tally:
    """Every message the webhook received, read as a person would: per problem, firing and resolved."""

    def __init__(self, payloads: list[dict[str, Any]]) -> None:
        self.firing_messages: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.history: dict[tuple[str, ...], list[tuple[str, str]]] = collections.defaultdict(list)
        self.alertnames: dict[tuple[str, ...], str] = {}
        for payload in payloads:
            for alert in payload.get("alerts", []):
                key = problem(alert)
                self.alertnames[key] = alert["labels"]["alertname"]
                self.history[key].append((alert["status"], alert["startsAt"]))
                if alert["status"] == "firing":
                    self.firing_messages[key] += 1

    def refired(self) -> list[tuple[str, ...]]:
        """Problems whose alert fired again after a resolved notification, or fired with a new start time."""
        bad = []
        for key, events in self.history.items():
            resolved = False
            starts = set()
            for status, start in events:
                if status == "resolved":
                    resolved = True
                elif resolved or (starts and start not in starts):
                    bad.append(key)
                    break
                else:
                    starts.add(start)
        return bad

    def per_vm(self) -> dict[tuple[str, str], set[str]]:
        notified: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        for key in self.firing_messages:
            labels = dict(key)
            notified[(labels.get("namespace", ""), labels.get("name", ""))].add(labels["alertname"])
        return notified


def symptoms_notified_with_their_cause(notified: dict[tuple[str, str], set[str]]) -> list[str]:
    leaks = []
    for vm, alerts in notified.items():
        for rule in routing.INHIBITIONS:
            if alerts & set(rule.causes) and alerts & set(rule.symptoms):
                leaks.append(f"{vm}: {sorted(alerts & set(rule.causes))} and {sorted(alerts & set(rule.symptoms))}")
    return leaks


async def test_one_notification_per_vm_and_problem_across_an_exporter_restart() -> None:
    prometheus = stack.require_binary("prometheus")
    alertmanager = stack.require_binary("prometheus-alertmanager")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kubevirt-vss-notify-") as tmp:
        work = Path(tmp)
        token = work / "guest-report-token"
        token.write_text(secrets.token_hex(16), encoding="utf-8")
        kubeconfig = work / "kubeconfig"
        metrics_address = f"127.0.0.1:{stack.free_port()}"
        reports_address = f"127.0.0.1:{stack.free_port()}"
        exporter_argv = [
            sys.executable, "-m", "exporter", "run", "--kubeconfig", str(kubeconfig),
            "--listen", metrics_address, "--log-format", "json",
            "--guest-report-listen", reports_address, "--guest-report-token-file", str(token),
            "--follow-launcher-logs", "--guestosinfo-interval", "5",
        ]  # fmt: skip
        async with contextlib.AsyncExitStack() as resources:
            session = await resources.enter_async_context(aiohttp.ClientSession())
            hook = await resources.enter_async_context(stack.webhook_receiver())
            simulator = await resources.enter_async_context(
                stack.running(
                    "simulator",
                    [
                        sys.executable, "-m", "exporter", "simulate", "--write-kubeconfig", str(kubeconfig),
                        "--guest-reports-to", f"http://{reports_address}/api/v1/guest-reports",
                        "--guest-report-token-file", str(token),
                        "--guest-report-interval", str(GUEST_REPORT_INTERVAL),
                    ],
                    workdir=work, cwd=REPO,
                )
            )  # fmt: skip

            async def kubeconfig_written() -> bool:
                return kubeconfig.exists()

            await stack.wait_until("the simulator", kubeconfig_written, timeout=START_TIMEOUT, processes=[simulator])

            am_address = f"127.0.0.1:{stack.free_port()}"
            (work / "alertmanager.yaml").write_text(yaml.safe_dump(alertmanager_config(hook.url)), encoding="utf-8")
            am = await resources.enter_async_context(
                stack.running(
                    "alertmanager",
                    [
                        alertmanager, f"--config.file={work / 'alertmanager.yaml'}",
                        f"--storage.path={work / 'alertmanager-data'}", f"--web.listen-address={am_address}",
                        "--cluster.listen-address=",
                    ],
                    workdir=work,
                )
            )  # fmt: skip
            prom_address = f"127.0.0.1:{stack.free_port()}"
            (work / "rules.yaml").write_text(yaml.safe_dump(scaled_rules()), encoding="utf-8")
            config = stack.prometheus_config(
                job=JOB, interval=INTERVAL, exporter=metrics_address, alertmanager=am_address
            )
            (work / "prometheus.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
            prom = await resources.enter_async_context(
                stack.running(
                    "prometheus",
                    [
                        prometheus, f"--config.file={work / 'prometheus.yaml'}",
                        f"--storage.tsdb.path={work / 'prometheus-data'}", f"--web.listen-address={prom_address}",
                    ],
                    workdir=work,
                )
            )  # fmt: skip
            api = stack.PrometheusAPI(session, f"http://{prom_address}")

            first = stack.running("exporter", exporter_argv, workdir=work, cwd=REPO)
            exporter = await first.__aenter__()
            try:
                processes = [simulator, am, prom, exporter]
                await stack.wait_until(
                    "Prometheus to scrape the exporter", lambda: api.query(f'up{{job="{JOB}"}} == 1'),
                    timeout=START_TIMEOUT, processes=processes,
                )  # fmt: skip

                async def several_notified() -> bool:
                    return len(Tally(hook.payloads).firing_messages) >= RESTART_AFTER_NOTIFIED

                await stack.wait_until(
                    f"{RESTART_AFTER_NOTIFIED} notifications", several_notified, timeout=STORY_TIMEOUT,
                    processes=processes,
                )  # fmt: skip
            finally:
                await first.__aexit__(None, None, None)
            restarted_at = time.monotonic()
            before_restart = len(Tally(hook.payloads).firing_messages)
            print(f"\nexporter restarted {restarted_at - started:.0f} s in, {before_restart} problems notified")
            await asyncio.sleep(RESTART_DOWNTIME)  # a few failed scrapes: the series go stale
            exporter = await resources.enter_async_context(
                stack.running("exporter-restarted", exporter_argv, workdir=work, cwd=REPO)
            )
            processes = [simulator, am, prom, exporter]

            async def everything_notified() -> bool:
                notified = Tally(hook.payloads).per_vm()
                return all(expected <= notified.get(vm, set()) for vm, expected in EXPECTED.items())

            try:
                await stack.wait_until(
                    "every demo VM's problems at the webhook", everything_notified,
                    timeout=STORY_TIMEOUT, interval=2.0, processes=processes,
                )  # fmt: skip
            except pytest.fail.Exception:
                pytest.fail(f"notified so far: {dict(Tally(hook.payloads).per_vm())}; expected {EXPECTED}")
            seen = len(hook.payloads)
            while True:  # listen until nothing new arrives for a quiet period
                await asyncio.sleep(QUIET_PERIOD)
                if len(hook.payloads) == seen:
                    break
                seen = len(hook.payloads)
            runtime = time.monotonic() - started

    tally = Tally(hook.payloads)
    notified = tally.per_vm()
    problems = len(tally.firing_messages)
    messages = sum(tally.firing_messages.values())
    print(f"{len(hook.payloads)} webhook posts, {messages} firing notifications for {problems} problems")
    for key, count in sorted(tally.firing_messages.items(), key=lambda item: vm_of({"labels": dict(item[0])})):
        labels = dict(key)
        statuses = " ".join(status for status, _ in tally.history[key])
        print(f"  {labels.get('namespace', '')}/{labels.get('name', '')} {labels['alertname']}: {count} ({statuses})")
    print(f"notifications per (VM, root cause): {messages / max(problems, 1):.2f} (target 1.0); run {runtime:.0f} s")

    assert tally.refired() == [], "alerts resolved and fired again (or re-started) at the webhook"
    assert symptoms_notified_with_their_cause(notified) == []
    unexpected = {vm: alerts - EXPECTED.get(vm, set()) for vm, alerts in notified.items()}
    assert {vm: a for vm, a in unexpected.items() if a} == {}
    assert messages == problems, tally.firing_messages
