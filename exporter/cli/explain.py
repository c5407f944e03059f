"""``explain``: classify freeze error text from an argument or standard input and print the verdict."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO

from exporter.state.classifier import MAX_SCAN_CHARS, Classification, classify

# The classifier reads only the first MAX_SCAN_CHARS characters; UTF-8 needs at most 4 bytes for each.
MAX_LINE_BYTES = 4 * MAX_SCAN_CHARS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare TEXT and --json on the ``explain`` subparser."""
    parser.add_argument(
        "text",
        nargs="?",
        default=None,
        help="error text to classify; without it (or with '-') every non-empty line of standard input",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per input line (JSON Lines)")


def main(args: argparse.Namespace) -> int:
    """Print one verdict per input; exit 0 even for text the classifier does not recognise."""
    texts: Iterable[str] = [args.text] if args.text not in (None, "-") else read_lines(sys.stdin)
    out = sys.stdout
    try:
        for index, text in enumerate(texts):
            result = classify(text)
            if args.json:
                _write(out, json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
            else:
                _write(out, ("\n" if index else "") + render_text(result))
        out.flush()
    except BrokenPipeError:
        # The reader went away (``explain < log | head``): stop quietly, and keep the exit-time flush quiet too.
        _detach_stdout()
    return 0


def read_lines(stream: IO[str]) -> Iterator[str]:
    """Non-empty lines of ``stream``, decoded leniently and cut at MAX_LINE_BYTES (the rest of a line is skipped)."""
    reader: IO[bytes] | IO[str] = getattr(stream, "buffer", None) or stream
    while True:
        chunk = reader.readline(MAX_LINE_BYTES)
        if not chunk:
            return
        line = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
        if not line.endswith("\n"):
            _skip_rest_of_line(reader, chunk)
        line = line.strip()
        if line:
            yield line


def _skip_rest_of_line(reader: IO[bytes] | IO[str], chunk: bytes | str) -> None:
    while len(chunk) >= MAX_LINE_BYTES:
        chunk = reader.readline(MAX_LINE_BYTES)
        if not chunk or chunk[-1:] in (b"\n", "\n"):
            return


def render_text(result: Classification) -> str:
    """The human-readable block for one classification."""
    if result.hresult is None:
        hresult = "-"
    elif result.hresult_name is None:
        hresult = f"{result.hresult} (not a known VSS or Windows code)"
    else:
        hresult = f"{result.hresult} {result.hresult_name}: {result.hresult_meaning}"
    rows = (
        ("reason", result.reason),
        ("cause", result.cause),
        ("hresult", hresult),
        ("volume", result.volume or "-"),
        ("command", result.command or "-"),
        ("message", result.message or "-"),
        ("summary", result.summary),
        ("what to do", result.remediation),
    )
    return "".join(f"{label + ':':<13}{value}\n" for label, value in rows)


def _write(out: IO[str], text: str) -> None:
    try:
        out.write(text)
    except UnicodeEncodeError:
        encoding = getattr(out, "encoding", None) or "ascii"
        out.write(text.encode(encoding, "replace").decode(encoding, "replace"))


def _detach_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
