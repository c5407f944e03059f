"""Template matching: the innermost message of an error chain → qemu-ga template, HRESULT, cause, volume.

The tables live in ``hresults``; this module only finds which entry a message is. Pure; scans are bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from exporter.state.error_chain import CONTROL_CHARS, UnwrappedError, clean
from exporter.state.hresults import (
    FREEZE,
    HRESULTS,
    MESSAGE_TEMPLATES,
    TEXT_CAUSES,
    THAW,
    MessageTemplate,
)

__all__ = [
    "GUID_VOLUME",
    "MAX_VOLUME_CHARS",
    "find_cause",
    "find_command",
    "find_hresult",
    "find_volume",
    "match_template",
    "win32_meaning",
    "win32_name",
]

MAX_VOLUME_CHARS = 256
_TEMPLATE_SCAN_CHARS = 8 * 1024
# "fsfreeze" in an agent command name says nothing about the direction.
_DIRECTION = re.compile(r"(un-?)?(?<!fs)freez", re.I)
_DISABLED_COMMAND = re.compile(r"\bcommand (\S{1,64}) has been disabled", re.I)
_COMMAND_NAME = re.compile(r"[\w.-]{1,64}")

_COMPILED_TEMPLATES: tuple[tuple[MessageTemplate, re.Pattern[str]], ...] = tuple(
    (t, re.compile("|".join(f"(?:{p})" for p in t.patterns), re.I)) for t in MESSAGE_TEMPLATES
)
_COMPILED_TEXT_CAUSES = tuple(
    (re.compile(rule.pattern, re.I), rule.cause, rule.overrides_hresult) for rule in TEXT_CAUSES
)
# Forms that say the number is an error code: qemu-ga's two, and the ``hr = 0x…`` of Windows tools and logs.
_HRESULT_PATTERNS = (
    re.compile(r"Windows error 0x([0-9a-f]{1,16})\b", re.I),
    re.compile(r"\(error: (?:0x)?([0-9a-f]{1,16})\)", re.I),
    re.compile(r"\bhr ?= ?0x([0-9a-f]{1,16})\b", re.I),
)
_FACILITY_WIN32 = 0x80070000
_BARE_HRESULT = re.compile(r"\b0x([0-9a-f]{8})\b", re.I)
_ADD_VOLUME = re.compile(r"failed to add (.{1,4096}?) to snapshot\b", re.I)
_LINUX_PATH = re.compile(r"failed to (?:freeze|open|thaw) (/.{0,4096}?)(?::(?= |$)|$)", re.I)
_MOUNT_POINT = re.compile(r"Mount point '([^']{1,4096})' not found", re.I)
GUID_VOLUME = re.compile(r"\\+\?\\+(Volume\{[0-9A-Fa-f-]{36}\})(\\*)")
_DRIVE_PATH = re.compile(r"[A-Za-z]:(?:\\.*)?", re.S)
_BACKSLASH_RUN = re.compile(r"\\+")


def match_template(texts: Iterable[str]) -> tuple[MessageTemplate, str] | None:
    """The template matching earliest (table order breaks ties) in the first text that has one, with that text.

    qemu-ga puts its own message first; whatever follows (Windows text, junk) must not outrank it.
    """
    for text in texts:
        best: tuple[int, int, MessageTemplate] | None = None
        for index, (template, pattern) in enumerate(_COMPILED_TEMPLATES):
            m = pattern.search(text, 0, _TEMPLATE_SCAN_CHARS)
            if m and (best is None or (m.start(), index) < best[:2]):
                best = (m.start(), index, template)
        if best is not None:
            return best[2], text
    return None


def find_hresult(message: str) -> int | None:
    """The HRESULT (or Win32 code, as its HRESULT) a message names; bare codes only when the table knows them."""
    window = message[:_TEMPLATE_SCAN_CHARS]
    for pattern in _HRESULT_PATTERNS:
        m = pattern.search(window)
        if m:
            return _normalize_hresult(m.group(1))
    for m in _BARE_HRESULT.finditer(window):
        value = int(m.group(1), 16)
        if value in HRESULTS:
            return value
    return None


def win32_name(hresult: int | None) -> str | None:
    """``HRESULT_FROM_WIN32(n)`` for a Win32 error wrapped as an HRESULT (0x8007xxxx), else None."""
    if hresult is None or hresult & 0xFFFF0000 != _FACILITY_WIN32:
        return None
    return f"HRESULT_FROM_WIN32({hresult & 0xFFFF})"


def win32_meaning(hresult: int | None) -> str | None:
    """What a wrapped Win32 error is, pointing at the command that explains it."""
    if win32_name(hresult) is None or hresult is None:
        return None
    code = hresult & 0xFFFF
    return f"Win32 error {code}; `net helpmsg {code}` in the guest prints its text."


def _normalize_hresult(digits: str) -> int | None:
    value = int(digits, 16)
    if value > 0xFFFFFFFF:
        # A 64-bit print of a negative 32-bit HRESULT.
        if value >> 32 != 0xFFFFFFFF:
            return None
        value &= 0xFFFFFFFF
    if value == 0:
        return None
    if value <= 0xFFFF:
        # GetLastError() codes reach the message unconverted; HRESULT_FROM_WIN32 gives the table key.
        value |= _FACILITY_WIN32
    return value


def find_cause(texts: tuple[str, ...], hresult: int | None) -> str:
    """Why it failed: text rules that outrank the HRESULT, then the HRESULT, then the other text rules."""
    windows = [t[:_TEMPLATE_SCAN_CHARS] for t in texts]
    for pattern, cause, overrides in _COMPILED_TEXT_CAUSES:
        if overrides and any(pattern.search(w) for w in windows):
            return cause
    if hresult is not None and hresult in HRESULTS and HRESULTS[hresult].cause != "unknown":
        return HRESULTS[hresult].cause
    for pattern, cause, overrides in _COMPILED_TEXT_CAUSES:
        if not overrides and any(pattern.search(w) for w in windows):
            return cause
    return "unknown"


def _canonical_volume(raw: str) -> str | None:
    volume = raw.strip()
    guid = GUID_VOLUME.fullmatch(volume)
    if guid:
        volume = "\\\\?\\" + guid.group(1) + ("\\" if guid.group(2) else "")
    elif _DRIVE_PATH.fullmatch(volume):
        # Drive-rooted paths never contain doubled backslashes; doubles are leftover escaping.
        volume = _BACKSLASH_RUN.sub(lambda _m: "\\", volume)
    if not volume or len(volume) > MAX_VOLUME_CHARS or CONTROL_CHARS.search(volume):
        return None
    return clean(volume)


def find_volume(reason: str, message: str) -> str | None:
    """The volume or path a message of this reason names, canonicalised; None when it names none."""
    window = message[:_TEMPLATE_SCAN_CHARS]
    m: re.Match[str] | None = None
    if reason == "add_volume_to_snapshot_set":
        m = _ADD_VOLUME.search(window)
    elif reason in ("linux_freeze_failed", "thaw_failed"):
        m = _LINUX_PATH.search(window) or _MOUNT_POINT.search(window)
    return _canonical_volume(m.group(1)) if m else None


def _direction(hints: tuple[str, ...]) -> str | None:
    for hint in reversed(hints):
        directions = _DIRECTION.findall(hint)
        if directions:
            return THAW if directions[-1] else FREEZE
    return None


def find_command(unwrapped: UnwrappedError, template: MessageTemplate | None, window: str) -> str | None:
    """The agent command that failed: as libvirt named it, as the disabled-command text names it, from the
    direction the wrappers state, or the template's own."""
    candidates: list[str | None] = [unwrapped.agent_command]
    if template is not None and template.reason in ("command_disabled", "agent_frozen_state"):
        disabled = _DISABLED_COMMAND.search(window)
        candidates.append(disabled.group(1) if disabled else None)
    candidates.append(_direction(unwrapped.hints))
    candidates.append(template.command if template is not None else None)
    for candidate in candidates:
        if candidate and _COMMAND_NAME.fullmatch(candidate):
            return candidate
    return None
