"""The metrics listener's routes: /metrics, /healthz, /readyz and a landing page."""

from __future__ import annotations

import html

from aiohttp import web

from exporter import __version__
from exporter.web.health import Readiness, healthz, readyz_handler
from exporter.web.metrics import MetricsEndpoint

MAX_REQUEST_LINE_AND_HEADERS = 8190


def build_app(
    *, endpoint: MetricsEndpoint, readiness: Readiness, links: dict[str, str] | None = None
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    extra = links or {}

    async def index(request: web.Request) -> web.Response:
        items = [
            ("/metrics", "Metrics"),
            ("/healthz", "Liveness"),
            ("/readyz", "Readiness (after the first list of every resource)"),
        ]
        rows = "".join(f'<li><a href="{html.escape(href)}">{html.escape(text)}</a></li>' for href, text in items)
        rows += "".join(
            f"<li>{html.escape(text)}: <code>{html.escape(value)}</code></li>" for text, value in extra.items()
        )
        state = "ready" if readiness.ready else "waiting for first sync: " + ", ".join(readiness.pending)
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>kubevirt-vss-exporter</title></head>"
            f"<body><h1>kubevirt-vss-exporter {html.escape(__version__)}</h1>"
            f"<p>Guest-agent, filesystem-freeze and snapshot-consistency metrics for KubeVirt VMs. "
            f"Status: {html.escape(state)}; VMs exported: {len(endpoint.store)}.</p>"
            f"<ul>{rows}</ul></body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    app.router.add_get("/", index)
    app.router.add_get("/metrics", endpoint.handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler(readiness))
    return app
