"""``diagnose NAMESPACE/NAME``: read one VM from the cluster, judge it as the exporter does, print the fix."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from exporter.kube import errors
from exporter.kube.client import KubeClient
from exporter.resources import EVENTS, SNAPSHOTS, VMIS, VMS, guestosinfo_path
from exporter.state.error_advice import remediation
from exporter.state.fleet import Fleet
from exporter.state.records import VmKey, VmState

EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vm", metavar="NAMESPACE/NAME", help="the VirtualMachine (or VMI) to diagnose")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then in-cluster)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def main(args: argparse.Namespace) -> int:
    namespace, _, name = args.vm.partition("/")
    if not namespace or not name:
        print("error: expected NAMESPACE/NAME", file=sys.stderr)
        return EXIT_ERROR
    try:
        state, notes = asyncio.run(_collect(VmKey(namespace, name), args.kubeconfig, args.context))
    except errors.KubeError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if state is None:
        print(f"error: no VirtualMachine or VirtualMachineInstance {namespace}/{name}", file=sys.stderr)
        return EXIT_ERROR
    report = diagnosis(state, now=time.time(), notes=notes)
    print(json.dumps(report, indent=2) if args.json else render_text(report))
    return EXIT_PROBLEMS if report["problems"] else EXIT_HEALTHY


async def _get_optional(client: KubeClient, path: str, **kwargs: Any) -> Any:
    try:
        return await client.get_json(path, **kwargs)
    except errors.NotFound:
        return None


async def _collect(key: VmKey, kubeconfig: str | None, context: str | None) -> tuple[VmState | None, list[str]]:
    client = await KubeClient.connect(kubeconfig=kubeconfig, context=context)
    notes: list[str] = []
    published: dict[VmKey, VmState | None] = {}
    fleet = Fleet(on_state=lambda k, s: published.__setitem__(k, s))
    now = time.time()
    try:
        vm = await _get_optional(client, f"{VMS.path('v1', key.namespace)}/{key.name}")
        vmi = await _get_optional(client, f"{VMIS.path('v1', key.namespace)}/{key.name}")
        snapshots = None
        for version in SNAPSHOTS.versions:
            snapshots = await _get_optional(client, SNAPSHOTS.path(version, key.namespace))
            if snapshots is not None:
                break
        events = await client.get_json(
            EVENTS.path("v1", key.namespace),
            query={"fieldSelector": f"involvedObject.name={key.name},reason=FreezeError"},
        )
        if vm is not None:
            fleet.upsert("virtualmachines", vm, now)
        if vmi is not None:
            fleet.upsert("virtualmachineinstances", vmi, now)
        fleet.replace("virtualmachinesnapshots", (snapshots or {}).get("items") or [], now)
        fleet.replace("events", (events or {}).get("items") or [], now)
        record = fleet.record(key)
        if record is not None and record.vmi is not None and record.vmi.agent_connected:
            try:
                info = await client.get_json(guestosinfo_path(key.namespace, key.name), timeout=15.0)
                fleet.apply_guest_info(key, record.vmi.uid, info, now)
            except errors.KubeError as error:
                notes.append(f"guestosinfo unavailable: {error}")
        notes.append("VSS writers, services and free space are only known to the exporter from guest reports.")
    finally:
        await client.close()
    return published.get(key), notes


def diagnosis(state: VmState, *, now: float, notes: list[str] | None = None) -> dict[str, Any]:
    """A JSON-ready judgement of one VM: checklist, last snapshot, newest freeze error and advice."""
    problems: list[str] = [f"check {name} failed" for name, ok in state.checks if not ok]
    last = state.last_snapshot
    snapshot = None
    if last is not None:
        snapshot = {
            "name": last.snapshot,
            "phase": last.phase,
            "level": last.level,
            "consistency": last.consistency,
            "reason": last.reason,
            "indications": last.indications,
            "time": _iso(last.timestamp),
        }
        if last.level < 2:
            why = f" ({last.reason})" if last.reason else ""
            problems.append(f"last snapshot {last.snapshot} is {last.consistency}{why}")
    freeze_error = None
    if state.last_freeze_error is not None:
        detail = state.last_freeze_error
        freeze_error = {
            "reason": detail.reason,
            "cause": detail.cause,
            "hresult": detail.hresult or None,
            "hresult_name": detail.hresult_name or None,
            "volume": detail.volume or None,
            "mount_point": detail.mount_point or None,
            "source": detail.source,
            "time": _iso(detail.timestamp),
        }
        consistent = state.last_consistent_snapshot_timestamp
        if consistent is None or detail.timestamp > consistent:
            problems.append(f"freeze failing: {detail.reason}")
    return {
        "namespace": state.key.namespace,
        "name": state.key.name,
        "phase": state.phase,
        "node": state.node or None,
        "guest_os": state.guest_os_version or state.guest_os or None,
        "agent_version": state.agent_version or None,
        "checks": dict(state.checks),
        "frozen_since": _iso(state.frozen_since),
        "last_snapshot": snapshot,
        "last_consistent_snapshot": _iso(state.last_consistent_snapshot_timestamp),
        "freeze_error_episodes": [{"reason": r, "cause": c, "count": n} for r, c, n in state.freeze_error_counts],
        "last_freeze_error": freeze_error,
        "problems": problems,
        "notes": notes or [],
    }


def render_text(report: dict[str, Any]) -> str:
    lines = [
        f"VM {report['namespace']}/{report['name']}: {report['phase']}"
        + (f" on {report['node']}" if report["node"] else "")
        + (f", {report['guest_os']}" if report["guest_os"] else "")
        + (f", guest agent {report['agent_version']}" if report["agent_version"] else "")
    ]
    lines.append("")
    lines.append("Checklist:")
    if not report["checks"]:
        lines.append("  (nothing to judge: the VM is not running)")
    for name, ok in report["checks"].items():
        lines.append(f"  [{'ok' if ok else 'FAIL':>4}] {name}")
    if report["frozen_since"]:
        lines.append(f"  filesystems frozen since {report['frozen_since']}")
    lines.append("")
    snapshot = report["last_snapshot"]
    if snapshot is None:
        lines.append("Last snapshot: none finished")
    else:
        why = f", {snapshot['reason']}" if snapshot["reason"] else ""
        lines.append(
            f"Last snapshot: {snapshot['name']} ({snapshot['phase']}, {snapshot['time']}): "
            f"level {snapshot['level']} {snapshot['consistency']}{why}; indications [{snapshot['indications']}]"
        )
    lines.append(f"Last consistent snapshot: {report['last_consistent_snapshot'] or 'none'}")
    error = report["last_freeze_error"]
    if error is not None:
        lines.append("")
        episodes = ", ".join(f"{e['reason']}/{e['cause']} x{e['count']}" for e in report["freeze_error_episodes"])
        lines.append(f"Freeze failures (episodes): {episodes}")
        advice = remediation_for_error(error)
        lines.append(f"Newest: {error['reason']} (cause {error['cause']}) at {error['time']} via {error['source']}")
        if error["hresult"]:
            lines.append(f"  HRESULT {error['hresult']} {error['hresult_name'] or ''}".rstrip())
        if error["volume"]:
            lines.append(f"  volume {error['volume']}" + (f" = {error['mount_point']}" if error["mount_point"] else ""))
        lines.append(f"  what to do: {advice}")
    lines.append("")
    lines.append("Problems: " + ("; ".join(report["problems"]) if report["problems"] else "none"))
    lines.extend(f"Note: {note}" for note in report["notes"])
    return "\n".join(lines)


def remediation_for_error(error: dict[str, Any]) -> str:
    """Remediation for the newest error, from its reason, cause and volume."""
    return remediation(error["reason"], error["cause"], error.get("volume"))


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
