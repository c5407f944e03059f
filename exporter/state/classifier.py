"""Freeze-error classifier: one KubeVirt / libvirt / qemu-ga error text in, bounded labels and advice out.

Three steps, one module each: ``error_chain`` peels the wrapping layers off the text, ``error_templates``
finds which qemu-ga template, HRESULT, cause and volume the innermost message is, ``error_advice`` turns the
labels into a summary and a fix. Pure: no I/O, no clock; input is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from exporter.state.error_advice import remediation, summary
from exporter.state.error_chain import clean, unwrap
from exporter.state.error_templates import (
    MAX_VOLUME_CHARS,
    find_cause,
    find_command,
    find_hresult,
    find_volume,
    match_template,
    win32_meaning,
    win32_name,
)
from exporter.state.hresults import CAUSES, HRESULTS, REASONS, THAW, MessageTemplate

__all__ = [
    "CAUSES",
    "MAX_MESSAGE_CHARS",
    "MAX_SCAN_CHARS",
    "MAX_VOLUME_CHARS",
    "REASONS",
    "Classification",
    "classify",
]

MAX_SCAN_CHARS = 64 * 1024
MAX_MESSAGE_CHARS = 512


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


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(template: MessageTemplate | None, command: str | None) -> str:
    if template is None:
        return "thaw_failed" if command == THAW else "other"
    if command == THAW and template.thaw_reason is not None:
        return template.thaw_reason
    return template.reason


def classify(text: str) -> Classification:
    """Classify one freeze or thaw error text; never raises, labels always come from REASONS and CAUSES."""
    unwrapped = unwrap(text[:MAX_SCAN_CHARS])
    message = clean(unwrapped.message)
    texts = (message, *(clean(h) for h in reversed(unwrapped.hints)))
    matched = match_template(texts)
    template, matched_text = matched if matched is not None else (None, message)
    command = find_command(unwrapped, template, matched_text)
    reason = _reason(template, command)
    hresult = find_hresult(message)
    cause = find_cause((message,) if matched_text == message else (message, matched_text), hresult)
    volume = find_volume(reason, message)
    entry = HRESULTS.get(hresult) if hresult is not None else None
    return Classification(
        reason=reason,
        cause=cause,
        hresult=None if hresult is None else f"0x{hresult:08x}",
        hresult_name=entry.name if entry else win32_name(hresult),
        hresult_meaning=entry.meaning if entry else win32_meaning(hresult),
        volume=volume,
        command=command,
        message=_truncate(message, MAX_MESSAGE_CHARS),
        summary=summary(reason=reason, cause=cause, volume=volume, command=command),
        remediation=remediation(reason, cause, volume),
    )
