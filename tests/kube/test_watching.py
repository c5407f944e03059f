"""One watch stream → typed events: ERROR 410 is an event, other ERRORs and bad lines are typed errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from exporter.kube import errors
from exporter.kube.watching import BOOKMARK, EXPIRED, WatchEvent, parse_event, read_events

POD = {"kind": "Pod", "metadata": {"namespace": "ns", "name": "p", "resourceVersion": "42"}}


def line(kind: str, obj: Any) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


class Lines:
    """A scripted stream: each entry is a line to return, an exception to raise, or ``...`` to hang."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)

    async def readline(self) -> bytes:
        if not self.script:
            return b""
        step = self.script.pop(0)
        if step is Ellipsis:
            await asyncio.Event().wait()
        if isinstance(step, BaseException):
            raise step
        return step


async def collect(lines: Lines, timeout: float = 5.0) -> list[WatchEvent]:
    return [event async for event in read_events(lines, inactivity_timeout=timeout)]


def test_object_events_and_their_resource_version() -> None:
    event = parse_event(line("ADDED", POD))
    assert (event.type, event.raw_object, event.resource_version) == ("ADDED", POD, "42")
    assert parse_event(line("MODIFIED", {"metadata": {"resourceVersion": ""}})).resource_version is None
    assert parse_event(line("DELETED", {"metadata": "x"})).resource_version is None


def test_a_bookmark_carries_only_a_resource_version() -> None:
    event = parse_event(line("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "77"}}))
    assert (event.type, event.resource_version) == (BOOKMARK, "77")


def test_an_error_410_is_the_expired_event_not_an_error() -> None:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 1 (2)"}
    assert parse_event(line("ERROR", status)) == WatchEvent(EXPIRED, status)


@pytest.mark.parametrize(
    ("code", "error"),
    [(403, errors.Forbidden), (500, errors.ServerError), ("x", errors.ServerError), (400, errors.KubeError)],
)
def test_other_error_events_raise_the_mapped_error(code: Any, error: type[errors.KubeError]) -> None:
    with pytest.raises(error) as raised:
        parse_event(line("ERROR", {"kind": "Status", "code": code, "message": "no"}))
    assert type(raised.value) is error


@pytest.mark.parametrize(
    "raw",
    [b"not json\n", b"[1, 2]\n", b'{"type": "ADDED"}\n', b'{"type": 1, "object": {}}\n', b'{"object": {}}\n'],
)
def test_malformed_lines_raise_malformed_response(raw: bytes) -> None:
    with pytest.raises(errors.MalformedResponse):
        parse_event(raw)


async def test_events_in_order_blank_lines_skipped_until_the_server_closes() -> None:
    events = await collect(Lines(line("ADDED", POD), b"\n", b"  \r\n", line("BOOKMARK", {"metadata": {}})))
    assert [event.type for event in events] == ["ADDED", BOOKMARK]


async def test_silence_is_a_stalled_stream() -> None:
    stream = Lines(line("ADDED", POD), ...)
    received: list[WatchEvent] = []
    with pytest.raises(errors.StalledStream):
        async for event in read_events(stream, inactivity_timeout=0.01):
            received.append(event)
    assert [event.type for event in received] == ["ADDED"]


async def test_a_slow_consumer_is_not_timed_out() -> None:
    # The timeout wraps each read, never the consumer's work between events.
    received = []
    async for event in read_events(Lines(line("ADDED", POD), line("DELETED", POD)), inactivity_timeout=0.01):
        await asyncio.sleep(0.05)
        received.append(event.type)
    assert received == ["ADDED", "DELETED"]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (ValueError("Line is too long"), errors.MalformedResponse),
        (aiohttp.ClientPayloadError("reset"), errors.TransportError),
        (ConnectionResetError("reset"), errors.TransportError),
        (errors.Forbidden("no"), errors.Forbidden),
    ],
)
async def test_read_failures_become_typed_errors(failure: BaseException, error: type[errors.KubeError]) -> None:
    with pytest.raises(error):
        await collect(Lines(line("ADDED", POD), failure))
