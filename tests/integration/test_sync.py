"""Initial sync, updates, deletes, 410 in mid-watch, dropped streams and deletes while disconnected."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import value, vmi

VMIS = "virtualmachineinstances"


async def test_initial_sync_update_and_delete(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("a")), (VMIS, vmi("b"))])
    assert await running.vm_names() == ["a", "b"]

    running.simulator.store.upsert(VMIS, vmi("a", frozen=True))
    samples = await running.wait_for(lambda s: value(s, "kubevirt_vss_fs_frozen", namespace="ns", name="a") == 1)
    assert value(samples, "kubevirt_vss_fs_frozen_since_timestamp_seconds", namespace="ns", name="a") is not None

    running.simulator.store.delete(VMIS, "ns", "b")
    await running.wait_for(lambda s: value(s, "kubevirt_vss_agent_connected", namespace="ns", name="b") is None)
    assert await running.vm_names() == ["a"]


async def test_expired_watch_relists_without_losing_or_duplicating(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi(f"vm{i}")) for i in range(20)])
    await running.watching(VMIS)
    running.simulator.faults.expire_watches()
    running.simulator.store.upsert(VMIS, vmi("late"))
    samples = await running.wait_for(
        lambda s: (
            (value(s, "kubevirt_vss_exporter_relists_total", resource=VMIS, reason="expired") or 0) >= 1
            and value(s, "kubevirt_vss_agent_connected", namespace="ns", name="late") == 1
        )
    )
    names = [dict(labels)["name"] for name, labels in samples if name == "kubevirt_vss_vm_info"]
    assert sorted(names) == sorted({*(f"vm{i}" for i in range(20)), "late"})
    assert len(names) == len(set(names))


async def test_dropped_stream_reconnects(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("a"))])
    await running.watching(VMIS)
    running.simulator.faults.drop_streams()
    await asyncio.sleep(0.1)
    running.simulator.store.upsert(VMIS, vmi("b"))
    await running.wait_for(lambda s: value(s, "kubevirt_vss_agent_connected", namespace="ns", name="b") == 1)
    samples = await running.scrape()
    assert (value(samples, "kubevirt_vss_exporter_watch_errors_total", resource=VMIS, reason="transport") or 0) >= 1


async def test_vm_deleted_while_disconnected_vanishes_after_relist(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("keep")), (VMIS, vmi("gone"))])
    simulator = running.simulator
    await running.watching(VMIS)
    simulator.faults.set_unavailable(True)
    simulator.faults.drop_streams()
    simulator.store.delete(VMIS, "ns", "gone")
    simulator.faults.compact()
    await asyncio.sleep(0.5)
    samples = await running.scrape()
    assert value(samples, "kubevirt_vss_exporter_synced", resource=VMIS) == 0
    assert value(samples, "kubevirt_vss_agent_connected", namespace="ns", name="gone") == 1  # last known state
    simulator.faults.set_unavailable(False)
    samples = await running.wait_for(
        lambda s: value(s, "kubevirt_vss_agent_connected", namespace="ns", name="gone") is None, timeout=20
    )
    assert value(samples, "kubevirt_vss_agent_connected", namespace="ns", name="keep") == 1
    assert value(samples, "kubevirt_vss_exporter_synced", resource=VMIS) == 1


async def test_malformed_objects_do_not_hide_good_ones(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("good"))])
    running.simulator.faults.malformed_objects(6)
    running.simulator.store.upsert(VMIS, vmi("good2"))
    samples = await running.wait_for(
        lambda s: value(s, "kubevirt_vss_agent_connected", namespace="ns", name="good2") == 1
    )
    assert value(samples, "kubevirt_vss_agent_connected", namespace="ns", name="good") == 1
    malformed = sum(v for (name, _), v in samples.items() if name == "kubevirt_vss_exporter_malformed_objects_total")
    assert malformed >= 3


async def test_guestosinfo_feeds_freeze_availability_and_counts_failures(cluster, kubevirt_object) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("win")), (VMIS, vmi("nogent"))])
    running.simulator.store.set_guest_info("ns", "win", kubevirt_object("guestosinfo-windows"))
    running.simulator.store.set_guest_info("ns", "nogent", None)
    samples = await running.wait_for(
        lambda s: (
            value(s, "kubevirt_vss_fsfreeze_available", namespace="ns", name="win") == 1
            and (value(s, "kubevirt_vss_exporter_guestosinfo_requests_total", result="not_connected") or 0) >= 1
        )
    )
    assert (
        value(
            samples,
            "kubevirt_vss_volume_info",
            namespace="ns",
            name="win",
            volume="\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\",
            mount_point="C:\\",
            filesystem="NTFS",
        )
        == 1
    )
