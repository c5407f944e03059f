"""Writes over real HTTP: each gives the next resourceVersion and exactly one watch event."""

from __future__ import annotations

import json

import aiohttp
import pytest

from exporter.simulator import Simulator
from tests.simulator.helpers import read_lines

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

SNAPSHOTS = "/apis/snapshot.kubevirt.io/v1beta1/namespaces/ns1/virtualmachinesnapshots"
EVENTS = "/api/v1/namespaces/ns1/events"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def snapshot_body(name: str = "s1", **status: object) -> dict:
    body: dict = {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {"name": name, "namespace": "ns1", "uid": "client-uid", "resourceVersion": "999"},
        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "vm1"}},
    }
    if status:
        body["status"] = status
    return body


async def test_every_write_is_one_event_with_a_rising_version(http: aiohttp.ClientSession) -> None:
    async with http.get(SNAPSHOTS) as response:
        listed = (await response.json())["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": listed, "timeoutSeconds": "30"}
    async with http.get(SNAPSHOTS, params=params) as watch:
        async with http.post(SNAPSHOTS, json=snapshot_body(phase="Succeeded")) as response:
            assert response.status == 201
            created = await response.json()
        status_path = f"{SNAPSHOTS}/s1/status"
        async with http.patch(status_path, data=json.dumps({"status": {"phase": "Succeeded"}}), headers=MERGE) as r:
            assert r.status == 200
        patch = [{"op": "add", "path": "/metadata/labels", "value": {"team": "a"}}]
        async with http.patch(f"{SNAPSHOTS}/s1", data=json.dumps(patch), headers=JSON_PATCH) as r:
            assert r.status == 200
        async with http.delete(f"{SNAPSHOTS}/s1") as r:
            assert (r.status, (await r.json())["status"]) == (200, "Success")
        events = await read_lines(watch, count=4)

    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 4 and versions[0] > int(listed)
    # Server-set metadata wins over the client's; status is a subresource, so create drops it.
    assert created["metadata"]["uid"] != "client-uid" and "status" not in created
    assert events[1]["object"]["status"] == {"phase": "Succeeded"}
    assert events[2]["object"]["metadata"]["labels"] == {"team": "a"}
    assert events[2]["object"]["status"] == {"phase": "Succeeded"}  # a patch of the object keeps the status


async def test_replace_checks_the_resource_version_and_keeps_status(
    empty_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(SNAPSHOTS, json=snapshot_body()) as response:
        created = await response.json()
    async with http.put(f"{SNAPSHOTS}/s1/status", json={**created, "status": {"phase": "Failed"}}) as response:
        after_status = await response.json()
    assert after_status["status"] == {"phase": "Failed"}

    stale = {**created, "spec": {"source": {"kind": "VirtualMachine", "name": "vm2"}}, "status": {}}
    async with http.put(f"{SNAPSHOTS}/s1", json=stale) as response:
        assert (response.status, (await response.json())["reason"]) == (409, "Conflict")
    fresh = {**after_status, "spec": {"source": {"kind": "VirtualMachine", "name": "vm2"}}, "status": {}}
    async with http.put(f"{SNAPSHOTS}/s1", json=fresh) as response:
        replaced = await response.json()
    assert replaced["spec"]["source"]["name"] == "vm2"
    assert replaced["status"] == {"phase": "Failed"}
    assert replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert empty_sim.store.get("virtualmachinesnapshots", "ns1", "s1") == replaced


async def test_create_conflicts_and_errors_answer_with_status(http: aiohttp.ClientSession) -> None:
    async with http.post(SNAPSHOTS, json=snapshot_body()) as response:
        assert response.status == 201
    async with http.post(SNAPSHOTS, json=snapshot_body()) as response:
        assert (response.status, (await response.json())["reason"]) == (409, "AlreadyExists")
    other_namespace = snapshot_body("s2")
    other_namespace["metadata"]["namespace"] = "ns2"
    async with http.post(SNAPSHOTS, json=other_namespace) as response:
        assert response.status == 400
    async with http.patch(f"{SNAPSHOTS}/nope", data="{}", headers=MERGE) as response:
        assert (response.status, (await response.json())["reason"]) == (404, "NotFound")
    async with http.patch(f"{SNAPSHOTS}/s1", data="{}", headers={"Content-Type": "application/apply-patch+yaml"}) as r:
        assert r.status == 415
    bad = [{"op": "remove", "path": "/spec/nothing"}]
    async with http.patch(f"{SNAPSHOTS}/s1", data=json.dumps(bad), headers=JSON_PATCH) as response:
        assert response.status == 422
    async with http.post(SNAPSHOTS, data="kind: [", headers={"Content-Type": "application/yaml"}) as response:
        assert response.status == 400


async def test_generate_name_yaml_body_and_resources_without_status(http: aiohttp.ClientSession) -> None:
    event = "metadata:\n  generateName: vm1.\nreason: FreezeError\nmessage: boom\ntype: Warning\n"
    async with http.post(EVENTS, data=event, headers={"Content-Type": "application/yaml"}) as response:
        assert response.status == 201
        created = await response.json()
    assert created["metadata"]["name"].startswith("vm1.") and len(created["metadata"]["name"]) == 9
    async with http.patch(f"{EVENTS}/{created['metadata']['name']}/status", data="{}", headers=MERGE) as response:
        assert response.status == 404
    async with http.patch(f"{EVENTS}/{created['metadata']['name']}", data='{"count": 3}', headers=MERGE) as response:
        assert (await response.json())["count"] == 3


async def test_dry_run_changes_nothing(empty_sim: Simulator, http: aiohttp.ClientSession) -> None:
    before = empty_sim.store.resource_version
    async with http.post(SNAPSHOTS, json=snapshot_body(), params={"dryRun": "All"}) as response:
        assert response.status == 201
    assert empty_sim.store.resource_version == before
    assert empty_sim.store.get("virtualmachinesnapshots", "ns1", "s1") is None
