"""/metrics over HTTP: Accept × Accept-Encoding → content type and body; /healthz and /readyz."""

from __future__ import annotations

import gzip

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.render.store import MetricsStore
from exporter.self_metrics import SelfMetrics
from exporter.state.records import VmKey, VmState
from exporter.web.app import build_app
from exporter.web.health import Readiness
from exporter.web.metrics import MetricsEndpoint

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture
async def client():
    store = MetricsStore()
    store.put(VmKey("ns", "vm"), VmState(key=VmKey("ns", "vm"), phase="Running", agent_connected=True))
    readiness = Readiness()
    readiness.expect(["virtualmachineinstances"])
    app = build_app(endpoint=MetricsEndpoint(store, SelfMetrics()), readiness=readiness)
    async with TestClient(TestServer(app)) as test_client:
        test_client.readiness = readiness  # type: ignore[attr-defined]
        test_client.store = store  # type: ignore[attr-defined]
        yield test_client


@pytest.mark.parametrize(
    ("accept", "encoding", "content_type", "gzipped"),
    [
        ("", "", TEXT, False),
        ("text/plain", "gzip", TEXT, True),
        (
            "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "",
            OPENMETRICS,
            False,
        ),
        ("application/openmetrics-text;version=1.0.0", "gzip, deflate", OPENMETRICS, True),
        ("*/*", "identity", TEXT, False),
    ],
)
async def test_negotiation(client, accept: str, encoding: str, content_type: str, gzipped: bool) -> None:
    response = await client.get(
        "/metrics", headers={"Accept": accept, "Accept-Encoding": encoding}, auto_decompress=False
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    raw = await response.read()
    body = gzip.decompress(raw).decode() if gzipped else raw.decode()
    assert (response.headers.get("Content-Encoding") == "gzip") is gzipped
    if content_type == OPENMETRICS:
        assert body.endswith("# EOF\n")
        parsed = list(parse_openmetrics(body))
        # Every *_info family, the exporter's own build info included, is of the info type.
        assert {f.name for f in parsed if f.type == "info"} >= {"kubevirt_vss_vm", "kubevirt_vss_exporter_build"}
        assert [f.name for f in parsed if f.name.endswith("_info")] == []
        families = {f.name + ("_info" if f.type == "info" else "") for f in parsed}
    else:
        assert "# EOF" not in body
        families = {f.name for f in parse_text(body)}
    assert {"kubevirt_vss_agent_connected", "kubevirt_vss_exporter_build_info"} <= families


async def test_cached_gzip_member_is_refreshed_after_a_change(client) -> None:
    first = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert 'name="other"' not in await first.text()
    client.store.put(VmKey("ns", "other"), VmState(key=VmKey("ns", "other"), phase="Stopped"))
    second = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert 'kubevirt_vss_vm_info{namespace="ns",name="other"' in await second.text()


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).status == 200
    not_ready = await client.get("/readyz")
    assert not_ready.status == 503
    assert "virtualmachineinstances" in await not_ready.text()
    client.readiness.mark_synced("virtualmachineinstances")
    assert (await client.get("/readyz")).status == 200
    index = await client.get("/")
    assert index.status == 200 and "/metrics" in await index.text()


async def test_unknown_path_and_method(client) -> None:
    assert (await client.get("/nope")).status == 404
    assert (await client.post("/metrics", data=b"x")).status == 405
