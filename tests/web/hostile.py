"""A fleet whose VM name, description annotation, freeze error message and VSS writer name carry HTML/JS."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from exporter.resources import EVENTS, SNAPSHOTS, VMIS, VMS
from exporter.state.fleet import Fleet
from exporter.state.guest_report import parse_guest_report
from exporter.state.records import VmKey

DATA = Path(__file__).parent.parent / "data"
NOW = 1_790_000_000.0

# No "/" in the name: it is one path segment of /vm/<namespace>/<name>.
HOSTILE_NAME = 'x"><svg onload=alert(1)>'
HOSTILE_DESCRIPTION = "<b onmouseover=alert(2)>payroll</b><script>alert(3)</script>"
HOSTILE_MESSAGE = "failed to add <script>alert(4)</script> to snapshot set: <img src=x onerror=alert(5)>"
HOSTILE_WRITER = "<img src=x onerror=alert(6)>"
# The classifier reads the volume out of the message; guestosinfo maps it to this mount point.
HOSTILE_VOLUME = "<script>alert(4)</script>"
HOSTILE_MOUNT = "<img src=y onerror=alert(8)>"
HOSTILE_KEY = VmKey("finance", HOSTILE_NAME)
PAYLOADS = (HOSTILE_NAME, HOSTILE_DESCRIPTION, HOSTILE_MESSAGE, HOSTILE_WRITER, HOSTILE_MOUNT)


def load(relative: str) -> Any:
    return json.loads((DATA / relative).read_text(encoding="utf-8"))


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hostile_fleet() -> Fleet:
    """A fleet with the hostile VM (Windows, failing freezes, a failed writer) and a healthy neighbour."""
    fleet = Fleet(on_state=lambda key, state: None)
    key = HOSTILE_KEY
    vm = {
        "metadata": {
            "namespace": key.namespace,
            "name": key.name,
            "uid": "vm-uid",
            "annotations": {"description": HOSTILE_DESCRIPTION},
        },
        "status": {"printableStatus": "Running"},
    }
    vmi = copy.deepcopy(load("kubevirt/vmi-windows-agentconnected.json"))
    vmi["metadata"].update(namespace=key.namespace, name=key.name, uid="vmi-uid", resourceVersion="1")
    snapshot = copy.deepcopy(load("kubevirt/vmsnapshot-inprogress-freeze-error-windows-vss.json"))
    snapshot["metadata"].update(namespace=key.namespace, creationTimestamp=_iso(NOW - 600), resourceVersion="2")
    snapshot["spec"]["source"]["name"] = key.name
    snapshot["status"]["error"] = {"message": HOSTILE_MESSAGE, "time": _iso(NOW - 590)}
    event = {
        "metadata": {"namespace": key.namespace, "name": "ev1", "uid": "ev1"},
        "involvedObject": {"kind": "VirtualMachineInstance", "namespace": key.namespace, "name": key.name},
        "reason": "FreezeError",
        "type": "Warning",
        "message": f"Failed to freeze VMI: {HOSTILE_MESSAGE}",
        "lastTimestamp": _iso(NOW - 580),
    }
    fleet.upsert(VMS.name, vm, NOW)
    fleet.upsert(VMIS.name, vmi, NOW)
    fleet.upsert(SNAPSHOTS.name, snapshot, NOW)
    fleet.upsert(EVENTS.name, event, NOW)
    guest_info = load("kubevirt/guestosinfo-windows.json")
    guest_info["fsInfo"]["disks"].append(
        {"diskName": HOSTILE_VOLUME, "mountPoint": HOSTILE_MOUNT, "fileSystemType": "NTFS", "usedBytes": 0}
    )
    fleet.apply_guest_info(key, "vmi-uid", guest_info, NOW)
    raw_report = load("guest_reports/two_failed_writers.json")
    raw_report["vssadmin"]["writers"] = raw_report["vssadmin"]["writers"].replace("SqlServerWriter", HOSTILE_WRITER)
    fleet.apply_guest_report(key, parse_guest_report(raw_report, received_at=NOW - 60), NOW)

    neighbour = copy.deepcopy(vmi)
    neighbour["metadata"].update(name="win-ad-01", uid="vmi-uid-2")
    fleet.upsert(VMIS.name, neighbour, NOW)
    return fleet
