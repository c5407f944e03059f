"""The classifier's tables: vocabularies, HRESULT names and causes, templates and advice."""

from __future__ import annotations

import re

import pytest

from exporter.state import classifier
from exporter.state.hresults import (
    CAUSE_ADVICE,
    CAUSES,
    HRESULTS,
    MESSAGE_TEMPLATES,
    REASON_ADVICE,
    REASONS,
    TEXT_CAUSES,
)

# Each HRESULT the cause vocabulary names, with its vss.h / winerror.h name and its cause.
SPEC_HRESULTS = (
    (0x8004230C, "VSS_E_VOLUME_NOT_SUPPORTED", "volume_not_supported"),
    (0x8004230E, "VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER", "volume_not_supported"),
    (0x80042304, "VSS_E_PROVIDER_NOT_REGISTERED", "provider_not_registered"),
    (0x80042306, "VSS_E_PROVIDER_VETO", "provider_veto"),
    (0x8004230F, "VSS_E_UNEXPECTED_PROVIDER_ERROR", "unexpected_provider_error"),
    (0x80042316, "VSS_E_SNAPSHOT_SET_IN_PROGRESS", "snapshot_set_in_progress"),
    (0x8004231F, "VSS_E_INSUFFICIENT_STORAGE", "insufficient_storage"),
    (0x80042312, "VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED", "max_volumes_reached"),
    (0x80042317, "VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED", "max_snapshots_reached"),
    (0x80042313, "VSS_E_FLUSH_WRITES_TIMEOUT", "flush_writes_timeout"),
    (0x80042314, "VSS_E_HOLD_WRITES_TIMEOUT", "hold_writes_timeout"),
    (0x80042315, "VSS_E_UNEXPECTED_WRITER_ERROR", "writer_error"),
    (0x80042318, "VSS_E_WRITER_INFRASTRUCTURE", "writer_error"),
    (0x80042319, "VSS_E_WRITER_NOT_RESPONDING", "writer_error"),
    (0x800423F0, "VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT", "writer_error"),
    (0x800423F1, "VSS_E_WRITERERROR_OUTOFRESOURCES", "writer_error"),
    (0x800423F2, "VSS_E_WRITERERROR_TIMEOUT", "writer_error"),
    (0x800423F3, "VSS_E_WRITERERROR_RETRYABLE", "writer_error"),
    (0x800423F4, "VSS_E_WRITERERROR_NONRETRYABLE", "writer_error"),
    (0x800423F5, "VSS_E_WRITERERROR_RECOVERY_FAILED", "writer_error"),
    (0x80070005, "E_ACCESSDENIED", "access_denied"),
    (0x80070422, "ERROR_SERVICE_DISABLED", "service_disabled"),
    (0x80042301, "VSS_E_BAD_STATE", "bad_state"),
)

# The other vss.h values the reference lists; none of them may claim a specific cause.
OTHER_VSS_NAMES = {
    0x80042302: "VSS_E_UNEXPECTED",
    0x80042303: "VSS_E_PROVIDER_ALREADY_REGISTERED",
    0x80042307: "VSS_E_PROVIDER_IN_USE",
    0x80042308: "VSS_E_OBJECT_NOT_FOUND",
    0x8004230D: "VSS_E_OBJECT_ALREADY_EXISTS",
    0x80042310: "VSS_E_CORRUPT_XML_DOCUMENT",
    0x80042311: "VSS_E_INVALID_XML_DOCUMENT",
    0x8004231A: "VSS_E_WRITER_ALREADY_SUBSCRIBED",
    0x8004231B: "VSS_E_UNSUPPORTED_CONTEXT",
    0x8004231D: "VSS_E_VOLUME_IN_USE",
    0x8004231E: "VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED",
    0x80042327: "VSS_E_REBOOT_REQUIRED",
    0x80042328: "VSS_E_TRANSACTION_FREEZE_TIMEOUT",
    0x80042329: "VSS_E_TRANSACTION_THAW_TIMEOUT",
    0x8004232C: "VSS_E_NESTED_VOLUME_LIMIT",
    0x8004232F: "VSS_E_NOT_SUPPORTED",
    0x80042336: "VSS_E_WRITERERROR_PARTIAL_FAILURE",
    0x80042409: "VSS_E_WRITER_STATUS_NOT_AVAILABLE",
    0x80070057: "E_INVALIDARG",
    0x8007000E: "E_OUTOFMEMORY",
    0x80004005: "E_FAIL",
}


@pytest.mark.parametrize(("value", "name", "cause"), [pytest.param(v, n, c, id=n) for v, n, c in SPEC_HRESULTS])
def test_cause_vocabulary_hresults(value: int, name: str, cause: str) -> None:
    entry = HRESULTS[value]

    assert (entry.value, entry.name, entry.cause) == (value, name, cause)


@pytest.mark.parametrize(("value", "name", "cause"), [pytest.param(v, n, c, id=n) for v, n, c in SPEC_HRESULTS])
def test_classifier_maps_each_hresult_to_its_cause(value: int, name: str, cause: str) -> None:
    result = classifier.classify(f"failed to prepare for backup: Windows error 0x{value:x}: ")

    assert (result.hresult, result.hresult_name, result.cause) == (f"0x{value:08x}", name, cause)


@pytest.mark.parametrize(("value", "name"), [pytest.param(v, n, id=n) for v, n in OTHER_VSS_NAMES.items()])
def test_other_vss_names(value: int, name: str) -> None:
    assert HRESULTS[value].name == name


def test_table_is_consistent() -> None:
    for value, entry in HRESULTS.items():
        assert entry.value == value
        assert 0x80000000 <= value <= 0xFFFFFFFF, entry.name
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", entry.name)
        assert entry.meaning.strip()
        assert entry.cause in CAUSES
    assert len({entry.name for entry in HRESULTS.values()}) == len(HRESULTS)


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        HRESULTS[0x1] = HRESULTS[0x80070005]  # type: ignore[index]


def test_vocabularies() -> None:
    for vocabulary in (REASONS, CAUSES):
        assert isinstance(vocabulary, tuple)
        assert len(set(vocabulary)) == len(vocabulary)
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", label) for label in vocabulary)
    assert "other" in REASONS and "unknown" in CAUSES
    assert classifier.REASONS is REASONS and classifier.CAUSES is CAUSES


def test_every_reason_but_other_has_a_template() -> None:
    assert {t.reason for t in MESSAGE_TEMPLATES} == set(REASONS) - {"other"}


def test_templates_compile_and_name_known_commands() -> None:
    for template in MESSAGE_TEMPLATES:
        assert template.patterns
        for pattern in template.patterns:
            re.compile(pattern)
        assert template.command in (None, "guest-fsfreeze-freeze", "guest-fsfreeze-thaw")


def test_text_causes_are_in_the_vocabulary() -> None:
    for rule in TEXT_CAUSES:
        re.compile(rule.pattern)
        assert rule.cause in CAUSES and rule.cause != "unknown"


def test_advice_covers_every_label() -> None:
    assert set(REASON_ADVICE) == set(REASONS)
    assert set(CAUSE_ADVICE) == set(CAUSES) - {"unknown"}
    for advice in (*REASON_ADVICE.values(), *CAUSE_ADVICE.values()):
        assert advice.summary and "\n" not in advice.summary
        assert advice.remediation.strip()


def test_bare_win32_code_of_the_missing_vss_entry_point_is_named() -> None:
    # qemu qga/vss-win32/requester.cpp@bc260abb96:351-352: err_set(errset, (HRESULT)ERROR_PROC_NOT_FOUND, ...)
    # when requester_init() never resolved CreateVssBackupComponents from VSSAPI.DLL (requester.cpp:72-82).
    result = classifier.classify(
        "CreateVssBackupComponents proc address absent. Did you call requester_init()?: "
        "The specified procedure could not be found. (error: 7f)"
    )

    assert (result.reason, result.hresult, result.hresult_name) == ("vss_init", "0x8007007f", "ERROR_PROC_NOT_FOUND")
