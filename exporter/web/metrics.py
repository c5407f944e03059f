"""/metrics: content negotiation, the pre-rendered per-VM body plus self-metrics, gzip.

The body is streamed as the store's cached pieces (joined lines, or gzip members per block), so
a scrape neither copies nor recompresses the whole body; only the small self-metrics part is
rendered (and compressed) per scrape.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from exporter.render.store import GZIP_LEVEL, MetricsStore
from exporter.render.text import EOF_LINE, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from exporter.self_metrics import SelfMetrics

WRITE_BATCH = 1 << 20


@dataclass
class MetricsEndpoint:
    store: MetricsStore
    metrics: SelfMetrics

    def pieces(self, *, openmetrics: bool, compress: bool) -> list[bytes]:
        """Everything a scrape sends, in order."""
        started = time.perf_counter()
        pieces = self.store.pieces(openmetrics=openmetrics, compress=compress)
        self.metrics.vms.set(len(self.store))
        self.metrics.render_seconds.set(time.perf_counter() - started)
        tail = self.metrics.render(openmetrics=openmetrics) + (EOF_LINE if openmetrics else b"")
        pieces.append(gzip.compress(tail, compresslevel=GZIP_LEVEL, mtime=0) if compress else tail)
        return pieces

    def body(self, *, openmetrics: bool, compress: bool) -> bytes:
        return b"".join(self.pieces(openmetrics=openmetrics, compress=compress))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        _, content_type = choose_encoder(request.headers.get("Accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        compress = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        pieces = self.pieces(openmetrics=openmetrics, compress=compress)
        response = web.StreamResponse(
            headers={
                "Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE,
                "Vary": "Accept, Accept-Encoding",
            }
        )
        if compress:
            response.headers["Content-Encoding"] = "gzip"
        response.content_length = sum(len(p) for p in pieces)
        await response.prepare(request)
        batch: list[bytes] = []
        size = 0
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= WRITE_BATCH:
                await response.write(b"".join(batch))
                batch, size = [], 0
        if batch:
            await response.write(b"".join(batch))
        await response.write_eof()
        return response
