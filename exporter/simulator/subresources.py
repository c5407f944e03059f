"""HTTP handlers for the guest-agent subresources (as virt-api answers them) and pod logs (as the kubelet).

Guest-agent failures are 500 with a plain-text body, not a ``Status`` (reference/kubevirt.md §2).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from exporter.simulator.api import status_response, truthy
from exporter.simulator.clock import parse_rfc3339, rfc3339_nano
from exporter.simulator.faults import Faults
from exporter.simulator.history import ObjectStore
from exporter.simulator.resources import encode
from exporter.simulator.streams import StreamEnd

_GUEST_HANDLER_TIMEOUT = (
    'Get "https://192.0.2.10:8186/v1/namespaces/{ns}/virtualmachineinstances/{name}/{sub}": '
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
)


class SubresourceHandlers:
    """guestosinfo, userlist and filesystemlist of VMIs, and the compute log of pods."""

    def __init__(self, *, store: ObjectStore, faults: Faults) -> None:
        self._store = store
        self._faults = faults

    # --- guest agent --------------------------------------------------------------------------

    async def guest_agent(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        name = request.match_info["name"]
        sub = request.match_info["sub"]
        if sub not in ("guestosinfo", "userlist", "filesystemlist"):
            raise web.HTTPNotFound()
        if self._faults.guestosinfo_delay > 0:
            await asyncio.sleep(self._faults.guestosinfo_delay)
        entry = self._store.entry("virtualmachineinstances", namespace, name)
        if entry is None:
            return web.Response(status=500, text=f'virtualmachineinstance.kubevirt.io "{name}" not found')
        status = entry.obj.get("status")
        if not isinstance(status, dict) or status.get("phase") != "Running":
            return web.Response(status=500, text=(
                f'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "{name}": VMI is not running'))
        if self._faults.guestosinfo_fails():
            return web.Response(status=500, text=_GUEST_HANDLER_TIMEOUT.format(ns=namespace, name=name, sub=sub))
        info = self._store.guest_info(namespace, name)
        if info is None:
            return web.Response(status=500, text=(
                f'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "{name}": '
                "VMI does not have guest agent connected"))
        if sub == "userlist":
            body: Any = {"metadata": {}, "items": info.get("userList") or []}
        elif sub == "filesystemlist":
            body = {"metadata": {}, "items": (info.get("fsInfo") or {}).get("disks") or []}
        else:
            body = info
        return web.Response(body=encode(body), content_type="application/json")

    # --- pod logs -----------------------------------------------------------------------------

    async def pod_log(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        query = request.query
        pod = self._store.entry("pods", namespace, name)
        if pod is None:
            return status_response(404, "NotFound", f'pods "{name}" not found')
        spec = pod.obj.get("spec")
        containers = [c.get("name") for c in (spec.get("containers") or [])] if isinstance(spec, dict) else []
        container = query.get("container") or "compute"
        if containers and container not in containers:
            return status_response(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if truthy(query.get("previous")):
            return status_response(400, "BadRequest",
                                   f'previous terminated container "{container}" in pod "{name}" not found')
        try:
            cutoff = None
            if query.get("sinceSeconds"):
                cutoff = self._store.now() - int(query["sinceSeconds"])
            elif query.get("sinceTime"):
                cutoff = parse_rfc3339(query["sinceTime"])
            tail = int(query["tailLines"]) if query.get("tailLines") else None
            limit_bytes = int(query["limitBytes"]) if query.get("limitBytes") else None
        except ValueError:
            return status_response(400, "BadRequest", "invalid sinceSeconds, sinceTime, tailLines or limitBytes")
        stamps = truthy(query.get("timestamps"))
        follow = truthy(query.get("follow"))
        follower = self._store.follow_log(namespace, name) if follow else None
        lines = self._store.log_lines(namespace, name)
        if cutoff is not None:
            lines = [item for item in lines if item[0] >= cutoff]
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []

        def render(items: list[tuple[float, str]]) -> bytes:
            if stamps:
                return "".join(f"{rfc3339_nano(t)} {text}\n" for t, text in items).encode()
            return "".join(f"{text}\n" for _, text in items).encode()

        first = render(lines)
        if limit_bytes is not None:
            first = first[:limit_bytes]
        if follower is None:
            return web.Response(body=first, content_type="text/plain", charset="utf-8")
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            await response.write(first)
            sent = len(first)
            while limit_bytes is None or sent < limit_bytes:
                await follower.wait(None)
                chunk = render(follower.drain())
                if follower.end is StreamEnd.DROPPED:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if limit_bytes is not None:
                    chunk = chunk[: limit_bytes - sent]
                if chunk:
                    await response.write(chunk)
                    sent += len(chunk)
                if follower.end is not None:
                    break
            await response.write_eof()
        except ConnectionError:
            pass
        finally:
            self._store.release(follower)
        return response
