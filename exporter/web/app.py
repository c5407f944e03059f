"""The metrics listener's routes: /metrics, /healthz, /readyz, the status pages and the JSON API."""

from __future__ import annotations

from aiohttp import web

from exporter.state.fleet import Fleet
from exporter.web.health import Readiness, healthz, readyz_handler
from exporter.web.inventory import Inventory
from exporter.web.metrics import MetricsEndpoint
from exporter.web.status import add_status_routes


def build_app(
    *,
    endpoint: MetricsEndpoint,
    readiness: Readiness,
    inventory: Inventory | None = None,
    links: dict[str, str] | None = None,
) -> web.Application:
    """``inventory`` feeds the status pages and the API (an empty fleet when not given)."""
    app = web.Application(client_max_size=64 * 1024)
    inventory = inventory or Inventory(Fleet(on_state=lambda key, state: None))
    extra = links or {}

    def status() -> str:
        sources = "".join(f" {name}: {value}." for name, value in extra.items())
        if readiness.ready:
            return f"Synced; {len(endpoint.store)} VMs exported.{sources}"
        if readiness.listed:
            return f"Listed; publishing the state of every VM ({len(endpoint.store)} so far).{sources}"
        if not readiness.pending:
            return "Starting: no resource is being listed yet." + sources
        return "Waiting for the first list of: " + ", ".join(readiness.pending) + "." + sources

    add_status_routes(app, inventory, status)
    app.router.add_get("/metrics", endpoint.handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler(readiness))
    return app
