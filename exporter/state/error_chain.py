"""Error chains: the layers KubeVirt, libvirt and Kubernetes wrap around a guest-agent error, peeled off.

Log lines, Events, snapshot status, QMP replies, Go ``%q`` and JSON quoting (possibly nested) all reduce to
the innermost agent message plus the outer layers' text. Pure; every pattern is linear or bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["CONTROL_CHARS", "UnwrappedError", "clean", "unwrap"]

_MAX_LAYERS = 24
_MAX_ESCAPE_LEVELS = 4
_TEMPLATE_SCAN_CHARS = 8 * 1024
_JSON_OBJECT_WITHIN = 512
_HINT_CHARS = 1024
_MAX_OBJECTS_PER_LINE = 8
_DECODER = json.JSONDecoder()
_OBJECT_SEPARATOR = re.compile(r"[\s,]{0,16}")

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
    r"|guest agent command (?:failed|timed out): "
    r"|Operation cannot be fulfilled on [\w.]{1,64} \"[^\"\r\n]{0,253}\": "
    r"|Error from server(?: \(\w{1,64}\))?: "
    r"|unable to freeze guest fs - "
    r"|(?:internal error: )?unable to execute QEMU agent command '(?P<agent_command>[^'\s]{1,64})': "
)
# virt-launcher's cmd-client error; the launcher text follows in Go %q quoting.
_SERVER_ERROR = re.compile(r"server error\. command \w{1,32} failed: ")
# libvirt-go's error (``virError(…)``; older bindings printed ``LibvirtError(…)``).
_LIBVIRT_ERROR = re.compile(r"(?:Libvirt|vir)Error\(Code=-?\d{1,6}, Domain=-?\d{1,6}, Message='")
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
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


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
    """Decode the JSON object at ``pos``, unescaping it first if it was itself escaped as a JSON string.

    A line may hold several objects (a hook's captured stderr: the freezer's ``Starting…`` line, then its
    error); the one that reports the error is peeled, not the first.
    """
    rest = text[pos:]
    for _ in range(_MAX_ESCAPE_LEVELS):
        try:
            obj, end = _DECODER.raw_decode(rest)
        except (ValueError, RecursionError):
            if not _ESCAPED_OBJECT_START.match(rest):
                return None
            rest = _unescape(rest)
            continue
        return _json_error_member(_error_object([obj, *_following_objects(rest, end)]))
    return None


def _following_objects(text: str, end: int) -> list[object]:
    """The JSON objects that follow the one ending at ``end``, separated by blanks or commas only."""
    objects: list[object] = []
    while len(objects) < _MAX_OBJECTS_PER_LINE:
        start = _OBJECT_SEPARATOR.match(text, end)
        if start is None or start.end() >= len(text) or text[start.end()] != "{":
            break
        try:
            obj, end = _DECODER.raw_decode(text, start.end())
        except (ValueError, RecursionError):
            break
        objects.append(obj)
    return objects


def _error_object(objects: list[object]) -> object:
    """The last object logged at error level, else the last one that carries an error, else the first."""
    for wanted in (_logged_as_error, _carries_error):
        chosen = [o for o in objects if isinstance(o, dict) and wanted(o)]
        if chosen:
            return chosen[-1]
    return objects[0]


def _logged_as_error(obj: dict[str, object]) -> bool:
    return obj.get("level") in ("error", "fatal", "critical")


def _carries_error(obj: dict[str, object]) -> bool:
    return "reason" in obj or "error" in obj


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
class UnwrappedError:
    """The innermost message of an error chain, the outer layers' text (outermost first) as hints for the
    direction of the failed call, and the agent command libvirt named, if any."""

    message: str
    hints: tuple[str, ...]
    agent_command: str | None


def unwrap(text: str) -> UnwrappedError:
    """Peel every recognised layer off ``text`` and undo leftover escaping of the innermost message."""
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
    return UnwrappedError(current, tuple(hints), agent_command)


def clean(text: str) -> str:
    """Valid UTF-8 on one line: lone surrogates become '?', control characters a space."""
    return CONTROL_CHARS.sub(" ", text.encode("utf-8", "replace").decode("utf-8")).strip()
