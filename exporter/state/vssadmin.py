"""Parsers for the text of ``vssadmin list writers|providers|shadowstorage``.

Labels are localized by the guest's Windows language, so nothing here keys on words: writer blocks
start at a line holding a quoted name, the state is the bracketed number, ids are the ``{GUID}``
lines in order, and the other fields are read by position. Every parser accepts any text and
never raises; every string it returns is bounded.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

MAX_TEXT_CHARS = 256 * 1024
MAX_LINE_CHARS = 4096
MAX_FIELD_CHARS = 128
MAX_WRITERS = 256
MAX_PROVIDERS = 32
MAX_ASSOCIATIONS = 64
MAX_BYTES = 2**63 - 1

QGA_PROVIDER_ID = "{3629d4ed-ee09-4e0e-9a5c-6d8ba2872aef}"
QGA_PROVIDER_NAME = "QEMU Guest Agent VSS Provider"

STATE_UNKNOWN = 0
_FAILED_STATES = range(6, 16)

_BLOCK_START = re.compile(r"^[^\s'][^']*'(?P<name>.+)'\s*$")
_GUID = re.compile(r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}")
_STATE = re.compile(r"\[(\d{1,6})\]\s*(?P<text>.*)")
_LABEL_SEPARATOR = re.compile(r"[:：]\s*")
_VOLUME = re.compile(r"(?:\([^()]{0,260}\))?\\\\\?\\Volume\{[0-9A-Fa-f-]{1,36}\}\\?")
_SIZE = re.compile(
    r"(?<![\d.,])(?P<num>\d{1,15}+(?:[.,]\d{1,15}+)*+)\s*(?P<unit>[KMGTPE]?)(?:B|o|Bytes|octets)\b"
    r"(?:\s*\(\s*(?P<pct>\d{1,3})\s*%\s*\))?",
    re.IGNORECASE,
)
_UNBOUNDED = re.compile(r"unbounded|unbegrenzt|unbeschr[aä]nkt|illimit|ilimitad|無制限|无限制", re.IGNORECASE)
_UNIT_POWER = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


@dataclass(frozen=True, slots=True)
class Writer:
    """One VSS writer; ``state`` is the VSS_WRITER_STATE number (0 when unknown or absent).

    ``writer_id`` is the writer's class id, the same on every Windows machine. The instance id that
    follows it is not kept: nothing judges or shows it, and as it differs on every machine it would
    keep equal writers of thousands of guests from being held once.
    """

    name: str
    state: int
    state_text: str | None
    writer_id: str | None
    last_error: str | None

    @property
    def failed(self) -> bool:
        return self.state in _FAILED_STATES


@dataclass(frozen=True, slots=True)
class Provider:
    """One registered VSS provider."""

    name: str
    provider_type: str | None
    provider_id: str | None
    version: str | None


@dataclass(frozen=True, slots=True)
class ShadowStorage:
    """One shadow-copy storage association; byte counts are ``None`` when the line is absent."""

    for_volume: str | None
    storage_volume: str | None
    used_bytes: int | None
    used_percent: int | None
    allocated_bytes: int | None
    allocated_percent: int | None
    maximum_bytes: int | None
    maximum_percent: int | None
    maximum_unbounded: bool

    @property
    def full(self) -> bool | None:
        """True when used space reached the maximum; None when that cannot be told."""
        if self.maximum_unbounded:
            return False
        if self.used_bytes is None or self.maximum_bytes is None:
            return None
        return self.used_bytes >= self.maximum_bytes


def parse_writers(text: str) -> list[Writer]:
    """Writers in output order, at most ``MAX_WRITERS``."""
    writers: list[Writer] = []
    for name, lines in _quoted_blocks(text, limit=MAX_WRITERS):
        writer_id: str | None = None
        state: int | None = None
        state_text: str | None = None
        last_error: str | None = None
        for line in lines:
            guid = _GUID.search(line)
            if guid is not None:
                writer_id = writer_id or sys.intern(guid.group(0).lower())
                continue
            state_match = _STATE.search(line) if state is None else None
            if state_match is not None:
                number = int(state_match.group(1))
                state = number if number in range(16) else STATE_UNKNOWN
                state_text = _clean(state_match.group("text")) or None
            elif state is not None and last_error is None and _has_label(line):
                last_error = _value(line)
        writers.append(
            Writer(
                name=name,
                state=STATE_UNKNOWN if state is None else state,
                state_text=state_text,
                writer_id=writer_id,
                last_error=last_error,
            )
        )
    return writers


def parse_providers(text: str) -> list[Provider]:
    """Providers in output order, at most ``MAX_PROVIDERS``."""
    providers: list[Provider] = []
    for name, lines in _quoted_blocks(text, limit=MAX_PROVIDERS):
        provider_id: str | None = None
        provider_type: str | None = None
        version: str | None = None
        for line in lines:
            guid = _GUID.search(line)
            if guid is not None:
                provider_id = provider_id or guid.group(0).lower()
            elif not _has_label(line):
                continue
            elif provider_id is None and provider_type is None:
                provider_type = _value(line)
            elif provider_id is not None and version is None:
                version = _value(line)
        providers.append(Provider(name=name, provider_type=provider_type, provider_id=provider_id, version=version))
    return providers


def has_qga_provider(providers: Iterable[Provider]) -> bool:
    """True when the QEMU Guest Agent VSS provider is registered (by id, or by name)."""
    wanted = QGA_PROVIDER_NAME.casefold()
    return any(p.provider_id == QGA_PROVIDER_ID or p.name.casefold() == wanted for p in providers)


def parse_shadow_storage(text: str) -> list[ShadowStorage]:
    """Associations in output order, at most ``MAX_ASSOCIATIONS``; none found gives an empty list."""
    associations: list[ShadowStorage] = []
    current = _AssociationFields()
    for line in _lines(text):
        volume = _VOLUME.search(line)
        header = not line[:1].isspace() and volume is None and not _has_label(line)
        starts_block = not line.strip() or header
        if starts_block or (volume is not None and (current.sizes or len(current.volumes) == 2)):
            # A blank line, a header line or a third volume path closes the association.
            if current.volumes or current.sizes:
                associations.append(current.build())
                if len(associations) >= MAX_ASSOCIATIONS:
                    return associations
            current = _AssociationFields()
        if volume is not None:
            current.volumes.append(_clean(volume.group(0)))
        elif _has_label(line) and len(current.sizes) < 3:
            current.add_size(line)
    if current.volumes or current.sizes:
        associations.append(current.build())
    return associations


@dataclass(slots=True)
class _AssociationFields:
    """Fields of one association in the order vssadmin prints them: used, allocated, maximum."""

    volumes: list[str] = field(default_factory=list)
    sizes: list[tuple[int | None, int | None]] = field(default_factory=list)
    unbounded: bool = False

    def add_size(self, line: str) -> None:
        size = _SIZE.search(_value(line, limit=MAX_LINE_CHARS))
        if size is not None:
            self.sizes.append((_bytes(size.group("num"), size.group("unit")), _percent(size.group("pct"))))
        elif len(self.sizes) == 2 and _UNBOUNDED.search(line):
            self.unbounded = True
            self.sizes.append((None, None))

    def build(self) -> ShadowStorage:
        padded = [*self.sizes, *[(None, None)] * (3 - len(self.sizes))]
        (used, used_pct), (allocated, allocated_pct), (maximum, maximum_pct) = padded[:3]
        return ShadowStorage(
            for_volume=self.volumes[0] if self.volumes else None,
            storage_volume=self.volumes[1] if len(self.volumes) > 1 else None,
            used_bytes=used,
            used_percent=used_pct,
            allocated_bytes=allocated,
            allocated_percent=allocated_pct,
            maximum_bytes=maximum,
            maximum_percent=maximum_pct,
            maximum_unbounded=self.unbounded,
        )


def _lines(text: object) -> list[str]:
    if not isinstance(text, str):
        return []
    return [line[:MAX_LINE_CHARS] for line in text[:MAX_TEXT_CHARS].splitlines()]


def _quoted_blocks(text: str, *, limit: int) -> Iterator[tuple[str, list[str]]]:
    """(name, lines) per block; a block starts at an unindented line with a quoted name."""
    count = 0
    name: str | None = None
    body: list[str] = []
    for line in _lines(text):
        start = _BLOCK_START.match(line)
        quoted = _clean(start.group("name")) if start is not None else ""
        if quoted:
            if name is not None:
                yield name, body
                count += 1
                if count >= limit:
                    return
            name, body = quoted, []
        elif name is not None:
            body.append(line)
    if name is not None:
        yield name, body


def _has_label(line: str) -> bool:
    return _LABEL_SEPARATOR.search(line) is not None


def _value(line: str, *, limit: int = MAX_FIELD_CHARS) -> str:
    parts = _LABEL_SEPARATOR.split(line, maxsplit=1)
    return _clean(parts[1] if len(parts) > 1 else parts[0], limit=limit)


def _clean(value: str, *, limit: int = MAX_FIELD_CHARS) -> str:
    """Printable, single-spaced, stripped and cut to ``limit`` characters; interned, as most of
    these (writer and provider names, states, "No error") repeat in every guest's report."""
    printable = "".join(ch if ch.isprintable() else " " for ch in value[: limit * 4])
    return sys.intern(" ".join(printable.split())[:limit])


def _bytes(number: str, unit: str) -> int | None:
    # vssadmin prints three significant digits; a lone comma is a decimal comma (German, French …),
    # and when both separators appear the last one is the decimal separator.
    last_dot, last_comma = number.rfind("."), number.rfind(",")
    decimal_at = max(last_dot, last_comma)
    if decimal_at < 0:
        whole, fraction = number, ""
    else:
        whole, fraction = number[:decimal_at], number[decimal_at + 1 :]
    digits = whole.replace(".", "").replace(",", "")
    try:
        value = float(f"{digits or '0'}.{fraction or '0'}")
    except ValueError:
        return None
    return min(round(value * 1024 ** _UNIT_POWER.get(unit.upper(), 0)), MAX_BYTES)


def _percent(text: str | None) -> int | None:
    return None if text is None else min(int(text), 100)
