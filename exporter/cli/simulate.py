"""``simulate``: serve the simulated KubeVirt API alone, on loopback, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from exporter import logs
from exporter.settings import parse_address
from exporter.simulator import Simulator, SimulatorConfig
from exporter.simulator.replay import ObjectsFileError, read_objects_file
from exporter.simulator.versions import KubeVirtVersion

LARGE_FLEET = 5000


def _listen(text: str) -> tuple[str, int]:
    try:
        address = parse_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    # The simulator is a loopback tool: an empty host means loopback, not every interface.
    return ("127.0.0.1" if text.startswith(":") else address.host), address.port


def _positive(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0.0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def _version(text: str) -> str:
    try:
        KubeVirtVersion.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("json", "console"), default=None,
                        help="default: console on a terminal, else json")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                        help="least severe level logged (default info)")
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 0), metavar="HOST:PORT",
                        help="address to serve on (default 127.0.0.1:0, a free port)")
    parser.add_argument("--vms", type=_count, default=None, metavar="N",
                        help="fleet size; the scenarios repeat round-robin (default: one VM per scenario)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the fleet and the token (default 1)")
    parser.add_argument("--write-kubeconfig", type=Path, metavar="PATH", help="write a kubeconfig for the server")
    # HTTPS by default: kubectl sends a kubeconfig token only over TLS, and it is the path real clusters use.
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                        help="serve HTTPS with a self-signed CA put in the kubeconfig (default: on)")
    parser.add_argument("--kubevirt-version", type=_version, default="1.8.0", metavar="X.Y.Z",
                        help="KubeVirt release whose behaviour to simulate (default 1.8.0)")
    parser.add_argument("--time-speed", type=_positive(float), default=1.0, metavar="F",
                        help="simulated seconds per real second (default 1.0)")
    parser.add_argument("--no-story", dest="story", action="store_false",
                        help="serve an empty cluster: no fleet and no snapshot schedule")
    parser.add_argument("--objects", type=Path, metavar="FILE",
                        help="serve exactly the objects in FILE (a `kubectl get … -o yaml|json` List or multi-document "
                        "YAML) and tell no story")
    parser.add_argument("--snapshot-interval", type=_positive(float), default=180.0, metavar="SECONDS",
                        help="simulated seconds between snapshots of one VM (default 180)")
    guests = parser.add_argument_group("guest reports")
    guests.add_argument("--guest-reports-to", metavar="URL",
                        help="the simulated Windows guests POST their VSS reports here, each from its own address")
    guests.add_argument("--guest-report-token-file", type=Path, metavar="PATH",
                        help="bearer token for --guest-reports-to")
    guests.add_argument("--guest-report-interval", type=_positive(float), default=300.0, metavar="SECONDS",
                        help="seconds between reports of one guest; the first ones are spread over it (default 300)")
    parser.add_argument("--history-limit", type=_positive(int), default=20_000, metavar="N",
                        help="changes kept per resource for resuming watches, as the API server's watch cache "
                        "(default 20000)")
    parser.add_argument("--compaction-interval", type=_non_negative, default=300.0, metavar="SECONDS",
                        help="real seconds between compactions, as kube-apiserver's --etcd-compaction-interval: a "
                        "list continued at a compacted revision is 410 Expired (default 300; 0: never)")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--guestosinfo-delay", type=float, default=0.0, metavar="SECONDS",
                        help="delay every guest-agent subresource answer")
    faults.add_argument("--guestosinfo-fail-rate", type=_rate, default=0.0, metavar="RATE",
                        help="fraction of guest-agent subresource requests answered 500")
    faults.add_argument("--expire-watches-every", type=_positive(float), metavar="SECONDS",
                        help="every so many real seconds, end all watches with 410 Expired and compact history")
    faults.add_argument("--drop-streams-every", type=_positive(float), metavar="SECONDS",
                        help="every so many real seconds, abort every watch and log stream connection")
    faults.add_argument("--malformed", type=_count, default=0, metavar="N", help="add N VMIs with malformed bodies")
    credentials = parser.add_argument_group(
        "credential rotation",
        "A rotation issues a new bearer token (the old one is refused from then on) and, with TLS, a new CA and "
        "server certificate, and rewrites every kubeconfig and service-account folder written. Trigger it with "
        "--rotate-credentials-every, with SIGHUP, or with POST /simulator/v1/rotate-credentials (current token).",
    )
    credentials.add_argument("--write-service-account", type=Path, metavar="DIR",
                             help="write token and ca.crt into DIR as a pod's service-account folder holds them")
    credentials.add_argument("--rotate-credentials-every", type=_positive(float), metavar="SECONDS",
                             help="rotate the token and the CA every so many real seconds")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``serve`` does besides running the simulator."""

    kubeconfig: Path | None = None
    guestosinfo_delay: float = 0.0
    guestosinfo_fail_rate: float = 0.0
    expire_watches_every: float | None = None
    drop_streams_every: float | None = None
    malformed: int = 0
    guest_reports_to: str | None = None
    guest_report_token: str = ""
    guest_report_interval: float = 300.0
    objects: Path | None = None
    service_account: Path | None = None
    rotate_credentials_every: float | None = None


def config_from_args(args: argparse.Namespace) -> tuple[SimulatorConfig, ServeOptions]:
    host, port = args.listen
    config = SimulatorConfig(
        vms=args.vms, seed=args.seed, host=host, port=port, tls=args.tls, kubevirt_version=args.kubevirt_version,
        time_speed=args.time_speed, story=args.story and args.objects is None,
        snapshot_interval=args.snapshot_interval, history_limit=args.history_limit,
        compaction_interval=args.compaction_interval or None,
    )
    options = ServeOptions(
        kubeconfig=args.write_kubeconfig, guestosinfo_delay=args.guestosinfo_delay,
        guestosinfo_fail_rate=args.guestosinfo_fail_rate, expire_watches_every=args.expire_watches_every,
        drop_streams_every=args.drop_streams_every, malformed=args.malformed,
        guest_reports_to=args.guest_reports_to, guest_report_interval=args.guest_report_interval, objects=args.objects,
        guest_report_token=_read_token(args.guest_report_token_file, required=args.guest_reports_to is not None),
        service_account=getattr(args, "write_service_account", None),
        rotate_credentials_every=getattr(args, "rotate_credentials_every", None),
    )
    return config, options


def _read_token(path: Path | None, *, required: bool) -> str:
    if path is None:
        if required:
            raise argparse.ArgumentTypeError("--guest-reports-to needs --guest-report-token-file")
        return ""
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise argparse.ArgumentTypeError(f"{path} is empty")
    return token


async def _every(seconds: float, action: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        action()


async def serve(
    config: SimulatorConfig,
    options: ServeOptions,
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Simulator], None] | None = None,
) -> int:
    """Run the simulator until ``stop`` is set (by default, until SIGINT or SIGTERM); return 0.

    ``on_started`` is called once the server listens and the kubeconfig is written.
    """
    log = structlog.get_logger().bind(component="simulator")
    loop = asyncio.get_running_loop()
    signals: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)
    sim = _simulator(config, options, log)
    if signals:
        # Before the credentials are written: a SIGHUP sent once they appear must rotate, not kill.
        loop.add_signal_handler(signal.SIGHUP, sim.rotate_credentials)
        signals.append(signal.SIGHUP)
    tasks: list[asyncio.Task[None]] = []
    try:
        await sim.start()
        _write_credentials(sim, config, options, log)
        tasks = _start_background(sim, options)
        if on_started is not None:
            on_started(sim)
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sig in signals:
            loop.remove_signal_handler(sig)
        await sim.stop()
    return 0


def _simulator(config: SimulatorConfig, options: ServeOptions, log: Any) -> Simulator:
    """The simulator with the faults and the objects the options ask for."""
    sim = Simulator(config)
    sim.faults.guestosinfo_delay = options.guestosinfo_delay
    sim.faults.guestosinfo_fail_rate = options.guestosinfo_fail_rate
    if options.malformed:
        sim.faults.malformed_objects(options.malformed)
    if options.objects is not None:
        loaded = read_objects_file(options.objects)
        sim.load(loaded.objects)
        log.info("objects_loaded", path=str(options.objects), objects=len(loaded.objects),
                 skipped=dict(loaded.skipped))
    return sim


def _write_credentials(sim: Simulator, config: SimulatorConfig, options: ServeOptions, log: Any) -> None:
    if options.kubeconfig is not None:
        sim.write_kubeconfig(options.kubeconfig)
        log.info("kubeconfig_written", path=str(options.kubeconfig), context="kubevirt-vss-simulator")
        if not config.tls:
            log.info("kubectl_needs_tls", reason="kubectl sends credentials only over TLS; drop --no-tls")
    if options.service_account is not None:
        sim.write_service_account(options.service_account)
        log.info("service_account_written", path=str(options.service_account))


def _start_background(sim: Simulator, options: ServeOptions) -> list[asyncio.Task[None]]:
    """The periodic faults and the guest reporters the options ask for."""
    periodic = [
        (options.rotate_credentials_every, sim.rotate_credentials, "simulate-rotate-credentials"),
        (options.expire_watches_every, sim.faults.expire_watches, "simulate-expire-watches"),
        (options.drop_streams_every, sim.faults.drop_streams, "simulate-drop-streams"),
    ]
    tasks = [asyncio.create_task(_every(seconds, action), name=name) for seconds, action, name in periodic if seconds]
    if options.guest_reports_to:
        tasks.append(asyncio.create_task(_report(sim, options), name="simulate-guest-reports"))
    return tasks


async def _report(sim: Simulator, options: ServeOptions) -> None:
    from exporter.simulator.guest_reporter import run_guest_reporters

    guests = sim.guest_targets()
    structlog.get_logger().bind(component="simulator").info(
        "simulated_guest_reports", url=options.guest_reports_to, guests=len(guests)
    )
    await run_guest_reporters(
        guests, url=options.guest_reports_to or "", token=options.guest_report_token,
        interval=options.guest_report_interval, clock=sim.now, start_within=options.guest_report_interval,
    )


def main(args: argparse.Namespace) -> int:
    # The same log setup as ``run``: one format and one timestamp (ISO 8601, UTC) in both.
    logs.configure(log_format=args.log_format or logs.default_format(), level=args.log_level)
    try:
        config, options = config_from_args(args)
    except argparse.ArgumentTypeError as error:
        structlog.get_logger().bind(component="simulator").error("invalid_arguments", problem=str(error))
        return 2
    if config.vms is not None and config.vms >= LARGE_FLEET:
        # A dedicated process with hundreds of thousands of long-lived dicts: young-generation passes that
        # find nothing would otherwise cost more than the simulation itself.
        gc.set_threshold(100_000, 20, 20)
    try:
        return asyncio.run(serve(config, options))
    except ObjectsFileError as error:
        structlog.get_logger().bind(component="simulator").error("objects_file_unreadable", problem=str(error))
        return 2
