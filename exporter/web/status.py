"""The status pages (``/``, ``/vm/<namespace>/<name>``) and the JSON API (``/api/v1/vms``).

Both read the same ``Inventory``; the pages render what the API returns. Nothing here runs on
the /metrics path.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from aiohttp import web

from exporter.state.records import VmKey
from exporter.web.fleet_table import FleetQuery, fleet_page
from exporter.web.html import fleet_html, vm_html
from exporter.web.inventory import Inventory

# The pages load only their own script and style sheet; nothing inline can run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STATIC_TYPES = {"status.css": "text/css", "status.js": "text/javascript", "favicon.svg": "image/svg+xml"}


def _static(name: str) -> bytes:
    return resources.files("exporter.web").joinpath("static", name).read_bytes()


def _key(request: web.Request) -> VmKey:
    return VmKey(request.match_info["namespace"], request.match_info["name"])


def add_status_routes(app: web.Application, inventory: Inventory, status: Callable[[], str]) -> None:
    """Register the pages, the API and the static files on ``app``."""
    static = {name: _static(name) for name in STATIC_TYPES}

    async def fleet(request: web.Request) -> web.Response:
        query = FleetQuery.parse(request.query)
        body = fleet_html(
            fleet_page(inventory.rows(), query),
            now=inventory.clock(),
            simulated=inventory.simulated,
            status=status(),
        )
        return web.Response(text=body, content_type="text/html", headers=SECURITY_HEADERS)

    async def vm(request: web.Request) -> web.Response:
        detail = inventory.detail(_key(request))
        if detail is None:
            raise web.HTTPNotFound(text="no such VM in this exporter\n", headers=SECURITY_HEADERS)
        return web.Response(text=vm_html(detail), content_type="text/html", headers=SECURITY_HEADERS)

    async def api_list(request: web.Request) -> web.Response:
        query = FleetQuery.parse(request.query)
        result = fleet_page(inventory.rows(), query)
        return web.json_response(
            {
                "simulated": inventory.simulated,
                "total": result.total,
                "matched": result.matched,
                "unhealthy": result.unhealthy,
                "page": query.page,
                "per_page": query.per_page,
                "pages": result.pages,
                "counts": {"last_snapshot_level": dict(result.levels), "agent": dict(result.agents)},
                "items": [row.to_dict() for row in result.rows],
            },
            headers=SECURITY_HEADERS,
        )

    async def api_vm(request: web.Request) -> web.Response:
        detail = inventory.detail(_key(request))
        if detail is None:
            return web.json_response({"error": "not found"}, status=404, headers=SECURITY_HEADERS)
        return web.json_response(detail, headers=SECURITY_HEADERS)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["file"]
        if name not in static:
            raise web.HTTPNotFound()
        headers = {**SECURITY_HEADERS, "Cache-Control": "max-age=3600"}
        return web.Response(body=static[name], content_type=STATIC_TYPES[name], headers=headers)

    app.router.add_get("/", fleet)
    app.router.add_get("/vm/{namespace}/{name}", vm)
    app.router.add_get("/api/v1/vms", api_list)
    app.router.add_get("/api/v1/vms/{namespace}/{name}", api_vm)
    app.router.add_get("/static/{file}", asset)
