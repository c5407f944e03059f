"""Windows guest report: validation, the record it becomes, and the in-guest checks it allows.

The report is the JSON document of ``deploy/windows/Send-VssGuestReport.ps1``, described by
``exporter/schemas/guest-report-v1.json``; the vssadmin text inside it is parsed here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from exporter.state.shared import SharedValues
from exporter.state.vssadmin import (
    Provider,
    ShadowStorage,
    Writer,
    has_qga_provider,
    parse_providers,
    parse_shadow_storage,
    parse_writers,
)

SCHEMA_RESOURCE = "schemas/guest-report-v1.json"
MAX_PROBLEMS = 20
MAX_PROBLEM_CHARS = 200
MAX_TEXT_CHARS = 128

VSS_SERVICE = "VSS"
SWPRV_SERVICE = "SWPRV"

VSS_SERVICE_DISABLED = "vss_service_disabled"
QGA_PROVIDER_MISSING = "qga_provider_missing"

# Guests built from one image report the same writers, providers and services: every report holds
# the one shared instance of each (and of each list), so a fleet's reports cost little more than
# their volumes, which differ from guest to guest.
_SHARED_WRITER: SharedValues = SharedValues()
_SHARED_WRITERS: SharedValues = SharedValues()
_SHARED_PROVIDERS: SharedValues = SharedValues()
_SHARED_SERVICES: SharedValues = SharedValues()


class InvalidGuestReport(ValueError):
    """The document does not follow the guest report schema; ``problems`` says where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ServiceState:
    """A Windows service as the guest saw it; status and start type are None when unknown."""

    present: bool
    status: str | None = None
    start_type: str | None = None

    @property
    def disabled(self) -> bool:
        return (self.start_type or "").casefold() == "disabled"


class ServiceStates(Mapping[str, ServiceState]):
    """The services of one report by name, in report order: an immutable, hashable mapping, so
    that equal ones are shared."""

    __slots__ = ("_items",)

    def __init__(self, items: tuple[tuple[str, ServiceState], ...] = ()) -> None:
        self._items = items

    def __getitem__(self, name: str) -> ServiceState:
        for known, state in self._items:  # a handful of services: a scan beats a dict per report
            if known == name:
                return state
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ServiceStates):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other.items())

    def __repr__(self) -> str:
        return f"ServiceStates({dict(self._items)!r})"


@dataclass(frozen=True, slots=True)
class ReportedVolume:
    """Free space of one fixed volume; ``path`` is the ``\\\\?\\Volume{GUID}\\`` path."""

    path: str
    drive_letter: str | None
    free_bytes: int | None
    total_bytes: int | None
    is_system: bool
    file_system: str | None = None

    @property
    def mount_point(self) -> str:
        """The drive as the guest agent spells a mount point (``C:\\``), so that one volume has one
        spelling across families; empty without a drive letter."""
        letter = (self.drive_letter or "").rstrip("\\")
        return sys.intern(f"{letter}\\") if letter else ""  # a label value of every Windows VM


@dataclass(frozen=True, slots=True)
class GuestCheckThresholds:
    """Limits for the free-space check of the system volume."""

    min_free_bytes: int = 300 * 1024 * 1024
    min_free_ratio: float = 0.15


@dataclass(frozen=True, slots=True)
class GuestReport:
    """One parsed guest report; times are epoch seconds."""

    received_at: float
    hostname: str
    generated_at: float | None
    qga_version: str | None
    writers: tuple[Writer, ...]
    providers: tuple[Provider, ...]
    qga_provider_present: bool
    services: Mapping[str, ServiceState]
    volumes: tuple[ReportedVolume, ...]
    shadow_storage: tuple[ShadowStorage, ...]

    @property
    def writers_total(self) -> int:
        return len(self.writers)

    @property
    def writers_failed(self) -> int:
        return sum(1 for writer in self.writers if writer.failed)

    @property
    def failed_writers(self) -> tuple[Writer, ...]:
        return tuple(writer for writer in self.writers if writer.failed)


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("exporter").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_guest_report(document: object) -> list[str]:
    """Human-readable schema problems, at most ``MAX_PROBLEMS``, each bounded; empty when valid."""
    problems: list[str] = []
    try:
        errors = sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    except RecursionError:
        return ["(document): nested too deeply"]
    for error in errors[:MAX_PROBLEMS]:
        where = "/".join(str(part) for part in error.absolute_path) or "(document)"
        problems.append(f"{where}: {error.message}"[:MAX_PROBLEM_CHARS])
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"… and {len(errors) - MAX_PROBLEMS} more")
    return problems


def parse_guest_report(raw: Mapping[str, Any], *, received_at: float) -> GuestReport:
    """Validate and parse a decoded report; raises InvalidGuestReport when it breaks the schema."""
    problems = validate_guest_report(raw)
    if problems:
        raise InvalidGuestReport(problems)
    vssadmin = raw["vssadmin"]
    providers = _SHARED_PROVIDERS(tuple(parse_providers(vssadmin["providers"])))
    return GuestReport(
        received_at=received_at,
        hostname=_text(raw["hostname"]) or "",
        generated_at=_epoch(raw["generatedAt"]),
        qga_version=_text(raw.get("qgaVersion")),
        writers=_SHARED_WRITERS(tuple(_SHARED_WRITER(w) for w in parse_writers(vssadmin["writers"]))),
        providers=providers,
        qga_provider_present=has_qga_provider(providers),
        services=_services(raw["services"]),
        volumes=tuple(
            ReportedVolume(
                path=_text(raw_volume["path"]) or "",
                drive_letter=_text(raw_volume["driveLetter"]),
                free_bytes=_count(raw_volume["freeBytes"]),
                total_bytes=_count(raw_volume["totalBytes"]),
                is_system=raw_volume["isSystem"],
                file_system=_text(raw_volume.get("fileSystem")),
            )
            for raw_volume in raw["volumes"]
        ),
        shadow_storage=tuple(parse_shadow_storage(vssadmin["shadowStorage"])),
    )


def _services(raw_services: list[Mapping[str, Any]]) -> ServiceStates:
    """The services in report order; a name given twice keeps its first state."""
    services: dict[str, ServiceState] = {}
    for raw_service in raw_services:
        name = raw_service["name"]
        if name not in services:
            services[sys.intern(name)] = ServiceState(
                present=raw_service["present"],
                status=_text(raw_service.get("status")),
                start_type=_text(raw_service.get("startType")),
            )
    return _SHARED_SERVICES(ServiceStates(tuple(services.items())))


def vss_could_not_run(report: GuestReport) -> str | None:
    """Reason name when the report shows VSS could not have quiesced the guest, else None."""
    vss = report.services.get(VSS_SERVICE)
    if vss is not None and (not vss.present or vss.disabled):
        return VSS_SERVICE_DISABLED
    # qemu-ga passes its own provider id to AddToSnapshotSet, so without it nothing is frozen.
    # SWPRV (the Microsoft provider) is not consulted by qemu-ga and is not evidence either way.
    if report.providers and not report.qga_provider_present:
        return QGA_PROVIDER_MISSING
    return None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in value[:1024]).split())
    # Interned: service states, file systems and versions repeat in every guest's report.
    return sys.intern(cleaned[:MAX_TEXT_CHARS]) or None


def _count(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _epoch(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
