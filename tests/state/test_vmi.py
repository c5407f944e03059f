"""VMI, VM and guestosinfo parsing: agent and freeze semantics, and malformed input."""

from __future__ import annotations

import pytest

from exporter.state.vmi import parse_guest_info, parse_vm, parse_vmi


def test_windows_fixture(kubevirt_object) -> None:
    facts, problems = parse_vmi(kubevirt_object("vmi-windows-agentconnected"))
    assert problems == []
    assert facts is not None
    assert facts.agent_connected and facts.running and facts.is_windows
    assert facts.agent_unsupported_reason is None
    assert facts.node == "node01"
    assert facts.guest_os_version == "Windows Server 2019 Standard"
    assert facts.ip_addresses == ("10.0.2.2", "fe80::5054:ff:fe3b:12a4")
    assert not facts.fs_frozen


def test_missing_condition_means_disconnected(kubevirt_object) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    raw["status"]["conditions"] = [c for c in raw["status"]["conditions"] if c["type"] != "AgentConnected"]
    facts, _ = parse_vmi(raw)
    assert facts is not None and not facts.agent_connected


def test_agent_connected_only_counts_on_running_vmi(kubevirt_object) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    raw["status"]["phase"] = "Succeeded"
    facts, _ = parse_vmi(raw)
    assert facts is not None and not facts.agent_connected


def test_unsupported_agent_reason(kubevirt_object) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    raw["status"]["conditions"].append(
        {
            "type": "AgentVersionNotSupported",
            "status": "True",
            "reason": "This guest agent doesn't support required basic commands",
        }
    )
    facts, _ = parse_vmi(raw)
    assert facts is not None
    assert facts.agent_unsupported_reason == "This guest agent doesn't support required basic commands"


def test_frozen_and_paused(kubevirt_object) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    raw["status"]["fsFreezeStatus"] = "frozen"
    raw["status"]["conditions"].append({"type": "Paused", "status": "True"})
    facts, _ = parse_vmi(raw)
    assert facts is not None and facts.fs_frozen and facts.paused


@pytest.mark.parametrize(
    ("mutate", "expected_problem"),
    [
        (lambda raw: raw.pop("status"), "missing_status"),
        (lambda raw: raw.__setitem__("status", "Running"), "status_not_object"),
        (lambda raw: raw["status"].__setitem__("conditions", "AgentConnected"), "conditions_not_list"),
        (lambda raw: raw["status"].__setitem__("nodeName", 42), "nodeName_not_string"),
        (lambda raw: raw["status"]["guestOSInfo"].__setitem__("name", "W" * 10_000), "name_too_long"),
        (lambda raw: raw["status"].__setitem__("interfaces", [None, {"ipAddresses": "x"}]), "interface_not_object"),
    ],
)
def test_malformed_vmi_degrades(kubevirt_object, mutate, expected_problem: str) -> None:
    raw = kubevirt_object("vmi-windows-agentconnected")
    mutate(raw)
    facts, problems = parse_vmi(raw)
    assert facts is not None
    assert expected_problem in problems


@pytest.mark.parametrize("raw", [None, [], "x", {"metadata": {"name": "a"}}, {"metadata": "x"}])
def test_unidentifiable_objects_are_skipped(raw) -> None:
    facts, problems = parse_vmi(raw)
    assert facts is None and problems


def test_vm_printable_status() -> None:
    facts, problems = parse_vm(
        {"metadata": {"namespace": "ns", "name": "vm", "uid": "1"}, "status": {"printableStatus": "Stopped"}}
    )
    assert problems == [] and facts is not None and facts.printable_status == "Stopped"


def test_guest_info_windows(kubevirt_object) -> None:
    info, problems = parse_guest_info(kubevirt_object("guestosinfo-windows"), vmi_uid="u", observed_at=5.0)
    assert problems == []
    assert info.fsfreeze_enabled is True
    assert info.agent_version == "100.0.0"
    assert info.os_id == "mswindows"
    assert [v.mount_point for v in info.filesystems] == ["System Reserved", "C:\\"]
    assert info.filesystems[0].disk_name == "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\"


def test_guest_info_disabled_command_has_no_enabled_key(kubevirt_object) -> None:
    raw = kubevirt_object("guestosinfo-windows")
    for command in raw["supportedCommands"]:
        if command["name"] == "guest-fsfreeze-freeze":
            del command["enabled"]
    info, _ = parse_guest_info(raw, vmi_uid="u", observed_at=0)
    assert info.fsfreeze_enabled is False


def test_guest_info_without_supported_commands(kubevirt_object) -> None:
    info, problems = parse_guest_info(kubevirt_object("guestosinfo-linux-userguide"), vmi_uid="u", observed_at=0)
    assert problems == []
    assert info.fsfreeze_enabled is None
    assert info.filesystems[0].mount_point == "/"


def test_guest_info_taken_while_frozen_is_no_evidence(kubevirt_object) -> None:
    # qemu-ga disables every command but six while frozen: qemu/qemu qga/main.c:132-140 ga_freeze_allowlist
    # (blob c7b7b0a9bc); since "qga: use special feature to mark those that can run when FS are frozen" (June
    # 2024) the same six carry 'fs-frozen' and main.c:444-446 (blob 7bf5ec49ba) disables the rest. virt-launcher
    # refreshes the guest-info cache only every 300 s (cmd/virt-launcher/virt-launcher.go:366-370 at HEAD
    # d923fdb, qemu-agent-version-interval), so a list taken during a freeze is served after the thaw.
    raw = kubevirt_object("guestosinfo-windows")
    allowed = {"guest-ping", "guest-info", "guest-sync", "guest-sync-delimited", "guest-fsfreeze-status"}
    for command in raw["supportedCommands"]:
        if command["name"] not in allowed | {"guest-fsfreeze-thaw"}:
            command.pop("enabled", None)
    info, _ = parse_guest_info(raw, vmi_uid="u", observed_at=0)
    assert info.fsfreeze_enabled is None


def test_guest_info_freeze_blocked_alone_is_unavailable(kubevirt_object) -> None:
    # --block-rpcs guest-fsfreeze-freeze: only the freeze commands are off, the rest stays enabled.
    raw = kubevirt_object("guestosinfo-windows")
    for command in raw["supportedCommands"]:
        if command["name"] == "guest-fsfreeze-freeze":
            command.pop("enabled", None)
    raw["supportedCommands"].append({"name": "guest-fsfreeze-freeze-list"})
    info, _ = parse_guest_info(raw, vmi_uid="u", observed_at=0)
    assert info.fsfreeze_enabled is False


def test_vm_volume_snapshot_statuses_and_lock() -> None:
    # VM status.volumeSnapshotStatuses and status.snapshotInProgress as the snapshot controller writes them
    # (pkg/storage/snapshot/snapshot.go:938-1000 v1.8.0, updateVolumeSnapshotStatuses).
    raw = {
        "metadata": {"namespace": "ns", "name": "vm", "uid": "1"},
        "status": {
            "printableStatus": "Running",
            "snapshotInProgress": "vm-snap-1",
            "volumeSnapshotStatuses": [
                {"name": "rootdisk", "enabled": True},
                {
                    "name": "scratch",
                    "enabled": False,
                    "reason": "No VolumeSnapshotClass: Volume snapshots are not configured for this StorageClass "
                    "[local] [scratch]",
                },
                "junk",
            ],
        },
    }
    facts, problems = parse_vm(raw)
    assert facts is not None
    assert facts.snapshot_in_progress == "vm-snap-1"
    assert [(v.name, v.enabled) for v in facts.volume_snapshot_statuses] == [("rootdisk", True), ("scratch", False)]
    assert facts.volume_snapshot_statuses[1].reason.startswith("No VolumeSnapshotClass")
    assert problems == ["volume_snapshot_status_malformed"]


def test_guests_of_one_image_share_their_filesystems(kubevirt_object) -> None:
    one, _ = parse_guest_info(kubevirt_object("guestosinfo-windows"), vmi_uid="a", observed_at=0)
    other, _ = parse_guest_info(kubevirt_object("guestosinfo-windows"), vmi_uid="b", observed_at=1)
    assert one.filesystems and other.filesystems is one.filesystems
