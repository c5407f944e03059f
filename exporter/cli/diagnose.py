"""``diagnose NAMESPACE/NAME``: the diagnosis of one VM, from the running exporter or from the cluster.

With ``--exporter URL`` it reads the exporter's JSON API, which knows everything the metrics know
(guest reports, frozen-since, freeze episodes). Without it, it reads the VM's objects from the
cluster once and judges them with the exporter's code; what only a running exporter can know is
reported as unknown. Exit 0 healthy, 1 when something fails, 2 when the VM cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from exporter.kube import errors
from exporter.kube.client import KubeClient
from exporter.resources import EVENTS, SNAPSHOT_CONTENTS, SNAPSHOTS, VMIS, VMS, guestosinfo_path
from exporter.state.diagnosis import Context, diagnose, diagnosis_object
from exporter.state.fleet import Fleet
from exporter.state.records import VmKey, VmState
from exporter.state.runbooks import RUNBOOK_BASE_URL

EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2
DIAGNOSIS_KEYS = ("vm", "healthy", "last_snapshot", "checks", "problems", "next_steps")
SNAPSHOT_KEYS = ("name", "phase", "level", "consistency", "reason", "indications", "time", "failed_volumes")
CHECK_KEYS = ("name", "status", "evidence")
EXPORTER_TIMEOUT = 15.0


class Unreachable(Exception):
    """The exporter or the cluster could not be read, or does not know the VM."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vm", metavar="NAMESPACE/NAME", help="the VirtualMachine (or VMI) to diagnose")
    parser.add_argument(
        "--exporter",
        metavar="URL",
        help="read the diagnosis from a running exporter (for example http://127.0.0.1:9745) instead of the cluster",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then in-cluster)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--runbook-base-url",
        default=RUNBOOK_BASE_URL,
        metavar="URL",
        help="where runbooks are linked from, without --exporter (default: the project's)",
    )


def main(args: argparse.Namespace) -> int:
    code, output = run(args)
    print(output, file=sys.stdout if code != EXIT_ERROR else sys.stderr)
    return code


def run(args: argparse.Namespace) -> tuple[int, str]:
    """(exit code, what to print: the diagnosis, or the error when the code is EXIT_ERROR)."""
    namespace, _, name = args.vm.partition("/")
    if not namespace or not name or "/" in name:
        return EXIT_ERROR, "error: expected NAMESPACE/NAME"
    key = VmKey(namespace, name)
    try:
        if args.exporter:
            result = asyncio.run(from_exporter(args.exporter, key))
        else:
            runbook_base_url = getattr(args, "runbook_base_url", RUNBOOK_BASE_URL)
            result = asyncio.run(from_cluster(key, args.kubeconfig, args.context, runbook_base_url))
    except Unreachable as error:
        return EXIT_ERROR, f"error: {error}"
    output = json.dumps(json_object(result), indent=2) if args.json else render_text(result)
    return (EXIT_HEALTHY if result["healthy"] else EXIT_PROBLEMS), output


def json_object(result: dict[str, Any]) -> dict[str, Any]:
    """Exactly the documented object; the API's richer answer is cut down to it."""
    printed = {k: result[k] for k in DIAGNOSIS_KEYS}
    if printed["last_snapshot"] is not None:
        printed["last_snapshot"] = {k: printed["last_snapshot"].get(k) for k in SNAPSHOT_KEYS}
    printed["checks"] = [{k: check.get(k) for k in CHECK_KEYS} for check in printed["checks"]]
    return printed


async def from_exporter(url: str, key: VmKey) -> dict[str, Any]:
    """The VM's detail from the exporter's JSON API."""
    target = f"{url.rstrip('/')}/api/v1/vms/{quote(key.namespace, safe='')}/{quote(key.name, safe='')}"
    try:
        timeout = aiohttp.ClientTimeout(total=EXPORTER_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(target) as response:
            if response.status == 404:
                raise Unreachable(f"the exporter at {url} does not export {key.namespace}/{key.name}")
            if response.status != 200:
                raise Unreachable(f"the exporter at {url} answered HTTP {response.status}")
            detail = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise Unreachable(f"cannot read the exporter at {url}: {error or type(error).__name__}") from error
    if not isinstance(detail, dict) or any(k not in detail for k in DIAGNOSIS_KEYS):
        raise Unreachable(f"the exporter at {url} did not answer with a VM diagnosis")
    return detail


async def from_cluster(
    key: VmKey, kubeconfig: str | None, context: str | None, runbook_base_url: str = RUNBOOK_BASE_URL
) -> dict[str, Any]:
    """Read the VM's objects once and judge them; ``Unreachable`` when the cluster cannot be read."""
    try:
        state, unsupported_reason = await _collect(key, kubeconfig, context)
    except errors.KubeError as error:
        raise Unreachable(f"cannot read the cluster: {error}") from error
    if state is None:
        raise Unreachable(f"no VirtualMachine or VirtualMachineInstance {key.namespace}/{key.name}")
    # A one-shot read knows neither how long a filesystem has been frozen nor what guest reports said.
    cluster_context = Context(
        tracks_frozen_since=False,
        receives_guest_reports=False,
        agent_unsupported_reason=unsupported_reason,
        runbook_base_url=runbook_base_url,
    )
    return diagnosis_object(state, diagnose(state, now=time.time(), context=cluster_context))


async def _get_optional(client: KubeClient, path: str, **kwargs: Any) -> Any:
    try:
        return await client.get_json(path, **kwargs)
    except errors.NotFound:
        return None


async def _snapshot_contents(client: KubeClient, namespace: str) -> list[Any]:
    """The namespace's snapshot contents; none where they are not served or may not be read."""
    for version in SNAPSHOT_CONTENTS.versions:
        try:
            listed = await client.get_json(SNAPSHOT_CONTENTS.path(version, namespace))
        except errors.NotFound:
            continue
        except errors.Forbidden:
            return []
        return (listed or {}).get("items") or []
    return []


async def _collect(key: VmKey, kubeconfig: str | None, context: str | None) -> tuple[VmState | None, str | None]:
    """The VM's state as the exporter would judge it from one read, and the agent's unsupported reason."""
    client = await KubeClient.connect(kubeconfig=kubeconfig, context=context)
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
        contents = await _snapshot_contents(client, key.namespace)
        events = await client.get_json(
            EVENTS.path("v1", key.namespace),
            query={"fieldSelector": f"involvedObject.name={key.name},reason=FreezeError"},
        )
        if vm is not None:
            fleet.upsert(VMS.name, vm, now)
        if vmi is not None:
            fleet.upsert(VMIS.name, vmi, now)
        fleet.replace(SNAPSHOTS.name, (snapshots or {}).get("items") or [], now)
        fleet.replace(SNAPSHOT_CONTENTS.name, contents, now)
        fleet.replace(EVENTS.name, (events or {}).get("items") or [], now)
        record = fleet.record(key)
        if record is not None and record.vmi is not None and record.vmi.agent_connected:
            try:
                info = await client.get_json(guestosinfo_path(key.namespace, key.name), timeout=15.0)
                fleet.apply_guest_info(key, record.vmi.uid, info, now)
            except errors.KubeError:
                pass  # the freeze-command check stays unknown, and says why
    finally:
        await client.close()
    record = fleet.record(key)
    reason = record.vmi.agent_unsupported_reason if record is not None and record.vmi is not None else None
    return published.get(key), reason


STATUS_MARKS = {"ok": "  ok", "fail": "FAIL", "unknown": "   ?"}


def render_text(result: dict[str, Any]) -> str:
    """The diagnosis for a terminal: verdict, last snapshot, checklist, problems, next steps."""
    lines = [f"VM {result['vm']}: {'healthy' if result['healthy'] else 'PROBLEMS FOUND'}", ""]
    snapshot = result["last_snapshot"]
    if snapshot is None:
        lines.append("Last snapshot: no finished snapshot")
    else:
        why = f" ({snapshot['reason']})" if snapshot["reason"] else ""
        lines.append(
            f"Last snapshot: {snapshot['name']}, {snapshot['phase']} at {snapshot['time']}: "
            f"level {snapshot['level']} {snapshot['consistency']}{why}; "
            f"indications [{','.join(snapshot['indications'])}]"
        )
    error = result.get("last_freeze_error")
    if error:
        lines.append(f"Newest freeze error: {error['reason']} (cause {error['cause']}) at {error['time']}")
        if error.get("hresult"):
            meaning = f": {error['hresult_meaning']}" if error.get("hresult_meaning") else ""
            lines.append(f"  HRESULT {error['hresult']} {error.get('hresult_name') or ''}{meaning}".rstrip())
        if error.get("volume"):
            lines.append(f"  volume {error['volume']} = {error.get('mount_point') or 'mount point unknown'}")
    lines += ["", "Checks:"]
    width = max((len(c["name"]) for c in result["checks"]), default=0)
    for check in result["checks"]:
        mark = STATUS_MARKS.get(check["status"], check["status"])
        lines.append(f"  [{mark}] {check['name']:<{width}}  {check['evidence']}")
    lines.append("")
    unknown = [c["name"] for c in result["checks"] if c["status"] == "unknown"]
    if result["problems"]:
        lines.append("Problems:")
        lines.extend(f"  - {p['text']}\n    runbook: {p['runbook']}" for p in result["problems"])
    else:
        lines.append("Problems: no check fails" + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    if result["next_steps"]:
        lines += ["", "Next steps:"]
        lines.extend(f"  {i}. {s['text']}\n     runbook: {s['runbook']}" for i, s in enumerate(result["next_steps"], 1))
    return "\n".join(lines)
