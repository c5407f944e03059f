"""Simulated Windows guests that send guest reports, each from its own loopback address.

The documents follow ``exporter/schemas/guest-report-v1.json`` and what
``deploy/windows/Send-VssGuestReport.ps1`` collects, with vssadmin text in the real format.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
import structlog

PROFILES = ("healthy", "two_failed_writers", "vss_service_disabled", "provider_missing", "low_disk")
REPORTER_VERSION = "simulated"
QGA_VERSION = "108.0.2"
SEND_TIMEOUT_SECONDS = 10.0

_GIB = 1024**3
_MIB = 1024**2
_CRLF = "\r\n"
_HEADER = (
    "vssadmin 1.1 - Volume Shadow Copy Service administrative command-line tool\r\n"
    "(C) Copyright 2001-2013 Microsoft Corp.\r\n\r\n"
)
_VSS_UNAVAILABLE = (
    _HEADER + "Error: A Volume Shadow Copy Service component encountered an unexpected error.\r\n"
    "Check the Application event log for more information.\r\n"
)
# Well-known writer ids of a Windows Server with SQL Server, in vssadmin's usual order.
_WRITERS = (
    ("Task Scheduler Writer", "{d61d61c8-d73a-4eee-8cdd-f6f9786b7124}"),
    ("VSS Metadata Store Writer", "{75dfb225-e2e4-4d39-9ac9-ffaff65ddf06}"),
    ("Performance Counters Writer", "{0bada1de-01a9-4625-8278-69e735f39dd2}"),
    ("System Writer", "{e8132975-6f93-4464-a53e-1050253ae220}"),
    ("SqlServerWriter", "{a65faa63-5ea8-4ebc-9dbd-a0c4db26912a}"),
    ("ASR Writer", "{be000cbe-11fe-4426-9c58-531aa6355fc4}"),
    ("Registry Writer", "{afbab4a2-367d-4d15-a586-71dbb18f8485}"),
    ("COM+ REGDB Writer", "{542da469-d3e1-473c-9f4f-7847f01fc64f}"),
    ("WMI Writer", "{a6ad56c2-b509-4e6c-bb19-49d8f43532f0}"),
)
# (state number, state label, last error) for writers that are not stable in a profile.
_WRITER_TROUBLE = {
    "two_failed_writers": {
        "System Writer": (9, "Failed", "Timed out"),
        "SqlServerWriter": (8, "Failed", "Non-retryable error"),
        "WMI Writer": (5, "Waiting for completion", "No error"),
    },
}
_MICROSOFT_PROVIDER = (
    "Microsoft Software Shadow Copy provider 1.0",
    "System",
    "{b5946137-7b9f-4925-af80-51abd60b20d5}",
    "1.0.0.7",
)
_QGA_PROVIDER = (
    "QEMU Guest Agent VSS Provider",
    "Software",
    "{3629d4ed-ee09-4e0e-9a5c-6d8ba2872aef}",
    QGA_VERSION,
)
_IDS = uuid.UUID("6d1f4c4e-3f0a-4a57-9d0b-2f6f3b7a9c10")

_log = structlog.get_logger("exporter.simulator.guest_reporter")


class GuestTargetLike(Protocol):
    """What a simulated guest needs: its VM, the address it sends from and its profile."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def ip(self) -> str: ...

    @property
    def profile(self) -> str: ...


def build_report_document(
    profile: str, *, hostname: str, generated_at: float, volumes: Sequence[GuestVolumeLike] = ()
) -> dict[str, Any]:
    """The report a guest in ``profile`` sends; ids are derived from ``hostname``, so stable per guest.

    ``volumes`` are the VM's volumes as guestosinfo shows them: the report then names the same
    GUID volume paths, drives and sizes, as a real guest would.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown guest report profile {profile!r}; known: {', '.join(PROFILES)}")
    vss_disabled = profile == "vss_service_disabled"
    providers = (_MICROSOFT_PROVIDER,) if profile == "provider_missing" else (_MICROSOFT_PROVIDER, _QGA_PROVIDER)
    reported = _reported_volumes(volumes) if volumes else None
    system_volume = reported[0]["path"] if reported else _volume_path(hostname, "C")
    services: list[dict[str, Any]] = [
        _service("VSS", "VSS", "Stopped", "Disabled" if vss_disabled else "Manual"),
        _service("SWPRV", "swprv", "Stopped", "Manual"),
        _service("QEMU Guest Agent", "QEMU-GA", "Running", "Automatic"),
        (
            {"name": "QEMU Guest Agent VSS Provider", "present": False}
            if profile == "provider_missing"
            else _service("QEMU Guest Agent VSS Provider", "QEMU Guest Agent VSS Provider", "Stopped", "Manual")
        ),
    ]
    c_total, c_free = (60 * _GIB, 200 * _MIB) if profile == "low_disk" else (127 * _GIB, 80 * _GIB)
    return {
        "schemaVersion": 1,
        "reporterVersion": REPORTER_VERSION,
        "hostname": hostname,
        "generatedAt": datetime.fromtimestamp(generated_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "qgaVersion": QGA_VERSION,
        "vssadmin": {
            "writers": _VSS_UNAVAILABLE if vss_disabled else _writers_text(hostname, profile),
            "providers": _VSS_UNAVAILABLE if vss_disabled else _providers_text(providers),
            "shadowStorage": _VSS_UNAVAILABLE if vss_disabled else _shadow_storage_text(profile, system_volume),
        },
        "services": services,
        "volumes": reported
        or [
            _volume(system_volume, "C:", free=c_free, total=c_total, is_system=True),
            _volume(_volume_path(hostname, "recovery"), None, free=82 * _MIB, total=529 * _MIB, is_system=False),
            _volume(_volume_path(hostname, "D"), "D:", free=60 * _GIB, total=100 * _GIB, is_system=False),
        ],
    }


class GuestVolumeLike(Protocol):
    """A volume as guestosinfo's fsInfo shows it (``exporter.simulator.guests.Volume``)."""

    @property
    def disk_name(self) -> str: ...

    @property
    def mount_point(self) -> str: ...

    @property
    def used_bytes(self) -> int: ...

    @property
    def total_bytes(self) -> int: ...


def _reported_volumes(volumes: Sequence[GuestVolumeLike]) -> list[dict[str, Any]]:
    """The fixed volumes of the report, system volume first: Win32_Volume knows the size of a volume
    that guestosinfo lists without one (no drive letter, such as "System Reserved")."""
    reported = []
    for volume in volumes:
        letter = volume.mount_point[:2] if volume.mount_point.endswith(":\\") else None
        total = volume.total_bytes or 529 * _MIB
        free = total - volume.used_bytes if volume.total_bytes else 82 * _MIB
        reported.append(_volume(volume.disk_name, letter, free=free, total=total, is_system=letter == "C:"))
    return sorted(reported, key=lambda entry: not entry["isSystem"])


async def run_guest_reporters(
    targets: Sequence[GuestTargetLike],
    *,
    url: str,
    token: str,
    interval: float,
    clock: Callable[[], float],
    start_within: float = 0.0,
) -> None:
    """POST each target's report from its own address now (or at a random moment within
    ``start_within`` s, so a large fleet does not report at once) and then every ``interval`` s (jittered).

    Runs until cancelled; send failures are logged and retried with backoff, never raised.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    for target in targets:
        if target.profile not in PROFILES:
            raise ValueError(f"unknown guest report profile {target.profile!r} for {target.namespace}/{target.name}")
    async with asyncio.TaskGroup() as group:
        for target in targets:
            group.create_task(
                _report_forever(target, url=url, token=token, interval=interval, clock=clock, start_within=start_within)
            )


async def _report_forever(
    target: GuestTargetLike, *, url: str, token: str, interval: float, clock: Callable[[], float], start_within: float
) -> None:
    rng = random.Random()
    if start_within > 0:
        await asyncio.sleep(rng.uniform(0.0, start_within))
    first_retry = min(1.0, interval)
    retry = first_retry
    log = _log.bind(namespace=target.namespace, name=target.name, source=target.ip)
    timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS)
    while True:
        document = build_report_document(
            target.profile,
            hostname=getattr(target, "hostname", "") or _hostname(target.name),
            generated_at=clock(),
            volumes=getattr(target, "volumes", ()),
        )
        # A connection per report, closed after it, bound to the guest's own address: as a scheduled
        # task in the guest does it, and a large fleet holds no idle sockets or pools between reports.
        connector = aiohttp.TCPConnector(local_addr=(target.ip, 0), limit=1, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            sent, retry_after = await _send(session, log, url=url, token=token, document=document)
        delay, retry = next_delay(
            sent=sent, retry_after=retry_after, retry=retry, first_retry=first_retry, interval=interval,
            jitter=rng.uniform(0.9, 1.1),
        )
        await asyncio.sleep(delay)


def next_delay(
    *, sent: bool, retry_after: float | None, retry: float, first_retry: float, interval: float, jitter: float
) -> tuple[float, float]:
    """Seconds until the next report, and the backoff after it.

    A delivered report is followed by the next one an ``interval`` later; a failed one is retried
    with a doubling backoff up to the interval, but never sooner than the exporter's ``Retry-After``
    (a 503 while it lists the fleet, a 429), which may be longer than the interval.
    """
    if sent:
        return interval * jitter, first_retry
    return max(retry * jitter, retry_after or 0.0), min(retry * 2, interval)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is not used by the exporter: None)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


async def _send(
    session: aiohttp.ClientSession,
    log: structlog.typing.FilteringBoundLogger,
    *,
    url: str,
    token: str,
    document: dict[str, Any],
) -> tuple[bool, float | None]:
    """Whether the report was accepted, and the Retry-After the exporter asked for if it was not."""
    try:
        async with session.post(url, json=document, headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            if response.status == 202:
                log.debug("guest_report_sent", status=response.status)
                return True, None
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if response.status != 503:  # 503: the exporter is still listing VMIs, nothing is wrong
                log.warning("guest_report_send_failed", status=response.status)
            return False, retry_after
    except Exception as error:  # every failure is retried; only cancellation ends the loop
        log.warning("guest_report_send_failed", error=type(error).__name__, detail=str(error)[:200])
        return False, None


def _hostname(vm_name: str) -> str:
    # A Windows computer name is at most 15 characters, upper case by convention.
    return vm_name.upper()[:15] or "WINDOWS"


def _guid(hostname: str, what: str) -> str:
    return "{" + str(uuid.uuid5(_IDS, f"{hostname}/{what}")) + "}"


def _volume_path(hostname: str, what: str) -> str:
    return "\\\\?\\Volume" + _guid(hostname, f"volume/{what}") + "\\"


def _writers_text(hostname: str, profile: str) -> str:
    trouble = _WRITER_TROUBLE.get(profile, {})
    blocks = []
    for name, writer_id in _WRITERS:
        state, label, last_error = trouble.get(name, (1, "Stable", "No error"))
        blocks.append(
            f"Writer name: '{name}'{_CRLF}"
            f"   Writer Id: {writer_id}{_CRLF}"
            f"   Writer Instance Id: {_guid(hostname, f'writer/{name}')}{_CRLF}"
            f"   State: [{state}] {label}{_CRLF}"
            f"   Last error: {last_error}{_CRLF}{_CRLF}"
        )
    return _HEADER + "".join(blocks)


def _providers_text(providers: Sequence[tuple[str, str, str, str]]) -> str:
    blocks = [
        f"Provider name: '{name}'{_CRLF}"
        f"   Provider type: {kind}{_CRLF}"
        f"   Provider Id: {provider_id}{_CRLF}"
        f"   Version: {version}{_CRLF}{_CRLF}"
        for name, kind, provider_id, version in providers
    ]
    return _HEADER + "".join(blocks)


def _shadow_storage_text(profile: str, system_volume: str) -> str:
    if profile == "provider_missing":
        # A guest that never had VSS set up for backups: no association at all.
        return f"{_HEADER}No items found that satisfy the query.{_CRLF}"
    volume = f"(C:){system_volume}"
    return (
        f"{_HEADER}Shadow Copy Storage association{_CRLF}"
        f"   For volume: {volume}{_CRLF}"
        f"   Shadow Copy Storage volume: {volume}{_CRLF}"
        f"   Used Shadow Copy Storage space: 2.06 GB (1%){_CRLF}"
        f"   Allocated Shadow Copy Storage space: 2.53 GB (1%){_CRLF}"
        f"   Maximum Shadow Copy Storage space: 11.8 GB (8%){_CRLF}{_CRLF}"
    )


def _service(name: str, service_name: str, status: str, start_type: str) -> dict[str, Any]:
    return {
        "name": name,
        "present": True,
        "serviceName": service_name,
        "status": status,
        "startType": start_type,
    }


def _volume(path: str, letter: str | None, *, free: int, total: int, is_system: bool) -> dict[str, Any]:
    return {
        "path": path,
        "driveLetter": letter,
        "fileSystem": "NTFS",
        "freeBytes": free,
        "totalBytes": total,
        "isSystem": is_system,
    }
