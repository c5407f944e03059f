"""``POST /api/v1/guest-reports``: the ingest of Windows guest reports, as its own aiohttp app.

A report is accepted only with the bearer token and only from an address that belongs to a VMI;
everything else is rejected with a clear status, counted by result and logged once. Until the
first list of VMIs is in, an address that belongs to no VMI may simply not be listed yet: such a
report is answered 503 with a ``Retry-After`` spread over a range, so that a large fleet's guests
come back at different times instead of retrying in step, and none is told it is forbidden.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import prometheus_client
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter import untrusted
from exporter.state.guest_report import GuestReport, InvalidGuestReport, parse_guest_report
from exporter.state.records import VmKey
from exporter.web.rate_limit import SourceRateLimiter
from exporter.web.shard_forwarding import FORWARDED_PATH, ShardForwarder

GUEST_REPORTS_PATH = "/api/v1/guest-reports"
JSON_CONTENT_TYPE = "application/json"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_TRACKED_SOURCES = 4096
MAX_SOURCE_CHARS = 64
_READ_CHUNK = 64 * 1024

ACCEPTED = "accepted"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
TOO_LARGE = "too_large"
INVALID_JSON = "invalid_json"
INVALID_SCHEMA = "invalid_schema"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
RATE_LIMITED = "rate_limited"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
INTERNAL_ERROR = "internal_error"
NOT_READY = "not_ready"
RESULTS = (
    ACCEPTED,
    NOT_READY,
    UNAUTHORIZED,
    FORBIDDEN,
    TOO_LARGE,
    INVALID_JSON,
    INVALID_SCHEMA,
    UNSUPPORTED_MEDIA_TYPE,
    RATE_LIMITED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    INTERNAL_ERROR,
)

#: Seconds a guest is asked to wait before the first list of VMIs is in, drawn uniformly per answer.
NOT_READY_RETRY_AFTER = (30, 120)

_log = structlog.get_logger("exporter.web.guest_reports")


def spread_retry_after() -> int:
    """A Retry-After for a not-ready answer, drawn anew each time so that guests do not retry in step."""
    return random.randint(*NOT_READY_RETRY_AFTER)


GUEST_REPORT_LIMITER = web.AppKey("guest_report_limiter", SourceRateLimiter)


class _Rejected(Exception):
    """A request refused with ``status``; ``reason`` is a short fixed word for the log."""

    def __init__(
        self,
        status: int,
        result: str,
        reason: str,
        body: dict[str, object],
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.result = result
        self.reason = reason
        self.body = body
        self.headers = headers or {}


class _Forward(Exception):
    """The VM belongs to another shard: send ``body`` on to shard ``shard``."""

    def __init__(self, shard: int, body: bytes) -> None:
        super().__init__(shard)
        self.shard = shard
        self.body = body


@dataclass(frozen=True, slots=True)
class _Ingest:
    """Admits one report at a time: each step either passes or raises ``_Rejected``."""

    token: bytes
    resolve_source: Callable[[str], VmKey | None]
    accept: Callable[[VmKey, GuestReport], None]
    results: prometheus_client.Counter
    limiter: SourceRateLimiter
    clock: Callable[[], float]
    max_body_bytes: int
    forwarder: ShardForwarder | None = None
    #: Whether the VMIs have been listed once: before that, an unknown address may be a VMI not listed yet.
    attributable: Callable[[], bool] = lambda: True
    #: Draws the Retry-After of each not-ready answer (seconds).
    retry_after: Callable[[], int] = spread_retry_after

    def count(self, result: str) -> None:
        self.results.labels(result=result).inc()

    async def receive(self, request: web.Request) -> web.Response:
        return await self.respond(request, source_address(request), forwarded=False)

    async def receive_forwarded(self, request: web.Request) -> web.Response:
        """A report another shard received for a VM of this shard, with the guest's address vouched for."""
        source = self.forwarder.vouched_source(request) if self.forwarder is not None else None
        if source is None:
            self.count(UNAUTHORIZED)
            peer = source_address(request)
            _log.warning("guest_report_rejected", result=UNAUTHORIZED, source=peer, reason="shard_token")
            return web.json_response({"error": UNAUTHORIZED}, status=401, headers={"WWW-Authenticate": "Bearer"})
        return await self.respond(request, source, forwarded=True)

    async def respond(self, request: web.Request, source: str, *, forwarded: bool) -> web.Response:
        try:
            key, report = await self.admit(request, source, forwarded=forwarded)
            self.accept(key, report)
        except _Forward as forward:
            assert self.forwarder is not None
            return await self.forwarder.forward(forward.shard, source, forward.body)
        except _Rejected as rejected:
            self.count(rejected.result)
            # A flood from one source logs once; deferring a fleet while it is being listed is counted only.
            quiet = rejected.result == NOT_READY or (
                rejected.result == RATE_LIMITED and not self.limiter.first_refusal(source)
            )
            if not quiet:
                _log.warning("guest_report_rejected", result=rejected.result, source=source, reason=rejected.reason)
            response = web.json_response(rejected.body, status=rejected.status, headers=rejected.headers)
            if rejected.status == 413:
                response.force_close()  # the rest of the body is not read, so the connection cannot be reused
            return response
        except Exception:
            self.count(INTERNAL_ERROR)
            _log.exception("guest_report_failed", source=source)
            return web.json_response({"error": INTERNAL_ERROR}, status=500)
        self.count(ACCEPTED)
        return web.json_response(
            {"namespace": key.namespace, "name": key.name, "writersFailed": report.writers_failed}, status=202
        )

    async def admit(self, request: web.Request, source: str, *, forwarded: bool) -> tuple[VmKey, GuestReport]:
        # Order: rate limit first, so guessing tokens or addresses is throttled before any work; then
        # the declared size, refused before reading a byte; then the token before the source, so an
        # unauthenticated caller cannot learn which addresses belong to a VM (403 vs 401); the body
        # is read, bounded, only for authenticated and attributed callers, then decoded and validated.
        # A report for a VM of another shard is read the same way and sent on (never twice).
        self.check_rate(source)
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise _Rejected(413, TOO_LARGE, "declared_length", _too_large(self.max_body_bytes))
        if not forwarded:
            self.check_token(request)
        key, owner = self.locate(source, forwarded=forwarded)
        if request.content_type != JSON_CONTENT_TYPE:
            raise _Rejected(
                415,
                UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                {"error": UNSUPPORTED_MEDIA_TYPE, "message": f"send the report as {JSON_CONTENT_TYPE}"},
                headers={"Accept-Post": JSON_CONTENT_TYPE},
            )
        body = await _read_bounded(request, self.max_body_bytes)
        if body is None:
            raise _Rejected(413, TOO_LARGE, "body_length", _too_large(self.max_body_bytes))
        if owner is not None:
            raise _Forward(owner, body)
        assert key is not None
        return key, self.parse(body)

    def locate(self, source: str, *, forwarded: bool) -> tuple[VmKey | None, int | None]:
        """This shard's VM behind ``source``, or else the other shard that owns it (not for forwarded reports)."""
        key = self.resolve_source(source) if source else None
        if key is None and not forwarded and self.forwarder is not None and source:
            owner = self.forwarder.owner_of(source)
            if owner is not None:
                return None, owner
        return self.attribute(key, source), None

    def check_rate(self, source: str) -> None:
        wait = self.limiter.take(source)
        if wait > 0:
            retry_after = str(max(1, math.ceil(wait)))
            raise _Rejected(429, RATE_LIMITED, "rate", {"error": RATE_LIMITED}, headers={"Retry-After": retry_after})

    def check_token(self, request: web.Request) -> None:
        presented = _bearer_token(request.headers.get("Authorization", ""))
        if presented is None or not hmac.compare_digest(presented, self.token):
            reason = "missing_token" if presented is None else "bad_token"
            raise _Rejected(401, UNAUTHORIZED, reason, {"error": UNAUTHORIZED}, headers={"WWW-Authenticate": "Bearer"})

    def attribute(self, key: VmKey | None, source: str) -> VmKey:
        if key is None and not self.attributable():
            raise _Rejected(
                503,
                NOT_READY,
                "vmis_not_listed",
                {"error": NOT_READY, "message": "the exporter has not listed every VMI yet; retry later"},
                headers={"Retry-After": str(self.retry_after())},
            )
        if key is None:
            raise _Rejected(
                403,
                FORBIDDEN,
                "unattributed_source",
                {"error": FORBIDDEN, "message": f"source address {source or 'unknown'} belongs to no VMI"},
            )
        return key

    def parse(self, body: bytes) -> GuestReport:
        try:
            document = json.loads(
                body.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
            )
        except (ValueError, RecursionError) as error:
            message = str(error)[:200] if isinstance(error, ValueError) else "nested too deeply"
            raise _Rejected(
                400,
                INVALID_JSON,
                "json_decode",
                {"error": INVALID_JSON, "message": f"invalid JSON: {message}"},
            ) from None
        try:
            # Strings end up in labels: no lone surrogates, control or bidirectional characters.
            return parse_guest_report(untrusted.clean(document), received_at=self.clock())
        except InvalidGuestReport as invalid:
            raise _Rejected(
                400, INVALID_SCHEMA, "schema", {"error": INVALID_SCHEMA, "problems": invalid.problems}
            ) from None


def _count_unrouted(count: Callable[[str], None]) -> Middleware:
    """Middleware that counts and logs requests to other paths or with other methods."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as error:
            unrouted = isinstance(error, web.HTTPNotFound)
            result, reason = (NOT_FOUND, "path") if unrouted else (METHOD_NOT_ALLOWED, "method")
            count(result)
            _log.warning("guest_report_rejected", result=result, source=source_address(request), reason=reason)
            raise

    return middleware


def build_guest_report_app(
    *,
    token: str,
    resolve_source: Callable[[str], VmKey | None],
    accept: Callable[[VmKey, GuestReport], None],
    results: prometheus_client.Counter,
    clock: Callable[[], float] = time.time,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rate_limit_per_minute: int = 30,
    max_tracked_sources: int = DEFAULT_MAX_TRACKED_SOURCES,
    forwarder: ShardForwarder | None = None,
    attributable: Callable[[], bool] = lambda: True,
    retry_after: Callable[[], int] | None = None,
) -> web.Application:
    """The ingest app; ``results`` is a Counter labelled ("result",). With ``forwarder`` (several
    shards), reports for other shards' VMs go on to them, and theirs are taken at ``FORWARDED_PATH``.
    ``attributable`` says whether every VMI has been listed once: until then an unknown address is
    answered 503 with a ``retry_after()`` (seconds) instead of 403."""
    if not token:
        raise ValueError("the guest report token must not be empty")
    ingest = _Ingest(
        token=token.encode("utf-8"),
        resolve_source=resolve_source,
        accept=accept,
        results=results,
        limiter=SourceRateLimiter(per_minute=rate_limit_per_minute, max_sources=max_tracked_sources, clock=clock),
        clock=clock,
        max_body_bytes=max_body_bytes,
        forwarder=forwarder,
        attributable=attributable,
        retry_after=retry_after or spread_retry_after,
    )
    app = web.Application(middlewares=[_count_unrouted(ingest.count)], client_max_size=max_body_bytes)
    app[GUEST_REPORT_LIMITER] = ingest.limiter
    app.router.add_post(GUEST_REPORTS_PATH, ingest.receive)
    if forwarder is not None:
        app.router.add_post(FORWARDED_PATH, ingest.receive_forwarded)
    return app


def source_address(request: web.Request) -> str:
    """The TCP peer address, IPv4-mapped IPv6 unwrapped; forwarding headers are never consulted."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return ""
    host = str(peer[0])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:MAX_SOURCE_CHARS]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


async def _read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes (chunked bodies have no length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _bearer_token(authorization: str) -> bytes | None:
    """The credentials of a ``Bearer`` Authorization header (scheme case-insensitive), else None."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.casefold() != "bearer" or not credentials.strip():
        return None
    return credentials.strip().encode("utf-8", "replace")


def _too_large(limit: int) -> dict[str, object]:
    return {"error": TOO_LARGE, "message": f"body larger than {limit} bytes"}


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all distinct: a repeated key is ambiguous (which one counts?), so refused."""
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key[:64]!r}")
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs means a repeat")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")
