"""The status pages and the JSON API over HTTP: content, escaping, headers, 404s."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer

from exporter.render.store import MetricsStore
from exporter.self_metrics import SelfMetrics
from exporter.web.app import build_app
from exporter.web.health import Readiness
from exporter.web.inventory import Inventory
from exporter.web.metrics import MetricsEndpoint
from tests.web.hostile import HOSTILE_KEY, HOSTILE_MESSAGE, HOSTILE_MOUNT, NOW, PAYLOADS, hostile_fleet

HOSTILE_PATH = f"/vm/{quote(HOSTILE_KEY.namespace, safe='')}/{quote(HOSTILE_KEY.name, safe='')}"


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    inventory = Inventory(hostile_fleet(), clock=lambda: NOW, simulated=True)
    app = build_app(endpoint=MetricsEndpoint(MetricsStore(), SelfMetrics()), readiness=Readiness(), inventory=inventory)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_fleet_page_lists_vms_problems_first_with_a_simulation_banner(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 200 and response.content_type == "text/html"
    body = await response.text()
    assert "SIMULATION" in body
    assert body.index(html.escape(HOSTILE_KEY.name)) < body.index("win-ad-01")  # problems first
    assert "/static/status.css" in body and "https://" not in body.split("<main>")[0]  # nothing from a CDN
    assert "Content-Security-Policy" in response.headers
    assert "Starting: no resource is being listed yet." in body  # this app's Readiness expects nothing


async def test_vm_page_shows_the_evidence_and_the_diagnosis(client: TestClient) -> None:
    response = await client.get(HOSTILE_PATH)
    assert response.status == 200
    body = await response.text()
    for section in ("id='diagnosis'", "id='signals'", "id='freeze-error'", "id='snapshots'", "id='guest-report'"):
        assert section in body
    assert "add_volume_to_snapshot_set" in body and "writers_stable" in body
    assert "KubevirtVssWritersFailed.md" in body


@pytest.mark.parametrize("path", ["/", HOSTILE_PATH, "/?q=%3Csvg%20onload%3Dalert(7)%3E"])
async def test_hostile_strings_are_escaped_in_pages(client: TestClient, path: str) -> None:
    body = await (await client.get(path)).text()
    for payload in (*PAYLOADS, "<svg onload=alert(7)>"):
        assert payload not in body, payload
    assert "<svg" not in body and "<img" not in body and "<script>" not in body and "<b " not in body


@pytest.mark.parametrize("path", ["/api/v1/vms", "/api/v1/vms" + HOSTILE_PATH[3:]])
async def test_the_api_is_json_that_a_browser_will_not_sniff_as_html(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.content_type == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_vm_page_shows_hostile_values_as_text(client: TestClient) -> None:
    body = await (await client.get(HOSTILE_PATH)).text()
    for payload in PAYLOADS:
        assert html.escape(payload, quote=True) in body, payload


async def test_the_api_returns_the_same_diagnosis_as_the_page(client: TestClient) -> None:
    detail = await (await client.get("/api/v1/vms" + HOSTILE_PATH[3:])).json()
    assert detail["vm"] == f"{HOSTILE_KEY.namespace}/{HOSTILE_KEY.name}"
    assert detail["healthy"] is False
    assert detail["last_freeze_error"]["message"].endswith(HOSTILE_MESSAGE)
    assert detail["last_freeze_error"]["mount_point"] == HOSTILE_MOUNT  # the volume, mapped by guestosinfo
    failing = [c["name"] for c in detail["checks"] if c["status"] == "fail"]
    assert failing == ["writers_stable", "last_snapshot_consistent", "freeze_not_failing"]
    assert {w["name"] for w in detail["guest_report"]["writers"] if w["failed"]} >= {PAYLOADS[3]}
    page = await (await client.get(HOSTILE_PATH)).text()
    assert detail["check_runbooks"]["writers_stable"].endswith("/KubevirtVssWritersFailed.md")
    row = page.split("<td>writers_stable</td><td class='status'>fail</td>", 1)[1].split("</tr>", 1)[0]
    assert "KubevirtVssWritersFailed.md'>runbook</a>" in row
    for problem in detail["problems"]:
        assert html.escape(problem["text"], quote=True) in page


async def test_the_api_lists_filters_and_pages(client: TestClient) -> None:
    listing = await (await client.get("/api/v1/vms")).json()
    assert listing["total"] == 2 and listing["unhealthy"] == 1 and listing["simulated"] is True
    assert [item["name"] for item in listing["items"]] == [HOSTILE_KEY.name, "win-ad-01"]
    assert listing["counts"]["last_snapshot_level"]["0"] == 1
    only_healthy = await (await client.get("/api/v1/vms", params={"q": "win-ad"})).json()
    assert [item["name"] for item in only_healthy["items"]] == ["win-ad-01"]
    paged = await (await client.get("/api/v1/vms", params={"per_page": "1", "page": "2"})).json()
    assert paged["pages"] == 2 and [item["name"] for item in paged["items"]] == ["win-ad-01"]


async def test_fleet_page_pages(client: TestClient) -> None:
    first = await (await client.get("/", params={"per_page": "1"})).text()
    assert "rel='next' href='/?page=2&amp;per_page=1'" in first and "rel='prev'" not in first
    second = await (await client.get("/", params={"per_page": "1", "page": "2"})).text()
    assert "win-ad-01" in second and "rel='prev' href='/?per_page=1'" in second


async def test_runbooks_are_linked_from_the_configured_base_url() -> None:
    inventory = Inventory(hostile_fleet(), clock=lambda: NOW, runbook_base_url="https://wiki.internal/rb/")
    app = build_app(
        endpoint=MetricsEndpoint(MetricsStore(), SelfMetrics()), readiness=Readiness(), inventory=inventory
    )
    async with TestClient(TestServer(app)) as test_client:
        body = await (await test_client.get(HOSTILE_PATH)).text()
    assert "https://wiki.internal/rb/KubevirtVssWritersFailed.md" in body and "github.com" not in body


async def test_unknown_vm_and_unknown_asset_are_404(client: TestClient) -> None:
    assert (await client.get("/vm/finance/nope")).status == 404
    assert (await client.get("/api/v1/vms/finance/nope")).status == 404
    assert (await client.get("/static/../../etc/passwd")).status == 404
    assert (await client.get("/static/other.js")).status == 404
    css = await client.get("/static/status.css")
    assert css.status == 200 and css.content_type == "text/css"


def test_static_assets_are_package_data() -> None:
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["exporter"]
    assets = [p.relative_to(root / "exporter").as_posix() for p in (root / "exporter/web/static").iterdir()]
    assert assets and all(any(fnmatch.fnmatch(a, pattern) for pattern in patterns) for a in assets)
