"""--metric-denylist / --metric-allowlist end to end: the scrape over HTTP has only the selected families."""

from __future__ import annotations

from tests.integration.conftest import value, vmi

VMIS = "virtualmachineinstances"


async def test_denied_families_are_absent_and_self_metrics_stay(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("a"))], metric_denylist=("kubevirt_vss_agent_.*",))
    samples = await running.wait_for(lambda s: value(s, "kubevirt_vss_fs_frozen", namespace="ns", name="a") == 0)
    families = {name for name, _ in samples}
    assert not {n for n in families if n.startswith("kubevirt_vss_agent_")}
    assert "kubevirt_vss_vm_info" in families
    assert "kubevirt_vss_exporter_build_info" in families
    async with running.session.get(running.url + "/metrics") as response:
        body = await response.text()
    assert "# HELP kubevirt_vss_agent_connected" not in body


async def test_allow_list_keeps_only_its_families(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, vmi("a"))], metric_allowlist=("kubevirt_vss_vm_info",))
    samples = await running.wait_for(lambda s: value(s, "kubevirt_vss_exporter_vms") == 1)
    per_vm = {name for name, labels in samples if ("name", "a") in labels}
    assert per_vm == {"kubevirt_vss_vm_info"}
