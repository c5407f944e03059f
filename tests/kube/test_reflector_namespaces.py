"""Several watched namespaces: each namespace's list replaces only that namespace's objects.

Driven through the real sink (``FleetSink`` → ``Fleet`` → ``MetricsStore``), so the assertions are
about which VMs the exporter serves, not about which paths were requested.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from exporter.kube.backoff import Backoff
from exporter.kube.reflector import Reflector
from exporter.render.store import MetricsStore
from exporter.resources import VMIS
from exporter.self_metrics import SelfMetrics
from exporter.service import FleetSink
from exporter.state.fleet import Fleet
from exporter.state.records import VmKey
from exporter.web.health import Readiness
from tests.kube.fakes import EXPIRED_LINE, FakeClient, NamespacedClient, RecordingSink, vmi, vmi_event, vmi_list


def served(fleet: Fleet) -> set[str]:
    keys: list[VmKey] = list(fleet.keys())
    return {f"{key.namespace}/{key.name}" for key in keys}


async def run_until_exhausted(client: NamespacedClient, reflector: Reflector) -> None:
    task = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(client.all_exhausted(), timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def mirror(client: NamespacedClient, namespaces: list[str]) -> tuple[Fleet, Readiness, SelfMetrics]:
    """Run one VMI reflector over ``namespaces`` until every namespace's script is used up."""
    store, readiness, metrics = MetricsStore(), Readiness(), SelfMetrics()
    readiness.expect([VMIS.name])
    fleet = Fleet(on_state=store.put)
    reflector = Reflector(
        client=client,
        resource=VMIS,
        sink=FleetSink(fleet, readiness, metrics, clock=lambda: 1000.0),
        metrics=metrics,
        namespaces=namespaces,
        backoff=lambda: Backoff(initial=0, jitter=0, rng=random.Random(1)),
        clock=lambda: 1000.0,
    )
    await run_until_exhausted(client, reflector)
    return fleet, readiness, metrics


async def test_two_namespaces_keep_each_others_vms_through_relists_and_deletes() -> None:
    client = NamespacedClient(
        {
            "a": FakeClient(
                lists=[vmi_list("10", vmi("a", "web", "1"), vmi("a", "db", "2")), vmi_list("20", vmi("a", "web", "1"))],
                watches=[[vmi_event("DELETED", "a", "db", "11"), EXPIRED_LINE]],
            ),
            "b": FakeClient(
                lists=[vmi_list("10", vmi("b", "app", "3"))],
                watches=[[vmi_event("ADDED", "b", "new", "12")]],
            ),
        }
    )
    fleet, readiness, metrics = await mirror(client, ["a", "b"])
    assert served(fleet) == {"a/web", "b/app", "b/new"}
    assert readiness.ready
    assert metrics.registry.get_sample_value("kubevirt_vss_exporter_objects", {"resource": VMIS.name}) == 3


async def test_three_namespaces_relist_one_while_the_others_stay() -> None:
    client = NamespacedClient(
        {
            "a": FakeClient(lists=[vmi_list("5", vmi("a", "one", "1"))], watches=[]),
            "b": FakeClient(
                lists=[vmi_list("5", vmi("b", "two", "2"), vmi("b", "gone", "3")), vmi_list("9", vmi("b", "two", "2"))],
                watches=[[EXPIRED_LINE]],
            ),
            "c": FakeClient(
                lists=[vmi_list("5", vmi("c", "three", "4"), vmi("c", "four", "5"))],
                watches=[[vmi_event("DELETED", "c", "four", "6"), vmi_event("ADDED", "c", "five", "7")]],
            ),
        }
    )
    fleet, _, _ = await mirror(client, ["a", "b", "c"])
    assert served(fleet) == {"a/one", "b/two", "c/three", "c/five"}


async def test_the_resource_is_synced_once_every_namespace_is_listed() -> None:
    client = NamespacedClient(
        {
            "a": FakeClient(lists=[vmi_list("5")], watches=[]),
            "b": FakeClient(lists=[vmi_list("5", vmi("b", "x", "1"))], watches=[]),
        }
    )
    sink = RecordingSink()
    reflector = Reflector(client=client, resource=VMIS, sink=sink, metrics=SelfMetrics(), namespaces=["a", "b"])
    await run_until_exhausted(client, reflector)
    replaces = sorted(call for call in sink.calls if call[0] == "replace")
    assert replaces == [("replace", "a", []), ("replace", "b", ["x"])]
    assert sink.calls[-1] == ("synced", VMIS.name) and sink.calls.count(("synced", VMIS.name)) == 1
