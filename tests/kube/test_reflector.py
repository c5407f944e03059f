"""The list/watch/relist loop against scripted streams: exact sink calls and exact backoff delays."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from exporter import untrusted
from exporter.kube import errors
from exporter.kube.backoff import Backoff
from exporter.kube.reflector import Reflector, ReflectorSettings
from exporter.resources import BACKUPS, SNAPSHOTS, VMIS
from exporter.self_metrics import SelfMetrics
from tests.kube.fakes import EXPIRED_LINE, STALL, FakeClient, RecordingSink, bookmark, event, obj

PAGE_1 = {"items": [obj("a", "1")], "metadata": {"resourceVersion": "5", "continue": "token"}}
PAGE_2 = {"items": [obj("b", "2")], "metadata": {"resourceVersion": "5"}}
LIST_AB = {"items": [obj("a", "1"), obj("b", "2")], "metadata": {"resourceVersion": "5"}}
LIST_A = {"items": [obj("a", "7")], "metadata": {"resourceVersion": "9"}}
NORMAL_WATCH = [event("ADDED", "c", "6"), event("MODIFIED", "a", "7"), event("DELETED", "b", "8"), bookmark("10")]


async def run_until_exhausted(client: FakeClient, reflector: Reflector) -> None:
    task = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(client.exhausted.wait(), timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def run_until_first_pause(reflector: Reflector, sleeps: list[float]) -> None:
    """Run the reflector for a bounded number of loop turns, until it first pauses, then stop it."""
    task = asyncio.create_task(reflector.run())
    for _ in range(100):
        if sleeps:
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def make(client: FakeClient, resource=VMIS, **settings) -> tuple[Reflector, RecordingSink, list[float], SelfMetrics]:
    sink = RecordingSink()
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(round(delay, 6))
        await asyncio.sleep(0)  # virtual time: record the delay, only yield to the loop

    metrics = SelfMetrics()
    reflector = Reflector(
        client=client,
        resource=resource,
        sink=sink,
        metrics=metrics,
        settings=ReflectorSettings(**settings) if settings else None,
        backoff=lambda: Backoff(initial=1, maximum=8, jitter=0, rng=random.Random(1)),
        sleep=sleep,
    )
    return reflector, sink, sleeps, metrics


def value(metrics: SelfMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_paged_list_then_watch_then_rewatch_from_bookmark() -> None:
    client = FakeClient(lists=[PAGE_1, PAGE_2], watches=[NORMAL_WATCH, []])
    reflector, sink, sleeps, metrics = make(client, page_size=2)
    await run_until_exhausted(client, reflector)
    assert sink.calls == [
        ("replace", ["a", "b"]),
        ("synced", "virtualmachineinstances"),
        ("upsert", "c"),
        ("upsert", "a"),
        ("delete", "b"),
    ]
    assert [q["continue"] for _, q in client.list_queries if "continue" in q] == ["token"]
    # The second watch closes at once without events: re-opened from the bookmark after a short pause.
    assert [q["resourceVersion"] for _, q in client.watch_queries] == ["5", "10", "10"]
    assert client.watch_queries[0][1]["allowWatchBookmarks"] == "true"
    assert sleeps == [1]
    assert value(metrics, "kubevirt_vss_exporter_objects", resource="virtualmachineinstances") == 2


async def test_expired_watch_relists_quietly_and_prunes() -> None:
    client = FakeClient(lists=[LIST_AB, LIST_A], watches=[[EXPIRED_LINE]])
    reflector, sink, sleeps, metrics = make(client)
    await run_until_exhausted(client, reflector)
    assert sink.calls == [
        ("replace", ["a", "b"]),
        ("synced", "virtualmachineinstances"),
        ("replace", ["a"]),
    ]
    assert sleeps == []
    assert (
        value(metrics, "kubevirt_vss_exporter_relists_total", resource="virtualmachineinstances", reason="expired") == 1
    )


async def test_broken_stream_backs_off_and_relists() -> None:
    client = FakeClient(
        lists=[LIST_AB, errors.TransportError("connection refused"), LIST_A],
        watches=[[event("ADDED", "c", "6"), ConnectionResetError("reset")]],
    )
    reflector, sink, sleeps, metrics = make(client)
    await run_until_exhausted(client, reflector)
    assert sink.calls == [
        ("replace", ["a", "b"]),
        ("synced", "virtualmachineinstances"),
        ("upsert", "c"),
        ("replace", ["a"]),
    ]
    assert sleeps == [1, 2]  # two failures in a row: 1 s, then 2 s
    assert (
        value(
            metrics, "kubevirt_vss_exporter_watch_errors_total", resource="virtualmachineinstances", reason="transport"
        )
        == 1
    )
    assert value(metrics, "kubevirt_vss_exporter_lists_total", resource="virtualmachineinstances", result="error") == 1


async def test_stalled_stream_counts_inactivity() -> None:
    client = FakeClient(lists=[LIST_AB, LIST_A], watches=[[STALL]])
    reflector, sink, _sleeps, metrics = make(client, inactivity_timeout=0.05)
    await run_until_exhausted(client, reflector)
    assert sink.calls[-1] == ("replace", ["a"])
    assert (
        value(
            metrics, "kubevirt_vss_exporter_watch_errors_total", resource="virtualmachineinstances", reason="inactivity"
        )
        == 1
    )


async def test_error_event_other_than_410_relists_after_backoff() -> None:
    line = b'{"type":"ERROR","object":{"kind":"Status","code":500,"message":"etcd"}}\n'
    client = FakeClient(lists=[LIST_AB, LIST_A], watches=[[line]])
    reflector, sink, sleeps, _ = make(client)
    await run_until_exhausted(client, reflector)
    assert sink.calls[-1] == ("replace", ["a"]) and sleeps == [1]


async def test_garbage_line_relists() -> None:
    client = FakeClient(lists=[LIST_AB, LIST_A], watches=[[b"\x00\xffnot json\n"]])
    reflector, sink, sleeps, _ = make(client)
    await run_until_exhausted(client, reflector)
    assert sink.calls[-1] == ("replace", ["a"]) and sleeps == [1]


async def test_expired_continue_token_restarts_the_list() -> None:
    client = FakeClient(lists=[PAGE_1, errors.Gone("HTTP 410", status=410), PAGE_1, PAGE_2], watches=[])
    reflector, sink, _, _ = make(client, page_size=2)
    await run_until_exhausted(client, reflector)
    assert sink.calls[0] == ("replace", ["a", "b"])


async def test_snapshot_version_fallback() -> None:
    client = FakeClient(lists=[LIST_A], watches=[], served={"/apis/snapshot.kubevirt.io/v1beta1": False})
    reflector, _, _, _ = make(client, resource=SNAPSHOTS)
    await run_until_exhausted(client, reflector)
    assert client.list_queries[0][0] == "/apis/snapshot.kubevirt.io/v1alpha1/virtualmachinesnapshots"


async def test_optional_resource_not_served_does_not_block_readiness() -> None:
    client = FakeClient(lists=[], watches=[], served={"/apis/backup.kubevirt.io": False})
    reflector, sink, sleeps, _ = make(client, resource=BACKUPS)
    await run_until_first_pause(reflector, sleeps)
    assert sink.calls[0] == ("synced", "virtualmachinebackups")
    assert reflector.unavailable
    assert sleeps and sleeps[0] == 300.0


async def test_namespaces_are_watched_separately() -> None:
    client = FakeClient(lists=[LIST_A, LIST_AB], watches=[])
    sink = RecordingSink()
    reflector = Reflector(client=client, resource=VMIS, sink=sink, metrics=SelfMetrics(), namespaces=["a", "b"])
    task = asyncio.create_task(reflector.run())
    for _ in range(50):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    paths = sorted(path for path, _ in client.list_queries)
    assert paths == [
        "/apis/kubevirt.io/v1/namespaces/a/virtualmachineinstances",
        "/apis/kubevirt.io/v1/namespaces/b/virtualmachineinstances",
    ]


async def test_optional_resource_we_may_not_read_does_not_block_readiness() -> None:
    client = FakeClient(lists=[], watches=[])

    async def forbidden(path, *, query=None, timeout=30.0):  # type: ignore[no-untyped-def]
        raise errors.Forbidden("HTTP 403: forbidden", status=403)

    client.get_json = forbidden  # type: ignore[method-assign]
    reflector, sink, sleeps, _ = make(client, resource=BACKUPS)
    await run_until_first_pause(reflector, sleeps)
    assert sink.calls == [("synced", "virtualmachinebackups")]


async def test_a_watch_that_fails_at_once_after_each_list_still_backs_off() -> None:
    """A list that succeeds must not reset the backoff while every watch breaks at once."""
    client = FakeClient(
        lists=[LIST_A, LIST_A, LIST_A, LIST_A],
        watches=[errors.ServerError("HTTP 500", status=500)] * 4,
    )
    reflector, _, sleeps, _ = make(client)
    await run_until_exhausted(client, reflector)
    assert sleeps == [1, 2, 4, 8]


async def test_staleness_is_stamped_by_lists_watch_opens_events_and_clean_closes() -> None:
    now = [100.0]
    client = FakeClient(lists=[LIST_A], watches=[[bookmark("10")], []])
    reflector, _, _, metrics = make(client)
    reflector._clock = lambda: now[0]
    reflector.outcomes._clock = lambda: now[0]
    await run_until_exhausted(client, reflector)
    assert value(metrics, "kubevirt_vss_exporter_last_contact_timestamp_seconds", resource=VMIS.name) == 100.0

    failing = FakeClient(lists=[errors.TransportError("refused")], watches=[])
    stale, _, _, stale_metrics = make(failing)
    await run_until_exhausted(failing, stale)
    assert (
        stale_metrics.registry.get_sample_value(
            "kubevirt_vss_exporter_last_contact_timestamp_seconds", {"resource": VMIS.name}
        )
        is None
    )
    assert value(stale_metrics, "kubevirt_vss_exporter_synced", resource=VMIS.name) == 0


async def test_an_object_the_sink_cannot_take_is_counted_and_the_watch_goes_on() -> None:
    client = FakeClient(lists=[LIST_A], watches=[[event("ADDED", "boom", "6"), event("ADDED", "c", "7")]])
    reflector, sink, sleeps, metrics = make(client)
    original = sink.upsert

    def upsert(resource, raw):  # type: ignore[no-untyped-def]
        if raw["metadata"]["name"] == "boom":
            raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")
        original(resource, raw)

    sink.upsert = upsert  # type: ignore[method-assign]
    await run_until_exhausted(client, reflector)
    assert sink.calls[-1] == ("upsert", "c") and sleeps == []
    assert (
        value(metrics, "kubevirt_vss_exporter_malformed_objects_total", resource=VMIS.name, problem="unprocessable")
        == 1
    )


async def test_an_object_with_unsafe_text_is_counted_once_per_version_not_per_relist() -> None:
    bad = untrusted.loads(json.dumps(obj("bad", "3", nodeName="n\udcff")).encode())
    newer = obj("bad", "4", nodeName="n\udcff")  # decoded, and cleaned, as the watch line is read
    page = {"items": [obj("a", "1"), bad], "metadata": {"resourceVersion": "5"}}
    client = FakeClient(lists=[page, page], watches=[[EXPIRED_LINE], [untrusted_event(newer)]])
    reflector, _, _, metrics = make(client)
    await run_until_exhausted(client, reflector)
    counted = value(
        metrics, "kubevirt_vss_exporter_malformed_objects_total", resource=VMIS.name, problem="invalid_text"
    )
    assert counted == 2  # the first list and the new version; not the relist of the same version


def untrusted_event(raw: dict) -> bytes:
    return json.dumps({"type": "MODIFIED", "object": raw}).encode() + b"\n"
