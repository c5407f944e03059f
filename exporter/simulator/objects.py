"""Factories for the VM, VMI and launcher pod of one simulated VM, shaped like fixtures/kubevirt/ and reference §1.

Every object carries the annotation ``kubevirt-vss-exporter/simulated: "true"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from exporter.simulator.clock import rfc3339
from exporter.simulator.guests import GuestOs, Volume
from exporter.simulator.versions import KubeVirtVersion

SIMULATED = "kubevirt-vss-exporter/simulated"
SCENARIO = "kubevirt-vss-exporter/scenario"

Agent = Literal["connected", "disconnected", "none", "unsupported"]
Power = Literal["running", "paused", "stopped"]

UNSUPPORTED_REASON = "This guest agent doesn't support required basic commands"

@dataclass(frozen=True, slots=True)
class VmIdentity:
    """The fixed facts of one simulated VM; the fleet changes only its dynamic state."""

    namespace: str
    name: str
    scenario: str
    vm_uid: str
    vmi_uid: str
    pod_uid: str
    pod_suffix: str
    ip: str
    mac: str
    node: str
    guest: GuestOs
    hostname: str
    agent: Agent
    power: Power
    volumes: tuple[Volume, ...]
    created: float
    profile: str | None = None

    @property
    def pod_name(self) -> str:
        return f"virt-launcher-{self.name}-{self.pod_suffix}"

    @property
    def running(self) -> bool:
        return self.power != "stopped"

    @property
    def agent_connected(self) -> bool:
        return self.running and self.agent in ("connected", "unsupported")


def _annotations(vm: VmIdentity, extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {SIMULATED: "true", SCENARIO: vm.scenario}
    if extra:
        out.update(extra)
    return out


def vmi_spec(vm: VmIdentity) -> dict[str, Any]:
    """The VMI spec (also the VM's template spec); callers may share one copy between objects."""
    bus = "sata" if vm.guest.windows else "virtio"
    return {
        "architecture": "amd64",
        "domain": {
            "cpu": {"cores": 2, "sockets": 1, "threads": 1},
            "devices": {
                "disks": [{"disk": {"bus": bus}, "name": "rootdisk"}],
                "interfaces": [{"masquerade": {}, "model": "e1000" if vm.guest.windows else "virtio",
                                "name": "default"}],
            },
            "firmware": {"uuid": vm.vm_uid},
            "machine": {"type": "q35"},
            "memory": {"guest": "4Gi" if vm.guest.windows else "2Gi"},
            "resources": {},
        },
        "networks": [{"name": "default", "pod": {}}],
        "volumes": [{"name": "rootdisk", "persistentVolumeClaim": {"claimName": f"{vm.name}-rootdisk"}}],
    }


def _vmi_conditions(vm: VmIdentity) -> list[dict[str, Any]]:
    started = rfc3339(vm.created + 30)
    conditions: list[dict[str, Any]] = [
        {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "Ready"},
        {
            "lastProbeTime": None,
            "lastTransitionTime": None,
            "message": (
                f"cannot migrate VMI: PVC {vm.name}-rootdisk is not shared, live migration requires that "
                "all PVCs must be shared (using ReadWriteMany access mode)"
            ),
            "reason": "DisksNotLiveMigratable",
            "status": "False",
            "type": "LiveMigratable",
        },
    ]
    if vm.power == "paused":
        conditions.append({
            "lastProbeTime": None, "lastTransitionTime": rfc3339(vm.created + 600),
            "message": "VMI was paused by user", "reason": "PausedByUser", "status": "True", "type": "Paused",
        })
    if vm.agent_connected:
        probe = rfc3339(vm.created + 95)
        conditions.append({"lastProbeTime": probe, "lastTransitionTime": None, "status": "True",
                           "type": "AgentConnected"})
        if vm.agent == "unsupported":
            conditions.append({"lastProbeTime": probe, "lastTransitionTime": None, "reason": UNSUPPORTED_REASON,
                               "status": "True", "type": "AgentVersionNotSupported"})
    return conditions


def vmi_object(
    vm: VmIdentity, *, version: KubeVirtVersion, frozen: bool, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The VirtualMachineInstance of a running or paused VM; ``frozen`` sets ``status.fsFreezeStatus``."""
    created = rfc3339(vm.created)
    with_agent = vm.agent in ("connected", "unsupported", "disconnected")
    interface: dict[str, Any] = {
        "infoSource": "domain, guest-agent" if vm.agent_connected else "domain",
        "ipAddress": vm.ip,
        "ipAddresses": [vm.ip],
        "linkState": "up",
        "mac": vm.mac,
        "name": "default",
        "podInterfaceName": "eth0",
        "queueCount": 1,
    }
    if vm.agent_connected:
        interface["interfaceName"] = "Ethernet" if vm.guest.windows else "eth0"
    status: dict[str, Any] = {
        "activePods": {vm.pod_uid: vm.node},
        "conditions": _vmi_conditions(vm),
        "currentCPUTopology": {"cores": 2, "sockets": 1, "threads": 1},
        "guestOSInfo": vm.guest.os_info() if with_agent else {},
        "interfaces": [interface],
        "launcherContainerImageVersion": f"quay.io/kubevirt/virt-launcher:{version.tag}",
        "machine": {"type": "pc-q35-rhel9.4.0"},
        "migrationMethod": "BlockMigration",
        "migrationTransport": "Unix",
        "nodeName": vm.node,
        "phase": "Running",
        "phaseTransitionTimestamps": [
            {"phase": "Pending", "phaseTransitionTimestamp": created},
            {"phase": "Scheduling", "phaseTransitionTimestamp": created},
            {"phase": "Scheduled", "phaseTransitionTimestamp": rfc3339(vm.created + 20)},
            {"phase": "Running", "phaseTransitionTimestamp": rfc3339(vm.created + 30)},
        ],
        "qosClass": "Burstable",
        "runtimeUser": 107,
        "virtualMachineRevisionName": f"revision-start-vm-{vm.vm_uid}-1",
        "volumeStatus": [{"name": "rootdisk", "target": "sda" if vm.guest.windows else "vda"}],
    }
    if frozen:
        status["fsFreezeStatus"] = "frozen"
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {
            "annotations": _annotations(vm, {
                "kubevirt.io/latest-observed-api-version": "v1",
                "kubevirt.io/storage-observed-api-version": "v1",
                "kubevirt.io/vm-generation": "1",
            }),
            "creationTimestamp": created,
            "finalizers": ["kubevirt.io/virtualMachineControllerFinalize",
                           "kubevirt.io/foregroundDeleteVirtualMachine"],
            "generation": 8,
            "labels": {"kubevirt.io/domain": vm.name, "kubevirt.io/nodeName": vm.node},
            "name": vm.name,
            "namespace": vm.namespace,
            "ownerReferences": [{
                "apiVersion": "kubevirt.io/v1", "blockOwnerDeletion": True, "controller": True,
                "kind": "VirtualMachine", "name": vm.name, "uid": vm.vm_uid,
            }],
            "uid": vm.vmi_uid,
        },
        "spec": spec if spec is not None else vmi_spec(vm),
        "status": status,
    }


def vm_object(
    vm: VmIdentity, *, version: KubeVirtVersion, snapshot_in_progress: str | None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The VirtualMachine; a stopped one has runStrategy Halted and no VMI."""
    status: dict[str, Any]
    if vm.running:
        conditions = [c for c in _vmi_conditions(vm) if c["type"] != "LiveMigratable"]
        status = {
            "conditions": conditions,
            "created": True,
            "desiredGeneration": 1,
            "observedGeneration": 1,
            "printableStatus": "Paused" if vm.power == "paused" else "Running",
            "ready": True,
            "runStrategy": "Always",
        }
    else:
        status = {
            "conditions": [{
                "lastProbeTime": None, "lastTransitionTime": rfc3339(vm.created + 60),
                "message": "VMI does not exist", "reason": "VMINotExists", "status": "False", "type": "Ready",
            }],
            "desiredGeneration": 2,
            "observedGeneration": 2,
            "printableStatus": "Stopped",
            "runStrategy": "Halted",
        }
    if snapshot_in_progress is not None:
        status["snapshotInProgress"] = snapshot_in_progress
    status["volumeSnapshotStatuses"] = [{"enabled": True, "name": "rootdisk"}]
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "annotations": _annotations(vm, {
                "kubevirt.io/latest-observed-api-version": "v1",
                "kubevirt.io/storage-observed-api-version": "v1",
            }),
            "creationTimestamp": rfc3339(vm.created),
            "finalizers": ["kubevirt.io/virtualMachineControllerFinalize"],
            "generation": 1 if vm.running else 2,
            "name": vm.name,
            "namespace": vm.namespace,
            "uid": vm.vm_uid,
        },
        "spec": {
            "runStrategy": "Always" if vm.running else "Halted",
            "template": {
                "metadata": {"labels": {"kubevirt.io/domain": vm.name}},
                "spec": spec if spec is not None else vmi_spec(vm),
            },
        },
        "status": status,
    }


def launcher_pod(vm: VmIdentity, *, version: KubeVirtVersion) -> dict[str, Any]:
    """The virt-launcher pod of a running VMI, with the labels and owner KubeVirt sets."""
    image = f"quay.io/kubevirt/virt-launcher:{version.tag}"
    started = rfc3339(vm.created + 25)
    labels = {
        "kubevirt.io": "virt-launcher",
        "kubevirt.io/created-by": vm.vmi_uid,
        "kubevirt.io/domain": vm.name,
        "vm.kubevirt.io/name": vm.name.split(".")[0][:63],
    }
    if version.vmi_id_label:
        labels["vmi.kubevirt.io/id"] = vm.name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": _annotations(vm, {
                "kubectl.kubernetes.io/default-container": "compute",
                "kubevirt.io/domain": vm.name,
            }),
            "creationTimestamp": rfc3339(vm.created),
            "generateName": f"virt-launcher-{vm.name}-",
            "labels": labels,
            "name": vm.pod_name,
            "namespace": vm.namespace,
            "ownerReferences": [{
                "apiVersion": "kubevirt.io/v1", "blockOwnerDeletion": True, "controller": True,
                "kind": "VirtualMachineInstance", "name": vm.name, "uid": vm.vmi_uid,
            }],
            "uid": vm.pod_uid,
        },
        "spec": {
            "containers": [{"name": "compute", "image": image}],
            "nodeName": vm.node,
            "restartPolicy": "Never",
            "serviceAccountName": "default",
        },
        "status": {
            "conditions": [
                {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": "Ready"},
                {"lastProbeTime": None, "lastTransitionTime": started, "status": "True",
                 "type": "ContainersReady"},
            ],
            "containerStatuses": [{
                "containerID": f"containerd://{vm.pod_uid.replace('-', '')}{vm.vmi_uid.replace('-', '')}",
                "image": image,
                "imageID": f"{image}@sha256:{vm.vm_uid.replace('-', '')}{vm.pod_uid.replace('-', '')}",
                "lastState": {},
                "name": "compute",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": started}},
            }],
            "hostIP": "192.0.2.10",
            "phase": "Running",
            "podIP": vm.ip,
            "podIPs": [{"ip": vm.ip}],
            "qosClass": "Burstable",
            "startTime": rfc3339(vm.created),
        },
    }
