"""Descriptors of the resources we read, with the API paths to reach them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resource:
    """A listable resource. ``versions`` are tried in order; the first one served is used."""

    name: str
    group: str
    versions: tuple[str, ...]
    kind: str
    optional: bool = False
    field_selector: str | None = None
    label_selector: str | None = None

    def selectors(self) -> dict[str, str]:
        """Query parameters that narrow lists and watches to what we use."""
        query = {}
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        return query

    def path(self, version: str, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        if namespace:
            return f"{base}/namespaces/{namespace}/{self.name}"
        return f"{base}/{self.name}"


VMIS = Resource("virtualmachineinstances", "kubevirt.io", ("v1",), "VirtualMachineInstance")
VMS = Resource("virtualmachines", "kubevirt.io", ("v1",), "VirtualMachine")
# v1beta1 is served since KubeVirt v1.3.0; older clusters only have v1alpha1 (same schema).
SNAPSHOTS = Resource(
    "virtualmachinesnapshots", "snapshot.kubevirt.io", ("v1beta1", "v1alpha1"), "VirtualMachineSnapshot"
)
# Per-volume storage errors of a snapshot (status.volumeSnapshotStatus); optional, so a deployment whose
# RBAC predates it keeps working without them.
SNAPSHOT_CONTENTS = Resource(
    "virtualmachinesnapshotcontents",
    "snapshot.kubevirt.io",
    ("v1beta1", "v1alpha1"),
    "VirtualMachineSnapshotContent",
    optional=True,
)
BACKUPS = Resource("virtualmachinebackups", "backup.kubevirt.io", ("v1alpha1",), "VirtualMachineBackup", optional=True)
# Only the Events that carry freeze failures; KubeVirt emits FreezeError on the VMI.
EVENTS = Resource(
    "events", "", ("v1",), "Event", field_selector="reason=FreezeError,involvedObject.kind=VirtualMachineInstance"
)
# Every resource the exporter always mirrors (virt-launcher pods only when it follows their logs).
WATCHED: tuple[Resource, ...] = (VMIS, VMS, SNAPSHOTS, SNAPSHOT_CONTENTS, EVENTS, BACKUPS)
LAUNCHER_PODS = Resource("pods", "", ("v1",), "Pod", label_selector="kubevirt.io=virt-launcher")


def guestosinfo_path(namespace: str, name: str) -> str:
    return f"/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}/guestosinfo"


def pod_log_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}/log"
