"""/metrics: content negotiation, the pre-rendered per-VM body plus self-metrics, gzip.

The body is streamed as the store's cached pieces (gzip members per block, or those members
inflated one at a time as they are sent), so a scrape neither copies nor recompresses the whole
body nor holds it inflated; only the small self-metrics part is rendered (and compressed) per scrape.
"""

from __future__ import annotations

import gzip
import itertools
import time
from collections.abc import Iterable
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

    def pieces(self, *, openmetrics: bool, compress: bool) -> tuple[Iterable[bytes], int]:
        """Everything a scrape sends, in order (plain pieces are inflated as they are iterated), and its size."""
        started = time.perf_counter()
        body: Iterable[bytes]
        if compress:
            body = self.store.pieces(openmetrics=openmetrics, compress=True)
            size = sum(len(piece) for piece in body)
        else:
            body = plain = self.store.plain_pieces(openmetrics=openmetrics)
            size = plain.size
        self.metrics.vms.set(len(self.store))
        self.metrics.render_seconds.set(time.perf_counter() - started)
        tail = self.metrics.render(openmetrics=openmetrics) + (EOF_LINE if openmetrics else b"")
        if compress:
            tail = gzip.compress(tail, compresslevel=GZIP_LEVEL, mtime=0)
        return itertools.chain(body, (tail,)), size + len(tail)

    def body(self, *, openmetrics: bool, compress: bool) -> bytes:
        pieces, _ = self.pieces(openmetrics=openmetrics, compress=compress)
        return b"".join(pieces)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        _, content_type = choose_encoder(request.headers.get("Accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        compress = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        pieces, size = self.pieces(openmetrics=openmetrics, compress=compress)
        response = web.StreamResponse(
            headers={
                "Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE,
                "Vary": "Accept, Accept-Encoding",
            }
        )
        if compress:
            response.headers["Content-Encoding"] = "gzip"
        response.content_length = size
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
