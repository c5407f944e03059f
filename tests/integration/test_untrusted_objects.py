"""Objects with unsafe text over the real client: every VM is still exported, the text made safe, counted."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import value, vmi

VMIS = "virtualmachineinstances"


def with_os(name: str, pretty_name: str, *, node: str = "node01") -> dict:
    raw = vmi(name)
    raw["status"]["guestOSInfo"] = {"id": "mswindows", "prettyName": pretty_name}
    raw["status"]["nodeName"] = node
    return raw


async def test_lone_surrogates_control_and_bidi_characters_do_not_stop_the_resource(cluster) -> None:
    running = await cluster(
        seed_objects=[
            (VMIS, with_os("healthy", "Windows Server 2022")),
            (VMIS, with_os("surrogate", "Windows \udcff Server")),
            (VMIS, with_os("terminal", "Windows", node="node\x00\x1b[31m")),
            (VMIS, with_os("bidi", "\u202e2202 revreS swodniW")),
        ]
    )
    assert await running.vm_names() == ["bidi", "healthy", "surrogate", "terminal"]

    async with running.session.get(running.url + "/metrics") as response:
        body = (await response.read()).decode("utf-8")  # strict: no surrogate made it into the bytes
    info = {
        s.labels["name"]: s.labels
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "kubevirt_vss_vm_info"
    }
    assert info["surrogate"]["guest_os_version"] == "Windows \ufffd Server"
    assert info["terminal"]["node"] == "node\ufffd\ufffd[31m"
    assert info["bidi"]["guest_os_version"] == "\ufffd2202 revreS swodniW"
    assert not any(c in body for c in "\x00\x1b\u202e")

    samples = await running.scrape()
    malformed = "kubevirt_vss_exporter_malformed_objects_total"
    assert value(samples, malformed, resource=VMIS, problem="invalid_text") == 1
    assert value(samples, malformed, resource=VMIS, problem="control_characters") == 1
    assert value(samples, malformed, resource=VMIS, problem="bidi_controls") == 1


async def test_an_object_changed_to_unsafe_text_on_the_watch_is_cleaned(cluster) -> None:
    running = await cluster(seed_objects=[(VMIS, with_os("later", "Windows"))])
    await running.watching(VMIS)
    running.simulator.store.upsert(VMIS, with_os("later", "Windows \ud800"))
    running.simulator.store.upsert(VMIS, with_os("after", "Windows"))
    samples = await running.wait_for(
        lambda s: any(n == "kubevirt_vss_vm_info" and dict(labels)["name"] == "after" for n, labels in s)
    )
    versions = {
        dict(labels)["name"]: dict(labels)["guest_os_version"] for n, labels in samples if n == "kubevirt_vss_vm_info"
    }
    assert versions == {"later": "Windows \ufffd", "after": "Windows"}
