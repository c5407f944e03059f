"""The fleet and its story, played on the simulated clock without sleeping (plus one run over HTTP)."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import aiohttp
import pytest

from exporter.simulator import GuestTarget, Simulator, SimulatorConfig
from exporter.simulator.fleet import Fleet
from exporter.simulator.history import ObjectStore
from exporter.simulator.scenarios import GUEST_PROFILES, loopback_ip
from exporter.simulator.versions import KubeVirtVersion
from tests.simulator.helpers import START, read_lines


def make_fleet(
    *, version: str = "1.8.0", vms: int | None = None, seed: int = 1, event_ttl: float = 3600.0
) -> tuple[Fleet, ObjectStore]:
    store = ObjectStore(clock=lambda: START, seed=seed)
    fleet = Fleet(store=store, seed=seed, start=START, version=KubeVirtVersion.parse(version), vms=vms,
                  event_ttl=event_ttl)
    fleet.build()
    return fleet, store


def by_name(store: ObjectStore, resource: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in store.list(resource)}


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in obj["status"]["conditions"]}


def freeze_events(store: ObjectStore, vm: str) -> list[dict]:
    return [e for e in store.list("events")
            if e["reason"] == "FreezeError" and e["involvedObject"]["name"] == vm]


def log_messages(store: ObjectStore, namespace: str, vm: str) -> list[dict]:
    pod = next(p for p in store.list("pods") if p["metadata"]["labels"]["vm.kubevirt.io/name"] == vm)
    return [json.loads(line) for _, line in store.log_lines(namespace, pod["metadata"]["name"])]


def test_default_fleet_has_every_scenario_in_three_namespaces() -> None:
    fleet, store = make_fleet()
    vms = by_name(store, "virtualmachines")
    vmis = by_name(store, "virtualmachineinstances")

    assert 12 <= len(vms) <= 16
    assert {o["metadata"]["namespace"] for o in vms.values()} == {"finance", "engineering", "infra"}
    assert set(vmis) == set(vms) - {"win-archive-01"}
    assert vms["win-archive-01"]["status"]["printableStatus"] == "Stopped"
    assert vms["win-archive-01"]["spec"]["runStrategy"] == "Halted"
    assert vms["linux-batch-01"]["status"]["printableStatus"] == "Paused"
    assert conditions(vmis["linux-batch-01"])["Paused"]["status"] == "True"
    ips = [vmi["status"]["interfaces"][0]["ipAddress"] for vmi in vmis.values()]
    assert len(set(ips)) == len(ips)
    assert all(ip.startswith("127.0.0.") and ip != "127.0.0.1" for ip in ips)
    assert fleet.size == len(vms)


def test_agent_conditions_follow_kubevirt_rules() -> None:
    _, store = make_fleet()
    vmis = by_name(store, "virtualmachineinstances")

    for vmi in vmis.values():
        agent = conditions(vmi).get("AgentConnected")
        assert agent is None or agent["status"] == "True"
    assert "AgentConnected" not in conditions(vmis["linux-mon-01"])
    assert "AgentConnected" not in conditions(vmis["linux-cache-01"])
    assert vmis["linux-mon-01"]["status"]["guestOSInfo"]["id"] == "ubuntu"  # stale, never cleared
    assert vmis["linux-cache-01"]["status"]["guestOSInfo"] == {}
    unsupported = conditions(vmis["win-build-01"])["AgentVersionNotSupported"]
    assert (unsupported["status"], unsupported["reason"]) == (
        "True", "This guest agent doesn't support required basic commands")
    assert vmis["win-ad-01"]["status"]["guestOSInfo"]["id"] == "mswindows"
    frozen = [name for name, vmi in vmis.items() if "fsFreezeStatus" in vmi["status"]]
    assert frozen == ["linux-db-01"]
    assert vmis["linux-db-01"]["status"]["fsFreezeStatus"] == "frozen"


def test_launcher_pods_link_to_their_vmi() -> None:
    _, store = make_fleet()
    vmis = by_name(store, "virtualmachineinstances")

    for pod in store.list("pods"):
        labels = pod["metadata"]["labels"]
        vmi = vmis[labels["vm.kubevirt.io/name"]]
        assert labels["kubevirt.io"] == "virt-launcher"
        assert labels["kubevirt.io/created-by"] == vmi["metadata"]["uid"]
        assert re.fullmatch(rf"virt-launcher-{vmi['metadata']['name']}-[a-z0-9]{{5}}", pod["metadata"]["name"])
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("VirtualMachineInstance",
                                                                       vmi["metadata"]["uid"], True)
        assert pod["spec"]["containers"][0]["name"] == "compute"
        assert vmi["metadata"]["ownerReferences"][0]["name"] == vmi["metadata"]["name"]


def test_guest_info_matches_agent_state() -> None:
    fleet, _ = make_fleet()

    assert fleet.guest_info("infra", "linux-mon-01") is None
    assert fleet.guest_info("infra", "win-archive-01") is None
    frozen = fleet.guest_info("engineering", "linux-db-01")
    assert frozen is not None and frozen["fsFreezeStatus"] == "frozen"
    freeze = next(c for c in frozen["supportedCommands"] if c["name"] == "guest-fsfreeze-freeze")
    assert freeze == {"name": "guest-fsfreeze-freeze"}
    unsupported = fleet.guest_info("engineering", "win-build-01")
    assert unsupported is not None
    assert {"name": "guest-get-fsinfo"} in unsupported["supportedCommands"]
    healthy = fleet.guest_info("finance", "win-ad-01")
    assert healthy is not None and healthy["fsFreezeStatus"] == "thawed"
    assert {"enabled": True, "name": "guest-fsfreeze-freeze"} in healthy["supportedCommands"]
    assert [d["mountPoint"] for d in healthy["fsInfo"]["disks"]] == ["System Reserved", "C:\\"]


def test_guest_targets_cover_every_profile() -> None:
    fleet, _ = make_fleet()
    targets = fleet.guest_targets()

    assert {t.profile for t in targets} == set(GUEST_PROFILES)
    assert all(isinstance(t, GuestTarget) and t.ip.startswith("127.0.0.") for t in targets)
    assert "win-archive-01" not in {t.name for t in targets}


def test_first_freeze_failures_come_within_half_a_minute() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 30)

    failing = {e["involvedObject"]["name"] for e in store.list("events")}
    assert {"win-exchange-01", "linux-ci-01"} <= failing
    snapshots = by_name(store, "virtualmachinesnapshots")
    assert snapshots["win-ad-01-snap-1"]["status"]["phase"] == "Succeeded"
    assert "win-sql-01-snap-1" in snapshots


def test_volume_refused_retries_every_5s_then_fails_at_the_deadline() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 60)
    snap = by_name(store, "virtualmachinesnapshots")["win-exchange-01-snap-1"]
    info = fleet.guest_info("finance", "win-exchange-01")
    assert info is not None
    guid_volume = next(d["diskName"] for d in info["fsInfo"]["disks"] if d["mountPoint"] == "System Reserved")
    quoted = guid_volume.replace("\\", "\\\\")

    status = snap["status"]
    assert status["phase"] == "InProgress"
    assert status["error"]["message"] == (
        "Internal error occurred: unexpected return code 400 (400 Bad Request), message: server error. command "
        "Freeze failed: \"LibvirtError(Code=1, Domain=10, Message='internal error: unable to execute QEMU agent "
        f"command 'guest-fsfreeze-freeze': failed to add {quoted} to snapshot set: ')\""
    )
    assert status["error"]["time"] == "2027-01-15T08:00:58Z"  # the 8th attempt: created at +22, every 5 s
    assert (conditions(snap)["Progressing"]["reason"], conditions(snap)["Ready"]["reason"]) == (
        "In error state", "Not ready")
    assert status["indications"] == ["GuestAgent", "Online"]
    assert snap["spec"]["failureDeadline"] == "5m0s"
    event = freeze_events(store, "win-exchange-01")[0]
    count_at_60 = event["count"]
    assert event["message"].startswith("Failed to freeze VMI: server error. command Freeze failed: ")
    assert (event["type"], event["source"]["component"], event["involvedObject"]["kind"]) == (
        "Warning", "virt-handler", "VirtualMachineInstance")
    failures = [m for m in log_messages(store, "finance", "win-exchange-01") if m["msg"] == "Failed to freeze vmi"]
    assert len(failures) == count_at_60
    assert failures[0]["level"] == "error"
    assert failures[0]["reason"].startswith("LibvirtError(Code=1, Domain=10, ")
    assert f"failed to add {guid_volume} to snapshot set" in failures[0]["reason"]

    fleet.advance_to(START + 22 + 299)
    later = freeze_events(store, "win-exchange-01")[0]
    assert later["count"] > count_at_60
    assert later["metadata"]["name"] == event["metadata"]["name"]
    assert later["lastTimestamp"] > event["lastTimestamp"]
    assert by_name(store, "virtualmachinesnapshots")["win-exchange-01-snap-1"]["status"]["phase"] == "InProgress"

    fleet.advance_to(START + 22 + 300)
    failed = by_name(store, "virtualmachinesnapshots")["win-exchange-01-snap-1"]
    assert failed["status"]["phase"] == "Failed"
    failure = conditions(failed)["Failure"]
    assert (failure["status"], failure["reason"]) == ("True", "snapshot deadline exceeded")
    assert failed["status"]["error"]["message"] == status["error"]["message"]
    assert "snapshotInProgress" not in by_name(store, "virtualmachines")["win-exchange-01"]["status"]


def test_volume_refused_uses_all_three_message_shapes_over_episodes() -> None:
    fleet, store = make_fleet()
    shapes = []
    for episode in range(1, 4):
        fleet.advance_to(START + 22 + (episode - 1) * 360 + 30)
        name = f"win-exchange-01-snap-{episode}"
        shapes.append(by_name(store, "virtualmachinesnapshots")[name]["status"]["error"]["message"])

    assert shapes[0].endswith("to snapshot set: ')\"")
    assert shapes[1].endswith("to snapshot set: Windows error 0x8004230e: ')\"")
    assert shapes[2].endswith("to snapshot set:  (error: 8004230e)')\"")


def test_another_backup_in_progress_recovers_on_the_next_retry() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 40)
    snap = by_name(store, "virtualmachinesnapshots")["win-backup-01-snap-1"]

    assert snap["status"]["phase"] == "Succeeded"
    assert "error" not in snap["status"]
    assert snap["status"]["indications"] == ["GuestAgent", "Online"]
    assert (conditions(snap)["Ready"]["status"], conditions(snap)["Progressing"]["reason"]) == (
        "True", "Operation complete")
    events = freeze_events(store, "win-backup-01")
    assert len(events) == 1 and events[0]["count"] == 1
    assert "failed to start snapshot set: Windows error 0x80042316: " in events[0]["message"]


@pytest.mark.parametrize(("version", "expected"), [
    ("1.8.0", ["GuestAgent", "Online", "QuiesceTimeout"]),
    ("1.6.0", ["GuestAgent", "Online"]),
])
def test_hold_writes_timeout_depends_on_the_kubevirt_version(version: str, expected: list[str]) -> None:
    fleet, store = make_fleet(version=version)
    fleet.advance_to(START + 55)
    snap = by_name(store, "virtualmachinesnapshots")["win-files-01-snap-1"]

    assert snap["status"]["phase"] == "Succeeded"
    assert snap["status"]["indications"] == expected
    assert "error" not in snap["status"]
    thaw = [m for m in log_messages(store, "finance", "win-files-01") if m["msg"] == "Failed to unfreeze vmi"]
    assert len(thaw) == 1
    assert "'guest-fsfreeze-thaw': couldn't hold writes: fsfreeze is limited up to 10 seconds" in thaw[0]["reason"]
    if version == "1.8.0":
        assert [s["indication"] for s in snap["status"]["sourceIndications"]] == expected
    else:
        assert "sourceIndications" not in snap["status"]


def test_hold_writes_timeout_shows_the_thaw_error_while_in_progress() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 32 + 1)
    assert "fsFreezeStatus" in by_name(store, "virtualmachineinstances")["win-files-01"]["status"]
    info = fleet.guest_info("finance", "win-files-01")
    assert info is not None and info["fsFreezeStatus"] == "frozen"

    fleet.advance_to(START + 32 + 1 + 12)
    snap = by_name(store, "virtualmachinesnapshots")["win-files-01-snap-1"]
    assert snap["status"]["phase"] == "InProgress"
    assert "command Unfreeze failed" in snap["status"]["error"]["message"]
    assert "QuiesceTimeout" in snap["status"]["indications"]
    assert "fsFreezeStatus" not in by_name(store, "virtualmachineinstances")["win-files-01"]["status"]


def test_indications_for_no_agent_paused_and_stopped() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 70)
    snaps = by_name(store, "virtualmachinesnapshots")

    assert snaps["linux-cache-01-snap-1"]["status"]["indications"] == ["NoGuestAgent", "Online"]
    assert snaps["linux-batch-01-snap-1"]["status"]["indications"] == ["Online", "Paused"]
    offline = snaps["win-archive-01-snap-1"]["status"]
    assert offline["phase"] == "Succeeded"
    assert "indications" not in offline and "sourceIndications" not in offline
    assert offline["creationTime"]
    assert snaps["linux-web-01-snap-1"]["status"]["indications"] == ["GuestAgent", "Online"]


def test_linux_permission_denied_keeps_failing() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 20 + 300)
    snap = by_name(store, "virtualmachinesnapshots")["linux-ci-01-snap-1"]

    assert snap["status"]["phase"] == "Failed"
    assert "'guest-fsfreeze-freeze': failed to open /.snapshots: Permission denied')\"" in (
        snap["status"]["error"]["message"])
    assert freeze_events(store, "linux-ci-01")[0]["count"] == 60


def test_older_releases_write_quiesce_failed_and_append_order() -> None:
    fleet, store = make_fleet(version="1.7.0")
    fleet.advance_to(START + 40)
    backup = by_name(store, "virtualmachinesnapshots")["win-backup-01-snap-1"]["status"]
    exchange = by_name(store, "virtualmachinesnapshots")["win-exchange-01-snap-1"]["status"]
    assert backup["indications"] == ["GuestAgent", "Online", "QuiesceFailed"]
    assert exchange["error"]["message"].startswith("Failed freezing vm win-exchange-01: Internal error occurred")

    fleet, store = make_fleet(version="1.3.0")
    fleet.advance_to(START + 40)
    old = by_name(store, "virtualmachinesnapshots")["win-exchange-01-snap-1"]["status"]
    assert "error" not in old
    assert old["indications"] == ["Online", "GuestAgent"]
    assert freeze_events(store, "win-exchange-01")  # the Event is the only trace before v1.4.1


def test_retention_keeps_the_last_three_snapshots_per_vm() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 1800)
    per_vm = Counter(s["spec"]["source"]["name"] for s in store.list("virtualmachinesnapshots"))

    assert max(per_vm.values()) == 3
    assert "win-ad-01-snap-10" in by_name(store, "virtualmachinesnapshots")


def test_events_expire_after_their_ttl_and_a_later_failure_starts_a_new_one() -> None:
    fleet, store = make_fleet(event_ttl=100.0)
    fleet.advance_to(START + 30)
    (first,) = freeze_events(store, "win-backup-01")
    fleet.advance_to(START + 200)
    assert freeze_events(store, "win-backup-01") == []

    fleet.advance_to(START + 24 + 360 + 2)  # snapshot 3 fails once again
    (second,) = freeze_events(store, "win-backup-01")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["count"] == 1


def test_same_seed_same_objects_and_another_seed_differs() -> None:
    def dump(seed: int) -> str:
        fleet, store = make_fleet(seed=seed)
        fleet.advance_to(START + 400)
        resources = ("virtualmachines", "virtualmachineinstances", "pods", "virtualmachinesnapshots", "events")
        logs = [store.log_lines(p["metadata"]["namespace"], p["metadata"]["name"]) for p in store.list("pods")]
        return json.dumps([store.list(r) for r in resources] + [logs, fleet.guest_info("finance", "win-ad-01")])

    assert dump(7) == dump(7)
    assert dump(7) != dump(8)


def test_scaled_fleet_repeats_the_scenarios_across_namespaces() -> None:
    _, store = make_fleet(vms=250)
    vms = store.list("virtualmachines")

    assert len(vms) == 250
    assert {v["metadata"]["namespace"] for v in vms} == {"sim-0", "sim-1", "sim-2"}
    assert len({v["metadata"]["name"] for v in vms}) == 250
    scenarios = Counter(v["metadata"]["annotations"]["kubevirt-vss-exporter/scenario"] for v in vms)
    assert scenarios["vss_volume_refused"] in (17, 18)
    ips = [vmi["status"]["interfaces"][0]["ipAddress"] for vmi in store.list("virtualmachineinstances")]
    assert len(set(ips)) == len(ips)
    assert loopback_ip(253) == "127.0.1.1"
    assert all(not ip.endswith((".0", ".255")) for ip in (loopback_ip(i) for i in range(2000)))


@pytest.mark.slow
def test_fifty_thousand_vms_build_quickly_enough() -> None:
    started = time.perf_counter()
    fleet, store = make_fleet(vms=50_000)
    built = time.perf_counter() - started
    listed = time.perf_counter()
    entries, _, _ = store.page("virtualmachineinstances", namespace=None, after=None, limit=500, match=None)
    body = b",".join(e.json() for e in entries)
    paged = time.perf_counter() - listed
    print(f"\n50k VMs: build {built:.1f} s, first page of 500 VMIs {paged * 1000:.0f} ms ({len(body)} bytes)")
    assert fleet.size == 50_000
    assert len(entries) == 500


async def test_story_over_http_on_a_fast_clock(no_leaked_tasks: None) -> None:
    config = SimulatorConfig(seed=1, time_speed=60.0, start_time=START)
    async with Simulator(config) as sim, aiohttp.ClientSession(
        base_url=sim.url, headers={"Authorization": f"Bearer {sim.token}"}
    ) as http:
        params = {"watch": "true", "fieldSelector": "reason=FreezeError", "timeoutSeconds": "10"}
        async with http.get("/api/v1/events", params=params) as response:
            events = await read_lines(response, count=4, timeout=10)
        assert {e["object"]["involvedObject"]["name"] for e in events} & {"win-exchange-01", "linux-ci-01"}
        assert sim.now() - START >= 20
        assert {t.name for t in sim.guest_targets()} >= {"win-ad-01", "win-exchange-01"}


@pytest.mark.parametrize(("version", "retried", "held", "sourced"), [
    ("1.4.0", ["Online", "GuestAgent"], ["Online", "GuestAgent"], False),
    ("1.5.0", ["Online", "GuestAgent"], ["Online", "GuestAgent"], False),
    ("1.5.2", ["GuestAgent", "Online", "QuiesceFailed"], ["GuestAgent", "Online"], False),
    ("1.6.4", ["GuestAgent", "Online"], ["GuestAgent", "Online", "QuiesceTimeout"], False),
    ("1.7.0", ["GuestAgent", "Online", "QuiesceFailed"], ["GuestAgent", "Online"], True),
    ("1.7.2", ["GuestAgent", "Online"], ["GuestAgent", "Online", "QuiesceTimeout"], True),
    ("1.8.0", ["GuestAgent", "Online"], ["GuestAgent", "Online", "QuiesceTimeout"], True),
    ("1.9.0", ["GuestAgent", "Online"], ["GuestAgent", "Online", "QuiesceTimeout"], True),
])
def test_each_release_line_writes_its_own_shapes(
    version: str, retried: list[str], held: list[str], sourced: bool
) -> None:
    fleet, store = make_fleet(version=version)
    fleet.advance_to(START + 60)
    snaps = by_name(store, "virtualmachinesnapshots")

    backup = snaps["win-backup-01-snap-1"]["status"]  # one failed freeze, then a retry that froze
    assert (backup["phase"], backup["indications"]) == ("Succeeded", retried)
    files = snaps["win-files-01-snap-1"]["status"]  # thawed after the 10 s hold
    assert (files["phase"], files["indications"]) == ("Succeeded", held)
    assert ("sourceIndications" in backup) is sourced


def test_storage_error_is_written_by_the_controller_and_fails_at_the_deadline() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 50)
    snap = by_name(store, "virtualmachinesnapshots")["linux-store-01-snap-1"]["status"]
    assert snap["phase"] == "InProgress"
    assert re.fullmatch(r"VolumeSnapshot vmsnapshot-\S+-volume-rootdisk error: .+", snap["error"]["message"])
    assert not freeze_events(store, "linux-store-01")

    fleet.advance_to(START + 42 + 301)
    assert by_name(store, "virtualmachinesnapshots")["linux-store-01-snap-1"]["status"]["phase"] == "Failed"


def test_storage_error_content_names_the_failed_volume() -> None:
    from exporter.state.snapshot_contents import parse_snapshot_content

    fleet, store = make_fleet()
    fleet.advance_to(START + 50)
    snap = by_name(store, "virtualmachinesnapshots")["linux-store-01-snap-1"]
    contents = by_name(store, "virtualmachinesnapshotcontents")
    content = contents[snap["status"]["virtualMachineSnapshotContentName"]]
    (entry,) = content["status"]["volumeSnapshotStatus"]
    assert entry["volumeSnapshotName"] == f"vmsnapshot-{snap['metadata']['uid']}-volume-rootdisk"
    assert "rpc error: code = ResourceExhausted" in entry["error"]["message"]
    # The snapshot's own error is the content's: the first failed VolumeSnapshot (snapshot.go:474-477, v1.8.0).
    assert content["status"]["error"]["message"] == snap["status"]["error"]["message"]
    facts, problems = parse_snapshot_content(content)
    assert problems == [] and facts is not None
    assert [(f.volume, f.reason) for f in facts.failures] == [("rootdisk", "resource_exhausted")]
    # Only the storage scenario writes contents.
    assert {c["spec"]["source"]["virtualMachine"]["metadata"]["name"] for c in contents.values()} == {"linux-store-01"}


def test_a_pruned_snapshot_takes_its_content_with_it() -> None:
    fleet, store = make_fleet()
    fleet.advance_to(START + 50)
    first = by_name(store, "virtualmachinesnapshots")["linux-store-01-snap-1"]
    content_name = first["status"]["virtualMachineSnapshotContentName"]
    fleet.advance_to(START + 1500)
    assert "linux-store-01-snap-1" not in by_name(store, "virtualmachinesnapshots")
    contents = by_name(store, "virtualmachinesnapshotcontents")
    assert content_name not in contents
    kept = {s["status"]["virtualMachineSnapshotContentName"] for s in store.list("virtualmachinesnapshots")}
    assert set(contents) <= kept and contents


def test_the_exporter_judges_the_story_of_1_7_0() -> None:
    from exporter.state.fleet import Fleet as ExporterFleet
    from exporter.state.records import VmKey

    fleet, store = make_fleet(version="1.7.0")
    fleet.advance_to(START + 60)
    states = {}
    judged = ExporterFleet(on_state=lambda key, state: states.__setitem__(key, state))
    resources = ("virtualmachines", "virtualmachineinstances", "virtualmachinesnapshots", "events")
    for resource in (*resources, "virtualmachinesnapshotcontents"):
        for obj in store.list(resource):
            judged.upsert(resource, obj, now=START + 60)

    backup = states[VmKey("finance", "win-backup-01")]
    assert backup.last_snapshot is not None
    assert (backup.last_snapshot.level, backup.last_snapshot.reason) == (3, "quiesced_after_retry")
    storage = states[VmKey("infra", "linux-store-01")]
    assert storage.storage_failure_counts == (("volume_snapshot_error", 1),)
    assert storage.freeze_error_counts == ()


def test_the_exporter_names_the_failed_volume_of_the_story() -> None:
    from exporter.state.fleet import Fleet as ExporterFleet
    from exporter.state.records import VmKey

    fleet, store = make_fleet()
    fleet.advance_to(START + 42 + 305)  # the storage VM's first snapshot failed at its deadline
    states = {}
    judged = ExporterFleet(on_state=lambda key, state: states.__setitem__(key, state))
    for resource in ("virtualmachines", "virtualmachineinstances", "virtualmachinesnapshots"):
        judged.replace(resource, store.list(resource), now=START + 347)
    storage = states[VmKey("infra", "linux-store-01")]
    assert storage.last_snapshot is not None
    last = storage.last_snapshot
    assert (last.snapshot, last.reason) == ("linux-store-01-snap-1", "volume_snapshot_error")
    # Without the content the snapshot's error names the first failed volume; the content confirms it.
    assert storage.last_snapshot.failed_volumes == (("rootdisk", "resource_exhausted"),)
    judged.replace("virtualmachinesnapshotcontents", store.list("virtualmachinesnapshotcontents"), now=START + 347)
    storage = states[VmKey("infra", "linux-store-01")]
    assert storage.last_snapshot is not None
    assert storage.last_snapshot.failed_volumes == (("rootdisk", "resource_exhausted"),)
    assert any(line.startswith("volume rootdisk storage snapshot failed (resource_exhausted)")
               for line in storage.last_snapshot.explanation)
