"""The exact error texts of a failing freeze or thaw, as each layer wraps them.

qemu-ga writes the innermost message; libvirt, virt-launcher, virt-handler, virt-api and the snapshot
controller each add a layer (reference/kubevirt.md §2, reference/qga-vss.md §1, §4, §5).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from exporter.simulator.versions import KubeVirtVersion

FREEZE_COMMAND = "guest-fsfreeze-freeze"
THAW_COMMAND = "guest-fsfreeze-thaw"

VolumeShape = Literal["plain", "hex", "old"]
VOLUME_SHAPES: tuple[VolumeShape, ...] = ("plain", "hex", "old")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GO_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


def go_quote(text: str) -> str:
    """Go's ``%q``: double quotes around the text, backslashes and quotes escaped, controls escaped."""
    if _CONTROL.search(text) is None:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def vss_add_volume(volume: str, shape: VolumeShape) -> str:
    """qemu-ga's ``failed to add <volume> to snapshot set`` for VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER.

    ``plain``: older builds, empty suffix; ``hex``: QEMU 10.1.1+; ``old``: the ``(error: %x)`` era.
    """
    base = f"failed to add {volume} to snapshot set"
    if shape == "hex":
        return f"{base}: Windows error 0x8004230e: "
    if shape == "old":
        return f"{base}:  (error: 8004230e)"
    return f"{base}: "


SNAPSHOT_SET_IN_PROGRESS = "failed to start snapshot set: Windows error 0x80042316: "
HOLD_WRITES_TIMEOUT = "couldn't hold writes: fsfreeze is limited up to 10 seconds: "
LINUX_PERMISSION_DENIED = "failed to open /.snapshots: Permission denied"
FREEZE_COMMAND_DISABLED = "Command guest-fsfreeze-freeze has been disabled"


def csi_snapshot_error() -> str:
    """The CSI snapshotter's error on a VolumeSnapshot whose driver ran out of snapshot quota."""
    return (
        'Failed to check and update snapshot content: failed to take snapshot of the volume: "rpc error: '
        'code = ResourceExhausted desc = snapshot quota exceeded"'
    )


def volume_snapshot_error(snapshot_uid: str, volume: str = "rootdisk") -> str:
    """The snapshot controller's own error for a VolumeSnapshot the CSI driver failed (a storage failure)."""
    return f"VolumeSnapshot {volume_snapshot_name(snapshot_uid, volume)} error: {csi_snapshot_error()}"


def volume_snapshot_name(snapshot_uid: str, volume: str) -> str:
    """How the snapshot controller names a VolumeSnapshot (pkg/storage/snapshot/snapshot.go:641, v1.8.0)."""
    return f"vmsnapshot-{snapshot_uid}-volume-{volume}"


def libvirt_agent_error(command: str, agent_message: str) -> str:
    """The launcher's error: libvirt's agent-command error in ``LibvirtError(...)`` form."""
    return (
        "LibvirtError(Code=1, Domain=10, Message='internal error: unable to execute QEMU agent command "
        f"'{command}': {agent_message}')"
    )


@dataclass(frozen=True, slots=True)
class FailureTexts:
    """One failed freeze or thaw attempt as each consumer sees it."""

    launcher_reason: str  # ``reason`` of the virt-launcher log line
    event_message: str  # FreezeError Event message (freeze only)
    status_message: str  # VirtualMachineSnapshot ``status.error.message``


@functools.lru_cache(maxsize=4096)
def failure_texts(
    *, agent_message: str, thaw: bool, vm_name: str, version: KubeVirtVersion
) -> FailureTexts:
    """Wrap one qemu-ga message through libvirt, launcher, handler, virt-api and the controller."""
    command, operation = (THAW_COMMAND, "Unfreeze") if thaw else (FREEZE_COMMAND, "Freeze")
    launcher = libvirt_agent_error(command, agent_message)
    handler_body = f"server error. command {operation} failed: {go_quote(launcher)}"
    api = "Internal error occurred: unexpected return code 400 (400 Bad Request)"
    if version.error_in_status:
        api = f"{api}, message: {handler_body}"
    status = api
    if not thaw and version.quiesce_failed:
        status = f"Failed freezing vm {vm_name}: {api}"
    return FailureTexts(
        launcher_reason=launcher,
        event_message=f"Failed to {'unfreeze' if thaw else 'freeze'} VMI: {handler_body}",
        status_message=status,
    )
