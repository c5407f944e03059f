"""Object factories against the fixtures and the Kubernetes schemas."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from exporter.simulator.clock import parse_rfc3339
from exporter.simulator.events import EventState, launcher_log_line, warning_event
from exporter.simulator.guests import GUEST_OSES, Volume, guest_agent_info, supported_commands
from exporter.simulator.messages import failure_texts, vss_add_volume
from exporter.simulator.objects import VmIdentity, launcher_pod, vm_object, vmi_object
from exporter.simulator.snapshots import SnapshotState, snapshot_object
from exporter.simulator.versions import KubeVirtVersion

V18 = KubeVirtVersion.parse("1.8.0")
SYSTEM_RESERVED = "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\"
C_DRIVE = "\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\"


def identity(**changes: Any) -> VmIdentity:
    fields: dict[str, Any] = {
        "namespace": "default", "name": "win2019", "scenario": "healthy_windows",
        "vm_uid": "6f7c8a1e-2b3d-4c5e-9f01-23456789abcd", "vmi_uid": "0b9a7e06-5b93-479b-8485-03abb19c93fb",
        "pod_uid": "7df31248-f667-41d9-84bb-c24cdb824525", "pod_suffix": "x7k2p", "ip": "127.0.0.2",
        "mac": "02:00:00:3b:12:a4", "node": "node01", "guest": GUEST_OSES["ws2019"], "hostname": "WIN-CUCKQ65DH6K",
        "agent": "connected", "power": "running",
        "volumes": (Volume(SYSTEM_RESERVED, "System Reserved", "NTFS", 0, 0, "sata"),
                    Volume(C_DRIVE, "C:\\", "NTFS", 15238594560, 63846739968, "sata")),
        "created": parse_rfc3339("2022-04-13T06:41:02Z"), "profile": "healthy",
    }
    fields.update(changes)
    return VmIdentity(**fields)


def test_vmi_has_the_fixture_shape(kubevirt_object: Callable[[str], Any]) -> None:
    fixture = kubevirt_object("vmi-windows-agentconnected")
    vmi = vmi_object(identity(), version=V18, frozen=False)

    assert set(vmi["metadata"]) == set(fixture["metadata"]) - {"resourceVersion"}
    assert set(vmi["status"]) <= set(fixture["status"]) | {"currentCPUTopology"}
    assert vmi["status"]["guestOSInfo"] == fixture["status"]["guestOSInfo"]
    agent = next(c for c in vmi["status"]["conditions"] if c["type"] == "AgentConnected")
    assert set(agent) == {"lastProbeTime", "lastTransitionTime", "status", "type"}
    assert agent["lastTransitionTime"] is None
    assert vmi["metadata"]["ownerReferences"][0] == fixture["metadata"]["ownerReferences"][0]
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == "node01"
    assert vmi["metadata"]["annotations"]["kubevirt-vss-exporter/simulated"] == "true"
    assert vmi["status"]["interfaces"][0]["ipAddresses"] == ["127.0.0.2"]
    assert "fsFreezeStatus" not in vmi["status"]
    assert vmi_object(identity(), version=V18, frozen=True)["status"]["fsFreezeStatus"] == "frozen"


def test_vm_copies_conditions_and_a_stopped_vm_is_halted() -> None:
    running = vm_object(identity(), version=V18, snapshot_in_progress="s1")
    stopped = vm_object(identity(power="stopped", agent="none"), version=V18, snapshot_in_progress=None)

    assert running["status"]["printableStatus"] == "Running"
    assert running["status"]["ready"] is True
    assert running["status"]["snapshotInProgress"] == "s1"
    assert "AgentConnected" in {c["type"] for c in running["status"]["conditions"]}
    assert (stopped["spec"]["runStrategy"], stopped["status"]["printableStatus"]) == ("Halted", "Stopped")
    assert "ready" not in stopped["status"]


@pytest.mark.parametrize("kind", ["pod", "event", "namespace"])
def test_core_objects_validate_against_the_kubernetes_schema(kind: str) -> None:
    if kind == "pod":
        obj = launcher_pod(identity(), version=V18)
    elif kind == "event":
        obj = warning_event(identity(), EventState("win2019.1", "u", "FreezeError", "m", 1.0, 2.0, 3))
    else:
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    kubernetes_validate.validate(obj, "1.30", strict=True)


def test_launcher_pod_labels_and_owner() -> None:
    pod = launcher_pod(identity(), version=V18)

    assert pod["metadata"]["name"] == "virt-launcher-win2019-x7k2p"
    assert pod["metadata"]["labels"]["kubevirt.io"] == "virt-launcher"
    assert pod["metadata"]["labels"]["kubevirt.io/created-by"] == "0b9a7e06-5b93-479b-8485-03abb19c93fb"
    assert pod["metadata"]["labels"]["vm.kubevirt.io/name"] == "win2019"
    assert pod["metadata"]["annotations"]["kubevirt.io/domain"] == "win2019"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachineInstance"
    assert "vmi.kubevirt.io/id" not in launcher_pod(identity(), version=KubeVirtVersion.parse("1.6.0"))[
        "metadata"]["labels"]


def test_in_progress_freeze_error_snapshot_equals_the_fixture(kubevirt_object: Callable[[str], Any]) -> None:
    fixture = kubevirt_object("vmsnapshot-inprogress-freeze-error-windows-vss")
    created = parse_rfc3339("2026-08-21T02:00:00Z")
    texts = failure_texts(agent_message=vss_add_volume(C_DRIVE, "plain"), thaw=False, vm_name="win2019", version=V18)
    snap = SnapshotState("default", "snap-win2019-20260821", "9b2d41c7-5e6f-4a80-8c3d-2e1f0a9b8c77", "win2019",
                         "6f7c8a1e-2b3d-4c5e-9f01-23456789abcd", created=created, deadline=300,
                         indications=["GuestAgent", "Online"], error=(created + 7, texts.status_message))
    snap.set_condition("Progressing", "False", "In error state", created + 7)
    snap.set_condition("Ready", "False", "Not ready", created + 1)

    rendered = snapshot_object(snap, version=V18)
    del rendered["metadata"]["annotations"]
    fixture["metadata"].pop("resourceVersion", None)
    assert rendered == fixture


def test_succeeded_quiesce_timeout_snapshot_status_equals_the_fixture(kubevirt_object: Callable[[str], Any]) -> None:
    fixture = kubevirt_object("vmsnapshot-succeeded-quiescetimeout-v1.8")
    created = parse_rfc3339("2026-04-02T02:00:00Z")
    snap = SnapshotState("default", "snap-win2019-20260402", "5e8a0c3d-1f2b-4a6c-9d7e-0a1b2c3d4e5f", "win2019",
                         "6f7c8a1e-2b3d-4c5e-9f01-23456789abcd", created=created, deadline=300, phase="Succeeded",
                         indications=["GuestAgent", "Online", "QuiesceTimeout"], creation_time=created + 30)
    snap.set_condition("Progressing", "False", "Operation complete", created + 31)
    snap.set_condition("Ready", "True", "Ready", created + 31)

    fixture["status"]["snapshotVolumes"]["includedVolumes"] = ["rootdisk"]  # our VMs name their disk so
    assert snapshot_object(snap, version=V18)["status"] == fixture["status"]


def test_older_version_snapshots_have_no_source_indications() -> None:
    snap = SnapshotState("d", "s", "u", "vm", "vu", created=0.0, deadline=60, indications=["Online", "GuestAgent"])
    status = snapshot_object(snap, version=KubeVirtVersion.parse("1.6.0"))["status"]
    assert "sourceIndications" not in status
    assert snapshot_object(snap, version=V18)["spec"]["failureDeadline"] == "1m0s"


def test_guest_agent_info_has_the_fixture_shape(kubevirt_object: Callable[[str], Any]) -> None:
    fixture = kubevirt_object("guestosinfo-windows")
    vm = identity()
    info = guest_agent_info(guest=GUEST_OSES["ws2019-oldagent"], hostname=vm.hostname, volumes=vm.volumes,
                            frozen=False, vss_init_failed=False, login_time=1649832019.452)

    assert list(info) == list(fixture)
    assert info["os"] == fixture["os"]
    assert info["fsInfo"] == fixture["fsInfo"]
    assert info["userList"] == fixture["userList"]
    assert info["guestAgentVersion"] == "100.0.0"
    assert {"enabled": True, "name": "guest-fsfreeze-freeze"} in info["supportedCommands"]


def test_disabled_commands_have_no_enabled_key() -> None:
    frozen = {c["name"]: c for c in supported_commands(windows=False, frozen=True, vss_init_failed=False)}
    vss_failed = {c["name"]: c for c in supported_commands(windows=True, frozen=False, vss_init_failed=True)}

    assert frozen["guest-fsfreeze-freeze"] == {"name": "guest-fsfreeze-freeze"}
    assert frozen["guest-fsfreeze-thaw"] == {"enabled": True, "name": "guest-fsfreeze-thaw"}
    assert frozen["guest-get-fsinfo"] == {"name": "guest-get-fsinfo"}
    assert vss_failed["guest-fsfreeze-freeze"] == {"name": "guest-fsfreeze-freeze"}
    assert vss_failed["guest-fsfreeze-freeze-list"] == {"enabled": True, "name": "guest-fsfreeze-freeze-list"}


def test_launcher_log_line_is_kubevirt_json_with_sorted_keys() -> None:
    reason = "LibvirtError(Code=1, Domain=10, Message='x \\\\?\\Volume{a}\\ \"q\"')"
    line = launcher_log_line(identity(), at=1715151952.147294, level="error", msg="Failed to freeze vmi",
                             pos="server.go:542", reason=reason)
    parsed = json.loads(line)

    assert list(parsed) == sorted(parsed)
    assert parsed == {"component": "virt-launcher", "kind": "", "level": "error", "msg": "Failed to freeze vmi",
                      "name": "win2019", "namespace": "default", "pos": "server.go:542", "reason": reason,
                      "timestamp": "2024-05-08T07:05:52.147294Z", "uid": "0b9a7e06-5b93-479b-8485-03abb19c93fb"}
    plain = json.loads(launcher_log_line(identity(), at=0.0, level="info", msg="m", pos="p", with_object=False))
    assert list(plain) == ["component", "level", "msg", "pos", "timestamp"]
