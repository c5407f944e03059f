"""Writes to the simulated API: create, replace, patch, delete and the ``status`` subresource.

They follow kube-apiserver where a client can tell: every write gets the next resourceVersion and one
watch event (ADDED, MODIFIED or DELETED); a stale ``metadata.resourceVersion`` is a 409 Conflict; for
resources with a status subresource, writes to the object keep the stored status and writes to
``/status`` change only the status. Two simplifications, said in the README: delete ignores finalizers
(no controller would remove them), and a strategic merge patch is applied as a JSON merge patch.
"""

from __future__ import annotations

import copy
import json
import random
import string
from typing import Any

import yaml
from aiohttp import web

from exporter.simulator.api import status_object, status_response
from exporter.simulator.discovery import WITH_STATUS, Served
from exporter.simulator.history import ObjectStore
from exporter.simulator.patches import PatchError, json_patch, merge_patch
from exporter.simulator.resources import encode

MERGE_PATCH = ("application/merge-patch+json", "application/strategic-merge-patch+json")
JSON_PATCH = "application/json-patch+json"
_SERVER_SET = ("uid", "creationTimestamp", "resourceVersion", "deletionTimestamp", "generation", "selfLink")


class WriteHandlers:
    """Write handlers bound to one store; ``served`` resolves the request path to a resource."""

    def __init__(self, *, store: ObjectStore, served: dict[tuple[str, str, str], Served]) -> None:
        self._store = store
        self._served = served
        self._names = random.Random(0)

    def _resolve(self, request: web.Request) -> tuple[Served, str]:
        info = request.match_info
        served = self._served.get((info.get("group", ""), info["version"], info["resource"]))
        if served is None or (not served.namespaced and "namespace" in info):
            raise web.HTTPNotFound()
        return served, info.get("namespace", "") if served.namespaced else ""

    # --- handlers -----------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        served, namespace = self._resolve(request)
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            return status_response(400, "BadRequest", "metadata must be an object")
        problem = _check_namespace(meta, namespace, served)
        if problem is not None:
            return problem
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                self._names.choices(string.ascii_lowercase + "0123456789", k=5)
            )
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return status_response(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        if self._store.entry(served.plural, namespace, name) is not None:
            return _conflict(served, name, "AlreadyExists", f'{_qualified(served)} "{name}" already exists', 409)
        for key in _SERVER_SET:
            meta.pop(key, None)
        meta["generation"] = 1
        if served.plural in WITH_STATUS:
            body.pop("status", None)
        return self._store_and_answer(request, served, body, status=201)

    async def replace(self, request: web.Request) -> web.Response:
        return await self._update(request, subresource=False, patch=False)

    async def patch(self, request: web.Request) -> web.Response:
        return await self._update(request, subresource=False, patch=True)

    async def replace_status(self, request: web.Request) -> web.Response:
        return await self._update(request, subresource=True, patch=False)

    async def patch_status(self, request: web.Request) -> web.Response:
        return await self._update(request, subresource=True, patch=True)

    async def get_status(self, request: web.Request) -> web.Response:
        served, namespace = self._resolve(request)
        current = self._store.get(served.plural, namespace, request.match_info["name"])
        if current is None:
            return _not_found(served, request.match_info["name"])
        return web.Response(body=encode(current), content_type="application/json")

    async def delete(self, request: web.Request) -> web.Response:
        served, namespace = self._resolve(request)
        name = request.match_info["name"]
        current = self._store.get(served.plural, namespace, name)
        if current is None:
            return _not_found(served, name)
        if not request.query.get("dryRun"):
            self._store.delete(served.plural, namespace, name)
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": served.group, "kind": served.plural, "uid": current["metadata"]["uid"]},
        }
        return web.Response(body=encode(body), content_type="application/json")

    # --- shared -------------------------------------------------------------------------------

    async def _update(self, request: web.Request, *, subresource: bool, patch: bool) -> web.Response:
        served, namespace = self._resolve(request)
        name = request.match_info["name"]
        if subresource and served.plural not in WITH_STATUS:
            raise web.HTTPNotFound()
        current = self._store.get(served.plural, namespace, name)
        if current is None:
            return _not_found(served, name)
        if patch:
            wanted = await _patched(request, current)
        else:
            wanted = await _body(request)
        if isinstance(wanted, web.Response):
            return wanted
        meta = wanted.get("metadata")
        if not isinstance(meta, dict):
            return status_response(400, "BadRequest", "metadata must be an object")
        if meta.get("name", name) != name:
            return status_response(400, "BadRequest", "the name of the object does not match the name on the URL")
        problem = _check_namespace(meta, namespace, served)
        if problem is not None:
            return problem
        sent_version = meta.get("resourceVersion")
        if sent_version and sent_version != current["metadata"]["resourceVersion"]:
            message = (
                f'Operation cannot be fulfilled on {_qualified(served)} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again"
            )
            return _conflict(served, name, "Conflict", message, 409)
        return self._store_and_answer(request, served, _merged(served, current, wanted, subresource), status=200)

    def _store_and_answer(
        self, request: web.Request, served: Served, obj: dict[str, Any], *, status: int
    ) -> web.Response:
        if request.query.get("dryRun"):
            stored = obj
        else:
            try:
                stored = self._store.upsert(served.plural, obj)
            except ValueError as exc:
                return status_response(422, "Invalid", str(exc))
        return web.Response(status=status, body=encode(stored), content_type="application/json")


def _merged(served: Served, current: dict[str, Any], wanted: dict[str, Any], subresource: bool) -> dict[str, Any]:
    """What the write stores: the object with server-set metadata kept, and status from the right place."""
    if subresource:
        result = copy.deepcopy(current)
        result["status"] = wanted.get("status", {})
        return result
    result = copy.deepcopy(wanted)
    meta = result["metadata"]
    for key in ("uid", "creationTimestamp", "generation"):
        if key in current["metadata"]:
            meta[key] = current["metadata"][key]
    meta.pop("resourceVersion", None)
    if result.get("spec") != current.get("spec"):
        meta["generation"] = int(current["metadata"].get("generation") or 1) + 1
    if served.plural in WITH_STATUS:
        if "status" in current:
            result["status"] = copy.deepcopy(current["status"])
        else:
            result.pop("status", None)
    return result


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    text = await request.text()
    try:
        value = yaml.safe_load(text) if "yaml" in request.content_type else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        return status_response(400, "BadRequest", f"the request body is not valid JSON or YAML: {exc}")
    if not isinstance(value, dict):
        return status_response(400, "BadRequest", "the request body must be an object")
    return value


async def _patched(request: web.Request, current: dict[str, Any]) -> dict[str, Any] | web.Response:
    kind = request.content_type
    if kind not in (*MERGE_PATCH, JSON_PATCH):
        return status_response(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join((JSON_PATCH, *MERGE_PATCH))}",
        )
    try:
        patch = json.loads(await request.text())
        result = json_patch(current, patch) if kind == JSON_PATCH else merge_patch(current, patch)
    except (ValueError, PatchError) as exc:
        return status_response(422, "Invalid", f"the patch cannot be applied: {exc}")
    if not isinstance(result, dict):
        return status_response(422, "Invalid", "the patched object is not an object")
    return result


def _check_namespace(meta: dict[str, Any], namespace: str, served: Served) -> web.Response | None:
    if not served.namespaced:
        return None
    given = meta.get("namespace")
    if given and given != namespace:
        return status_response(
            400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = namespace
    return None


def _qualified(served: Served) -> str:
    return f"{served.plural}.{served.group}" if served.group else served.plural


def _not_found(served: Served, name: str) -> web.Response:
    body = status_object(404, "NotFound", f'{_qualified(served)} "{name}" not found')
    body["details"] = {"name": name, "group": served.group, "kind": served.plural}
    return web.Response(status=404, body=encode(body), content_type="application/json")


def _conflict(served: Served, name: str, reason: str, message: str, code: int) -> web.Response:
    body = status_object(code, reason, message)
    body["details"] = {"name": name, "group": served.group, "kind": served.plural}
    return web.Response(status=code, body=encode(body), content_type="application/json")
