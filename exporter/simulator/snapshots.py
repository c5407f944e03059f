"""VirtualMachineSnapshot objects, rendered from the snapshot controller's progress (reference §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporter.simulator.clock import go_duration, rfc3339
from exporter.simulator.messages import volume_snapshot_name
from exporter.simulator.objects import SIMULATED
from exporter.simulator.versions import KubeVirtVersion

INDICATION_MESSAGES = {
    "Online": "Snapshot taken while the VM was running. Consistency depends on guest-agent quiescing.",
    "GuestAgent": "Guest agent was active and attempted to quiesce the filesystem for application consistency.",
    "NoGuestAgent": (
        "Guest agent was not available. Snapshot is crash-consistent and may not be application-consistent."
    ),
    "QuiesceTimeout": (
        "Guest agent quiesced the filesystem, but the freeze window timed out before completion. "
        "Snapshot is crash-consistent and may not be application-consistent."
    ),
    "QuiesceFailed": (
        "Guest agent failed to quiesce the filesystem. "
        "Snapshot is crash-consistent and may not be application-consistent."
    ),
    "Paused": (
        "Snapshot taken while the VM was paused. "
        "Snapshot is crash-consistent and may not be application-consistent."
    ),
}


@dataclass(slots=True)
class SnapshotState:
    """The controller-side progress of one VirtualMachineSnapshot; rendered by ``snapshot_object``."""

    namespace: str
    name: str
    uid: str
    vm_name: str
    vm_uid: str
    created: float
    deadline: float
    phase: str = "InProgress"
    indications: list[str] | None = None
    error: tuple[float, str] | None = None
    creation_time: float | None = None
    # condition type -> (status, reason, lastTransitionTime)
    conditions: dict[str, tuple[str, str, float]] = field(default_factory=dict)

    def set_condition(self, kind: str, status: str, reason: str, at: float) -> None:
        current = self.conditions.get(kind)
        if current is None or current[:2] != (status, reason):
            self.conditions[kind] = (status, reason, at)


def content_object(snap: SnapshotState, volume_errors: dict[str, str | None], *, at: float) -> dict[str, Any]:
    """The snapshot's VirtualMachineSnapshotContent (v1beta1): one VolumeSnapshot per volume, and the
    error each reports (pkg/storage/snapshot/snapshot.go:641-668 and :445-455, v1.8.0)."""
    backups, statuses = [], []
    for volume, error in volume_errors.items():
        name = volume_snapshot_name(snap.uid, volume)
        claim = {"metadata": {"name": f"{snap.vm_name}-{volume}"}}
        backups.append({"volumeName": volume, "persistentVolumeClaim": claim, "volumeSnapshotName": name})
        status: dict[str, Any] = {"volumeSnapshotName": name, "readyToUse": error is None}
        if error is not None:
            status["error"] = {"message": error, "time": rfc3339(at)}
        else:
            status["creationTime"] = rfc3339(at)
        statuses.append(status)
    failed = next((e for e in volume_errors.values() if e is not None), None)
    content_status: dict[str, Any] = {"readyToUse": failed is None, "volumeSnapshotStatus": statuses}
    if failed is not None:
        failed_volume = next(v for v, e in volume_errors.items() if e is not None)
        content_status["error"] = {
            "message": f"VolumeSnapshot {volume_snapshot_name(snap.uid, failed_volume)} error: {failed}",
            "time": rfc3339(at),
        }
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshotContent",
        "metadata": {
            "annotations": {SIMULATED: "true"},
            "creationTimestamp": rfc3339(snap.created),
            "finalizers": ["snapshot.kubevirt.io/vmsnapshotcontent-protection"],
            "generation": 1,
            "name": content_name(snap),
            "namespace": snap.namespace,
            "uid": f"content-{snap.uid}",
        },
        "spec": {
            "source": {"virtualMachine": {"metadata": {"name": snap.vm_name, "namespace": snap.namespace,
                                                       "uid": snap.vm_uid}}},
            "virtualMachineSnapshotName": snap.name,
            "volumeBackups": backups,
        },
        "status": content_status,
    }


def content_name(snap: SnapshotState) -> str:
    """GetVMSnapshotContentName (pkg/storage/snapshot/snapshot.go:154-160, v1.8.0)."""
    return f"vmsnapshot-content-{snap.uid}"


def snapshot_object(snap: SnapshotState, *, version: KubeVirtVersion) -> dict[str, Any]:
    """The VirtualMachineSnapshot (v1beta1 shape; v1alpha1 differs only in apiVersion)."""
    status: dict[str, Any] = {
        "conditions": [
            {"lastProbeTime": None, "lastTransitionTime": rfc3339(at), "reason": reason, "status": status,
             "type": kind}
            for kind, (status, reason, at) in snap.conditions.items()
        ],
    }
    if snap.creation_time is not None:
        status["creationTime"] = rfc3339(snap.creation_time)
    if snap.error is not None:
        status["error"] = {"message": snap.error[1], "time": rfc3339(snap.error[0])}
    if snap.indications is not None:
        status["indications"] = list(snap.indications)
    status["phase"] = snap.phase
    status["readyToUse"] = snap.phase == "Succeeded"
    if snap.phase == "Succeeded":
        status["snapshotVolumes"] = {"includedVolumes": ["rootdisk"]}
    if snap.indications is not None and version.source_indications:
        status["sourceIndications"] = [
            {"indication": i, "message": INDICATION_MESSAGES.get(i, "Unknown indication")}
            for i in snap.indications
        ]
    status["sourceUID"] = snap.vm_uid
    status["virtualMachineSnapshotContentName"] = content_name(snap)
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {
            "annotations": {SIMULATED: "true"},
            "creationTimestamp": rfc3339(snap.created),
            "finalizers": ["snapshot.kubevirt.io/vmsnapshot-protection"],
            "generation": 1,
            "name": snap.name,
            "namespace": snap.namespace,
            "uid": snap.uid,
        },
        "spec": {
            "failureDeadline": go_duration(snap.deadline),
            "source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": snap.vm_name},
        },
        "status": status,
    }
