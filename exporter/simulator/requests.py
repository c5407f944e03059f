"""What the simulated API was asked, counted by kind, so a benchmark can measure a client's load.

Served as JSON at ``/simulator/v1/requests`` (behind the same token as everything else).
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web

REQUESTS_PATH = "/simulator/v1/requests"
KINDS = ("list", "watch", "guestosinfo", "other_subresource", "log", "get", "discovery")


def kind_of(request: web.Request) -> str:
    """One of ``KINDS`` for a request to the API paths this simulator serves."""
    path = request.path
    parts = path.strip("/").split("/")
    if path.startswith("/apis/subresources.kubevirt.io/"):
        return "guestosinfo" if parts[-1] == "guestosinfo" else "other_subresource"
    if path.endswith("/log"):
        return "log"
    core = parts[0] == "api"
    rest = parts[2:] if core else parts[3:]  # after /api/<v> or /apis/<g>/<v>
    if parts[0] not in ("api", "apis") or not rest:
        return "discovery"
    if request.query.get("watch") in ("1", "true", "True"):
        return "watch"
    # a collection is <r> or namespaces/<ns>/<r>
    if len(rest) == 1 or (len(rest) == 3 and rest[0] == "namespaces"):
        return "list"
    return "get"


class RequestCounts:
    """Requests served so far, by kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def count(self, request: web.Request) -> None:
        if request.path != REQUESTS_PATH:
            self.counts[kind_of(request)] += 1

    async def handle(self, _: web.Request) -> web.Response:
        return web.json_response({kind: self.counts.get(kind, 0) for kind in KINDS})
