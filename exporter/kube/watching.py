"""One watch request → typed events. 410 and a cleanly closed stream are events, not errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from exporter import untrusted
from exporter.kube import errors

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
EXPIRED = "EXPIRED"  # the server's in-stream ERROR with code 410
OBJECT_TYPES = (ADDED, MODIFIED, DELETED)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str
    raw_object: Mapping[str, Any]

    @property
    def resource_version(self) -> str | None:
        metadata = self.raw_object.get("metadata")
        if isinstance(metadata, Mapping):
            value = metadata.get("resourceVersion")
            if isinstance(value, str) and value:
                return value
        return None


class LineSource(Protocol):
    async def readline(self) -> bytes: ...


def parse_event(line: bytes) -> WatchEvent:
    """Decode one watch line; an ERROR event becomes EXPIRED (410) or raises the mapped error."""
    try:
        decoded = untrusted.loads(line)
    except ValueError as error:
        raise errors.MalformedResponse(f"watch line is not JSON: {errors.excerpt(line)}") from error
    if not isinstance(decoded, Mapping):
        raise errors.MalformedResponse("watch line is not an object")
    kind, raw_object = decoded.get("type"), decoded.get("object")
    if not isinstance(kind, str) or not isinstance(raw_object, Mapping):
        raise errors.MalformedResponse("watch event without type or object")
    if kind == "ERROR":
        code = raw_object.get("code")
        if code == 410:
            return WatchEvent(EXPIRED, raw_object)
        status = code if isinstance(code, int) else 500
        raise errors.from_status(status, json.dumps(raw_object).encode())
    return WatchEvent(kind, raw_object)


async def read_events(lines: LineSource, *, inactivity_timeout: float) -> AsyncIterator[WatchEvent]:
    """Yield events until the server closes the stream; raise StalledStream on silence.

    The timeout wraps each read, never a ``yield``, so it cannot fire inside the consumer.
    """
    while True:
        try:
            async with asyncio.timeout(inactivity_timeout):
                line = await lines.readline()
        except TimeoutError as error:
            raise errors.StalledStream(f"no watch data for {inactivity_timeout:g}s") from error
        except ValueError as error:  # aiohttp: a line longer than its buffer
            raise errors.MalformedResponse(f"watch line too long: {error}") from error
        except Exception as error:
            raise errors.from_exception(error) from error
        if not line:
            return
        if line.strip():
            yield parse_event(line)
