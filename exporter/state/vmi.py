"""VirtualMachineInstance, VirtualMachine and guestosinfo objects → facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.state import field_readers as read
from exporter.state.records import GuestFilesystem, GuestInfo, VmFacts, VmiFacts, VmKey, VolumeSnapshotStatus
from exporter.state.shared import SharedValues

MAX_VOLUMES = 32
MAX_ADDRESSES = 16
# The free-text ``description`` annotation, shown on the status page (never a label).
MAX_DESCRIPTION = 512

# VMs from one template have the same disks and filesystems: the fleet holds one tuple of each.
_SHARED_FILESYSTEMS: SharedValues = SharedValues()
_SHARED_VOLUME_STATUSES: SharedValues = SharedValues()


def _conditions(status: Mapping[str, Any], problems: read.Problems) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for condition in read.sequence(status, "conditions", problems):
        if not isinstance(condition, Mapping):
            problems.add("condition_not_object")
            continue
        kind = condition.get("type")
        if isinstance(kind, str):
            found[kind] = condition
    return found


def _is_true(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def _addresses(status: Mapping[str, Any], problems: read.Problems) -> tuple[str, ...]:
    addresses: list[str] = []
    for interface in read.sequence(status, "interfaces", problems):
        if not isinstance(interface, Mapping):
            problems.add("interface_not_object")
            continue
        candidates = [interface.get("ipAddress"), *(read.sequence(interface, "ipAddresses", problems))]
        for candidate in candidates:
            if isinstance(candidate, str) and candidate:
                # Older KubeVirt reported addresses with a prefix length (10.244.0.23/24).
                address = candidate.split("/", 1)[0][:64]
                if address not in addresses and len(addresses) < MAX_ADDRESSES:
                    addresses.append(address)
    return tuple(addresses)


def parse_vmi(raw: Any) -> tuple[VmiFacts | None, list[str]]:
    """Read a VMI; malformed parts degrade to "no evidence" and are named in the problem list."""
    problems, identity = read.identified(raw)
    if identity is None:
        return None, problems.items
    status = read.mapping(raw, "status", problems)
    if not status:
        problems.add("missing_status")
    conditions = _conditions(status, problems)
    phase = read.string(status, "phase", problems, limit=32)
    unsupported = conditions.get("AgentVersionNotSupported")
    unsupported_reason = None
    if unsupported is not None and unsupported.get("status") != "False":
        reason = unsupported.get("reason")
        unsupported_reason = reason[:256] if isinstance(reason, str) and reason else "unsupported"
    os_info = read.mapping(status, "guestOSInfo", problems)
    facts = VmiFacts(
        key=VmKey(identity.namespace, identity.name),
        uid=identity.uid,
        phase=phase,
        node=read.string(status, "nodeName", problems, limit=253),
        # KubeVirt removes AgentConnected on disconnect; it is never "False". Presence is the signal.
        agent_connected=phase == "Running" and "AgentConnected" in conditions,
        agent_unsupported_reason=unsupported_reason,
        paused=_is_true(conditions.get("Paused")),
        fs_frozen=read.string(status, "fsFreezeStatus", problems, limit=32) == "frozen",
        guest_os_id=read.string(os_info, "id", problems, limit=64),
        guest_os_name=read.string(os_info, "name", problems, limit=128),
        guest_os_version=read.string(os_info, "prettyName", problems, limit=128)
        or read.string(os_info, "version", problems, limit=128),
        ip_addresses=_addresses(status, problems),
    )
    return facts, problems.items


def parse_vm(raw: Any) -> tuple[VmFacts | None, list[str]]:
    """Read a VirtualMachine: identity and printable status."""
    problems, identity = read.identified(raw)
    if identity is None:
        return None, problems.items
    status = read.mapping(raw, "status", problems)
    printable = read.string(status, "printableStatus", problems, limit=64)
    annotations = read.mapping(read.mapping(raw, "metadata", problems), "annotations", problems)
    volumes = []
    for entry in read.sequence(status, "volumeSnapshotStatuses", problems)[:MAX_VOLUMES]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            problems.add("volume_snapshot_status_malformed")
            continue
        volumes.append(
            VolumeSnapshotStatus(
                name=read.string(entry, "name", problems, limit=253),
                enabled=entry.get("enabled") is True,
                reason=read.string(entry, "reason", problems, limit=256),
            )
        )
    facts = VmFacts(
        key=VmKey(identity.namespace, identity.name),
        uid=identity.uid,
        printable_status=printable,
        snapshot_in_progress=read.string(status, "snapshotInProgress", problems, limit=253) or None,
        volume_snapshot_statuses=_SHARED_VOLUME_STATUSES(tuple(volumes)),
        description=read.string(annotations, "description", problems, limit=MAX_DESCRIPTION),
    )
    return facts, problems.items


def parse_guest_info(raw: Any, *, vmi_uid: str, observed_at: float) -> tuple[GuestInfo, list[str]]:
    """Read a guestosinfo answer. A freeze command without ``enabled`` is disabled (omitempty)."""
    problems = read.Problems()
    body: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if not isinstance(raw, Mapping):
        problems.add("guestosinfo_not_object")
    fsfreeze_enabled = _fsfreeze_enabled(read.sequence(body, "supportedCommands", problems))
    filesystems: list[GuestFilesystem] = []
    for disk in read.sequence(read.mapping(body, "fsInfo", problems), "disks", problems)[:MAX_VOLUMES]:
        if not isinstance(disk, Mapping):
            problems.add("disk_not_object")
            continue
        filesystems.append(
            GuestFilesystem(
                disk_name=read.string(disk, "diskName", problems),
                mount_point=read.string(disk, "mountPoint", problems),
                filesystem=read.string(disk, "fileSystemType", problems, limit=32),
            )
        )
    info = GuestInfo(
        vmi_uid=vmi_uid,
        observed_at=observed_at,
        agent_version=read.string(body, "guestAgentVersion", problems, limit=64),
        fsfreeze_enabled=fsfreeze_enabled,
        fs_frozen=read.string(body, "fsFreezeStatus", problems, limit=32) == "frozen",
        os_id=read.string(read.mapping(body, "os", problems), "id", problems, limit=64),
        filesystems=_SHARED_FILESYSTEMS(tuple(filesystems)),
    )
    return info, problems.items


# qemu-ga disables every command but these while the filesystems are frozen (qga/main.c
# ga_freeze_allowlist; later the 'fs-frozen' feature in qga/qapi-schema.json); virt-launcher caches the
# command list for minutes, so a list taken during a freeze outlives the thaw.
_ALLOWED_WHILE_FROZEN = frozenset(
    {
        "guest-ping",
        "guest-info",
        "guest-sync",
        "guest-sync-delimited",
        "guest-fsfreeze-status",
        "guest-fsfreeze-thaw",
    }
)
_FREEZE_COMMAND = "guest-fsfreeze-freeze"


def _fsfreeze_enabled(commands: list[Any]) -> bool | None:
    """Whether the freeze command is enabled; None when absent, or when the list was taken while frozen."""
    named = [c for c in commands if isinstance(c, Mapping) and isinstance(c.get("name"), str)]
    enabled = {c["name"]: c.get("enabled") is True for c in named}
    if _FREEZE_COMMAND not in enabled:
        return None
    if enabled[_FREEZE_COMMAND]:
        return True
    others = [on for name, on in enabled.items() if name not in _ALLOWED_WHILE_FROZEN and name != _FREEZE_COMMAND]
    taken_while_frozen = bool(others) and not any(others) and enabled.get("guest-fsfreeze-thaw", False)
    return None if taken_while_frozen else False
