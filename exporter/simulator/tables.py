"""Server-side ``Table`` rendering, so ``kubectl get`` prints the columns it prints against KubeVirt.

Columns follow the KubeVirt CRDs' additionalPrinterColumns and kube-apiserver's printers for pods,
events and namespaces. Ages are measured on the simulated clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.simulator.clock import parse_rfc3339

Row = Callable[[dict[str, Any], float], list[Any]]


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for ``meta.k8s.io`` Tables (kubectl get does)."""
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def human_age(seconds: float) -> str:
    """Kubernetes' short human duration: ``45s``, ``3m12s``, ``47m``, ``5h3m``, ``20h``, ``3d4h``, ``12d``."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = s // 86400
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _get(obj: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


def _age(obj: dict[str, Any], field: tuple[str, ...], now: float) -> str:
    value = _get(obj, *field)
    try:
        return human_age(now - parse_rfc3339(value)) if isinstance(value, str) else "<unknown>"
    except ValueError:
        return "<unknown>"


def _condition(obj: dict[str, Any], kind: str) -> str:
    conditions = _get(obj, "status", "conditions")
    if isinstance(conditions, list):
        for c in conditions:
            if isinstance(c, dict) and c.get("type") == kind:
                return str(c.get("status", ""))
    return ""


def _first_ip(obj: dict[str, Any]) -> str:
    interfaces = _get(obj, "status", "interfaces")
    if isinstance(interfaces, list) and interfaces and isinstance(interfaces[0], dict):
        return str(interfaces[0].get("ipAddress", ""))
    return ""


def _pod_row(obj: dict[str, Any], now: float) -> list[Any]:
    statuses = _get(obj, "status", "containerStatuses") or []
    statuses = [s for s in statuses if isinstance(s, dict)] if isinstance(statuses, list) else []
    containers = _get(obj, "spec", "containers")
    total = len(containers) if isinstance(containers, list) else len(statuses)
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    return [_get(obj, "metadata", "name"), f"{ready}/{total}", _get(obj, "status", "phase") or "", restarts,
            _age(obj, ("metadata", "creationTimestamp"), now)]


def _event_row(obj: dict[str, Any], now: float) -> list[Any]:
    involved = _get(obj, "involvedObject") or {}
    kind = str(involved.get("kind", "")).lower() if isinstance(involved, dict) else ""
    name = involved.get("name", "") if isinstance(involved, dict) else ""
    return [_age(obj, ("lastTimestamp",), now), obj.get("type", ""), obj.get("reason", ""), f"{kind}/{name}",
            obj.get("message", "")]


_COLUMNS: dict[str, tuple[list[tuple[str, str]], Row]] = {
    "virtualmachineinstances": (
        [("Name", "string"), ("Age", "date"), ("Phase", "string"), ("IP", "string"), ("NodeName", "string"),
         ("Ready", "string")],
        lambda o, now: [_get(o, "metadata", "name"), _age(o, ("metadata", "creationTimestamp"), now),
                        _get(o, "status", "phase") or "", _first_ip(o), _get(o, "status", "nodeName") or "",
                        _condition(o, "Ready")],
    ),
    "virtualmachines": (
        [("Name", "string"), ("Age", "date"), ("Status", "string"), ("Ready", "string")],
        lambda o, now: [_get(o, "metadata", "name"), _age(o, ("metadata", "creationTimestamp"), now),
                        _get(o, "status", "printableStatus") or "", _condition(o, "Ready")],
    ),
    "virtualmachinesnapshots": (
        [("Name", "string"), ("SourceKind", "string"), ("SourceName", "string"), ("Phase", "string"),
         ("ReadyToUse", "boolean"), ("CreationTime", "date"), ("Error", "string")],
        lambda o, now: [_get(o, "metadata", "name"), _get(o, "spec", "source", "kind") or "",
                        _get(o, "spec", "source", "name") or "", _get(o, "status", "phase") or "",
                        bool(_get(o, "status", "readyToUse")),
                        _age(o, ("status", "creationTime"), now) if _get(o, "status", "creationTime") else "",
                        _get(o, "status", "error", "message") or ""],
    ),
    # The CRD's printer columns (pkg/virt-operator/resource/generate/components/crds.go:549-551, v1.8.0).
    "virtualmachinesnapshotcontents": (
        [("Name", "string"), ("ReadyToUse", "boolean"), ("CreationTime", "date"), ("Error", "string")],
        lambda o, now: [_get(o, "metadata", "name"), bool(_get(o, "status", "readyToUse")),
                        _age(o, ("status", "creationTime"), now) if _get(o, "status", "creationTime") else "",
                        _get(o, "status", "error", "message") or ""],
    ),
    "pods": ([("Name", "string"), ("Ready", "string"), ("Status", "string"), ("Restarts", "integer"),
              ("Age", "string")], _pod_row),
    "events": ([("Last Seen", "string"), ("Type", "string"), ("Reason", "string"), ("Object", "string"),
                ("Message", "string")], _event_row),
    "namespaces": (
        [("Name", "string"), ("Status", "string"), ("Age", "string")],
        lambda o, now: [_get(o, "metadata", "name"), _get(o, "status", "phase") or "",
                        _age(o, ("metadata", "creationTimestamp"), now)],
    ),
}


def table(plural: str, objects: list[dict[str, Any]], *, now: float, metadata: dict[str, Any]) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objects``; each row carries the object's metadata for kubectl."""
    columns, row = _COLUMNS.get(plural) or (
        [("Name", "string"), ("Age", "date")],
        lambda o, n: [_get(o, "metadata", "name"), _age(o, ("metadata", "creationTimestamp"), n)],
    )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {"name": name, "type": kind, "format": "name" if name == "Name" else "", "description": "",
             "priority": 0}
            for name, kind in columns
        ],
        "rows": [
            {"cells": row(o, now), "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                              "metadata": o.get("metadata") if isinstance(o.get("metadata"), dict)
                                              else {}}}
            for o in objects
        ],
    }
