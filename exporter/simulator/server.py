"""The simulated KubeVirt API server: an aiohttp app on loopback and the ``Simulator`` that owns it.

It is a simulation, and says so: ``/version`` reports ``v1.30.0-kubevirt-vss-simulator``, every object
carries ``kubevirt-vss-exporter/simulated: "true"``, and the start is logged as ``simulator_started``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import ipaddress
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from aiohttp import web

from exporter.simulator import discovery
from exporter.simulator.api import ApiHandlers, status_response
from exporter.simulator.clock import SimClock
from exporter.simulator.faults import Faults
from exporter.simulator.fleet import Fleet, GuestTarget
from exporter.simulator.history import ObjectStore
from exporter.simulator.kubeconfig import (
    TlsMaterial,
    derive_token,
    generate_tls,
    write_kubeconfig,
    write_service_account,
)
from exporter.simulator.requests import REQUESTS_PATH, RequestCounts
from exporter.simulator.resources import encode
from exporter.simulator.streams import StreamEnd
from exporter.simulator.subresources import SubresourceHandlers
from exporter.simulator.versions import KubeVirtVersion
from exporter.simulator.writes import WriteHandlers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: POST (with the current token): new token and, with TLS, new CA; see ``Simulator.rotate_credentials``.
ROTATE_CREDENTIALS_PATH = "/simulator/v1/rotate-credentials"


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """How to build and serve the simulation; ``story=False`` serves an empty store with no driver."""

    vms: int | None = None
    seed: int = 1
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    kubevirt_version: str = "1.8.0"
    time_speed: float = 1.0
    story: bool = True
    start_time: float | None = None  # simulated epoch at construction; None: the wall clock
    snapshot_interval: float = 180.0
    failure_deadline: float = 300.0
    bookmark_interval: float = 5.0  # real seconds between BOOKMARK events on a watch
    watch_timeout: float = 1800.0  # real seconds, when a watch names no timeoutSeconds
    history_limit: int = 20_000  # changes kept per resource for resuming watches
    compaction_interval: float | None = 300.0  # real seconds between compactions (continue tokens); None: never
    stream_limit: int = 10_000  # events or lines queued for one client before it is dropped


def _json(body: object) -> web.Response:
    return web.Response(body=encode(body), content_type="application/json")


def build_app(
    *, store: ObjectStore, faults: Faults, token: Callable[[], str], version: KubeVirtVersion,
    server_address: Callable[[], str],
    bookmark_interval: float, watch_timeout: float, requests: RequestCounts | None = None,
    rotate_credentials: Callable[[], None] | None = None,
) -> web.Application:
    """The aiohttp application serving discovery, resources, subresources and logs behind a bearer token."""
    served = discovery.served_resources(version)
    handlers = ApiHandlers(
        store=store, served={(s.group, s.version, s.plural): s for s in served},
        bookmark_interval=bookmark_interval, watch_timeout=watch_timeout,
    )
    subresources = SubresourceHandlers(store=store, faults=faults)
    writes = WriteHandlers(store=store, served={(s.group, s.version, s.plural): s for s in served})
    requests = requests if requests is not None else RequestCounts()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if faults.unavailable:
            return status_response(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        expected = f"Bearer {token()}".encode()  # read per request: the credentials can be rotated
        if not hmac.compare_digest(request.headers.get("Authorization", "").strip().encode(), expected):
            return status_response(401, "Unauthorized", "Unauthorized")
        requests.count(request)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return status_response(404, "NotFound", "the server could not find the requested resource")
        except web.HTTPMethodNotAllowed:
            return status_response(405, "MethodNotAllowed", "the server does not allow this method on the "
                                   "requested resource")

    async def version_info(_: web.Request) -> web.Response:
        return _json(discovery.KUBERNETES_VERSION)

    async def core_versions(_: web.Request) -> web.Response:
        return _json(discovery.api_versions(server_address()))

    async def group_list(_: web.Request) -> web.Response:
        return _json(discovery.api_group_list(served))

    async def group(request: web.Request) -> web.Response:
        body = discovery.api_group(served, request.match_info["group"])
        if body is None:
            raise web.HTTPNotFound()
        return _json(body)

    async def resources(request: web.Request) -> web.Response:
        body = discovery.resource_list(served, request.match_info.get("group", ""), request.match_info["version"])
        if body is None:
            raise web.HTTPNotFound()
        return _json(body)

    async def kubevirt_version(_: web.Request) -> web.Response:
        return _json(discovery.kubevirt_version_info(version))

    app = web.Application(middlewares=[guard])
    sub = discovery.SUBRESOURCES_GROUP
    app.router.add_get(REQUESTS_PATH, requests.handle)
    if rotate_credentials is not None:

        async def rotate(_: web.Request) -> web.Response:
            rotate_credentials()
            return web.Response(status=204)

        app.router.add_post(ROTATE_CREDENTIALS_PATH, rotate)
    app.router.add_get("/version", version_info)
    app.router.add_get("/api", core_versions)
    app.router.add_get("/apis", group_list)
    app.router.add_get(f"/apis/{sub}/v1/version", kubevirt_version)
    guest_path = "/namespaces/{namespace}/virtualmachineinstances/{name}/{sub}"
    app.router.add_get(f"/apis/{sub}/{{version:v1|v1alpha3}}{guest_path}", subresources.guest_agent)
    app.router.add_get("/api/{version:v1}", resources)
    app.router.add_get("/api/{version:v1}/namespaces/{namespace}/pods/{name}/log", subresources.pod_log)
    app.router.add_get("/api/{version:v1}/{resource:namespaces}/{name}", handlers.get_object)
    app.router.add_get("/api/{version:v1}/{resource}", handlers.collection)
    app.router.add_get("/api/{version:v1}/namespaces/{namespace}/{resource}", handlers.collection)
    app.router.add_get("/api/{version:v1}/namespaces/{namespace}/{resource}/{name}", handlers.get_object)
    app.router.add_get("/apis/{group}", group)
    app.router.add_get("/apis/{group}/{version}", resources)
    app.router.add_get("/apis/{group}/{version}/{resource}", handlers.collection)
    app.router.add_get("/apis/{group}/{version}/namespaces/{namespace}/{resource}", handlers.collection)
    app.router.add_get("/apis/{group}/{version}/namespaces/{namespace}/{resource}/{name}", handlers.get_object)
    _add_write_routes(app, writes)
    return app


def _add_write_routes(app: web.Application, writes: WriteHandlers) -> None:
    for prefix in ("/api/{version:v1}", "/apis/{group}/{version}"):
        for scope in ("", "/namespaces/{namespace}"):
            app.router.add_post(f"{prefix}{scope}/{{resource}}", writes.create)
            item = f"{prefix}{scope}/{{resource}}/{{name}}"
            app.router.add_put(item, writes.replace)
            app.router.add_patch(item, writes.patch)
            app.router.add_delete(item, writes.delete)
            app.router.add_get(f"{item}/status", writes.get_status)
            app.router.add_put(f"{item}/status", writes.replace_status)
            app.router.add_patch(f"{item}/status", writes.patch_status)


class Simulator:
    """A seeded simulated cluster served over HTTP(S) on loopback; use ``start``/``stop`` or ``async with``."""

    def __init__(self, config: SimulatorConfig | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config = config or SimulatorConfig()
        self.version = KubeVirtVersion.parse(config.kubevirt_version)
        start = time.time() if config.start_time is None else config.start_time
        self.clock = SimClock(start=start, speed=config.time_speed, monotonic=monotonic)
        self.token = derive_token(config.seed)
        self.store = ObjectStore(clock=self.clock.now, seed=config.seed, history_limit=config.history_limit,
                                 stream_limit=config.stream_limit, compaction_interval=config.compaction_interval,
                                 monotonic=monotonic)
        self.faults = Faults(self.store, seed=config.seed)
        self.requests = RequestCounts()
        self.fleet: Fleet | None = None
        if config.story:
            self.fleet = Fleet(store=self.store, seed=config.seed, start=start, version=self.version,
                               vms=config.vms, snapshot_interval=config.snapshot_interval,
                               failure_deadline=config.failure_deadline)
            self.fleet.build()
        self._tls: TlsMaterial | None = generate_tls(config.seed) if config.tls else None
        self._ssl_context: ssl.SSLContext | None = None
        self.generation = 0  # credential rotations so far
        self._written: list[tuple[str, Path]] = []  # kubeconfigs and service-account folders to rewrite
        self._runner: web.AppRunner | None = None
        self._driver: asyncio.Task[None] | None = None
        self.url = ""
        self.port = 0
        self._log = structlog.get_logger().bind(component="simulator")

    def load(self, objects: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Store objects as they are (uid and creationTimestamp kept), each with a new resourceVersion."""
        for resource, obj in objects:
            self.store.put(resource, copy.deepcopy(obj))

    @property
    def ca_pem(self) -> bytes | None:
        return self._tls.ca_pem if self._tls is not None else None

    def now(self) -> float:
        """The simulated clock, in epoch seconds."""
        return self.clock.now()

    def guest_targets(self) -> list[GuestTarget]:
        return self.fleet.guest_targets() if self.fleet is not None else []

    def _url_host(self) -> str:
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            return "127.0.0.1"
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                return f"[{host}]"
        return host

    async def start(self) -> None:
        """Bind and serve; sets ``url`` and ``port`` and starts the story driver."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        app = build_app(store=self.store, faults=self.faults, token=lambda: self.token, version=self.version,
                        server_address=lambda: f"{self._url_host()}:{self.port}",
                        bookmark_interval=self.config.bookmark_interval, watch_timeout=self.config.watch_timeout,
                        requests=self.requests, rotate_credentials=self.rotate_credentials)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            self._ssl_context = ssl_context = self._tls.server_context() if self._tls is not None else None
            site = web.TCPSite(runner, self.config.host, self.config.port, ssl_context=ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.url = f"{'https' if self._tls else 'http'}://{self._url_host()}:{self.port}"
        if self.fleet is not None:
            self._driver = asyncio.create_task(self.fleet.drive(self.clock), name="simulator-story")
        self._log.info(
            "simulator_started", url=self.url, simulated=True, vms=self.fleet.size if self.fleet is not None else 0,
            seed=self.config.seed, kubevirt_version=self.version.tag, time_speed=self.config.time_speed,
            tls=self._tls is not None,
        )

    async def stop(self) -> None:
        """Stop the story, end every open stream, close the server; safe to call twice."""
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None
        self.store.end_streams(StreamEnd.CLOSED)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            self._log.info("simulator_stopped", url=self.url)

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> None:
        """Write a kubeconfig for this server (token, CA when TLS); call after ``start``.

        It is rewritten on every credential rotation."""
        if not self.url:
            raise RuntimeError("start the simulator before writing its kubeconfig")
        write_kubeconfig(path, server=self.url, token=self.token, ca_pem=self.ca_pem)
        if ("kubeconfig", Path(path)) not in self._written:
            self._written.append(("kubeconfig", Path(path)))

    def write_service_account(self, directory: str | os.PathLike[str]) -> None:
        """Write ``token`` and ``ca.crt`` into ``directory`` as a pod sees them; rewritten on every rotation."""
        write_service_account(directory, token=self.token, ca_pem=self.ca_pem)
        if ("service_account", Path(directory)) not in self._written:
            self._written.append(("service_account", Path(directory)))

    def rotate_credentials(self) -> None:
        """A new bearer token (the old one is refused from now on) and, with TLS, a new CA and certificate.

        New connections get the new certificate; open ones keep theirs, as with a real API server.
        Every kubeconfig and service-account folder written so far is rewritten.
        """
        self.generation += 1
        self.token = derive_token(self.config.seed, self.generation)
        if self._tls is not None:
            self._tls = generate_tls(self.config.seed, generation=self.generation)
            if self._ssl_context is not None:
                self._tls.load_into(self._ssl_context)
        for kind, path in self._written:
            if kind == "kubeconfig":
                write_kubeconfig(path, server=self.url, token=self.token, ca_pem=self.ca_pem)
            else:
                write_service_account(path, token=self.token, ca_pem=self.ca_pem)
        self._log.info("credentials_rotated", generation=self.generation, tls=self._tls is not None,
                       rewritten=[str(path) for _, path in self._written])

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
