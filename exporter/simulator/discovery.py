"""What the simulated API serves, and the discovery documents that let kubectl and clients find it.

Legacy discovery only: a client asking for aggregated discovery gets ``application/json`` and falls
back to ``/api``, ``/apis`` and one resource list per group version, as against an older server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.simulator.versions import KubeVirtVersion

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-kubevirt-vss-simulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}

SUBRESOURCES_GROUP = "subresources.kubevirt.io"
_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
# Served resources whose status is a subresource (KubeVirt CRDs and pods; events and namespaces have none).
WITH_STATUS = frozenset(
    {
        "virtualmachineinstances",
        "virtualmachines",
        "virtualmachinesnapshots",
        "virtualmachinesnapshotcontents",
        "virtualmachinebackups",
        "pods",
    }
)


@dataclass(frozen=True, slots=True)
class Served:
    """One resource at one group version, backed by a store resource."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def resource_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(_VERBS),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


def served_resources(version: KubeVirtVersion) -> list[Served]:
    """Every served resource; snapshot v1beta1 from KubeVirt 1.3 and backups from 1.8, as released."""
    served = [
        Served("", "v1", "pods", "Pod", "pod", ("po",), categories=("all",)),
        Served("", "v1", "events", "Event", "event", ("ev",)),
        Served("", "v1", "namespaces", "Namespace", "namespace", ("ns",), namespaced=False),
        Served("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance", "virtualmachineinstance",
               ("vmi", "vmis"), categories=("all",)),
        Served("kubevirt.io", "v1", "virtualmachines", "VirtualMachine", "virtualmachine", ("vm", "vms"),
               categories=("all",)),
    ]
    snapshot_versions = ["v1beta1", "v1alpha1"] if version.snapshot_v1beta1 else ["v1alpha1"]
    served += [
        Served("snapshot.kubevirt.io", v, "virtualmachinesnapshots", "VirtualMachineSnapshot",
               "virtualmachinesnapshot", ("vmsnapshot", "vmsnapshots"), categories=("all",))
        for v in snapshot_versions
    ]
    # Names as the CRD declares them (pkg/virt-operator/resource/generate/components/crds.go:538-545, v1.8.0).
    served += [
        Served("snapshot.kubevirt.io", v, "virtualmachinesnapshotcontents", "VirtualMachineSnapshotContent",
               "virtualmachinesnapshotcontent", ("vmsnapshotcontent", "vmsnapshotcontents"), categories=("all",))
        for v in snapshot_versions
    ]
    if version.backup_api:
        served.append(Served("backup.kubevirt.io", "v1alpha1", "virtualmachinebackups", "VirtualMachineBackup",
                             "virtualmachinebackup", ("vmbackup", "vmbackups")))
    return served


def _group_versions(served: list[Served]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for s in served:
        if s.group and s.version not in groups.setdefault(s.group, []):
            groups[s.group].append(s.version)
    groups[SUBRESOURCES_GROUP] = ["v1"]
    return groups


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group_list(served: list[Served]) -> dict[str, Any]:
    """``/apis``: each group's versions, the first listed being preferred."""
    groups = []
    for group, versions in _group_versions(served).items():
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(served: list[Served], group: str) -> dict[str, Any] | None:
    """``/apis/<group>``, or None for an unknown group."""
    for entry in api_group_list(served)["groups"]:
        if entry["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **entry}
    return None


def resource_list(served: list[Served], group: str, version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/<group>/<version>``, or None for an unknown group version."""
    group_version = f"{group}/{version}" if group else version
    if group == SUBRESOURCES_GROUP and version == "v1":
        resources = [
            {"name": f"virtualmachineinstances/{sub}", "singularName": "", "namespaced": True, "kind": kind,
             "verbs": ["get"]}
            for sub, kind in (
                ("guestosinfo", "VirtualMachineInstanceGuestAgentInfo"),
                ("userlist", "VirtualMachineInstanceGuestOSUserList"),
                ("filesystemlist", "VirtualMachineInstanceFileSystemList"),
            )
        ]
    else:
        resources = []
        for s in served:
            if (s.group, s.version) != (group, version):
                continue
            resources.append(s.resource_entry())
            if s.plural in WITH_STATUS:
                resources.append(
                    {"name": f"{s.plural}/status", "singularName": "", "namespaced": s.namespaced, "kind": s.kind,
                     "verbs": ["get", "patch", "update"]}
                )
        if not resources:
            return None
        if group == "":
            resources.insert(1, {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                                 "verbs": ["get"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def kubevirt_version_info(version: KubeVirtVersion) -> dict[str, Any]:
    """``/apis/subresources.kubevirt.io/v1/version``, as virt-api answers it (marked as simulated)."""
    return {
        "gitVersion": f"{version.tag}+kubevirt-vss-simulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
