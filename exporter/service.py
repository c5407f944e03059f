"""Composition root: builds every part from settings, owns every task, shuts down in order."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from exporter import resources
from exporter.kube.client import KubeClient
from exporter.kube.reflector import Reflector, ReflectorSettings
from exporter.render.families import FAMILIES
from exporter.render.selection import FamilySelection
from exporter.render.store import MetricsStore
from exporter.self_metrics import SelfMetrics
from exporter.settings import Address, Settings
from exporter.sources.guestosinfo import GuestInfoPoller
from exporter.sources.launcher_logs import LauncherLogs
from exporter.sources.poll_plan import PollPlan, PollSettings
from exporter.state.addresses import AddressBook
from exporter.state.fleet import Fleet
from exporter.state.guest_report import GuestCheckThresholds
from exporter.state.records import VmKey, VmState
from exporter.state.sharding import owns, shard_of
from exporter.state.vm_state import JudgeSettings
from exporter.web.app import build_app
from exporter.web.guard import ConnectionGuard, ConnectionLimits, serve
from exporter.web.guest_reports import build_guest_report_app
from exporter.web.health import Readiness
from exporter.web.inventory import Inventory
from exporter.web.metrics import MetricsEndpoint
from exporter.web.shard_forwarding import ShardForwarder

RawObject = Mapping[str, Any]
RELIST_CHUNK = 500
PUBLISH_BATCH = 500  # VMs judged and rendered between two turns of the event loop, after the first lists
COMPRESS_EVERY = 0.25  # seconds between passes over changed blocks
COMPRESS_BATCH = 16  # blocks compressed between two turns of the event loop
VMIS = resources.VMIS.name


@dataclass
class FleetSink:
    """Adapts reflector callbacks to the fleet: stamps the time, records first syncs."""

    fleet: Fleet
    readiness: Readiness
    metrics: SelfMetrics
    clock: Callable[[], float] = time.time
    log: Any = field(default_factory=lambda: structlog.get_logger().bind(component="sink"))
    # With several shards: the addresses of every VMI, to send guest reports on to their shard.
    addresses: AddressBook | None = None
    started: float = field(default_factory=time.monotonic)

    async def replace(
        self, resource: str, pages: AsyncIterator[Sequence[RawObject]], *, namespace: str | None
    ) -> None:
        """Feed a full list page by page, in chunks, yielding between them: a list of 100k objects
        must not stall scrapes and health checks for seconds. Nothing is pruned unless it completes."""
        addresses = self.addresses.relist(namespace) if self.addresses is not None and resource == VMIS else None
        relist = self.fleet.begin_relist(resource, namespace=namespace)
        async for items in pages:
            for start in range(0, len(items), RELIST_CHUNK):
                chunk = items[start : start + RELIST_CHUNK]
                if addresses is not None:
                    addresses.add(chunk)
                self._feed(relist, chunk)
                await asyncio.sleep(0)
        if addresses is not None:
            addresses.end()
        self.fleet.end_relist(relist, self.clock())

    def _feed(self, relist: Any, chunk: Sequence[RawObject]) -> None:
        """One chunk of a list; should an object fail, the others of the chunk still go in."""
        try:
            self.fleet.relist_chunk(relist, chunk, self.clock())
        except Exception:
            for raw in chunk:
                try:
                    self.fleet.relist_chunk(relist, [raw], self.clock())
                except Exception:
                    self.log.exception("object_unprocessable", resource=relist.resource)
                    self.metrics.malformed.labels(relist.resource, "unprocessable").inc()

    def upsert(self, resource: str, raw: RawObject) -> None:
        if self.addresses is not None and resource == VMIS:
            self.addresses.upsert(raw)
        self.fleet.upsert(resource, raw, self.clock())

    def delete(self, resource: str, raw: RawObject) -> None:
        if self.addresses is not None and resource == VMIS:
            self.addresses.delete(raw)
        self.fleet.delete(resource, raw, self.clock())

    def synced(self, resource: str) -> None:
        first = resource not in self.readiness.synced
        self.readiness.mark_synced(resource)
        if first:
            self.log.info("initial_sync_done", resource=resource, still_pending=self.readiness.pending)
            self.log_if_ready()

    def log_if_ready(self) -> None:
        if self.readiness.ready:
            vms = sum(1 for _ in self.fleet.states())
            self.log.info("ready", vms=vms, seconds=round(time.monotonic() - self.started, 2))


class ListenError(OSError):
    """A listener could not bind (port in use, address not available, permission)."""

    def __init__(self, listener: str, address: str, error: OSError) -> None:
        super().__init__(error.errno, f"cannot listen on {address} ({listener}): {error.strerror or error}")
        self.listener = listener
        self.address = address


@dataclass
class Listener:
    """A listening socket and the aiohttp runner behind it; closed in that order."""

    server: asyncio.Server
    runner: web.AppRunner
    urls: list[str]

    @classmethod
    async def open(
        cls, app: web.Application, address: Address, *, name: str, settings: Settings, metrics: SelfMetrics
    ) -> Listener:
        """Serve ``app`` behind the connection guard (cap, header, idle and request timeouts)."""
        limits = ConnectionLimits(
            max_connections=settings.max_connections,
            header_timeout=settings.http_header_timeout,
            idle_timeout=settings.http_idle_timeout,
            request_timeout=settings.http_request_timeout,
        )
        guard = ConnectionGuard(
            limits,
            on_close=lambda reason: metrics.http_connections_closed.labels(name, reason).inc(),
            on_open=metrics.http_connections.labels(name).set,
        )
        app.middlewares.insert(0, guard.middleware)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=limits.idle_timeout)
        await runner.setup()
        try:
            server, addresses = await serve(runner, guard, host=address.host, port=address.port)
        except OSError as error:
            await runner.cleanup()
            raise ListenError(name, str(address), error) from error
        return cls(server, runner, [_url(a) for a in addresses])

    async def close(self) -> None:
        self.server.close()
        await self.runner.cleanup()
        await self.server.wait_closed()


@dataclass
class FreezeFailureLog:
    """One info line per new freeze-failure episode of a VM (counts only rise; a restart rebuilds them)."""

    log: Any
    # The counts last seen per VM: the published state's own tuple, so nothing is copied.
    episodes: dict[VmKey, tuple[tuple[str, str, int], ...]] = field(default_factory=dict)

    def observe(self, key: VmKey, state: VmState | None) -> None:
        counts = state.freeze_error_counts if state is not None else ()
        before = self.episodes.pop(key, ())
        if counts:
            self.episodes[key] = counts
        if counts == before:
            return
        seen = {(reason, cause): n for reason, cause, n in before}
        detail = state.last_freeze_error if state is not None else None
        for reason, cause, n in counts:
            if n > seen.get((reason, cause), 0):
                self.log.info(
                    "freeze_failure",
                    namespace=key.namespace,
                    name=key.name,
                    reason=reason,
                    cause=cause,
                    episodes=n,
                    volume=detail.volume if detail is not None and detail.reason == reason else "",
                )


class Exporter:
    """The running exporter. ``run`` returns when ``stop`` is set; every task is awaited first."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: KubeClient,
        clock: Callable[[], float] = time.time,
        guest_report_token: str | None = None,
        simulated: bool = False,
        shard_token: str | None = None,
    ) -> None:
        self.settings = settings
        self.guest_report_token = guest_report_token
        self.client = client
        self.clock = clock
        self.metrics = SelfMetrics()
        client.report_to(self.metrics)
        self.metrics.shard_ordinal.set(settings.shard)
        self.metrics.total_shards.set(settings.total_shards)
        selection = FamilySelection(allow=settings.metric_allowlist, deny=settings.metric_denylist)
        self.store = MetricsStore(selection.select())
        self.readiness = Readiness()
        self.poller = self._build_poller()
        self.fleet = Fleet(
            on_state=self._publish,
            on_problem=self._count_problem,
            settings=JudgeSettings(
                stuck_frozen_after=settings.stuck_frozen_after,
                guest_report_max_age=settings.guest_report_max_age,
                started_at=clock(),
                guest_report_grace=settings.guest_report_grace if settings.guest_report_listen is not None else 0.0,
                guest_thresholds=GuestCheckThresholds(
                    min_free_bytes=settings.guest_min_free_bytes, min_free_ratio=settings.guest_min_free_ratio
                ),
            ),
            owns=functools.partial(owns, shard=settings.shard, total_shards=settings.total_shards),
            freeze_episode_gap=settings.freeze_episode_gap,
        )
        self.inventory = Inventory(self.fleet, clock, simulated, settings.runbook_base_url)
        self.addresses, self.forwarder = shard_forwarding(settings, shard_token, self.metrics)
        self.sink = FleetSink(self.fleet, self.readiness, self.metrics, clock, addresses=self.addresses)
        self.endpoint = MetricsEndpoint(self.store, self.metrics)
        self.resources = list(resources.WATCHED)
        self.readiness.expect(r.name for r in self.resources)
        self.launcher_logs: LauncherLogs | None = None
        if settings.follow_launcher_logs:
            self.launcher_logs = LauncherLogs(
                client=client,
                vm_of_vmi_uid=self.fleet.vm_of_vmi_uid,
                on_observation=lambda observation: self.fleet.apply_freeze_observation(observation, self.clock()),
                metrics=self.metrics,
                max_streams=settings.launcher_log_streams,
                clock=clock,
            )
        self.log = structlog.get_logger().bind(component="exporter")
        if selection.allow or selection.deny:
            self._log_selection(selection)
        self.links: dict[str, str] = {"Kubernetes API": client.host}
        self.bound_urls: dict[str, str] = {}
        self._problems_logged: set[tuple[str, str]] = set()
        self.freeze_failures = FreezeFailureLog(self.log)

    async def publish_first_lists(self) -> None:
        """Once every resource is listed, judge and publish each VM once, a batch per turn of the
        event loop, and only then be ready: /metrics is complete when /readyz first says so."""
        await self.readiness.wait_listed()
        while True:
            if not self.fleet.publish_held(self.clock(), PUBLISH_BATCH):
                break
            await asyncio.sleep(0)  # scrapes, health checks and watches go on meanwhile
        self.readiness.mark_published()
        self.sink.log_if_ready()

    def _log_selection(self, selection: FamilySelection) -> None:
        exported = {f.name for f in self.store.families}
        self.log.info(
            "metric_families_selected",
            exported=len(exported),
            dropped=sorted(f.name for f in FAMILIES if f.name not in exported),
        )
        for pattern in selection.unmatched():
            self.log.warning("metric_pattern_matches_nothing", pattern=pattern)

    def _publish(self, key: VmKey, state: VmState | None) -> None:
        """A VM's judged state changed: render it, and let the poller see what changed."""
        self.store.put(key, state)
        self.poller.observe(key, state)
        self.freeze_failures.observe(key, state)

    def _count_problem(self, resource: str, problem: str) -> None:
        """Count every malformed field; log each kind once, so a bad object cannot flood the log."""
        self.metrics.malformed.labels(resource, problem).inc()
        if (resource, problem) not in self._problems_logged:
            self._problems_logged.add((resource, problem))
            self.log.warning("malformed_object", resource=resource, problem=problem, note="counted from now on")

    def reflectors(self) -> list[Reflector]:
        reflector_settings = ReflectorSettings(
            watch_timeout_seconds=self.settings.watch_timeout_seconds,
            inactivity_timeout=self.settings.inactivity_timeout,
        )
        reflectors = [
            Reflector(
                client=self.client,
                resource=resource,
                sink=self.sink,
                metrics=self.metrics,
                namespaces=self.settings.namespaces,
                settings=reflector_settings,
                clock=self.clock,
            )
            for resource in self.resources
        ]
        if self.launcher_logs is not None:
            reflectors.append(
                Reflector(
                    client=self.client,
                    resource=resources.LAUNCHER_PODS,
                    sink=self.launcher_logs,
                    metrics=self.metrics,
                    namespaces=self.settings.namespaces,
                    settings=reflector_settings,
                    clock=self.clock,
                )
            )
        return reflectors

    def _build_poller(self) -> GuestInfoPoller:
        settings = self.settings
        return GuestInfoPoller(
            client=self.client,
            plan=PollPlan(PollSettings(period=settings.guestosinfo_interval, max_rate=settings.guestosinfo_max_rate)),
            vmi_uid=lambda key: self.fleet.poll_target_uid(key),
            on_result=lambda key, uid, raw: self.fleet.apply_guest_info(key, uid, raw, self.clock()),
            metrics=self.metrics,
            concurrency=settings.guestosinfo_concurrency,
            timeout=settings.guestosinfo_timeout,
        )

    async def _compress_changes(self) -> None:
        """Compress changed blocks soon after the change, a few at a time, so a scrape after a
        burst of changes (a relist, a guestosinfo sweep) finds its gzip members ready. Not before
        the first lists are in: blocks compressed then would change again at once."""
        await self.readiness.wait()
        while True:
            await asyncio.sleep(COMPRESS_EVERY)
            left = self.store.compress_pending(COMPRESS_BATCH)
            for _ in range(left // COMPRESS_BATCH + 1):
                await asyncio.sleep(0)  # let requests and events in between batches
                if not self.store.compress_pending(COMPRESS_BATCH):
                    break

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.settings.tick_interval)
            self.fleet.tick(self.clock())

    async def _serve(self, app: web.Application, address: Address, name: str) -> Listener:
        listener = await Listener.open(app, address, name=name, settings=self.settings, metrics=self.metrics)
        self.log.info("listening", listener=name, url=listener.urls[0] if listener.urls else str(address))
        if listener.urls:
            self.bound_urls[name] = listener.urls[0]
        return listener

    def guest_report_app(self) -> web.Application:
        if not self.guest_report_token:
            raise ValueError("a guest report listener needs a token")
        return build_guest_report_app(
            token=self.guest_report_token,
            resolve_source=self.fleet.resolve_source,
            accept=lambda key, report: self.fleet.apply_guest_report(key, report, self.clock()),
            results=self.metrics.guest_reports,
            clock=self.clock,
            forwarder=self.forwarder,
            attributable=lambda: VMIS in self.readiness.synced,
        )

    async def run(self, stop: asyncio.Event, *, extra_tasks: Sequence[Callable[[], Any]] = ()) -> None:
        """Serve until ``stop`` is set. ``extra_tasks`` are coroutine factories started once listening."""
        app = build_app(
            endpoint=self.endpoint, readiness=self.readiness, inventory=self.inventory, links=self.links
        )
        runners = [await self._serve(app, self.settings.listen, "metrics")]
        if self.settings.guest_report_listen is not None:
            report_app = self.guest_report_app()
            runners.append(await self._serve(report_app, self.settings.guest_report_listen, "guest_reports"))
            self.links["Guest reports"] = self.bound_urls.get("guest_reports", "") + "/api/v1/guest-reports"
        self.log.info(
            "starting",
            kubernetes_api=self.client.host,
            namespaces=list(self.settings.namespaces) or "all",
            shard=self.settings.shard,
            total_shards=self.settings.total_shards,
        )
        self.fleet.hold_publishing()  # until the first lists are in: see publish_first_lists
        self.readiness.publishing = True
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(r.run(), name=f"reflector-{r.resource.name}") for r in self.reflectors()]
                tasks.append(group.create_task(self.publish_first_lists(), name="first-publish"))
                tasks.append(group.create_task(self.poller.run(self.readiness.wait), name="guestosinfo"))
                tasks.append(group.create_task(self._ticker(), name="ticker"))
                tasks.append(group.create_task(self._compress_changes(), name="compress"))
                if self.launcher_logs is not None:
                    tasks.append(group.create_task(self.launcher_logs.run(), name="launcher-logs"))
                tasks.extend(group.create_task(factory(), name="extra") for factory in extra_tasks)
                await stop.wait()
                self.log.info("stopping")
                for task in tasks:
                    task.cancel()
        finally:
            for listener in runners:
                await listener.close()
            if self.forwarder is not None:
                await self.forwarder.close()


def shard_forwarding(
    settings: Settings, shard_token: str | None, metrics: SelfMetrics
) -> tuple[AddressBook | None, ShardForwarder | None]:
    """With several shards and a forward URL: every VMI's addresses, and what sends guest reports
    for other shards' VMs on to them."""
    if settings.total_shards <= 1 or not settings.guest_report_forward_url or not shard_token:
        return None, None
    addresses = AddressBook()

    def owner_of(address: str) -> int | None:
        key = addresses.lookup(address)
        shard = shard_of(key, settings.total_shards) if key is not None else None
        return shard if shard != settings.shard else None

    forwarder = ShardForwarder(
        url_template=settings.guest_report_forward_url,
        token=shard_token,
        owner_of=owner_of,
        results=metrics.guest_report_forwards,
    )
    return addresses, forwarder


def _url(address: Any) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
