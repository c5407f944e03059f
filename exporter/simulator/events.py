"""How virt-handler and virt-launcher report a freeze failure besides the snapshot: Events and log lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from exporter.simulator.clock import rfc3339, rfc3339_micro
from exporter.simulator.objects import SIMULATED, VmIdentity


@dataclass(slots=True)
class EventState:
    """One aggregated Event: repeats raise ``count`` and move ``last``."""

    name: str
    uid: str
    reason: str
    message: str
    first: float
    last: float
    count: int = 1


def warning_event(vm: VmIdentity, event: EventState) -> dict[str, Any]:
    """A Warning Event from virt-handler about the VMI (such as FreezeError)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "count": event.count,
        "eventTime": None,
        "firstTimestamp": rfc3339(event.first),
        "involvedObject": {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": vm.name,
            "namespace": vm.namespace, "uid": vm.vmi_uid,
        },
        "lastTimestamp": rfc3339(event.last),
        "message": event.message,
        "metadata": {
            "annotations": {SIMULATED: "true"},
            "creationTimestamp": rfc3339(event.first),
            "name": event.name,
            "namespace": vm.namespace,
            "uid": event.uid,
        },
        "reason": event.reason,
        "reportingComponent": "",
        "reportingInstance": "",
        "source": {"component": "virt-handler", "host": vm.node},
        "type": "Warning",
    }


def launcher_log_line(
    vm: VmIdentity, *, at: float, level: str, msg: str, pos: str, reason: str | None = None,
    with_object: bool = True,
) -> str:
    """One virt-launcher JSON log line: go-kit's JSON logger, keys sorted."""
    fields = ['"component":"virt-launcher"']
    if with_object:
        fields.append('"kind":""')
    fields.append(f'"level":{json.dumps(level)},"msg":{json.dumps(msg)}')
    if with_object:
        fields.append(f'"name":{json.dumps(vm.name)},"namespace":{json.dumps(vm.namespace)}')
    fields.append(f'"pos":{json.dumps(pos)}')
    if reason is not None:
        fields.append(f'"reason":{json.dumps(reason)}')
    fields.append(f'"timestamp":"{rfc3339_micro(at)}"')
    if with_object:
        fields.append(f'"uid":"{vm.vmi_uid}"')
    return "{" + ",".join(fields) + "}"
