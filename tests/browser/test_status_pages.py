"""The status pages in headless Chromium: Debian's ``chromium`` driven by Playwright, no browser download.

Screenshots and the 10,000-VM timing are written to ``test-artifacts/browser/`` (or ``$TEST_ARTIFACTS``).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from exporter.render.store import MetricsStore
from exporter.resources import SNAPSHOTS, VMIS
from exporter.self_metrics import SelfMetrics
from exporter.state.fleet import Fleet
from exporter.web.app import build_app
from exporter.web.health import Readiness
from exporter.web.inventory import Inventory
from exporter.web.metrics import MetricsEndpoint
from tests.demo import DEMO_VMS, running_demo
from tests.web.hostile import (
    HOSTILE_DESCRIPTION,
    HOSTILE_KEY,
    HOSTILE_MESSAGE,
    HOSTILE_NAME,
    HOSTILE_WRITER,
    NOW,
    hostile_fleet,
    load,
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "browser"
LARGE_FLEET = 10_000


def chromium_path() -> str:
    """Debian's chromium; missing (or Playwright missing) fails under CI and skips elsewhere."""
    path = shutil.which("chromium") or shutil.which("/usr/bin/chromium")
    problem = None if path else "the chromium package is not installed (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problem = "Playwright is not installed (pip install -e '.[test]')"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert path is not None
    return path


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium"):
        chromium_path()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser: Any) -> Any:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    # A Content-Security-Policy violation or a script error shows up here.
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors
    return page


async def row_names(page: Any) -> list[str]:
    return [text.strip() for text in await page.locator("#fleet tbody tr td:nth-child(2)").all_inner_texts()]


@pytest.mark.slow
async def test_fleet_page_lists_filters_and_sorts_the_demo_fleet(tmp_path: Path, browser: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with running_demo(tmp_path) as demo:
        page = await new_page(browser)
        await page.goto(demo.url + "/")
        assert "SIMULATION" in await page.locator(".banner").inner_text()
        assert f"Synced; {len(DEMO_VMS)} VMs exported." in await page.locator("main").inner_text()
        names = await row_names(page)
        assert sorted(
            f"{ns}/{name}"
            for ns, name in zip(
                await page.locator("#fleet tbody tr td:nth-child(1)").all_inner_texts(), names, strict=True
            )
        ) == sorted(DEMO_VMS)
        first_healthy = next(i for i, c in enumerate(await _row_classes(page)) if c == "good")
        assert all(c == "bad" for c in (await _row_classes(page))[:first_healthy])  # problems first
        await page.screenshot(path=str(ARTIFACTS / "fleet.png"), full_page=True)

        # Filtering: free text, then a select that submits itself (the page's script).
        await page.fill("input[name=q]", "win-")
        await page.press("input[name=q]", "Enter")
        await page.wait_for_load_state()
        filtered = await row_names(page)
        assert filtered and all("win-" in name for name in filtered) and len(filtered) == 8
        await page.select_option("select[name=agent]", "unsupported")
        await page.wait_for_url("**agent=unsupported**")
        assert await row_names(page) == ["win-build-01"]

        # Sorting: by name, then the same header again for descending.
        await page.goto(demo.url + "/")
        await page.click("th a[data-sort=name]")
        await page.wait_for_url("**sort=name**")
        ascending = await row_names(page)
        assert ascending == sorted(ascending)
        await page.click("th a[data-sort=name]")
        await page.wait_for_url("**dir=desc**")
        assert await row_names(page) == sorted(ascending, reverse=True)
        assert page.dialogs == [] and page.console_errors == []


async def _row_classes(page: Any) -> list[str]:
    return await page.locator("#fleet tbody tr").evaluate_all("rows => rows.map(r => r.className)")


@pytest.mark.slow
async def test_vm_page_of_the_add_volume_failure(tmp_path: Path, browser: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with running_demo(tmp_path) as demo:

        async def failed() -> bool:
            detail = await demo.api("/api/v1/vms/finance/win-exchange-01")
            error = detail.get("last_freeze_error") or {}
            return error.get("reason") == "add_volume_to_snapshot_set" and bool(error.get("mount_point"))

        await demo.wait_for("win-exchange-01's add-volume failure", failed)
        detail = await demo.api("/api/v1/vms/finance/win-exchange-01")
        error = detail["last_freeze_error"]
        page = await new_page(browser)
        await page.goto(demo.url + "/vm/finance/win-exchange-01")
        freeze = await page.locator("#freeze-error").inner_text()
        for value in (error["reason"], error["cause"], error["volume"], error["mount_point"]):
            assert value and value in freeze, value
        diagnosis = await page.locator("#diagnosis").inner_text()
        assert "Freezes fail: add_volume_to_snapshot_set" in diagnosis
        assert "drive letter" in await page.locator("#next-steps").inner_text()
        fail_rows = await page.locator("#checks tr.status-fail td:first-child").all_inner_texts()
        assert fail_rows == [c["name"] for c in detail["checks"] if c["status"] == "fail"]
        links = await page.locator("#problems a").evaluate_all("links => links.map(a => a.href)")
        assert any(link.endswith("/KubevirtVssFreezeAddVolumeFailed.md") for link in links)
        await page.screenshot(path=str(ARTIFACTS / "vm-win-exchange-01.png"), full_page=True)
        assert page.dialogs == [] and page.console_errors == []


@pytest.mark.slow
async def test_hostile_values_are_shown_as_text(browser: Any) -> None:
    inventory = Inventory(hostile_fleet(), clock=lambda: NOW)
    app = build_app(endpoint=MetricsEndpoint(MetricsStore(), SelfMetrics()), readiness=Readiness(), inventory=inventory)
    async with TestServer(app) as server:
        page = await new_page(browser)
        await page.goto(str(server.make_url("/")))
        assert HOSTILE_NAME in await page.locator("#fleet").inner_text()
        await page.click(f"#fleet a:text-is('{HOSTILE_NAME}')")
        await page.wait_for_url("**/vm/**")
        assert await page.locator("#vm-name").inner_text() == HOSTILE_NAME
        assert await page.locator("#description").inner_text() == HOSTILE_DESCRIPTION
        assert HOSTILE_MESSAGE in await page.locator("pre.message").inner_text()
        assert HOSTILE_WRITER in await page.locator("#guest-report table.writers").inner_text()
        assert await page.locator("svg, img, b:not(#fleet b), script:not([src])").count() == 0
        assert page.dialogs == [] and page.console_errors == []
        assert HOSTILE_KEY.name in await page.title()


def large_fleet(vms: int) -> Fleet:
    """``vms`` Windows and Linux VMs in 20 namespaces, one snapshot each, varied health."""
    fleet = Fleet(on_state=lambda key, state: None)
    template_vmi = load("kubevirt/vmi-windows-agentconnected.json")
    template_snapshot = load("kubevirt/vmsnapshot-succeeded-online-guestagent.json")
    vmis, snapshots = [], []
    for i in range(vms):
        namespace, name = f"team-{i % 20:02d}", f"vm-{i:05d}"
        vmi = copy.deepcopy(template_vmi)
        vmi["metadata"].update(namespace=namespace, name=name, uid=f"vmi-{i}", resourceVersion=str(i + 1))
        if i % 7 == 0:
            vmi["status"]["conditions"] = [c for c in vmi["status"]["conditions"] if c["type"] != "AgentConnected"]
        snapshot = copy.deepcopy(template_snapshot)
        snapshot["metadata"].update(namespace=namespace, name=f"{name}-snap", uid=f"snap-{i}", resourceVersion="1")
        snapshot["spec"]["source"]["name"] = name
        if i % 5 == 0:
            snapshot["status"]["indications"] = ["NoGuestAgent", "Online"]
        vmis.append(vmi)
        snapshots.append(snapshot)
    fleet.replace(VMIS.name, vmis, NOW)
    fleet.replace(SNAPSHOTS.name, snapshots, NOW)
    return fleet


@pytest.mark.slow
async def test_a_10k_vm_fleet_page_renders_quickly(browser: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the figures (no timed assertion); the benchmark in benchmarks/status_page.py goes further."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    fleet = large_fleet(LARGE_FLEET)
    inventory = Inventory(fleet, clock=lambda: NOW)
    app = build_app(endpoint=MetricsEndpoint(MetricsStore(), SelfMetrics()), readiness=Readiness(), inventory=inventory)
    async with TestServer(app) as server:
        page = await new_page(browser)
        loads: list[float] = []
        for path in ("/", "/?sort=level&dir=desc", "/?q=vm-09", "/?problems=1&page=20", "/", "/"):
            started = time.perf_counter()
            await page.goto(str(server.make_url(path)), wait_until="load")
            loads.append(time.perf_counter() - started)
        timing = await page.evaluate(
            "() => { const t = performance.getEntriesByType('navigation')[0];"
            " return {response: t.responseEnd - t.requestStart, load: t.loadEventEnd - t.startTime}; }"
        )
        assert f"of {LARGE_FLEET} VMs match" in await page.locator("#matched").inner_text()
        assert await page.locator("#fleet tbody tr").count() == 50
        await page.screenshot(path=str(ARTIFACTS / "fleet-10k.png"))
    figures = {
        "vms": LARGE_FLEET,
        "page_load_seconds": [round(x, 4) for x in loads],
        "median_seconds": round(statistics.median(loads), 4),
        "max_seconds": round(max(loads), 4),
        "last_navigation_ms": timing,
    }
    (ARTIFACTS / "fleet-10k-timing.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    with capsys.disabled():
        print(
            f"\n10,000-VM fleet page in Chromium: median {figures['median_seconds'] * 1000:.0f} ms, "
            f"max {figures['max_seconds'] * 1000:.0f} ms over {len(loads)} loads (request to load event)"
        )
