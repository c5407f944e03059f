"""The per-VM part of a scrape body as one byte string, joined the way the endpoint streams it."""

from __future__ import annotations

from exporter.render.store import MetricsStore


def per_vm_body(store: MetricsStore, *, openmetrics: bool) -> bytes:
    return b"".join(store.pieces(openmetrics=openmetrics, compress=False))
