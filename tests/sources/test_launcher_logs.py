"""Launcher logs: pods followed within a cap, lines split with a length cap, freeze failures handed on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from exporter.kube import errors
from exporter.self_metrics import SelfMetrics
from exporter.sources.launcher_logs import FIRST_LOOKBACK_SECONDS, LauncherLogs, LauncherPod, LineSplitter, launcher_pod
from exporter.state.freeze_errors import LAUNCHER_LOG, FreezeObservation
from exporter.state.records import VmKey


async def one_page(items: list[Any]) -> AsyncIterator[list[Any]]:
    """A full list as the reflector hands it on: pages to read in turn."""
    yield items

FREEZE_FAILED = json.dumps(
    {
        "component": "virt-launcher",
        "level": "error",
        "msg": "Failed to freeze vmi",
        "reason": "command Freeze failed: failed to add "
        "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\ to snapshot set",
        "timestamp": "2026-08-21T02:00:07.123456Z",
    }
)


def pod(name: str = "virt-launcher-win-abcde", *, namespace: str = "ns", uid: str = "pod-1", phase: str = "Running",
        vmi: str | None = "win", created_by: str | None = "vmi-uid") -> dict[str, Any]:  # fmt: skip
    metadata: dict[str, Any] = {"namespace": namespace, "name": name, "uid": uid, "labels": {}}
    if vmi is not None:
        metadata["ownerReferences"] = [{"kind": "VirtualMachineInstance", "name": vmi, "uid": "vmi-uid"}]
    if created_by is not None:
        metadata["labels"]["kubevirt.io/created-by"] = created_by
    return {"metadata": metadata, "status": {"phase": phase}}


class Stream:
    def __init__(self, chunks: list[bytes | BaseException], then_hang: bool) -> None:
        self.chunks = chunks
        self.then_hang = then_hang

    async def readany(self) -> bytes:
        if self.chunks:
            chunk = self.chunks.pop(0)
            if isinstance(chunk, BaseException):
                raise chunk
            return chunk
        if self.then_hang:
            await asyncio.Event().wait()
        return b""


class FakeClient:
    """Serves each log path from a script; records every request."""

    def __init__(self, scripts: Mapping[str, list[bytes | BaseException]], *, then_hang: bool = True) -> None:
        self.scripts = {path: list(chunks) for path, chunks in scripts.items()}
        self.then_hang = then_hang
        self.requests: list[tuple[str, Mapping[str, Any]]] = []
        self.requested = asyncio.Event()

    async def wait_for_requests(self, count: int) -> None:
        while len(self.requests) < count:
            self.requested.clear()
            await self.requested.wait()

    @asynccontextmanager
    async def stream_lines(self, path: str, *, query: Mapping[str, Any] | None = None) -> AsyncIterator[Stream]:
        self.requests.append((path, dict(query or {})))
        self.requested.set()
        script = self.scripts.get(path)
        if script is None:
            raise errors.NotFound("HTTP 404: pod gone", status=404)
        yield Stream(script, self.then_hang)
        script.clear()


class Observed(list[FreezeObservation]):
    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def add(self, observation: FreezeObservation) -> None:
        self.append(observation)
        self.arrived.set()


def make(client: FakeClient, *, max_streams: int = 10) -> tuple[LauncherLogs, Observed, SelfMetrics]:
    seen = Observed()
    metrics = SelfMetrics()
    logs = LauncherLogs(
        client=client,
        vm_of_vmi_uid={"vmi-uid": VmKey("ns", "by-uid")}.get,
        on_observation=seen.add,
        metrics=metrics,
        max_streams=max_streams,
        clock=lambda: 1000.0,
    )
    return logs, seen, metrics


def lines_counted(metrics: SelfMetrics, result: str) -> float:
    return metrics.registry.get_sample_value("kubevirt_vss_exporter_launcher_log_lines_total", {"result": result}) or 0


def test_splitter_joins_lines_across_chunks_and_holds_the_unfinished_one() -> None:
    splitter = LineSplitter(limit=16)
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\nthr") == ["two"]
    assert splitter.feed(b"ee") == []
    assert splitter.feed(b"\n") == ["three"]


def test_splitter_drops_a_line_over_the_limit_and_counts_it() -> None:
    splitter = LineSplitter(limit=8)
    assert splitter.feed(b"short\n" + b"x" * 6) == ["short"]
    assert splitter.feed(b"y" * 6) == []  # over the limit: dropped up to its newline
    assert splitter.feed(b"zz\nnext\n") == ["next"]
    assert splitter.too_long == 1
    assert splitter.feed("ä\n".encode()[:1] + b"\n") == ["\ufffd"]  # broken UTF-8 is replaced, not raised


def test_launcher_pod_reads_the_vmi_it_serves() -> None:
    assert launcher_pod(pod()) == LauncherPod("pod-1", "ns", "virt-launcher-win-abcde", "win", "vmi-uid")
    assert launcher_pod(pod(vmi=None, created_by=None)) == LauncherPod(
        "pod-1", "ns", "virt-launcher-win-abcde", None, None
    )
    assert launcher_pod(pod(phase="Pending")) is None
    assert launcher_pod(pod(uid="")) is None
    assert launcher_pod({"metadata": "x", "status": {"phase": "Running"}}) is None


def test_the_vm_is_named_by_the_owner_reference_or_found_by_the_vmi_uid() -> None:
    logs, _, _ = make(FakeClient({}))
    assert logs.vm_key(LauncherPod("u", "ns", "p", "win", "vmi-uid")) == VmKey("ns", "win")
    assert logs.vm_key(LauncherPod("u", "ns", "p", None, "vmi-uid")) == VmKey("ns", "by-uid")
    assert logs.vm_key(LauncherPod("u", "ns", "p", None, "other")) is None
    assert logs.vm_key(LauncherPod("u", "ns", "p", None, None)) is None


async def test_sink_tracks_running_pods_and_a_namespace_list_replaces_only_that_namespace() -> None:
    logs, _, _ = make(FakeClient({}))
    await logs.replace("pods", one_page([pod(uid="a"), pod(uid="b", namespace="other")]), namespace=None)
    assert set(logs.pods) == {"a", "b"}
    await logs.replace("pods", one_page([pod(uid="c")]), namespace="ns")
    assert set(logs.pods) == {"b", "c"}
    logs.upsert("pods", pod(uid="c", phase="Succeeded"))  # no longer running: not followed
    logs.upsert("pods", pod(uid="d"))
    logs.delete("pods", pod(uid="b", namespace="other"))
    assert set(logs.pods) == {"d"}


async def test_a_freeze_failure_in_the_log_is_handed_on_and_lines_are_counted() -> None:
    path = "/api/v1/namespaces/ns/pods/virt-launcher-win-abcde/log"
    chunks = [b'{"msg":"Domain started."}\n' + FREEZE_FAILED.encode()[:40], FREEZE_FAILED.encode()[40:] + b"\n"]
    client = FakeClient({path: chunks})
    logs, seen, metrics = make(client)
    logs.upsert("pods", pod())
    runner = asyncio.create_task(logs.run())
    try:
        async with asyncio.timeout(5):
            await seen.arrived.wait()
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    (observation,) = seen
    assert (observation.key, observation.source, observation.text) == (VmKey("ns", "win"), LAUNCHER_LOG, FREEZE_FAILED)
    query = {"container": "compute", "follow": "true", "sinceSeconds": FIRST_LOOKBACK_SECONDS, "timestamps": "false"}
    assert client.requests == [(path, query)]
    assert (lines_counted(metrics, "matched"), lines_counted(metrics, "ignored")) == (1, 1)


async def test_no_more_streams_than_the_cap_and_a_gone_pod_ends_its_follower() -> None:
    paths = [f"/api/v1/namespaces/ns/pods/p{i}/log" for i in range(3)]
    client = FakeClient({paths[0]: [], paths[1]: []})  # p2's log is gone (404)
    logs, _, metrics = make(client, max_streams=2)
    await logs.replace("pods", one_page([pod(f"p{i}", uid=f"u{i}") for i in range(3)]), namespace=None)
    runner = asyncio.create_task(logs.run())
    try:
        async with asyncio.timeout(5):
            await client.wait_for_requests(2)
        assert metrics.registry.get_sample_value("kubevirt_vss_exporter_launcher_log_streams") == 2
        logs.delete("pods", pod("p0", uid="u0"))  # frees a stream for p2, whose log is gone
        async with asyncio.timeout(5):
            await client.wait_for_requests(3)
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    assert [path for path, _ in client.requests] == paths
