"""An API outage after the first sync: still ready, serving the last state, visibly stale; then reconverged."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import value, vmi

VMIS = "virtualmachineinstances"
CONTACT = "kubevirt_vss_exporter_last_contact_timestamp_seconds"


async def test_ready_through_an_outage_with_last_known_state_then_reconverges(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("before"))])
    await running.watching(VMIS)
    samples = await running.scrape()
    assert value(samples, "kubevirt_vss_exporter_synced", resource=VMIS) == 1
    assert value(samples, CONTACT, resource=VMIS) is not None

    running.simulator.faults.set_unavailable(True)
    running.simulator.faults.drop_streams()
    during = await running.wait_for(lambda s: value(s, "kubevirt_vss_exporter_synced", resource=VMIS) == 0)
    async with running.session.get(running.url + "/readyz") as response:
        assert response.status == 200  # readiness is not withdrawn: the last state is still served
    assert await running.vm_names() == ["before"]
    contact_during = value(during, CONTACT, resource=VMIS)
    await asyncio.sleep(1.0)
    assert value(await running.scrape(), CONTACT, resource=VMIS) == contact_during  # staleness grows

    running.simulator.store.upsert(VMIS, vmi("during-outage"))
    running.simulator.faults.set_unavailable(False)
    after = await running.wait_for(
        lambda s: value(s, "kubevirt_vss_exporter_synced", resource=VMIS) == 1
        and any(n == "kubevirt_vss_vm_info" and dict(labels)["name"] == "during-outage" for n, labels in s)
    )
    assert value(after, CONTACT, resource=VMIS) > contact_during
