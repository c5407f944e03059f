"""One frozen settings object with its defaults and validation, built from parsed arguments."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.render.selection import pattern_problem, split_patterns
from exporter.sources.poll_plan import DEFAULT_MAX_RATE, LAUNCHER_PERIOD
from exporter.state.runbooks import RUNBOOK_BASE_URL


class SettingsError(ValueError):
    """Invalid settings; ``problems`` maps each field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(value: str) -> Address:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces)."""
    match = re.fullmatch(r"\[(?P<v6>[0-9a-fA-F:.]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]*):(?P<port2>\d+)", value)
    if match is None:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = match.group("v6") or match.group("host") or "0.0.0.0"
    port = int(match.group("port") or match.group("port2"))
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return Address(host, port)


@dataclass(frozen=True, slots=True)
class Settings:
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    listen: Address = field(default_factory=lambda: Address("0.0.0.0", 9745))
    log_format: str = "json"
    log_level: str = "info"
    guestosinfo_interval: float = LAUNCHER_PERIOD
    guestosinfo_max_rate: float = DEFAULT_MAX_RATE
    guestosinfo_concurrency: int = 8
    guestosinfo_timeout: float = 10.0
    guest_report_listen: Address | None = None
    guest_report_token_file: str | None = None
    guest_report_forward_url: str | None = None
    shard_token_file: str | None = None
    guest_report_max_age: float = 1800.0
    guest_report_grace: float = 300.0
    guest_min_free_bytes: int = 300 * 1024 * 1024
    guest_min_free_ratio: float = 0.15
    follow_launcher_logs: bool = False
    launcher_log_streams: int = 50
    shard: int = 0
    total_shards: int = 1
    stuck_frozen_after: float = 300.0
    freeze_episode_gap: float = 600.0
    watch_timeout_seconds: int = 300
    inactivity_timeout: float = 330.0
    tick_interval: float = 5.0
    max_connections: int = 1024
    http_header_timeout: float = 10.0
    http_idle_timeout: float = 120.0
    http_request_timeout: float = 60.0
    metric_allowlist: tuple[str, ...] = ()
    metric_denylist: tuple[str, ...] = ()
    runbook_base_url: str = RUNBOOK_BASE_URL


def shard_from_pod_name(name: str) -> int | None:
    """The trailing ordinal of a StatefulSet pod name (``exporter-2`` → 2)."""
    match = re.search(r"-(\d+)$", name)
    return int(match.group(1)) if match else None


def from_args(args: argparse.Namespace, *, environ: dict[str, str] | None = None) -> Settings:
    """Validate parsed run arguments; every problem is reported at once."""
    env = os.environ if environ is None else environ
    problems: dict[str, str] = {}

    def address(name: str, value: str | None) -> Address | None:
        if value is None:
            return None
        try:
            return parse_address(value)
        except ValueError as error:
            problems[name] = str(error)
            return None

    listen = address("listen", args.listen) or Address("0.0.0.0", 9745)
    report_listen = address("guest_report_listen", args.guest_report_listen)
    shard, total = _shard(args, env, problems)
    _check_source_limits(args, problems)
    _check_guest_report_credentials(args, report_listen, problems)
    metric_lists = _metric_lists(args, problems)
    http_limits = _http_limits(args, problems)
    if problems:
        raise SettingsError(problems)
    return Settings(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespaces=tuple(dict.fromkeys(args.namespace or ())),
        listen=listen,
        log_format=args.log_format,
        log_level=args.log_level,
        guestosinfo_interval=args.guestosinfo_interval,
        guestosinfo_max_rate=args.guestosinfo_max_rate,
        guestosinfo_concurrency=args.guestosinfo_concurrency,
        guestosinfo_timeout=args.guestosinfo_timeout,
        guest_report_listen=report_listen,
        guest_report_token_file=args.guest_report_token_file,
        guest_report_forward_url=args.guest_report_forward_url,
        shard_token_file=args.shard_token_file,
        guest_report_max_age=args.guest_report_max_age,
        guest_report_grace=args.guest_report_grace,
        follow_launcher_logs=args.follow_launcher_logs,
        launcher_log_streams=args.launcher_log_streams,
        shard=shard,
        total_shards=total,
        stuck_frozen_after=args.stuck_frozen_after,
        freeze_episode_gap=args.freeze_episode_gap,
        runbook_base_url=args.runbook_base_url or RUNBOOK_BASE_URL,
        **metric_lists,
        **http_limits,
    )


HTTP_LIMITS = ("max_connections", "http_header_timeout", "http_idle_timeout", "http_request_timeout")


def _http_limits(args: argparse.Namespace, problems: dict[str, str]) -> dict[str, Any]:
    """Connection limits of both listeners; each must be positive."""
    limits = {name: getattr(args, name) for name in HTTP_LIMITS}
    for name, value in limits.items():
        if value <= 0:
            problems[name] = "must be positive"
    return limits


def _check_source_limits(args: argparse.Namespace, problems: dict[str, str]) -> None:
    for name in ("guestosinfo_interval", "guestosinfo_max_rate", "guestosinfo_timeout", "guest_report_max_age"):
        if getattr(args, name) <= 0:
            problems[name] = "must be positive"
    if args.guest_report_grace < 0:
        problems["guest_report_grace"] = "must not be negative"
    if args.guestosinfo_concurrency < 1:
        problems["guestosinfo_concurrency"] = "must be at least 1"
    if args.launcher_log_streams < 1:
        problems["launcher_log_streams"] = "must be at least 1"


def _check_guest_report_credentials(
    args: argparse.Namespace, report_listen: Address | None, problems: dict[str, str]
) -> None:
    """The guests' token file, and the shards' forwarding URL and token, which go together."""
    forward_url, shard_token_file = args.guest_report_forward_url, args.shard_token_file
    if forward_url is not None and "{shard}" not in forward_url:
        problems["guest_report_forward_url"] = "must contain {shard}, e.g. http://exporter-{shard}.exporter-shards:9746"
    if (forward_url is None) != (shard_token_file is None):
        problems["shard_token_file"] = "--guest-report-forward-url and --shard-token-file go together"
    if shard_token_file and not os.path.isfile(shard_token_file):
        problems["shard_token_file"] = "not a readable file"
    if args.guest_report_token_file and not os.path.isfile(args.guest_report_token_file):
        problems["guest_report_token_file"] = "not a readable file"
    if report_listen is not None and not args.guest_report_token_file and not args.demo:
        problems["guest_report_token_file"] = "required with --guest-report-listen"


def _shard(args: argparse.Namespace, env: Mapping[str, str], problems: dict[str, str]) -> tuple[int, int]:
    """(shard, total shards); without --shard, the ordinal of a StatefulSet pod's name."""
    total = args.total_shards
    shard = args.shard
    if total < 1:
        problems["total_shards"] = "must be at least 1"
    if shard is None and total > 1:
        pod_name = env.get("POD_NAME") or env.get("HOSTNAME", "")
        shard = shard_from_pod_name(pod_name)
        if shard is None:
            problems["shard"] = f"--shard not given and no ordinal in pod name {pod_name!r}"
    shard = shard or 0
    if total >= 1 and not 0 <= shard < total:
        problems["shard"] = f"must be in [0, {total})"
    return shard, total


def _metric_lists(args: argparse.Namespace, problems: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """--metric-allowlist / --metric-denylist: one or the other, every pattern a valid regex."""
    allowlist = split_patterns(args.metric_allowlist or ())
    denylist = split_patterns(args.metric_denylist or ())
    if allowlist and denylist:
        problems["metric_allowlist"] = "--metric-allowlist and --metric-denylist are mutually exclusive; give one"
    for name, patterns in (("metric_allowlist", allowlist), ("metric_denylist", denylist)):
        invalid = [p for p in map(pattern_problem, patterns) if p]
        if invalid:
            problems[name] = "; ".join(invalid)
    return {"metric_allowlist": allowlist, "metric_denylist": denylist}
