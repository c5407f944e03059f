"""Freeze-error classifier: one KubeVirt / libvirt / qemu-ga error text in, bounded labels and advice out.

``classify`` peels the layers KubeVirt and libvirt wrap around a guest-agent error (log lines, Events,
snapshot status, QMP replies, Go and JSON quoting), then matches the innermost message against the
templates of ``hresults``. Pure: no I/O, no clock; input is bounded and every pattern is linear or bounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields

from exporter.state.hresults import (
    CAUSE_ADVICE,
    CAUSES,
    FREEZE,
    GUID_VOLUME_REMEDIATION,
    HRESULTS,
    MESSAGE_TEMPLATES,
    REASON_ADVICE,
    REASONS,
    TEXT_CAUSES,
    THAW,
    MessageTemplate,
)

__all__ = [
    "CAUSES",
    "MAX_MESSAGE_CHARS",
    "MAX_SCAN_CHARS",
    "MAX_VOLUME_CHARS",
    "REASONS",
    "Classification",
    "classify",
    "remediation",
]

MAX_SCAN_CHARS = 64 * 1024
MAX_MESSAGE_CHARS = 512
MAX_VOLUME_CHARS = 256
_MAX_LAYERS = 24
_MAX_ESCAPE_LEVELS = 4
_TEMPLATE_SCAN_CHARS = 8 * 1024
_JSON_OBJECT_WITHIN = 512
_HINT_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Classification:
    """What failed (``reason``), why (``cause``), and the details and advice drawn from one error text."""

    reason: str
    cause: str
    hresult: str | None
    hresult_name: str | None
    hresult_meaning: str | None
    volume: str | None
    command: str | None
    message: str
    summary: str
    remediation: str

    def to_dict(self) -> dict[str, str | None]:
        """All fields, in declaration order, as a JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- layers -------------------------------------------------------------------------------------------

_KLOG_PREFIX = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{1,9} {1,32}\d{1,10} [^\s\]]{1,256}\] ")
# Wrappers whose inner text simply follows them; the agent command is captured where libvirt names it.
_WRAPPER = re.compile(
    r"\Aerror: "
    r"|Failed (?:un)?freezing vm \S{1,253}: "
    r"|(?:Un)?[Ff]reezing vm \S{1,253} failed: "
    r"|Failed to (?:un)?freeze VMI: "
    r"|Failed to (?:un)?freeze vmi, "
    r"|Internal error occurred: "
    r"|unexpected return code \d{1,3} \([^()\r\n]{0,64}\), message: "
    r"|Guest agent is not responding: "
    r"|Operation cannot be fulfilled on [\w.]{1,64} \"[^\"\r\n]{0,253}\": "
    r"|Error from server(?: \(\w{1,64}\))?: "
    r"|unable to freeze guest fs - "
    r"|(?:internal error: )?unable to execute QEMU agent command '(?P<agent_command>[^'\s]{1,64})': "
)
# virt-launcher's cmd-client error; the launcher text follows in Go %q quoting.
_SERVER_ERROR = re.compile(r"server error\. command \w{1,32} failed: ")
_LIBVIRT_ERROR = re.compile(r"LibvirtError\(Code=-?\d{1,6}, Domain=-?\d{1,6}, Message='")
# A JSON member holding the error, possibly inside JSON that was itself escaped once or twice.
_JSON_MEMBER = re.compile(r'(\\{0,15})"(?:reason|desc|message)\1"\s{0,8}:\s{0,8}(?=\\{0,15}")')
# The same member in YAML (`kubectl get -o yaml`), single- or double-quoted.
_YAML_MEMBER = re.compile(r"\A(?:-\s{1,8})?(?:message|reason|desc):\s{1,8}(?=['\"])")
_JSON_OBJECT_START = re.compile(r"\{\s{0,8}\\{0,15}\"")
_ESCAPED_OBJECT_START = re.compile(r"\{\s{0,8}\\{1,15}\"")

_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.S)
_ESCAPE = re.compile(
    r"\\(?:u(?P<hi>[dD][89abAB][0-9a-fA-F]{2})\\u(?P<lo>[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|u(?P<u4>[0-9a-fA-F]{4})|U(?P<u8>[0-9a-fA-F]{8})|x(?P<x2>[0-9a-fA-F]{2})|(?P<char>[\\\"/'bfnrtav]))"
)
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "a": "\a", "v": "\v"}
# Evidence that text still carries one level of escaping: raw agent messages never contain these.
_STILL_ESCAPED = re.compile(r'\\{4}[?.]\\{2}|\\"|\b[A-Za-z]:\\{2}(?=\s|$)')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")

# "fsfreeze" in an agent command name says nothing about the direction.
_DIRECTION = re.compile(r"(un-?)?(?<!fs)freez", re.I)
_DISABLED_COMMAND = re.compile(r"\bcommand (\S{1,64}) has been disabled", re.I)
_COMMAND_NAME = re.compile(r"[\w.-]{1,64}")


def _unescape_match(m: re.Match[str]) -> str:
    if m["hi"] is not None:
        return chr(0x10000 + ((int(m["hi"], 16) - 0xD800) << 10) + (int(m["lo"], 16) - 0xDC00))
    code = m["u4"] or m["u8"] or m["x2"]
    if code is not None:
        value = int(code, 16)
        return chr(value) if value <= 0x10FFFF else "\ufffd"
    char = m["char"]
    return _SIMPLE_ESCAPES.get(char, char)


def _unescape(text: str) -> str:
    """Undo one level of JSON or Go string escaping; unknown escapes stay as they are."""
    return _ESCAPE.sub(_unescape_match, text)


def _quoted_at(text: str, pos: int) -> tuple[str, str] | None:
    """(content, text after the closing quote) of the string whose opening quote, behind any escaping
    backslashes, is at ``pos``; None when there is no quote there."""
    rest = text[pos:]
    for _ in range(_MAX_ESCAPE_LEVELS):
        if not rest.startswith("\\"):
            break
        rest = _unescape(rest)
    if not rest.startswith('"'):
        return None
    body = _STRING_BODY.match(rest, 1)
    end = body.end() if body else 1
    return _unescape(rest[1:end]), rest[end + 1 :]


def _json_error_member(obj: object) -> tuple[str, str] | None:
    """(error text, hint) from a decoded KubeVirt log line, QMP reply, Event, Status or snapshot object."""
    if isinstance(obj, str):
        return obj, ""
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    if isinstance(error, dict):
        for key in ("desc", "message"):
            if isinstance(error.get(key), str):
                return error[key], str(error.get("class", ""))
    msg = obj.get("msg")
    if "msg" in obj or "component" in obj:
        if isinstance(obj.get("reason"), str):
            return obj["reason"], msg if isinstance(msg, str) else ""
        if isinstance(msg, str):
            return msg, ""
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("error"), dict):
        message = status["error"].get("message")
        if isinstance(message, str):
            return message, ""
    for key in ("message", "reason", "desc"):
        if isinstance(obj.get(key), str):
            return obj[key], ""
    return None


def _peel_json_object(text: str, pos: int) -> tuple[str, str] | None:
    """Decode the JSON object at ``pos``, unescaping it first if it was itself escaped as a JSON string."""
    rest = text[pos:]
    for _ in range(_MAX_ESCAPE_LEVELS):
        try:
            obj, _end = json.JSONDecoder().raw_decode(rest)
        except (ValueError, RecursionError):
            if not _ESCAPED_OBJECT_START.match(rest):
                return None
            rest = _unescape(rest)
            continue
        return _json_error_member(obj)
    return None


@dataclass(frozen=True, slots=True)
class _Peeled:
    inner: str
    hint: str
    agent_command: str | None = None


def _candidates(text: str) -> list[tuple[int, str, re.Match[str] | None]]:
    found: list[tuple[int, str, re.Match[str] | None]] = []
    klog = _KLOG_PREFIX.match(text)
    if klog:
        found.append((0, "klog", klog))
    if text.startswith('"') or text.startswith('\\"'):
        found.append((0, "quoted", None))
    yaml_member = _YAML_MEMBER.match(text)
    if yaml_member:
        found.append((0, "yaml", yaml_member))
    brace = text.find("{", 0, _JSON_OBJECT_WITHIN)
    if brace >= 0 and _JSON_OBJECT_START.match(text, brace):
        found.append((brace, "object", None))
    for kind, pattern in (
        ("wrapper", _WRAPPER),
        ("server", _SERVER_ERROR),
        ("libvirt", _LIBVIRT_ERROR),
        ("member", _JSON_MEMBER),
    ):
        m = pattern.search(text)
        if m:
            found.append((m.start(), kind, m))
    found.sort(key=lambda item: item[0])
    return found


def _peel_once(text: str) -> _Peeled | None:
    """Remove the outermost recognised layer, or None when no layer is left."""
    for pos, kind, m in _candidates(text):
        outer = text[:pos]
        peeled: _Peeled | None = None
        if kind == "object":
            member = _peel_json_object(text, pos)
            if member is not None:
                peeled = _Peeled(member[0], member[1] or outer)
        elif kind == "quoted":
            quoted = _quoted_at(text, 0)
            # Only a text that is one whole string literal; `"key": "value"` is a member, handled below.
            if quoted is not None and not quoted[1].strip(" \t,"):
                peeled = _Peeled(quoted[0], "")
        elif m is not None:
            rest = text[m.end() :]
            hint = outer + m.group()
            if kind == "server":
                quoted = _quoted_at(text, m.end())
                peeled = _Peeled(rest if quoted is None else quoted[0], hint)
            elif kind == "libvirt":
                close = rest.rfind("')")
                peeled = _Peeled(rest if close < 0 else rest[:close], hint)
            elif kind == "member":
                quoted = _quoted_at(text, m.end())
                peeled = None if quoted is None else _Peeled(quoted[0], outer)
            elif kind == "yaml" and rest.startswith("'"):
                close = rest.rfind("'")
                peeled = _Peeled(rest[1 : close if close > 0 else len(rest)].replace("''", "'"), "")
            elif kind == "yaml":
                quoted = _quoted_at(text, m.end())
                peeled = None if quoted is None else _Peeled(quoted[0], "")
            else:
                peeled = _Peeled(rest, hint if kind == "wrapper" else "", m.groupdict().get("agent_command"))
        if peeled is not None and peeled.inner.strip() and peeled.inner.strip() != text:
            return peeled
    return None


@dataclass(frozen=True, slots=True)
class _Unwrapped:
    message: str
    hints: tuple[str, ...]
    agent_command: str | None


def _unwrap(text: str) -> _Unwrapped:
    hints: list[str] = []
    agent_command: str | None = None
    current = text.strip()
    for _ in range(_MAX_LAYERS):
        peeled = _peel_once(current)
        if peeled is None:
            break
        if peeled.hint:
            hints.append(peeled.hint[-_HINT_CHARS:])
        if peeled.agent_command:
            agent_command = peeled.agent_command
        current = peeled.inner.strip()
    for _ in range(_MAX_ESCAPE_LEVELS):
        if not _STILL_ESCAPED.search(current, 0, _TEMPLATE_SCAN_CHARS):
            break
        current = _unescape(current)
    return _Unwrapped(current, tuple(hints), agent_command)


# --- matching -----------------------------------------------------------------------------------------

_COMPILED_TEMPLATES: tuple[tuple[MessageTemplate, re.Pattern[str]], ...] = tuple(
    (t, re.compile("|".join(f"(?:{p})" for p in t.patterns), re.I)) for t in MESSAGE_TEMPLATES
)
_COMPILED_TEXT_CAUSES = tuple(
    (re.compile(rule.pattern, re.I), rule.cause, rule.overrides_hresult) for rule in TEXT_CAUSES
)
_HRESULT_PATTERNS = (
    re.compile(r"Windows error 0x([0-9a-f]{1,16})\b", re.I),
    re.compile(r"\(error: (?:0x)?([0-9a-f]{1,16})\)", re.I),
)
_BARE_HRESULT = re.compile(r"\b0x([0-9a-f]{8})\b", re.I)
_ADD_VOLUME = re.compile(r"failed to add (.{1,4096}?) to snapshot\b", re.I)
_LINUX_PATH = re.compile(r"failed to (?:freeze|open|thaw) (/.{0,4096}?)(?::(?= |$)|$)", re.I)
_MOUNT_POINT = re.compile(r"Mount point '([^']{1,4096})' not found", re.I)
_GUID_VOLUME = re.compile(r"\\+\?\\+(Volume\{[0-9A-Fa-f-]{36}\})(\\*)")
_DRIVE_PATH = re.compile(r"[A-Za-z]:(?:\\.*)?", re.S)
_BACKSLASH_RUN = re.compile(r"\\+")


def _match_template(texts: Iterable[str]) -> tuple[MessageTemplate, str] | None:
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


def _hresult(message: str) -> int | None:
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
        value |= 0x80070000
    return value


def _cause(texts: tuple[str, ...], hresult: int | None) -> str:
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
    guid = _GUID_VOLUME.fullmatch(volume)
    if guid:
        volume = "\\\\?\\" + guid.group(1) + ("\\" if guid.group(2) else "")
    elif _DRIVE_PATH.fullmatch(volume):
        # Drive-rooted paths never contain doubled backslashes; doubles are leftover escaping.
        volume = _BACKSLASH_RUN.sub(lambda _m: "\\", volume)
    if not volume or len(volume) > MAX_VOLUME_CHARS or _CONTROL.search(volume):
        return None
    return _clean(volume)


def _volume(reason: str, message: str) -> str | None:
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


def _command(unwrapped: _Unwrapped, template: MessageTemplate | None, window: str) -> str | None:
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


# --- text ---------------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Valid UTF-8 on one line: lone surrogates become '?', control characters a space."""
    return _CONTROL.sub(" ", text.encode("utf-8", "replace").decode("utf-8")).strip()


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary(reason: str, cause: str, volume: str | None, command: str | None) -> str:
    summary = REASON_ADVICE[reason].summary.replace("{volume}", volume or "a volume")
    summary = summary.replace("{command}", command or "a command")
    if cause != "unknown" and cause != reason:
        summary = f"{summary}: {CAUSE_ADVICE[cause].summary}"
    return summary


_AGENT_OR_PLATFORM_REASONS = frozenset(
    {
        "agent_timeout",
        "agent_not_connected",
        "agent_frozen_state",
        "command_disabled",
        "linux_freeze_failed",
        "fsfreeze_hook_failed",
        "migration_in_progress",
        "vm_not_running",
    }
)


def remediation(reason: str, cause: str, volume: str | None) -> str:
    """What to do about a classified error, from its labels; labels outside the vocabularies count as unknown."""
    reason = reason if reason in REASON_ADVICE else "other"
    cause = cause if cause in CAUSE_ADVICE else "unknown"
    if (
        reason == "add_volume_to_snapshot_set"
        and volume is not None
        and _GUID_VOLUME.fullmatch(volume)
        and cause in ("unknown", "volume_not_supported")
    ):
        return GUID_VOLUME_REMEDIATION.replace("{volume}", volume)
    if cause != "unknown" and reason not in _AGENT_OR_PLATFORM_REASONS:
        return CAUSE_ADVICE[cause].remediation
    return REASON_ADVICE[reason].remediation


def classify(text: str) -> Classification:
    """Classify one freeze or thaw error text; never raises, labels always come from REASONS and CAUSES."""
    unwrapped = _unwrap(text[:MAX_SCAN_CHARS])
    message = _clean(unwrapped.message)
    texts = (message, *(_clean(h) for h in reversed(unwrapped.hints)))
    matched = _match_template(texts)
    template, matched_text = matched if matched is not None else (None, message)
    command = _command(unwrapped, template, matched_text)
    fallback = "thaw_failed" if command == THAW else "other"
    reason = template.reason if template is not None else fallback
    hresult = _hresult(message)
    cause = _cause((message,) if matched_text == message else (message, matched_text), hresult)
    volume = _volume(reason, message)
    entry = HRESULTS.get(hresult) if hresult is not None else None
    return Classification(
        reason=reason,
        cause=cause,
        hresult=None if hresult is None else f"0x{hresult:08x}",
        hresult_name=entry.name if entry else None,
        hresult_meaning=entry.meaning if entry else None,
        volume=volume,
        command=command,
        message=_truncate(message, MAX_MESSAGE_CHARS),
        summary=_summary(reason, cause, volume, command),
        remediation=remediation(reason, cause, volume),
    )
