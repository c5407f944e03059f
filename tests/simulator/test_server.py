"""The simulated API over real loopback HTTP: auth, discovery, get, list paging, subresources, logs."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from pathlib import Path

import aiohttp
import pytest

from exporter.simulator import Simulator, SimulatorConfig
from tests.simulator.helpers import START, vmi_body

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

KUBECTL = shutil.which("kubectl")
VMIS_PATH = "/apis/kubevirt.io/v1/virtualmachineinstances"
GUEST = "/apis/subresources.kubevirt.io/v1/namespaces/ns1/virtualmachineinstances/{}/guestosinfo"


async def test_requests_without_the_token_get_401_status(empty_sim: Simulator) -> None:
    async with aiohttp.ClientSession(base_url=empty_sim.url) as session:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": empty_sim.token}):
            async with session.get("/apis", headers=headers) as response:
                body = await response.json()
            assert response.status == 401
            assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


async def test_unavailable_answers_503_until_switched_back(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    empty_sim.faults.set_unavailable(True)
    async with http.get("/version") as response:
        assert response.status == 503
        assert (await response.json())["reason"] == "ServiceUnavailable"
    empty_sim.faults.set_unavailable(False)
    async with http.get("/version") as response:
        assert response.status == 200


async def test_version_says_it_is_a_simulation(http: aiohttp.ClientSession) -> None:
    async with http.get("/version") as response:
        assert (await response.json())["gitVersion"] == "v1.30.0-kubevirt-vss-simulator"
    async with http.get("/apis/subresources.kubevirt.io/v1/version") as response:
        assert (await response.json())["gitVersion"] == "v1.8.0+kubevirt-vss-simulator"


async def test_aggregated_discovery_request_gets_legacy_json(http: aiohttp.ClientSession) -> None:
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    async with http.get("/apis", headers={"Accept": accept}) as response:
        body = await response.json()
    assert response.content_type == "application/json"
    groups = {g["name"]: g for g in body["groups"]}
    assert body["kind"] == "APIGroupList"
    assert groups["snapshot.kubevirt.io"]["preferredVersion"]["version"] == "v1beta1"
    assert [v["version"] for v in groups["snapshot.kubevirt.io"]["versions"]] == ["v1beta1", "v1alpha1"]
    assert {"kubevirt.io", "subresources.kubevirt.io", "backup.kubevirt.io"} <= set(groups)


async def test_resource_lists_carry_kinds_short_names_and_verbs(http: aiohttp.ClientSession) -> None:
    async with http.get("/apis/kubevirt.io/v1") as response:
        kubevirt = {r["name"]: r for r in (await response.json())["resources"]}
    async with http.get("/api/v1") as response:
        core = {r["name"]: r for r in (await response.json())["resources"]}
    async with http.get("/apis/snapshot.kubevirt.io/v1alpha1") as response:
        alpha = {r["name"]: r for r in (await response.json())["resources"]}
    async with http.get("/apis/subresources.kubevirt.io/v1") as response:
        subresources = {r["name"] for r in (await response.json())["resources"]}

    vmi = kubevirt["virtualmachineinstances"]
    assert (vmi["kind"], vmi["singularName"], vmi["shortNames"], vmi["namespaced"], vmi["verbs"]) == (
        "VirtualMachineInstance", "virtualmachineinstance", ["vmi", "vmis"], True,
        ["create", "delete", "get", "list", "patch", "update", "watch"])
    assert kubevirt["virtualmachineinstances/status"]["verbs"] == ["get", "patch", "update"]
    assert kubevirt["virtualmachines"]["shortNames"] == ["vm", "vms"]
    assert alpha["virtualmachinesnapshots"]["shortNames"] == ["vmsnapshot", "vmsnapshots"]
    assert {"pods", "pods/log", "events", "namespaces"} <= set(core)
    assert core["namespaces"]["namespaced"] is False
    assert "virtualmachineinstances/guestosinfo" in subresources


async def test_old_kubevirt_serves_snapshots_only_as_v1alpha1(no_leaked_tasks: None) -> None:
    config = SimulatorConfig(story=False, kubevirt_version="1.2.0")
    async with Simulator(config) as sim, aiohttp.ClientSession(
        base_url=sim.url, headers={"Authorization": f"Bearer {sim.token}"}
    ) as http:
        async with http.get("/apis") as response:
            groups = {g["name"]: g for g in (await response.json())["groups"]}
        async with http.get("/apis/snapshot.kubevirt.io/v1beta1/virtualmachinesnapshots") as response:
            assert response.status == 404
    assert [v["version"] for v in groups["snapshot.kubevirt.io"]["versions"]] == ["v1alpha1"]
    assert "backup.kubevirt.io" not in groups


async def test_get_one_object_and_404_status_for_a_missing_one(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("a"))

    async with http.get("/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstances/a") as response:
        assert (await response.json())["metadata"]["name"] == "a"
    async with http.get("/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstances/b") as response:
        body = await response.json()
    assert response.status == 404
    assert (body["reason"], body["message"]) == ("NotFound", 'virtualmachineinstances.kubevirt.io "b" not found')
    async with http.get("/api/v1/namespaces/ns1") as response:
        assert (await response.json())["kind"] == "Namespace"
    async with http.get("/apis/example.com/v1/widgets") as response:
        assert response.status == 404
        assert (await response.json())["kind"] == "Status"


async def test_list_pages_with_limit_and_continue_at_one_version(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    for i in range(7):
        empty_sim.store.upsert("virtualmachineinstances", vmi_body(f"vm-{i}", f"ns{i % 2}"))
    names: list[str] = []
    versions: set[str] = set()
    token = None
    pages = 0
    while True:
        params = {"limit": "3", **({"continue": token} if token else {})}
        async with http.get("/apis/kubevirt.io/v1/virtualmachineinstances", params=params) as response:
            body = await response.json()
        pages += 1
        assert (body["apiVersion"], body["kind"]) == ("kubevirt.io/v1", "VirtualMachineInstanceList")
        names += [item["metadata"]["name"] for item in body["items"]]
        versions.add(body["metadata"]["resourceVersion"])
        token = body["metadata"].get("continue")
        if not token:
            break
        # A write between pages does not change the list's resourceVersion.
        empty_sim.store.upsert("pods", {"metadata": {"name": f"p{pages}", "namespace": "ns0"}})

    assert pages == 3
    assert sorted(names) == sorted(f"vm-{i}" for i in range(7))
    assert len(versions) == 1


async def test_namespaced_list_and_selectors(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    store = empty_sim.store
    launcher = {"kubevirt.io": "virt-launcher"}
    store.upsert("pods", {"metadata": {"name": "launcher", "namespace": "ns1", "labels": launcher}})
    store.upsert("pods", {"metadata": {"name": "other", "namespace": "ns1", "labels": {"app": "x"}}})
    store.upsert("pods", {"metadata": {"name": "launcher", "namespace": "ns2", "labels": launcher}})
    for reason in ("FreezeError", "Started"):
        store.upsert("events", {"metadata": {"name": reason, "namespace": "ns1"}, "reason": reason,
                                "involvedObject": {"kind": "VirtualMachineInstance", "name": "a"}})

    async with http.get("/api/v1/namespaces/ns1/pods", params={"labelSelector": "kubevirt.io=virt-launcher"}) as r:
        pods = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in (await r.json())["items"]]
    async with http.get("/api/v1/events", params={
        "fieldSelector": "involvedObject.kind=VirtualMachineInstance,reason=FreezeError"
    }) as r:
        events = [e["reason"] for e in (await r.json())["items"]]
    async with http.get("/api/v1/pods", params={"labelSelector": "kubevirt.io in (virt-launcher),!app"}) as r:
        all_launchers = len((await r.json())["items"])
    async with http.get("/api/v1/pods", params={"labelSelector": "a b c"}) as r:
        assert r.status == 400

    assert pods == [("ns1", "launcher")]
    assert events == ["FreezeError"]
    assert all_launchers == 2


async def test_expired_continue_token_is_410_and_bad_token_400(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    for i in range(3):
        empty_sim.store.upsert("virtualmachineinstances", vmi_body(f"vm-{i}"))
    async with http.get("/apis/kubevirt.io/v1/virtualmachineinstances", params={"limit": "1"}) as response:
        token = (await response.json())["metadata"]["continue"]
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("vm-0", phase="Failed"))
    empty_sim.faults.compact()

    async with http.get("/apis/kubevirt.io/v1/virtualmachineinstances", params={"continue": token}) as response:
        body = await response.json()
    assert response.status == 410
    assert (body["reason"], body["code"]) == ("Expired", 410)
    assert body["message"].startswith("The provided continue parameter is too old")
    async with http.get("/apis/kubevirt.io/v1/virtualmachineinstances", params={"continue": "!!"}) as response:
        assert response.status == 400
    forged = base64.urlsafe_b64encode(b'{"rv": "x"}').decode()
    async with http.get("/apis/kubevirt.io/v1/virtualmachineinstances", params={"continue": forged}) as response:
        assert response.status == 400


async def test_snapshots_are_served_under_both_versions(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    empty_sim.store.upsert("virtualmachinesnapshots", {"metadata": {"name": "s", "namespace": "ns1"}, "spec": {}})

    for version in ("v1beta1", "v1alpha1"):
        async with http.get(f"/apis/snapshot.kubevirt.io/{version}/namespaces/ns1/virtualmachinesnapshots") as r:
            body = await r.json()
        assert body["apiVersion"] == f"snapshot.kubevirt.io/{version}"
        assert body["items"][0]["apiVersion"] == f"snapshot.kubevirt.io/{version}"
        assert body["items"][0]["kind"] == "VirtualMachineSnapshot"


async def test_guestosinfo_answers_like_virt_api(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    store = empty_sim.store
    store.upsert("virtualmachineinstances", vmi_body("up"))
    store.upsert("virtualmachineinstances", vmi_body("no-agent"))
    store.upsert("virtualmachineinstances", vmi_body("starting", phase="Scheduling"))
    info = {"guestAgentVersion": "107.0.1", "fsInfo": {"disks": [{"diskName": "vda1"}]},
            "userList": [{"userName": "u"}], "fsFreezeStatus": "thawed"}
    store.set_guest_info("ns1", "up", info)
    store.set_guest_info("ns1", "no-agent", None)

    async with http.get(GUEST.format("up")) as response:
        assert (response.status, await response.json()) == (200, info)
    async with http.get(GUEST.format("up").replace("guestosinfo", "filesystemlist")) as response:
        assert (await response.json()) == {"metadata": {}, "items": [{"diskName": "vda1"}]}
    async with http.get(GUEST.format("up").replace("guestosinfo", "userlist")) as response:
        assert (await response.json())["items"] == [{"userName": "u"}]
    expected = {
        "no-agent": 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "no-agent": '
                    "VMI does not have guest agent connected",
        "starting": 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "starting": '
                    "VMI is not running",
        "missing": 'virtualmachineinstance.kubevirt.io "missing" not found',
    }
    for name, text in expected.items():
        async with http.get(GUEST.format(name)) as response:
            assert (response.status, response.content_type, await response.text()) == (500, "text/plain", text)


async def test_guestosinfo_can_be_slow_or_fail(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    empty_sim.store.upsert("virtualmachineinstances", vmi_body("up"))
    empty_sim.store.set_guest_info("ns1", "up", {"hostname": "up"})
    empty_sim.faults.guestosinfo_delay = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.get(GUEST.format("up")) as response:
        assert response.status == 200
    assert loop.time() - started >= 0.3

    empty_sim.faults.guestosinfo_delay = 0
    empty_sim.faults.guestosinfo_fail_rate = 1.0
    async with http.get(GUEST.format("up")) as response:
        assert response.status == 500
        assert "context deadline exceeded" in await response.text()


async def test_pod_log_with_tail_since_and_timestamps(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    store = empty_sim.store
    store.upsert("pods", {"metadata": {"name": "p", "namespace": "ns1"},
                          "spec": {"containers": [{"name": "compute"}]}})
    for i, offset in enumerate((-600, -120, -5)):
        store.append_log("ns1", "p", f'{{"msg":"line {i}"}}', at=START + offset)
    path = "/api/v1/namespaces/ns1/pods/p/log"

    async with http.get(path, params={"container": "compute"}) as response:
        assert (response.content_type, await response.text()) == (
            "text/plain", '{"msg":"line 0"}\n{"msg":"line 1"}\n{"msg":"line 2"}\n')
    async with http.get(path, params={"tailLines": "1"}) as response:
        assert await response.text() == '{"msg":"line 2"}\n'
    async with http.get(path, params={"sinceSeconds": "300", "timestamps": "true"}) as response:
        lines = (await response.text()).splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ['{"msg":"line 1"}', '{"msg":"line 2"}']
    assert lines[0].startswith("2027-01-15T07:58:00.000000000Z ")
    async with http.get(path, params={"container": "sidecar"}) as response:
        assert response.status == 400
    async with http.get("/api/v1/namespaces/ns1/pods/nope/log") as response:
        assert response.status == 404


async def test_followed_log_streams_new_lines_and_ends_with_the_pod(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    store = empty_sim.store
    store.upsert("pods", {"metadata": {"name": "p", "namespace": "ns1"}})
    store.append_log("ns1", "p", "old")

    async with http.get("/api/v1/namespaces/ns1/pods/p/log", params={"follow": "true"}) as response:
        assert await response.content.readline() == b"old\n"
        store.append_log("ns1", "p", "new")
        assert await response.content.readline() == b"new\n"
        store.delete("pods", "ns1", "p")
        async with asyncio.timeout(5):
            assert await response.content.read() == b""


async def test_stop_ends_open_streams_and_frees_the_port(no_leaked_tasks: None) -> None:
    sim = Simulator(SimulatorConfig(story=False))
    await sim.start()
    sim.store.upsert("pods", {"metadata": {"name": "p", "namespace": "ns1"}})
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with aiohttp.ClientSession(base_url=sim.url, headers=headers) as http:
        async with http.get("/api/v1/pods", params={"watch": "true"}) as watch, \
                http.get("/api/v1/namespaces/ns1/pods/p/log", params={"follow": "1"}) as log:
            assert (await watch.content.readline()).startswith(b'{"type":"ADDED"')
            await sim.stop()
            async with asyncio.timeout(5):
                assert await watch.content.read() == b""
                assert await log.content.read() == b""
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get("/version")
    await sim.stop()


async def test_kubectl_style_requests_get_tables(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                        "g=meta.k8s.io,application/json"}
    empty_sim.store.upsert("virtualmachineinstances", vmi_body(
        "a", nodeName="n1", interfaces=[{"ipAddress": "127.0.0.2"}], conditions=[{"type": "Ready", "status": "True"}]))
    empty_sim.store.upsert("virtualmachinesnapshots", {
        "metadata": {"name": "s", "namespace": "ns1"}, "spec": {"source": {"kind": "VirtualMachine", "name": "a"}},
        "status": {"phase": "InProgress", "readyToUse": False, "error": {"message": "boom"}}})

    async with http.get(VMIS_PATH, headers=accept) as response:
        vmis = await response.json()
    async with http.get("/apis/snapshot.kubevirt.io/v1beta1/namespaces/ns1/virtualmachinesnapshots/s",
                        headers=accept) as response:
        snap = await response.json()

    assert (vmis["kind"], vmis["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in vmis["columnDefinitions"]] == ["Name", "Age", "Phase", "IP", "NodeName", "Ready"]
    assert vmis["rows"][0]["cells"][2:] == ["Running", "127.0.0.2", "n1", "True"]
    assert vmis["rows"][0]["object"]["metadata"]["namespace"] == "ns1"
    assert vmis["metadata"]["resourceVersion"] == str(empty_sim.store.resource_version)
    assert snap["rows"][0]["cells"] == ["s", "VirtualMachine", "a", "InProgress", False, "", "boom"]


async def _kubectl(kubeconfig: Path, cache: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        KUBECTL or "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow
@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
async def test_real_kubectl_gets_the_fleet(tmp_path: Path) -> None:
    # kubectl sends credentials only over TLS (client-go reads auth info for TLS transports only).
    async with Simulator(SimulatorConfig(tls=True, start_time=None)) as sim:
        kubeconfig = tmp_path / "kubeconfig"
        sim.write_kubeconfig(kubeconfig)
        cache = tmp_path / "cache"

        code, out, err = await _kubectl(kubeconfig, cache, "get", "vmi", "-A")
        assert code == 0, err
        assert out.splitlines()[0].split() == ["NAMESPACE", "NAME", "AGE", "PHASE", "IP", "NODENAME", "READY"]
        assert {"win-exchange-01", "linux-mon-01", "linux-db-01"} <= set(out.split())
        code, out, err = await _kubectl(kubeconfig, cache, "get", "vmsnapshot", "-A")
        assert code == 0, err
        assert "win-ad-01-snap-0" in out.split()
        assert out.splitlines()[0].split()[3:6] == ["SOURCENAME", "PHASE", "READYTOUSE"]
        for resource in ("vm", "pods", "events", "ns"):
            code, out, err = await _kubectl(kubeconfig, cache, "get", resource, "-A")
            assert code == 0, (resource, err)
        code, out, err = await _kubectl(kubeconfig, cache, "get", "--raw", GUEST.replace("ns1", "finance").format(
            "win-exchange-01"))
        assert code == 0, err
        assert json.loads(out)["os"]["id"] == "mswindows"
        code, out, err = await _kubectl(kubeconfig, cache, "get", "--raw", GUEST.replace("ns1", "infra").format(
            "linux-mon-01"))
        assert code != 0
        assert "VMI does not have guest agent connected" in err
