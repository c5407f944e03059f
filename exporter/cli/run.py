"""``run``: the exporter. ``--demo`` first starts the simulated KubeVirt API and points at it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from exporter import heap, logs
from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.service import Exporter, ListenError
from exporter.settings import Address, Settings, SettingsError, from_args

STARTUP_PROBE_TIMEOUT = 10.0
DEFAULTS = Settings()  # every flag's default is the setting's own, written once in exporter/settings.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _cluster_and_serving_arguments(parser)
    _connection_arguments(parser.add_argument_group("connections (each listener)"))
    _source_arguments(parser.add_argument_group("sources"))
    _judging_and_sharding_arguments(parser)
    _demo_arguments(parser.add_argument_group("demo"))


def _cluster_and_serving_arguments(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then in-cluster)")
    cluster.add_argument("--context", help="kubeconfig context (default: its current context)")
    cluster.add_argument(
        "--namespace", action="append", metavar="NS", help="only watch this namespace (repeatable; default: all)"
    )
    serving = parser.add_argument_group("serving")
    serving.add_argument("--listen", default="0.0.0.0:9745", metavar="HOST:PORT", help="metrics listener")
    serving.add_argument(
        "--log-format", choices=("json", "console"), default=None, help="default: console on a terminal, else json"
    )
    serving.add_argument(
        "--log-level",
        default=DEFAULTS.log_level,
        choices=("debug", "info", "warning", "error"),
        help="least severe level logged",
    )
    serving.add_argument(
        "--metric-allowlist",
        action="append",
        metavar="REGEX[,REGEX...]",
        help="export only the per-VM metric families whose whole name matches one of these patterns "
        "(default: every family)",
    )
    serving.add_argument(
        "--metric-denylist",
        action="append",
        metavar="REGEX[,REGEX...]",
        help="export every per-VM metric family except those whose whole name matches one of these patterns "
        "(e.g. 'kubevirt_vss_guest_volume_.*'); not with --metric-allowlist (default: none)",
    )
    serving.add_argument(
        "--runbook-base-url",
        default=DEFAULTS.runbook_base_url,
        metavar="URL",
        help="where the status pages link the runbooks, <URL>/<AlertName>.md; point it at a mirror in an "
        "air-gapped cluster, as the alert rules' runbook_base_url (default: %(default)s)",
    )


def _connection_arguments(connections: argparse._ArgumentGroup) -> None:
    connections.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULTS.max_connections,
        metavar="N",
        help="concurrent connections; more are refused",
    )
    connections.add_argument(
        "--http-header-timeout",
        type=float,
        default=DEFAULTS.http_header_timeout,
        metavar="SECONDS",
        help="a new connection must send a complete request head within this time, or it is closed",
    )
    connections.add_argument(
        "--http-idle-timeout",
        type=float,
        default=DEFAULTS.http_idle_timeout,
        metavar="SECONDS",
        help="a kept-alive connection must send its next request head within this time",
    )
    connections.add_argument(
        "--http-request-timeout",
        type=float,
        default=DEFAULTS.http_request_timeout,
        metavar="SECONDS",
        help="bound on reading a request body and sending the response (408 when the body is late)",
    )


def _source_arguments(sources: argparse._ArgumentGroup) -> None:
    sources.add_argument(
        "--guestosinfo-interval",
        type=float,
        default=DEFAULTS.guestosinfo_interval,
        metavar="SECONDS",
        help="routine poll period per VM (default: virt-launcher's guest-info cache period, 300)",
    )
    sources.add_argument(
        "--guestosinfo-max-rate",
        type=float,
        default=DEFAULTS.guestosinfo_max_rate,
        metavar="PER_SECOND",
        help="cap on guestosinfo requests per second for the whole fleet (default 20)",
    )
    sources.add_argument(
        "--guestosinfo-concurrency",
        type=int,
        default=DEFAULTS.guestosinfo_concurrency,
        metavar="N",
        help="guestosinfo requests in flight at once",
    )
    sources.add_argument(
        "--guestosinfo-timeout", type=float, default=DEFAULTS.guestosinfo_timeout, metavar="SECONDS", help="per request"
    )
    sources.add_argument(
        "--guest-report-listen", metavar="HOST:PORT", help="enable the guest report listener (default: off)"
    )
    sources.add_argument(
        "--guest-report-token-file",
        metavar="PATH",
        help="bearer token guests must send (default: none; required with --guest-report-listen)",
    )
    sources.add_argument(
        "--guest-report-max-age",
        type=float,
        default=DEFAULTS.guest_report_max_age,
        metavar="SECONDS",
        help="older guest reports are dropped and their series disappear",
    )
    sources.add_argument(
        "--guest-report-grace",
        type=float,
        default=DEFAULTS.guest_report_grace,
        metavar="SECONDS",
        help="after start-up, Windows snapshot verdicts that need a guest report wait this long for the first one",
    )
    sources.add_argument("--follow-launcher-logs", action="store_true", help="read virt-launcher compute logs")
    sources.add_argument(
        "--launcher-log-streams",
        type=int,
        default=DEFAULTS.launcher_log_streams,
        metavar="N",
        help="cap on open log streams",
    )


def _judging_and_sharding_arguments(parser: argparse.ArgumentParser) -> None:
    judging = parser.add_argument_group("judging")
    judging.add_argument(
        "--stuck-frozen-after",
        type=float,
        default=DEFAULTS.stuck_frozen_after,
        metavar="SECONDS",
        help="a filesystem frozen longer fails the not_stuck_frozen check",
    )
    judging.add_argument(
        "--freeze-episode-gap",
        type=float,
        default=DEFAULTS.freeze_episode_gap,
        metavar="SECONDS",
        help="failures of one VM and reason closer than this are one episode",
    )
    sharding = parser.add_argument_group("sharding")
    sharding.add_argument("--shard", type=int, default=None, help="this instance's shard (default: pod ordinal)")
    sharding.add_argument("--total-shards", type=int, default=DEFAULTS.total_shards, help="number of shards")
    sharding.add_argument(
        "--guest-report-forward-url",
        metavar="TEMPLATE",
        help="where another shard takes guest reports for its VMs, {shard} replaced by its ordinal (default: none) "
        "(e.g. http://kubevirt-vss-exporter-{shard}.kubevirt-vss-exporter-shards:9746/api/v1/guest-reports/forwarded)",
    )
    sharding.add_argument(
        "--shard-token-file",
        metavar="PATH",
        help="bearer token the shards use between them, not the guests' token (default: none)",
    )


def _demo_arguments(demo: argparse._ArgumentGroup) -> None:
    demo.add_argument("--demo", action="store_true", help="run against a simulated KubeVirt API on loopback")
    demo.add_argument(
        "--demo-vms", type=int, default=None, metavar="N", help="simulated fleet size (default: one VM per scenario)"
    )
    demo.add_argument("--demo-seed", type=int, default=1, metavar="S", help="seed of the simulated fleet")
    demo.add_argument(
        "--demo-report-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often simulated guests send VSS reports",
    )
    demo.add_argument("--demo-time-speed", type=float, default=1.0, metavar="F", help="simulated seconds per second")


def main(args: argparse.Namespace) -> int:
    logs.configure(log_format=args.log_format or logs.default_format(), level=args.log_level)
    log = structlog.get_logger().bind(component="cli")
    try:
        settings = from_args(args)
    except SettingsError as error:
        for name, problem in error.problems.items():
            log.error("invalid_setting", setting=name, problem=problem)
        return 2
    try:
        asyncio.run(_run(settings, args))
    except SettingsError as error:
        for name, problem in error.problems.items():
            log.error("invalid_setting", setting=name, problem=problem)
        return 2
    except StartupError as error:
        log.error(error.event, problem=str(error))
        return 2
    except ListenError as error:
        log.error("cannot_listen", listener=error.listener, address=error.address, problem=error.strerror)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


class StartupError(Exception):
    """The exporter cannot start; ``event`` names the log line that says why, in one line."""

    def __init__(self, event: str, problem: str) -> None:
        super().__init__(problem)
        self.event = event


async def _connect(settings: Settings) -> KubeClient:
    """A client whose configuration loads and whose API server answers, or a ``StartupError``."""
    try:
        client = await KubeClient.connect(kubeconfig=settings.kubeconfig, context=settings.context)
    except KubeError as error:
        raise StartupError("kubernetes_configuration_unusable", str(error)) from None
    try:
        await client.get_json("/version", timeout=STARTUP_PROBE_TIMEOUT)
    except KubeError as error:
        await client.close()
        raise StartupError("kubernetes_api_unreachable", f"{client.host}: {error}") from None
    return client


@contextlib.asynccontextmanager
async def _demo_cluster(args: argparse.Namespace) -> AsyncIterator[tuple[Any, str]]:
    """Start the simulated KubeVirt API; yield it and the path of a kubeconfig for it."""
    from exporter.simulator import Simulator, SimulatorConfig

    # TLS, so that kubectl can use the written kubeconfig too (it sends a token only over TLS).
    config = SimulatorConfig(vms=args.demo_vms, seed=args.demo_seed, time_speed=args.demo_time_speed, tls=True)
    with tempfile.TemporaryDirectory(prefix="kubevirt-vss-demo-") as directory:
        async with Simulator(config) as simulator:
            kubeconfig = str(Path(directory) / "kubeconfig")
            simulator.write_kubeconfig(kubeconfig)
            structlog.get_logger().bind(component="demo").info(
                "simulated_kubevirt_api",
                url=simulator.url,
                kubeconfig=kubeconfig,
                note="SIMULATION: objects are generated, not read from a cluster",
            )
            yield simulator, kubeconfig


def read_token(path: str | None, *, setting: str = "guest_report_token_file") -> str | None:
    """A bearer token from its file (None without a file)."""
    if path is None:
        return None
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise SettingsError({setting: "the file is empty"})
    return token


async def _run(settings: Settings, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    token = read_token(settings.guest_report_token_file)
    extra_tasks: list[Callable[[], Awaitable[None]]] = []
    async with contextlib.AsyncExitStack() as stack:
        simulator = None
        if args.demo:
            simulator, kubeconfig = await stack.enter_async_context(_demo_cluster(args))
            # The demo turns on every optional source so that all of the exporter is at work.
            settings = replace(
                settings,
                kubeconfig=kubeconfig,
                context=None,
                follow_launcher_logs=True,
                guest_report_listen=settings.guest_report_listen or Address("127.0.0.1", 0),
            )
            token = token or secrets.token_hex(32)
        client = await _connect(settings)
        stack.push_async_callback(client.close)
        shard_token = read_token(settings.shard_token_file, setting="shard_token_file")
        exporter = Exporter(
            settings, client=client, guest_report_token=token, shard_token=shard_token, simulated=simulator is not None
        )
        # What the first sync builds stays out of the collector's walks (exporter/heap.py).
        extra_tasks.append(lambda: heap.freeze_until(exporter.readiness.wait))
        if simulator is not None:
            extra_tasks.append(lambda: _simulated_guests(simulator, exporter, token or "", args.demo_report_interval))
        await exporter.run(stop, extra_tasks=extra_tasks)


async def _simulated_guests(simulator: Any, exporter: Exporter, token: str, interval: float) -> None:
    """The simulated Windows guests send their VSS reports to the exporter from their own addresses."""
    from exporter.simulator.guest_reporter import run_guest_reporters

    await exporter.readiness.wait()  # reports are attributed through VMIs, so wait for the first list
    url = exporter.bound_urls["guest_reports"] + "/api/v1/guest-reports"
    guests = simulator.guest_targets()
    structlog.get_logger().bind(component="demo").info("simulated_guest_reports", url=url, guests=len(guests))
    await run_guest_reporters(guests, url=url, token=token, interval=interval, clock=simulator.now)
