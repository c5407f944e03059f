from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import prometheus_client
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from structlog.testing import capture_logs

from exporter.state.guest_report import GuestReport
from exporter.state.records import VmKey
from exporter.web.guest_reports import (
    GUEST_REPORT_LIMITER,
    GUEST_REPORTS_PATH,
    NOT_READY_RETRY_AFTER,
    RESULTS,
    build_guest_report_app,
    source_address,
)
from exporter.web.rate_limit import SourceRateLimiter

SAMPLES = Path(__file__).parent.parent / "data" / "guest_reports"
TOKEN = "s3cret-token-0123456789"
JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {TOKEN}", **JSON}
VM = VmKey("prod", "win-sql-01")
METRIC = "kubevirt_vss_exporter_guest_reports_total"


def body(name: str = "healthy") -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


class FakeClock:
    def __init__(self, now: float = 1_757_844_960.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """The app under test with everything it talks to recorded."""

    clock: FakeClock = field(default_factory=FakeClock)
    registry: prometheus_client.CollectorRegistry = field(default_factory=prometheus_client.CollectorRegistry)
    owners: dict[str, VmKey] = field(default_factory=lambda: {"127.0.0.1": VM})
    resolved: list[str] = field(default_factory=list)
    accepted: list[tuple[VmKey, GuestReport]] = field(default_factory=list)
    app_options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> aiohttp.web.Application:
        results = prometheus_client.Counter(
            "kubevirt_vss_exporter_guest_reports", "Guest reports by outcome.", ["result"], registry=self.registry
        )

        def resolve(ip: str) -> VmKey | None:
            self.resolved.append(ip)
            return self.owners.get(ip)

        return build_guest_report_app(
            token=TOKEN,
            resolve_source=resolve,
            accept=lambda key, report: self.accepted.append((key, report)),
            results=results,
            clock=self.clock,
            **self.app_options,
        )

    def counts(self) -> dict[str, float]:
        """Non-zero counter values by result."""
        values = {r: self.registry.get_sample_value(METRIC, {"result": r}) or 0.0 for r in RESULTS}
        return {r: v for r, v in values.items() if v}


@asynccontextmanager
async def serving(harness: Harness) -> AsyncIterator[tuple[TestClient[Any, Any], aiohttp.web.Application]]:
    app = harness.build()
    async with TestServer(app) as server, TestClient(server) as client:
        yield client, app


async def post(harness: Harness, data: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with serving(harness) as (client, _):
        headers = {**JSON, **(headers or {})}
        response = await client.post(GUEST_REPORTS_PATH, data=body() if data is None else data, headers=headers)
        return response.status, await _decoded(response)


async def _decoded(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- acceptance ----------------------------------------------------------------------------------


async def test_valid_report_is_accepted_and_handed_over() -> None:
    harness = Harness()
    status, answer = await post(harness, body("two_failed_writers"), AUTH)

    assert status == 202
    assert answer == {"namespace": "prod", "name": "win-sql-01", "writersFailed": 2}
    ((key, report),) = harness.accepted
    assert key == VM
    assert report.received_at == harness.clock.now
    assert report.hostname == "WIN2022-SQL01"
    assert sorted(w.name for w in report.failed_writers) == ["SqlServerWriter", "System Writer"]
    assert harness.counts() == {"accepted": 1}
    assert harness.resolved == ["127.0.0.1"]


async def test_scheme_is_case_insensitive() -> None:
    status, _ = await post(Harness(), headers={"Authorization": f"bearer {TOKEN}"})
    assert status == 202


async def test_forwarded_for_headers_are_ignored() -> None:
    harness = Harness(owners={"10.0.0.7": VM})
    headers = {**AUTH, "X-Forwarded-For": "10.0.0.7", "X-Real-IP": "10.0.0.7", "Forwarded": "for=10.0.0.7"}
    status, _ = await post(harness, headers=headers)
    assert status == 403
    assert harness.resolved == ["127.0.0.1"]


# --- rejection matrix ----------------------------------------------------------------------------

NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("headers", "data", "owned", "status", "result"),
    [
        ({}, None, True, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, None, True, 401, "unauthorized"),
        ({"Authorization": f"Basic {TOKEN}"}, None, True, 401, "unauthorized"),
        ({"Authorization": "Bearer"}, None, True, 401, "unauthorized"),
        ({"Authorization": f"Bearer {TOKEN}x"}, None, True, 401, "unauthorized"),
        ({"Authorization": "Bearer \u00e9t\u00e9"}, None, True, 401, "unauthorized"),
        (AUTH, None, False, 403, "forbidden"),
        ({}, None, False, 401, "unauthorized"),
        (AUTH, b"{not json", True, 400, "invalid_json"),
        (AUTH, b"\xff\xfe{}", True, 400, "invalid_json"),
        (AUTH, b'{"schemaVersion": NaN}', True, 400, "invalid_json"),
        (AUTH, b"", True, 400, "invalid_json"),
        (AUTH, NESTED, True, 400, "invalid_json"),
        (AUTH, b"[]", True, 400, "invalid_schema"),
        (AUTH, b'{"schemaVersion": 1}', True, 400, "invalid_schema"),
        (AUTH, b'{"schemaVersion": 1, "schemaVersion": 2}', True, 400, "invalid_json"),
        (AUTH, b'{"services": {"VSS": {}, "VSS": {}}}', True, 400, "invalid_json"),
        ({**AUTH, "Content-Type": "text/plain"}, None, True, 415, "unsupported_media_type"),
        ({**AUTH, "Content-Type": "application/x-www-form-urlencoded"}, None, True, 415, "unsupported_media_type"),
        (AUTH, b"x" * (256 * 1024 + 1), True, 413, "too_large"),
        ({}, b"x" * (256 * 1024 + 1), True, 413, "too_large"),
    ],
    ids=[
        "no-token",
        "wrong-token",
        "basic-scheme",
        "empty-bearer",
        "token-prefix",
        "non-ascii-token",
        "unattributed-source",
        "no-token-unattributed",
        "broken-json",
        "not-utf8",
        "nan",
        "empty-body",
        "deeply-nested",
        "not-an-object",
        "schema-incomplete",
        "duplicate-key",
        "duplicate-nested-key",
        "text-plain",
        "form",
        "over-cap",
        "over-cap-before-token",
    ],
)
async def test_rejections(headers: dict[str, str], data: bytes | None, owned: bool, status: int, result: str) -> None:
    harness = Harness(owners={"127.0.0.1": VM} if owned else {})
    with capture_logs() as logs:
        got_status, answer = await post(harness, data, headers)

    assert (got_status, harness.counts()) == (status, {result: 1})
    assert answer["error"] == result
    assert harness.accepted == []
    (event,) = [e for e in logs if e["event"] == "guest_report_rejected"]
    assert (event["result"], event["source"]) == (result, "127.0.0.1")
    assert isinstance(event["reason"], str) and event["reason"]
    assert TOKEN not in repr(logs)


async def test_duplicate_key_is_named_in_the_answer() -> None:
    status, answer = await post(Harness(), b'{"a": 1, "writers": [], "writers": []}', AUTH)
    assert status == 400 and "duplicate key 'writers'" in answer["message"]


async def test_a_report_without_a_content_type_is_refused_with_415() -> None:
    harness = Harness()
    async with serving(harness) as (client, _):
        response = await client.post(
            GUEST_REPORTS_PATH, data=body(), headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": ""}
        )
        assert response.status == 415 and response.headers["Accept-Post"] == "application/json"
    assert harness.counts() == {"unsupported_media_type": 1} and harness.accepted == []


async def test_json_with_a_charset_parameter_is_accepted() -> None:
    status, _ = await post(Harness(), None, {**AUTH, "Content-Type": "application/json; charset=utf-8"})
    assert status == 202


async def test_a_body_over_the_cap_is_answered_413_and_the_connection_closed() -> None:
    async with serving(Harness()) as (client, _):
        response = await client.post(GUEST_REPORTS_PATH, data=b"x" * (256 * 1024 + 1), headers=AUTH)
        assert response.status == 413 and response.headers["Connection"] == "close"


async def test_unauthorized_says_how_to_authenticate() -> None:
    async with serving(Harness()) as (client, _):
        response = await client.post(GUEST_REPORTS_PATH, data=body())
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_token_is_checked_before_the_source() -> None:
    # An unauthenticated caller must not learn which addresses belong to a VM.
    harness = Harness(owners={})
    status, _ = await post(harness, headers={"Authorization": "Bearer wrong"})
    assert status == 401
    assert harness.resolved == []


async def test_invalid_json_message_and_schema_problems() -> None:
    status, answer = await post(Harness(), b'{"a": ', AUTH)
    assert status == 400 and answer["message"].startswith("invalid JSON: Expecting value")

    document = json.loads(body())
    document["volumes"] = [{"path": "x" * 600}] * 40
    status, answer = await post(Harness(), json.dumps(document).encode(), AUTH)
    assert status == 400
    assert 1 < len(answer["problems"]) <= 21
    assert all(len(problem) <= 200 for problem in answer["problems"])


async def test_schema_problems_are_not_logged() -> None:
    document = json.loads(body())
    document["hostname"] = "SECRET-LOOKING-VALUE"
    document["extra"] = True
    with capture_logs() as logs:
        status, _ = await post(Harness(), json.dumps(document).encode(), AUTH)
    assert status == 400
    assert "SECRET-LOOKING-VALUE" not in repr(logs)


async def test_chunked_body_over_cap_is_cut_off() -> None:
    harness = Harness(app_options={"max_body_bytes": 64 * 1024})
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += 16 * 1024
            yield b" " * (16 * 1024)

    async with serving(harness) as (client, _):
        response = await asyncio.wait_for(client.post(GUEST_REPORTS_PATH, data=endless(), headers=AUTH), 10)
        assert response.status == 413
        assert (await response.json())["error"] == "too_large"
    assert harness.counts() == {"too_large": 1}
    assert produced > 64 * 1024


async def test_chunked_body_under_cap_is_accepted() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        data = body()
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    status, _ = await post(Harness(), chunks(), AUTH)
    assert status == 202


async def test_accept_failure_is_a_counted_server_error() -> None:
    harness = Harness()

    def broken_accept(key: VmKey, report: GuestReport) -> None:
        raise RuntimeError("store unavailable")

    results = prometheus_client.Counter("other_guest_reports", "x", ["result"], registry=harness.registry)
    app = build_guest_report_app(
        token=TOKEN, resolve_source=lambda ip: VM, accept=broken_accept, results=results, clock=harness.clock
    )
    async with TestServer(app) as server, TestClient(server) as client:
        response = await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)
        assert response.status == 500
    assert harness.registry.get_sample_value("other_guest_reports_total", {"result": "internal_error"}) == 1


# --- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "result"),
    [
        ("GET", GUEST_REPORTS_PATH, 405, "method_not_allowed"),
        ("PUT", GUEST_REPORTS_PATH, 405, "method_not_allowed"),
        ("GET", "/metrics", 404, "not_found"),
        ("POST", "/api/v1/guest-reports/extra", 404, "not_found"),
        ("POST", "/", 404, "not_found"),
    ],
)
async def test_only_post_to_the_report_path(method: str, path: str, status: int, result: str) -> None:
    harness = Harness()
    async with serving(harness) as (client, _):
        response = await client.request(method, path, data=body(), headers=AUTH)
        assert response.status == status
    assert harness.counts() == {result: 1}
    assert harness.accepted == []


# --- rate limit ------------------------------------------------------------------------------------


async def test_rate_limit_per_source_with_retry_after() -> None:
    harness = Harness(app_options={"rate_limit_per_minute": 3})
    async with serving(harness) as (client, _):
        statuses = [(await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)).status for _ in range(3)]
        limited = await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)
        assert statuses == [202, 202, 202]
        assert limited.status == 429
        assert limited.headers["Retry-After"] == "20"

        harness.clock.now += 20
        assert (await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)).status == 202
        assert (await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)).status == 429
    assert harness.counts() == {"accepted": 4, "rate_limited": 2}


async def test_rate_limit_applies_before_the_token() -> None:
    harness = Harness(app_options={"rate_limit_per_minute": 2})
    async with serving(harness) as (client, _):
        for _ in range(5):
            await client.post(GUEST_REPORTS_PATH, data=b"{}", headers={"Authorization": "Bearer guess"})
    assert harness.counts() == {"unauthorized": 2, "rate_limited": 3}


def test_rate_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        SourceRateLimiter(per_minute=0, max_sources=10, clock=FakeClock())
    with pytest.raises(ValueError):
        build_guest_report_app(
            token="",
            resolve_source=lambda ip: None,
            accept=lambda key, report: None,
            results=prometheus_client.Counter("x", "x", ["result"], registry=None),
        )


# --- source address --------------------------------------------------------------------------------


def _request_from(peer: Any) -> aiohttp.web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: peer if name == "peername" else default
    return make_mocked_request("POST", GUEST_REPORTS_PATH, headers={"X-Forwarded-For": "1.2.3.4"}, transport=transport)


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (("10.244.1.17", 51234), "10.244.1.17"),
        (("::ffff:10.244.1.17", 51234, 0, 0), "10.244.1.17"),
        (("fd00:10:244::11", 51234, 0, 0), "fd00:10:244::11"),
        (("FD00:10:244:0::11", 51234, 0, 0), "fd00:10:244::11"),
        (None, ""),
        (("/run/socket",), "/run/socket"),
    ],
    ids=["ipv4", "ipv4-mapped", "ipv6", "ipv6-normalised", "no-peer", "unix-socket"],
)
def test_source_address(peer: Any, expected: str) -> None:
    assert source_address(_request_from(peer)) == expected


# --- floods ----------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_flood_from_one_source_is_throttled_and_logged_once_per_episode() -> None:
    harness = Harness()
    with capture_logs() as logs:
        async with serving(harness) as (client, _):
            for _ in range(2000):
                async with client.post(GUEST_REPORTS_PATH, data=b"{}", headers={"Authorization": "Bearer x"}) as r:
                    await r.read()
            assert len(_limiter(client)) == 1

    assert harness.counts() == {"unauthorized": 30, "rate_limited": 1970}
    rejected = [e["result"] for e in logs if e["event"] == "guest_report_rejected"]
    assert rejected == ["unauthorized"] * 30 + ["rate_limited"]


@pytest.mark.slow
async def test_flood_from_many_sources_keeps_memory_bounded() -> None:
    sources = [f"127.0.3.{n}" for n in range(1, 101)]
    harness = Harness(app_options={"max_tracked_sources": 32})
    async with serving(harness) as (client, _):
        url = client.make_url(GUEST_REPORTS_PATH)
        async with _sessions(sources) as sessions:

            async def send(count: int) -> None:
                for i in range(count):
                    session = sessions[i % len(sessions)]
                    async with session.post(url, data=b"{}", headers={"Authorization": "Bearer x"}) as r:
                        await r.read()

            await send(300)  # warm up: connections, caches, buckets
            tracemalloc.start()
            try:
                await send(300)  # tracing itself allocates once at first
                gc.collect()
                before = tracemalloc.get_traced_memory()[0]
                await send(1400)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
        assert len(_limiter(client)) == 32

    assert harness.counts() == {"unauthorized": 2000}
    assert grown < 256 * 1024, f"memory grew by {grown} bytes over 1400 rejected requests"


def _limiter(client: TestClient[Any, Any]) -> SourceRateLimiter:
    return client.server.app[GUEST_REPORT_LIMITER]  # type: ignore[index]


@asynccontextmanager
async def _sessions(sources: list[str]) -> AsyncIterator[list[aiohttp.ClientSession]]:
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(ip, 0))) for ip in sources]
    try:
        yield sessions
    finally:
        for session in sessions:
            await session.close()


# --- before the VMIs are listed ------------------------------------------------------------------


async def test_an_unknown_address_before_the_vmis_are_listed_is_told_to_come_back_later() -> None:
    # The VMI behind it may not be listed yet: 503 with a Retry-After, not 403, and counted apart.
    harness = Harness(owners={}, app_options={"attributable": lambda: False, "retry_after": lambda: 77})
    with capture_logs() as logs:
        async with serving(harness) as (client, _):
            response = await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)
            answer = await response.json()

    assert response.status == 503
    assert response.headers["Retry-After"] == "77"
    assert answer["error"] == "not_ready"
    assert harness.counts() == {"not_ready": 1}
    assert harness.accepted == []
    assert [e for e in logs if e["event"] == "guest_report_rejected"] == []  # a fleet of them logs nothing


async def test_a_known_address_is_accepted_before_every_vmi_is_listed() -> None:
    harness = Harness(app_options={"attributable": lambda: False})
    status, _ = await post(harness, body(), AUTH)

    assert status == 202
    assert harness.counts() == {"accepted": 1}


async def test_an_unknown_address_once_the_vmis_are_listed_is_forbidden() -> None:
    listed = False
    harness = Harness(owners={}, app_options={"attributable": lambda: listed})
    async with serving(harness) as (client, _):
        before = await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)
        listed = True
        after = await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)

    assert (before.status, after.status) == (503, 403)
    assert "Retry-After" not in after.headers
    assert harness.counts() == {"not_ready": 1, "forbidden": 1}


async def test_the_token_is_checked_before_saying_not_ready() -> None:
    harness = Harness(owners={}, app_options={"attributable": lambda: False})
    status, _ = await post(harness, body(), {"Authorization": "Bearer wrong"})

    assert status == 401
    assert harness.counts() == {"unauthorized": 1}


async def test_the_default_retry_after_is_spread_over_its_range() -> None:
    harness = Harness(owners={}, app_options={"attributable": lambda: False})
    async with serving(harness) as (client, _):
        waits = set()
        for _ in range(20):  # under the rate limit of one source
            response = await client.post(GUEST_REPORTS_PATH, data=body(), headers=AUTH)
            waits.add(int(response.headers["Retry-After"]))

    low, high = NOT_READY_RETRY_AFTER
    assert all(low <= wait <= high for wait in waits)
    assert len(waits) > 1
