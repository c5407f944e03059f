"""Untrusted JSON: decoding never fails on bad text, and unsafe characters never survive it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import untrusted
from exporter.untrusted import BIDI_CONTROLS, CONTROL_CHARACTERS, INVALID_TEXT, Cleaned, clean, loads

UNSAFE = [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]]
UNSAFE += ["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]


def vmi(name: str, **status: object) -> dict:
    return {"metadata": {"namespace": "ns", "name": name}, "status": status}


@pytest.mark.parametrize(
    ("raw", "expected", "problems"),
    [
        (b'{"metadata":{},"s":"a\\udcffb"}', "a\ufffdb", {INVALID_TEXT}),
        (b'{"metadata":{},"s":"a\xff\xfeb"}', "a\ufffd\ufffdb", {INVALID_TEXT}),
        (b'{"metadata":{},"s":"nul\\u0000esc\\u001b[31m"}', "nul\ufffdesc\ufffd[31m", {CONTROL_CHARACTERS}),
        (b'{"metadata":{},"s":"raw\x00nul"}', "raw\ufffdnul", {CONTROL_CHARACTERS}),
        (b'{"metadata":{},"s":"\\u202ewodniW"}', "\ufffdwodniW", {BIDI_CONTROLS}),
        ('{"metadata":{},"s":"\u2067x\u2069"}'.encode(), "\ufffdx\ufffd", {BIDI_CONTROLS}),
        (b'{"metadata":{},"s":"c1 \\u009b"}', "c1 \ufffd", {CONTROL_CHARACTERS}),
    ],
    ids=["lone-surrogate", "invalid-utf8", "escaped-nul-esc", "raw-nul", "bidi-escaped", "bidi-raw", "c1"],
)
def test_unsafe_text_is_replaced_and_named(raw: bytes, expected: str, problems: set[str]) -> None:
    document = loads(raw)
    assert document["s"] == expected
    assert isinstance(document, Cleaned) and document.problems == problems
    document["s"].encode("utf-8")  # what crashed rendering before


def test_keys_are_cleaned_too() -> None:
    assert loads(b'{"metadata":{"labels":{"k\\u001b":"v"}}}') == {"metadata": {"labels": {"k\ufffd": "v"}}}


def test_only_the_objects_that_needed_it_are_marked() -> None:
    page = {"items": [vmi("good", phase="Running"), vmi("bad", nodeName="n\udcff")], "metadata": {}}
    document = loads(json.dumps(page).encode())
    good, bad = document["items"]
    assert type(good) is dict and good == vmi("good", phase="Running")
    assert isinstance(bad, Cleaned) and bad["status"]["nodeName"] == "n\ufffd"


def test_ordinary_text_is_left_alone() -> None:
    text = 'Windows Server 2019 — Größe 日本語 tab\tnewline\n "quoted" \\ \u2028 \ufffd'
    raw = json.dumps({"metadata": {}, "s": text}).encode()
    document = loads(raw)
    assert type(document) is dict and document["s"] == text
    assert loads(json.dumps({"s": text}, ensure_ascii=False).encode())["s"] == text


def test_not_json_is_still_an_error() -> None:
    with pytest.raises(ValueError):
        loads(b"{not json")
    with pytest.raises(ValueError):
        loads(b"\x00\x01")


@given(st.text())
def test_no_text_survives_unsafe(text: str) -> None:
    for ensure_ascii in (True, False):
        raw = json.dumps({"metadata": {}, "s": text}, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
        value = loads(raw)["s"]
        value.encode("utf-8")
        assert not any(c in value for c in UNSAFE)
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in value)


JSON_VALUES = st.recursive(
    st.text() | st.integers() | st.none(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)
)


@pytest.mark.slow
@given(JSON_VALUES)
def test_clean_keeps_the_shape(value: object) -> None:
    cleaned = clean(value)
    assert json.dumps(cleaned, ensure_ascii=False).encode("utf-8")
    assert type(cleaned) is type(value) or isinstance(cleaned, dict)


_PIECES = st.sampled_from(
    [b"a", b" ", b"\\", b"\\b", b"\\f", b"\\n", b"\\u0007", b"\\u001b", b"\\u00e9", b"\\u202e", b"\\ud800",
     b"\\u061c", b"\\u2066", b"\\u0041", b"\x00", b"\x1b", b"\x7f", b"\t", b"\r\n", b"\xc2\x85", b"\xc3\xa9",
     b"\xe2\x80\xae", b"\xe2\x80\x8e", b"\xe2\x81\xa7", b"\xd8\x9c", b"\xff", b'"']
)


@given(st.lists(st.one_of(_PIECES, st.binary(max_size=4)), max_size=24).map(b"".join))
def test_the_quick_scan_finds_exactly_what_the_full_pattern_finds(raw: bytes) -> None:
    # Printable-ASCII documents are scanned for escapes only: the same answer, many times faster.
    assert untrusted._suspicious(raw) == (untrusted._SUSPICIOUS.search(raw) is not None)


# Integers within 64 bits: what the API server (Go) can send at all. Beyond them orjson gives floats.
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def _outcome(raw: bytes) -> object:
    try:
        value = untrusted._loads_leniently(raw)
    except ValueError:
        return ValueError
    return value, getattr(value, "problems", None)


@given(
    _JSON_VALUES,
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=3)), max_size=2),
)
def test_the_fast_decoder_decodes_exactly_as_the_json_module_does(
    value: object, ascii_only: bool, edits: list[tuple[int, bytes]]
) -> None:
    # orjson takes strict documents; anything it refuses goes the json module's lenient way. The
    # results are the same, bad text and all (NaN compares unequal to itself, so compare the text).
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    for at, inserted in edits:
        raw = raw[:at] + inserted + raw[at:]
    try:
        decoded: object = loads(raw)
        outcome: object = (decoded, getattr(decoded, "problems", None))
    except ValueError:
        outcome = ValueError
    assert repr(outcome) == repr(_outcome(raw))


def test_a_repeated_key_keeps_the_last_value_as_the_json_module_does() -> None:
    assert loads(b'{"a": 1, "a": 2}') == {"a": 2}
