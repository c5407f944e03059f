"""JSON from peers we do not control (the API server relaying any client's objects, guests), made safe.

Decoding never fails on invalid UTF-8 or raw control characters, so one bad object cannot stop a
whole list. Text that could hurt later — lone surrogates (which cannot be encoded, so rendering
would crash), invalid UTF-8, control characters such as NUL and ESC, and bidirectional controls
that make a label read differently than it is — is replaced by U+FFFD in every string and key.
An object (a mapping with ``metadata``) that needed it comes back as ``Cleaned`` naming the
problems, so the caller can count it. Clean documents are not walked: a byte-level scan decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

REPLACEMENT = "\ufffd"
INVALID_TEXT = "invalid_text"
CONTROL_CHARACTERS = "control_characters"
BIDI_CONTROLS = "bidi_controls"

_SURROGATES = "\ud800-\udfff"
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_SURROGATES}{_CONTROLS}{_BIDI}]")
_KINDS = (
    (re.compile(f"[{_SURROGATES}]"), INVALID_TEXT),
    (re.compile(f"[{_CONTROLS}]"), CONTROL_CHARACTERS),
    (re.compile(f"[{_BIDI}]"), BIDI_CONTROLS),
)

# Any byte sequence that may decode to an unsafe character: raw C0 or DEL, C1 / U+061C / bidi
# controls in UTF-8, or their escapes (\b, \f, \u…) (surrogates can only arrive escaped, or as invalid UTF-8).
_SUSPICIOUS_ESCAPE = rb"\\[bf]|\\u(?:00[0-1]|007[fF]|00[89]|061[cC]|200[eEfF]|202[a-eA-E]|206[6-9]|[dD][89a-fA-F])"
_SUSPICIOUS = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]"
    rb"|" + _SUSPICIOUS_ESCAPE
)
# Most documents are printable ASCII only; in those only an escape can decode to an unsafe character,
# and a pattern that starts with a backslash is found many times faster than the full one is ruled out.
_ESCAPES = re.compile(_SUSPICIOUS_ESCAPE)
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r"


def _suspicious(raw: bytes) -> bool:
    """Whether ``raw`` may decode to an unsafe character (``_SUSPICIOUS`` matches somewhere in it)."""
    if raw.translate(None, _PRINTABLE_ASCII):  # some byte is neither printable ASCII nor tab, LF, CR
        return _SUSPICIOUS.search(raw) is not None
    return _ESCAPES.search(raw) is not None


class Cleaned(dict):  # type: ignore[type-arg]
    """An object whose strings were made safe; ``problems`` says what was found."""

    __slots__ = ("problems",)

    def __init__(self, items: dict[str, Any], problems: frozenset[str]) -> None:
        super().__init__(items)
        self.problems = problems


def loads(data: bytes | str) -> Any:
    """Decode JSON; raise ``ValueError`` only when it is not JSON at all.

    orjson decodes strict, valid UTF-8 JSON (nearly every document) at about twice the speed of
    the json module, to the same values (integers beyond 64 bits, which the API server cannot
    send, become floats); whatever it refuses (invalid UTF-8, lone surrogates, raw control
    characters, NaN, deep nesting) is decoded as the json module does it.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _loads_leniently(raw)
    return clean(document) if _suspicious(raw) else document


def _loads_leniently(raw: bytes) -> Any:
    try:
        document = json.loads(raw)
    except UnicodeDecodeError:
        return clean(json.loads(raw.decode("utf-8", "surrogateescape"), strict=False))
    except ValueError:
        # Raw control characters inside strings are not JSON, but one such object must not
        # cost the whole list: accept them here, they are replaced below.
        if not _suspicious(raw):
            raise
        return clean(json.loads(raw, strict=False))
    return clean(document) if _suspicious(raw) else document


def clean(value: Any) -> Any:
    """``value`` with every unsafe character replaced; objects that changed become ``Cleaned``."""
    cleaned, _ = _clean(value)
    return cleaned


def clean_text(text: str) -> str:
    return _UNSAFE.sub(REPLACEMENT, text)


def problems_in(text: str) -> set[str]:
    return {kind for pattern, kind in _KINDS if pattern.search(text)}


def _clean(value: Any) -> tuple[Any, set[str]]:
    if isinstance(value, str):
        if not _UNSAFE.search(value):
            return value, set()
        return clean_text(value), problems_in(value)
    if isinstance(value, list):
        problems: set[str] = set()
        items = []
        for item in value:
            cleaned, found = _clean(item)
            items.append(cleaned)
            problems |= found
        return items, problems
    if isinstance(value, Mapping):
        problems = set()
        result: dict[str, Any] = {}
        for key, item in value.items():
            cleaned, found = _clean(item)
            if _UNSAFE.search(key):
                found = found | problems_in(key)
                key = clean_text(key)
            result[key] = cleaned
            problems |= found
        if problems and "metadata" in result:
            return Cleaned(result, frozenset(problems)), problems
        return result, problems
    return value, set()
