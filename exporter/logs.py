"""structlog setup: JSON lines for machines, coloured console lines for people."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(*, log_format: str = "json", level: str = "info") -> None:
    """Configure structlog and the stdlib root logger (aiohttp, kubernetes) to share one output."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Resolve stderr at logger creation, not now, so a replaced sys.stderr (tests, embedding) is honoured.
        logger_factory=lambda *args: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library chatter (aiohttp access logs, client debug) only above INFO unless asked for.
    root.setLevel(max(numeric, logging.WARNING) if numeric < logging.WARNING else numeric)


def default_format() -> str:
    """Console for a terminal, JSON otherwise (a container's stdout is not a terminal)."""
    return "console" if sys.stderr.isatty() else "json"
