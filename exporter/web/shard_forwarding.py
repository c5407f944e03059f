"""Guest reports between shards: a report that reaches a shard which does not own the VM goes on to the owner.

The receiving shard has already checked the guest's token and rate; it forwards the body with the
guest's address in ``SOURCE_HEADER``, authenticated by a token only the shards know (a guest knows
the guest-report token, so that one must not vouch for an address). The owner attributes the
address against its own VMIs, as for a direct report, and its answer goes back to the guest.
A forwarded report is never forwarded again. Forwards in flight are bounded, each has a timeout,
and every one is counted by result.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web

FORWARDED_PATH = "/api/v1/guest-reports/forwarded"
SOURCE_HEADER = "X-Guest-Report-Source"
DEFAULT_MAX_IN_FLIGHT = 32
DEFAULT_TIMEOUT = 5.0
# Results of kubevirt_vss_exporter_guest_report_forwards_total.
FORWARDED = "forwarded"  # the owner answered 2xx
REFUSED = "refused"  # the owner answered 4xx (its answer goes back to the guest)
FAILED = "failed"  # no answer, a timeout or a 5xx
OVERLOADED = "overloaded"  # too many forwards in flight already
FORWARD_RESULTS = (FORWARDED, REFUSED, FAILED, OVERLOADED)

_log = structlog.get_logger("exporter.web.shard_forwarding")


class ShardForwarder:
    """Sends reports on to their owning shard at ``url_template.format(shard=N)``."""

    def __init__(
        self,
        *,
        url_template: str,
        token: str,
        owner_of: Callable[[str], int | None],
        results: Any,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if "{shard}" not in url_template:
            raise ValueError("the forward URL template must contain {shard}")
        if not token:
            raise ValueError("the shard forwarding token must not be empty")
        self.url_template = url_template
        self.owner_of = owner_of
        self._token = token.encode("utf-8")
        self._results = results
        self._slots = asyncio.Semaphore(max_in_flight)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def vouched_source(self, request: web.Request) -> str | None:
        """The guest's address a forwarding shard vouches for, or None without the shards' token."""
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        presented = credentials.strip().encode("utf-8", "replace")
        if scheme.casefold() != "bearer" or not hmac.compare_digest(presented, self._token):
            return None
        source = request.headers.get(SOURCE_HEADER, "").strip()
        return source[:64] or None

    async def forward(self, shard: int, source: str, body: bytes) -> web.Response:
        """POST ``body`` to the owner; relay its status and JSON answer (502/503 when it cannot be reached)."""
        if self._slots.locked():
            self._count(OVERLOADED)
            return web.json_response({"error": "forward_overloaded"}, status=503, headers={"Retry-After": "5"})
        async with self._slots:
            url = self.url_template.format(shard=shard)
            headers = {
                "Authorization": f"Bearer {self._token.decode()}",
                SOURCE_HEADER: source,
                "Content-Type": "application/json",
            }
            try:
                async with self._client().post(url, data=body, headers=headers) as response:
                    answer = await response.content.read(64 * 1024)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                self._count(FAILED)
                _log.warning("guest_report_forward_failed", shard=shard, source=source, error=type(error).__name__)
                return web.json_response({"error": "forward_failed", "shard": shard}, status=502)
        if status >= 500:
            self._count(FAILED)
            _log.warning("guest_report_forward_failed", shard=shard, source=source, status=status)
            return web.json_response({"error": "forward_failed", "shard": shard}, status=502)
        self._count(FORWARDED if status < 400 else REFUSED)
        return web.Response(body=answer, status=status, content_type="application/json")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def _count(self, result: str) -> None:
        self._results.labels(result=result).inc()
