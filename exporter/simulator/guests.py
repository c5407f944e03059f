"""Guest operating systems and what their QEMU guest agent reports (the guestosinfo subresource).

Values follow reference/kubevirt.md §1.3 and §2 and fixtures/kubevirt/guestosinfo-*.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class GuestOs:
    """An installed guest OS: its ``guestOSInfo`` fields and agent facts."""

    key: str
    windows: bool
    name: str
    pretty_name: str
    version: str
    version_id: str
    kernel_release: str
    kernel_version: str
    os_id: str
    agent_version: str
    timezone: str

    def os_info(self) -> dict[str, str]:
        """The eight ``VirtualMachineInstanceGuestOSInfo`` fields, in the VMI's key order."""
        return {
            "id": self.os_id,
            "kernelRelease": self.kernel_release,
            "kernelVersion": self.kernel_version,
            "machine": "x86_64",
            "name": self.name,
            "prettyName": self.pretty_name,
            "version": self.version,
            "versionId": self.version_id,
        }


GUEST_OSES: dict[str, GuestOs] = {
    g.key: g
    for g in (
        GuestOs(
            "ws2019", True, "Microsoft Windows", "Windows Server 2019 Standard",
            "Microsoft Windows Server 2019", "2019", "17763", "10.0", "mswindows", "107.0.1",
            "Coordinated Universal Time, 0",
        ),
        GuestOs(
            "ws2019-oldagent", True, "Microsoft Windows", "Windows Server 2019 Standard",
            "Microsoft Windows Server 2019", "2019", "17763", "10.0", "mswindows", "100.0.0",
            "Coordinated Universal Time, 0",
        ),
        GuestOs(
            "ws2022", True, "Microsoft Windows", "Windows Server 2022 Datacenter",
            "Microsoft Windows Server 2022", "2022", "20348", "10.0", "mswindows", "108.0.2",
            "W. Europe Standard Time, 3600",
        ),
        GuestOs(
            "fedora", False, "Fedora Linux", "Fedora Linux 39 (Cloud Edition)", "39 (Cloud Edition)", "39",
            "6.5.6-300.fc39.x86_64", "#1 SMP PREEMPT_DYNAMIC Fri Oct  6 19:57:21 UTC 2023", "fedora",
            "8.1.3", "UTC, 0",
        ),
        GuestOs(
            "rhel", False, "Red Hat Enterprise Linux", "Red Hat Enterprise Linux 9.4 (Plow)", "9.4 (Plow)",
            "9.4", "5.14.0-427.13.1.el9_4.x86_64", "#1 SMP PREEMPT_DYNAMIC Wed Apr 10 10:29:16 EDT 2024",
            "rhel", "8.2.0", "UTC, 0",
        ),
        GuestOs(
            "ubuntu", False, "Ubuntu", "Ubuntu 22.04.4 LTS", "22.04.4 LTS (Jammy Jellyfish)", "22.04",
            "5.15.0-105-generic", "#115-Ubuntu SMP Mon Apr 15 09:52:04 UTC 2024", "ubuntu", "6.2.0",
            "UTC, 0",
        ),
        GuestOs(
            "opensuse", False, "openSUSE Leap", "openSUSE Leap 15.5", "15.5", "15.5",
            "5.14.21-150500.55.39-default", "#1 SMP PREEMPT_DYNAMIC Tue Dec 5 10:06:39 UTC 2023 (2e4092e)",
            "opensuse-leap", "8.2.0", "UTC, 0",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Volume:
    """One guest filesystem as qemu-ga's guest-get-fsinfo reports it."""

    disk_name: str
    mount_point: str
    fs_type: str
    used_bytes: int
    total_bytes: int
    bus: str

    def fs_entry(self) -> dict[str, Any]:
        return {
            "diskName": self.disk_name,
            "mountPoint": self.mount_point,
            "fileSystemType": self.fs_type,
            "usedBytes": self.used_bytes,
            "totalBytes": self.total_bytes,
            "disk": [{"serial": "", "busType": self.bus}],
        }


_COMMON_COMMANDS = (
    "guest-sync-delimited", "guest-sync", "guest-ping", "guest-get-time", "guest-set-time", "guest-info",
    "guest-shutdown", "guest-file-open", "guest-file-close", "guest-file-read", "guest-file-write",
    "guest-file-seek", "guest-file-flush", "guest-fsfreeze-status", "guest-fsfreeze-freeze",
    "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw", "guest-fstrim", "guest-suspend-disk",
    "guest-suspend-ram", "guest-network-get-interfaces", "guest-get-disks", "guest-get-fsinfo",
    "guest-set-user-password", "guest-exec-status", "guest-exec", "guest-get-host-name", "guest-get-users",
    "guest-get-timezone", "guest-get-osinfo", "guest-get-devices",
)
_LINUX_ONLY = ("guest-suspend-hybrid", "guest-get-vcpus", "guest-set-vcpus", "guest-ssh-get-authorized-keys")
# Registered on Windows but not implemented there, so qemu-ga lists them disabled.
_WINDOWS_DISABLED = ("guest-get-vcpus", "guest-set-vcpus", "guest-get-memory-blocks")
# Still allowed while the agent is frozen (qemu-ga's freeze allowlist).
_FROZEN_ALLOWED = frozenset(
    ("guest-ping", "guest-info", "guest-sync", "guest-sync-delimited", "guest-fsfreeze-status",
     "guest-fsfreeze-thaw")
)
# Blocked by pre-9.1 qemu-ga on Windows when VSS initialisation failed.
_VSS_INIT_BLOCKED = frozenset(
    ("guest-get-fsinfo", "guest-fsfreeze-status", "guest-fsfreeze-freeze", "guest-fsfreeze-thaw")
)


def supported_commands(*, windows: bool, frozen: bool, vss_init_failed: bool) -> list[dict[str, Any]]:
    """``supportedCommands``: disabled commands carry no ``enabled`` key (Go ``omitempty``)."""
    names = _COMMON_COMMANDS + (_WINDOWS_DISABLED if windows else _LINUX_ONLY)
    out: list[dict[str, Any]] = []
    for name in names:
        disabled = (
            (frozen and name not in _FROZEN_ALLOWED)
            or (vss_init_failed and name in _VSS_INIT_BLOCKED)
            or (windows and name in _WINDOWS_DISABLED)
        )
        out.append({"name": name} if disabled else {"enabled": True, "name": name})
    return out


def guest_agent_info(
    *,
    guest: GuestOs,
    hostname: str,
    volumes: tuple[Volume, ...],
    frozen: bool,
    vss_init_failed: bool,
    login_time: float,
) -> dict[str, Any]:
    """A ``VirtualMachineInstanceGuestAgentInfo`` body as virt-api returns it."""
    users = (
        [{"userName": "Administrator", "domain": hostname, "loginTime": round(login_time, 3)}]
        if guest.windows
        else [{"userName": "cloud-user", "loginTime": round(login_time, 3)}]
    )
    disks = [] if vss_init_failed else [v.fs_entry() for v in volumes[:10]]
    return {
        "guestAgentVersion": guest.agent_version,
        "supportedCommands": supported_commands(
            windows=guest.windows, frozen=frozen, vss_init_failed=vss_init_failed
        ),
        "hostname": hostname,
        "os": {
            "name": guest.name,
            "kernelRelease": guest.kernel_release,
            "version": guest.version,
            "prettyName": guest.pretty_name,
            "versionId": guest.version_id,
            "kernelVersion": guest.kernel_version,
            "machine": "x86_64",
            "id": guest.os_id,
        },
        "timezone": guest.timezone,
        "userList": users,
        "fsInfo": {"disks": disks},
        "fsFreezeStatus": "frozen" if frozen else "thawed",
    }
