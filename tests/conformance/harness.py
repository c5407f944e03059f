"""Objects in the exact shapes of one KubeVirt release, fed through the exporter's fleet, and its verdict.

Every builder names the upstream code that produces the shape (kubevirt/kubevirt at the given tag).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.resources import BACKUPS, EVENTS, SNAPSHOT_CONTENTS, SNAPSHOTS, VMIS, VMS
from exporter.state.fleet import Fleet
from exporter.state.freeze_errors import from_log_line
from exporter.state.records import VmKey, VmState

NAMESPACE, NAME = "prod", "vm1"
KEY = VmKey(NAMESPACE, NAME)
T0 = 1_790_000_000.0  # when the snapshot is created
VMI_UID = "7d3c0e1a-0000-4000-8000-00000000a001"
FREEZE, THAW = "guest-fsfreeze-freeze", "guest-fsfreeze-thaw"


def ts(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_quote(text: str) -> str:
    """Go's %q for the printable texts used here (pkg/virt-handler/cmd-client: "command %s failed: %q")."""
    return json.dumps(text, ensure_ascii=False)


# --- error chains ---------------------------------------------------------------------------------------


def launcher_error(agent_message: str, *, command: str = FREEZE) -> str:
    """The cmd-server's message: LibvirtError(...) (pkg/virt-launcher/virtwrap/errors/errors.go:59 v1.8.0)
    around libvirt's agent error (libvirt/libvirt src/qemu/qemu_agent.c:1108-1111 (5922d05a), qemuAgentCheckError)."""
    return (
        f"LibvirtError(Code=1, Domain=10, Message='internal error: unable to execute QEMU agent command "
        f"'{command}': {agent_message}')"
    )


def handler_error(agent_message: str, *, command: str = FREEZE) -> str:
    """virt-handler's client error: pkg/virt-handler/cmd-client/client.go:339 (v1.4.0) / errors.go:54 (v1.7.0+)."""
    operation = "Unfreeze" if command == THAW else "Freeze"
    return f"server error. command {operation} failed: {go_quote(launcher_error(agent_message, command=command))}"


def api_error(agent_message: str, *, command: str = FREEZE) -> str:
    """What virt-api's client returns: staging/src/kubevirt.io/client-go/kubecli/handler.go:236 (v1.4.1),
    wrapped as an internal error by pkg/virt-api/rest/subresource.go (NewInternalError)."""
    return "Internal error occurred: unexpected return code 400 (400 Bad Request), message: " + handler_error(
        agent_message, command=command
    )


def prefixed(vm: str, error: str) -> str:
    """pkg/storage/snapshot/source.go:445 (v1.5.2), :458 (v1.7.0): ``Failed freezing vm <vm>: <err>``."""
    return f"Failed freezing vm {vm}: {error}"


# --- objects ----------------------------------------------------------------------------------------------


def vmi(
    *,
    windows: bool = True,
    agent: bool = True,
    frozen: bool = False,
    paused: bool = False,
    unsupported: str | None = None,
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [{"type": "Ready", "status": "True"}]
    if agent:
        conditions.append({"type": "AgentConnected", "status": "True"})
    if paused:
        conditions.append({"type": "Paused", "status": "True", "reason": "PausedByUser"})
    if unsupported:
        conditions.append({"type": "AgentVersionNotSupported", "status": "True", "reason": unsupported})
    status: dict[str, Any] = {
        "phase": "Running",
        "nodeName": "node01",
        "conditions": conditions,
        "guestOSInfo": {"id": "mswindows", "name": "Microsoft Windows Server 2022 Standard"}
        if windows
        else {"id": "rhel", "name": "Red Hat Enterprise Linux"},
    }
    if frozen:
        status["fsFreezeStatus"] = "frozen"
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"namespace": NAMESPACE, "name": NAME, "uid": VMI_UID},
        "spec": {},
        "status": status,
    }


def vm(*, volume_statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"printableStatus": "Running"}
    if volume_statuses is not None:
        status["volumeSnapshotStatuses"] = volume_statuses
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"namespace": NAMESPACE, "name": NAME, "uid": "vm-uid"},
        "status": status,
    }


def snapshot(
    *,
    phase: str,
    indications: list[str] | None,
    source_indications: list[tuple[str, str]] | None = None,
    error: str | None = None,
    error_at: float | None = None,
    creation_time: float | None = None,
    excluded: list[str] | None = None,
    failed_deadline: bool = False,
    name: str = "snap-1",
    created: float = T0,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "readyToUse": phase == "Succeeded" and error is None}
    if indications is not None:
        status["indications"] = indications
    if source_indications is not None:
        status["sourceIndications"] = [{"indication": i, "message": m} for i, m in source_indications]
    if error is not None:
        status["error"] = {"message": error, "time": ts(error_at if error_at is not None else created + 1)}
    if creation_time is not None:
        status["creationTime"] = ts(creation_time)
    if excluded is not None:
        status["snapshotVolumes"] = {"includedVolumes": ["rootdisk"], "excludedVolumes": excluded}
    if failed_deadline:
        status["conditions"] = [{"type": "Failure", "status": "True", "reason": "snapshot deadline exceeded"}]
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {"namespace": NAMESPACE, "name": name, "uid": f"uid-{name}", "creationTimestamp": ts(created)},
        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": NAME}},
        "status": status,
    }


def snapshot_content(
    volumes: dict[str, str | None], *, snapshot_name: str = "snap-1", at: float = T0 + 3
) -> dict[str, Any]:
    """The VirtualMachineSnapshotContent of a snapshot (v1.8.0): ``volumes`` maps each volume to the error of
    its VolumeSnapshot, or None. createContent names it and its VolumeSnapshots
    (pkg/storage/snapshot/snapshot.go:641 and :658-668); updateVMSnapshotContent copies each VolumeSnapshot's
    error into ``volumeSnapshotStatus`` (:445-455, translateError :162-171) and writes the list (:511)."""
    uid = f"uid-{snapshot_name}"
    backups, statuses = [], []
    for volume, error in volumes.items():
        volume_snapshot = f"vmsnapshot-{uid}-volume-{volume}"
        backups.append(
            {
                "volumeName": volume,
                "persistentVolumeClaim": {"metadata": {"name": f"{volume}-pvc"}},
                "volumeSnapshotName": volume_snapshot,
            }
        )
        entry: dict[str, Any] = {"volumeSnapshotName": volume_snapshot, "readyToUse": error is None}
        if error is not None:
            entry["error"] = {"message": error, "time": ts(at)}
        else:
            entry["creationTime"] = ts(at)
        statuses.append(entry)
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshotContent",
        "metadata": {"namespace": NAMESPACE, "name": f"vmsnapshot-content-{uid}", "uid": f"content-{uid}"},
        "spec": {
            "virtualMachineSnapshotName": snapshot_name,
            "source": {"virtualMachine": {"metadata": {"name": NAME, "namespace": NAMESPACE}}},
            "volumeBackups": backups,
        },
        "status": {"readyToUse": False, "volumeSnapshotStatus": statuses},
    }


def freeze_event(message: str, *, first: float, last: float, count: int) -> dict[str, Any]:
    """Warning FreezeError on the VMI: pkg/virt-handler/rest/lifecycle.go:127 (v1.4.0), :134 (v1.8.0)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": NAMESPACE, "name": f"{NAME}.freeze", "uid": "event-uid"},
        "involvedObject": {"kind": "VirtualMachineInstance", "namespace": NAMESPACE, "name": NAME, "uid": VMI_UID},
        "reason": "FreezeError",
        "type": "Warning",
        "message": message,
        "count": count,
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(last),
    }


def launcher_log(msg: str, reason: str, *, at: float) -> dict[str, Any]:
    """A virt-launcher ``compute`` log line: pkg/virt-launcher/virtwrap/cmd-server/server.go:269/286 (v1.4.0),
    :271/288 (v1.8.0) log ``Failed to freeze vmi`` / ``Failed to unfreeze vmi`` with the error as reason."""
    line = {
        "component": "virt-launcher",
        "level": "error",
        "msg": msg,
        "pos": "server.go:288",
        "reason": reason,
        "timestamp": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    return {"kind": "LauncherLog", "line": json.dumps(line)}


def guest_info(*, freeze_enabled: bool, others_enabled: bool = True) -> dict[str, Any]:
    """The guestosinfo subresource body; disabled commands carry no ``enabled`` (omitempty)."""

    def command(name: str, enabled: bool) -> dict[str, Any]:
        return {"name": name, "enabled": True} if enabled else {"name": name}

    commands = [
        command("guest-fsfreeze-freeze", freeze_enabled),
        command("guest-fsfreeze-thaw", True),
        command("guest-fsfreeze-status", True),
        command("guest-ping", True),
        command("guest-get-osinfo", others_enabled),
        command("guest-get-fsinfo", others_enabled),
        command("guest-network-get-interfaces", others_enabled),
    ]
    body = {
        "guestAgentVersion": "107.0.1",
        "os": {"id": "mswindows"},
        "supportedCommands": commands,
        "fsFreezeStatus": "thawed",
    }
    return {"kind": "GuestInfo", "body": body}


def backup(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """A VirtualMachineBackup of the VM (backup.kubevirt.io/v1alpha1, v1.8+)."""
    return {
        "apiVersion": "backup.kubevirt.io/v1alpha1",
        "kind": "VirtualMachineBackup",
        "metadata": {"namespace": NAMESPACE, "name": "backup-1", "uid": "backup-uid"},
        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": NAME}},
        "status": {"conditions": conditions},
    }


# --- the verdict ------------------------------------------------------------------------------------------

Step = tuple[float, dict[str, Any]]
_RESOURCE_BY_KIND = {
    "VirtualMachineInstance": VMIS.name,
    "VirtualMachine": VMS.name,
    "VirtualMachineSnapshot": SNAPSHOTS.name,
    "VirtualMachineSnapshotContent": SNAPSHOT_CONTENTS.name,
    "Event": EVENTS.name,
    "VirtualMachineBackup": BACKUPS.name,
}


@dataclass(frozen=True)
class Verdict:
    level: int | None
    consistency: str | None
    reason: str | None
    freeze_errors: dict[str, int]
    storage_failures: dict[str, int]
    state: VmState


def verdict(steps: list[Step], *, now: float | None = None) -> Verdict:
    """Apply (time, object) in order, as the reflectors would, and read the VM's state."""
    published: dict[VmKey, VmState | None] = {}
    fleet = Fleet(on_state=lambda key, state: published.__setitem__(key, state))
    last = T0
    for version, (at, raw) in enumerate(steps, start=1):
        last = at
        if raw["kind"] == "LauncherLog":
            observation = from_log_line(raw["line"], KEY, stream=f"{NAMESPACE}/virt-launcher-{NAME}")
            assert observation is not None, raw["line"]
            fleet.apply_freeze_observation(observation, now=at)
            continue
        if raw["kind"] == "GuestInfo":
            fleet.apply_guest_info(KEY, VMI_UID, raw["body"], now=at)
            continue
        raw = {**raw, "metadata": {**raw["metadata"], "resourceVersion": str(version)}}
        fleet.upsert(_RESOURCE_BY_KIND[raw["kind"]], raw, now=at)
    fleet.tick(now if now is not None else last)
    state = published[KEY]
    assert state is not None
    judgement = state.last_snapshot
    freeze: dict[str, int] = {}
    for reason, _cause, count in state.freeze_error_counts:
        freeze[reason] = freeze.get(reason, 0) + count
    return Verdict(
        level=judgement.level if judgement else None,
        consistency=judgement.consistency if judgement else None,
        reason=judgement.reason if judgement else None,
        freeze_errors=freeze,
        storage_failures=dict(state.storage_failure_counts),
        state=state,
    )
