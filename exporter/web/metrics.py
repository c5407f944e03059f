"""/metrics: content negotiation, the pre-rendered per-VM body plus self-metrics, gzip.

The per-VM part and its gzip are cached until the store changes. A gzip body may be several
gzip members back to back (RFC 1952 §2.2), so the cached member is reused and only the small
self-metrics member is compressed per scrape.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from exporter.render.self_metrics import SelfMetrics
from exporter.render.store import MetricsStore
from exporter.render.text import EOF_LINE, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE

GZIP_LEVEL = 6


@dataclass
class MetricsEndpoint:
    store: MetricsStore
    metrics: SelfMetrics
    _gzip_cache: dict[bool, tuple[int, bytes]] = field(default_factory=dict)

    def body(self, *, openmetrics: bool, compress: bool) -> bytes:
        started = time.perf_counter()
        vm_part = self.store.render(openmetrics=openmetrics)
        if compress:
            cached = self._gzip_cache.get(openmetrics)
            if cached is None or cached[0] != self.store.generation:
                cached = (self.store.generation, gzip.compress(vm_part, compresslevel=GZIP_LEVEL, mtime=0))
                self._gzip_cache[openmetrics] = cached
            vm_part = cached[1]
        self.metrics.vms.set(len(self.store))
        self.metrics.render_seconds.set(time.perf_counter() - started)
        tail = self.metrics.render(openmetrics=openmetrics) + (EOF_LINE if openmetrics else b"")
        if compress:
            return vm_part + gzip.compress(tail, compresslevel=GZIP_LEVEL, mtime=0)
        return vm_part + tail

    async def handle(self, request: web.Request) -> web.Response:
        _, content_type = choose_encoder(request.headers.get("Accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        compress = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        body = self.body(openmetrics=openmetrics, compress=compress)
        headers = {"Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE}
        if compress:
            headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept, Accept-Encoding"
        return web.Response(body=body, headers=headers)
