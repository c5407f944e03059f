"""``run``: the exporter. ``--demo`` first starts the simulated KubeVirt API and points at it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

from exporter import logs
from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.service import Exporter
from exporter.settings import Settings, SettingsError, from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then in-cluster)")
    cluster.add_argument("--context", help="kubeconfig context")
    cluster.add_argument(
        "--namespace", action="append", metavar="NS", help="only watch this namespace (repeatable; default: all)"
    )
    serving = parser.add_argument_group("serving")
    serving.add_argument("--listen", default="0.0.0.0:9745", metavar="HOST:PORT", help="metrics listener")
    serving.add_argument(
        "--log-format", choices=("json", "console"), default=None, help="default: console on a terminal, else json"
    )
    serving.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    sources = parser.add_argument_group("sources")
    sources.add_argument("--guestosinfo-interval", type=float, default=60.0, metavar="SECONDS")
    sources.add_argument("--guestosinfo-concurrency", type=int, default=8, metavar="N")
    sources.add_argument("--guest-report-listen", metavar="HOST:PORT", help="enable the guest report listener")
    sources.add_argument("--guest-report-token-file", metavar="PATH", help="bearer token guests must send")
    sources.add_argument("--guest-report-max-age", type=float, default=1800.0, metavar="SECONDS")
    sources.add_argument("--follow-launcher-logs", action="store_true", help="read virt-launcher compute logs")
    sources.add_argument("--launcher-log-streams", type=int, default=50, metavar="N", help="cap on open log streams")
    judging = parser.add_argument_group("judging")
    judging.add_argument("--stuck-frozen-after", type=float, default=300.0, metavar="SECONDS")
    judging.add_argument("--freeze-episode-gap", type=float, default=600.0, metavar="SECONDS")
    sharding = parser.add_argument_group("sharding")
    sharding.add_argument("--shard", type=int, default=None, help="this instance's shard (default: pod ordinal)")
    sharding.add_argument("--total-shards", type=int, default=1)
    demo = parser.add_argument_group("demo")
    demo.add_argument("--demo", action="store_true", help="run against a simulated KubeVirt API on loopback")
    demo.add_argument("--demo-vms", type=int, default=None, metavar="N", help="simulated fleet size")
    demo.add_argument("--demo-seed", type=int, default=1, metavar="S")
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
    except KubeError as error:
        log.error("kubernetes_unavailable", error=str(error))
        return 1
    except KeyboardInterrupt:
        pass
    return 0


@contextlib.asynccontextmanager
async def _demo_cluster(args: argparse.Namespace) -> AsyncIterator[str]:
    """Start the simulated KubeVirt API and yield the path of a kubeconfig for it."""
    from exporter.simulator import Simulator, SimulatorConfig

    config = SimulatorConfig(vms=args.demo_vms, seed=args.demo_seed, time_speed=args.demo_time_speed)
    with tempfile.TemporaryDirectory(prefix="kubevirt-vss-demo-") as directory:
        async with Simulator(config) as simulator:
            kubeconfig = str(Path(directory) / "kubeconfig")
            simulator.write_kubeconfig(kubeconfig)
            structlog.get_logger().bind(component="demo").info(
                "simulated_kubevirt_api", url=simulator.url, kubeconfig=kubeconfig,
                note="SIMULATION: objects are generated, not read from a cluster",
            )
            yield kubeconfig


async def _run(settings: Settings, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        if args.demo:
            kubeconfig = await stack.enter_async_context(_demo_cluster(args))
            # The demo turns on every optional source so that all of the exporter is at work.
            settings = _replace(settings, kubeconfig=kubeconfig, context=None, follow_launcher_logs=True)
        client = await KubeClient.connect(kubeconfig=settings.kubeconfig, context=settings.context)
        stack.push_async_callback(client.close)
        exporter = Exporter(settings, client=client)
        await exporter.run(stop)


def _replace(settings: Settings, **changes: object) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)  # type: ignore[arg-type]
