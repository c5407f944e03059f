from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.state.diagnosis import judge_guest_checks
from exporter.state.guest_report import (
    MAX_PROBLEM_CHARS,
    MAX_PROBLEMS,
    GuestCheckThresholds,
    GuestReport,
    InvalidGuestReport,
    ReportedVolume,
    ServiceState,
    parse_guest_report,
    validate_guest_report,
    vss_could_not_run,
)
from exporter.state.vssadmin import ShadowStorage

SAMPLES = Path(__file__).parent.parent / "data" / "guest_reports"
SAMPLE_NAMES = sorted(path.stem for path in SAMPLES.glob("*.json"))
MIB = 1024**2
GIB = 1024**3
DEFAULTS = GuestCheckThresholds()


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def report(name: str = "healthy", **changes: Any) -> GuestReport:
    """A parsed sample with some record fields replaced."""
    parsed = parse_guest_report(sample(name), received_at=1_000.0)
    fields = {f: getattr(parsed, f) for f in GuestReport.__dataclass_fields__}
    return GuestReport(**{**fields, **changes})


def test_samples_exist() -> None:
    assert SAMPLE_NAMES == [
        "healthy",
        "low_disk",
        "provider_missing",
        "two_failed_writers",
        "vss_service_disabled",
    ]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_samples_are_valid(name: str) -> None:
    assert validate_guest_report(sample(name)) == []


def test_parse_healthy() -> None:
    parsed = parse_guest_report(sample("healthy"), received_at=1_757_844_960.0)

    assert parsed.received_at == 1_757_844_960.0
    assert parsed.hostname == "WIN2022-SQL01"
    assert parsed.generated_at == 1_757_844_900.0
    assert parsed.qga_version == "108.0.2"
    assert (parsed.writers_total, parsed.writers_failed, parsed.failed_writers) == (9, 0, ())
    assert parsed.qga_provider_present
    assert [p.name for p in parsed.providers] == [
        "Microsoft Software Shadow Copy provider 1.0",
        "QEMU Guest Agent VSS Provider",
    ]
    assert dict(parsed.services) == {
        "VSS": ServiceState(present=True, status="Stopped", start_type="Manual"),
        "SWPRV": ServiceState(present=True, status="Stopped", start_type="Manual"),
        "QEMU Guest Agent": ServiceState(present=True, status="Running", start_type="Automatic"),
        "QEMU Guest Agent VSS Provider": ServiceState(present=True, status="Stopped", start_type="Manual"),
    }
    assert parsed.volumes[0] == ReportedVolume(
        path="\\\\?\\Volume{986da89b-4e1c-11ee-9f3b-806e6f6e6963}\\",
        drive_letter="C:",
        free_bytes=80 * GIB,
        total_bytes=127 * GIB,
        is_system=True,
        file_system="NTFS",
    )
    assert [v.drive_letter for v in parsed.volumes] == ["C:", None, "D:"]
    assert len(parsed.shadow_storage) == 1


def test_parse_variants() -> None:
    failed = parse_guest_report(sample("two_failed_writers"), received_at=0.0)
    assert (failed.writers_total, failed.writers_failed) == (9, 2)
    assert sorted((w.name, w.state) for w in failed.failed_writers) == [
        ("SqlServerWriter", 8),
        ("System Writer", 9),
    ]

    missing = parse_guest_report(sample("provider_missing"), received_at=0.0)
    assert not missing.qga_provider_present
    assert missing.services["QEMU Guest Agent VSS Provider"] == ServiceState(present=False)
    assert missing.shadow_storage == ()

    disabled = parse_guest_report(sample("vss_service_disabled"), received_at=0.0)
    assert disabled.services["VSS"].disabled
    assert (disabled.writers, disabled.providers) == ((), ())


def test_identical_reports_from_two_guests_share_their_parsed_parts() -> None:
    # A fleet of guests from one image reports the same writers, providers and services: the
    # parsed reports hold one instance of each, not one per guest.
    one = parse_guest_report(sample("healthy"), received_at=1.0)
    other_document = sample("healthy")
    other_document["hostname"] = "OTHER-GUEST"
    other = parse_guest_report(other_document, received_at=2.0)
    assert (other.writers, other.providers, other.services) == (one.writers, one.providers, one.services)
    assert other.writers is one.writers
    assert other.providers is one.providers
    assert other.services is one.services
    assert other.hostname != one.hostname


def test_a_writer_that_failed_in_one_guest_leaves_the_others_shared() -> None:
    healthy = parse_guest_report(sample("healthy"), received_at=1.0)
    failed = parse_guest_report(sample("two_failed_writers"), received_at=1.0)
    assert failed.writers is not healthy.writers
    stable = {w.name: w for w in healthy.writers}
    shared = [w for w in failed.writers if w.name in stable and w == stable[w.name]]
    assert shared and all(w is stable[w.name] for w in shared)


def test_services_are_read_only_mapping() -> None:
    parsed = report()
    with pytest.raises(TypeError):
        parsed.services["VSS"] = ServiceState(present=False)  # type: ignore[index]


def test_first_entry_of_a_repeated_service_wins() -> None:
    document = sample("healthy")
    document["services"].append({"name": "VSS", "present": False})
    assert parse_guest_report(document, received_at=0.0).services["VSS"].present


def test_invalid_document_raises_with_problems() -> None:
    document = sample("healthy")
    del document["hostname"]
    with pytest.raises(InvalidGuestReport) as raised:
        parse_guest_report(document, received_at=0.0)
    assert raised.value.problems == ["(document): 'hostname' is a required property"]


def _mutated(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    document = sample("healthy")
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("schemaVersion",), 2, "schemaVersion: 1 was expected"),
        (("hostname",), "", "hostname: '' should be non-empty"),
        (("generatedAt",), "yesterday", "generatedAt: 'yesterday' does not match"),
        (("vssadmin", "writers"), "x" * 49153, "vssadmin/writers: 'xxxx"),
        (("vssadmin", "providers"), _DELETE, "vssadmin: 'providers' is a required property"),
        (("services", 0, "name"), "Spooler", "services/0/name: 'Spooler' is not one of"),
        (("services", 0, "present"), "yes", "services/0/present: 'yes' is not of type 'boolean'"),
        (("volumes", 0, "freeBytes"), -1, "volumes/0/freeBytes: -1 is less than the minimum of 0"),
        (("volumes", 0, "driveLetter"), "C:\\", "volumes/0/driveLetter: 'C:\\\\' does not match"),
        (("volumes", 0, "totalBytes"), 1.5, "volumes/0/totalBytes: 1.5 is not of type 'integer', 'null'"),
        (("extra",), 1, "(document): Additional properties are not allowed ('extra' was unexpected)"),
        (("volumes",), [{}] * 65, "volumes: [{}, {}"),
    ],
    ids=[
        "version",
        "empty-hostname",
        "timestamp",
        "writers-too-long",
        "providers-missing",
        "unknown-service",
        "present-not-bool",
        "negative-bytes",
        "drive-letter",
        "fractional-bytes",
        "unknown-key",
        "too-many-volumes",
    ],
)
def test_validation_problems(path: tuple[str | int, ...], value: Any, problem: str) -> None:
    problems = validate_guest_report(_mutated(path, value))
    assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize("document", [None, [], "report", 1, {"schemaVersion": 1}])
def test_validation_of_non_reports(document: object) -> None:
    assert validate_guest_report(document)


def test_problems_are_bounded() -> None:
    document = sample("healthy")
    document["volumes"] = [{"path": "x" * 600, "isSystem": "no"} for _ in range(40)]
    problems = validate_guest_report(document)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].startswith("… and ")
    assert all(len(p) <= MAX_PROBLEM_CHARS for p in problems)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_crashes(document: object) -> None:
    problems = validate_guest_report(document)
    if not problems:
        assert isinstance(parse_guest_report(document, received_at=0.0), GuestReport)  # type: ignore[arg-type]
    else:
        with pytest.raises(InvalidGuestReport):
            parse_guest_report(document, received_at=0.0)  # type: ignore[arg-type]


def test_long_or_odd_strings_are_cleaned() -> None:
    document = sample("healthy")
    document["hostname"] = "WIN\x00\u200bHOST" + "H" * 200
    document["qgaVersion"] = "  108.0.2\r\n"
    parsed = parse_guest_report(document, received_at=0.0)
    assert parsed.hostname.isprintable() and len(parsed.hostname) <= 128
    assert parsed.qga_version == "108.0.2"


# --- checks -----------------------------------------------------------------------------------------

ALL_OK = {
    "vss_service": True,
    "swprv_service": True,
    "qga_vss_provider": True,
    "writers_stable": True,
    "system_volume_free_space": True,
    "shadow_storage": True,
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("healthy", ALL_OK),
        ("two_failed_writers", {**ALL_OK, "writers_stable": False}),
        ("low_disk", {**ALL_OK, "system_volume_free_space": False}),
        (
            "provider_missing",
            {k: v for k, v in {**ALL_OK, "qga_vss_provider": False}.items() if k != "shadow_storage"},
        ),
        # vssadmin cannot list anything with VSS disabled: no evidence for writers, provider, storage.
        ("vss_service_disabled", {"vss_service": False, "swprv_service": True, "system_volume_free_space": True}),
    ],
)
def test_checks_of_samples(name: str, expected: dict[str, bool]) -> None:
    assert judge_guest_checks(report(name), DEFAULTS) == expected


@pytest.mark.parametrize(
    ("services", "vss", "swprv"),
    [
        ({}, None, None),
        ({"VSS": ServiceState(True, "Stopped", "Manual")}, True, None),
        ({"VSS": ServiceState(True, "Running", "Automatic")}, True, None),
        ({"VSS": ServiceState(True, "Stopped", "Disabled")}, False, None),
        ({"VSS": ServiceState(True, "Stopped", "disabled")}, False, None),
        ({"VSS": ServiceState(False)}, False, None),
        ({"VSS": ServiceState(True, None, None)}, True, None),
        ({"SWPRV": ServiceState(True, "Stopped", "Disabled")}, None, False),
        ({"SWPRV": ServiceState(False)}, None, False),
    ],
    ids=[
        "no-entries",
        "manual-stopped",
        "automatic-running",
        "disabled",
        "disabled-lower-case",
        "vss-missing",
        "start-type-unknown",
        "swprv-disabled",
        "swprv-missing",
    ],
)
def test_service_checks(services: dict[str, ServiceState], vss: bool | None, swprv: bool | None) -> None:
    checks = judge_guest_checks(report(services=services), DEFAULTS)
    assert checks.get("vss_service") is vss
    assert checks.get("swprv_service") is swprv


def _system(free: int | None, total: int | None, *, is_system: bool = True) -> ReportedVolume:
    return ReportedVolume("\\\\?\\Volume{x}\\", "C:", free, total, is_system)


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ((_system(20 * GIB, 100 * GIB),), True),
        ((_system(15 * GIB, 100 * GIB),), True),
        ((_system(15 * GIB - 1, 100 * GIB),), False),
        ((_system(300 * MIB, 1 * GIB),), True),
        ((_system(300 * MIB - 1, 1 * GIB),), False),
        ((_system(200 * MIB, 60 * GIB),), False),
        ((_system(1 * GIB, 100 * GIB),), False),
        ((_system(50 * GIB, 100 * GIB, is_system=False),), None),
        ((), None),
        ((_system(None, 100 * GIB),), None),
        ((_system(10 * GIB, None),), None),
        ((_system(0, 0),), None),
    ],
    ids=[
        "plenty",
        "ratio-at-limit",
        "ratio-below",
        "bytes-at-limit",
        "bytes-below",
        "low-disk-profile",
        "ratio-fails-bytes-ok",
        "no-system-volume",
        "no-volumes",
        "free-unknown",
        "total-unknown",
        "empty-volume",
    ],
)
def test_system_volume_free_space(volumes: tuple[ReportedVolume, ...], expected: bool | None) -> None:
    assert judge_guest_checks(report(volumes=volumes), DEFAULTS).get("system_volume_free_space") is expected


def test_free_space_thresholds_are_configurable() -> None:
    volumes = (_system(200 * MIB, 60 * GIB),)
    lenient = GuestCheckThresholds(min_free_bytes=100 * MIB, min_free_ratio=0.0)
    assert judge_guest_checks(report(volumes=volumes), lenient)["system_volume_free_space"] is True
    assert DEFAULTS.min_free_bytes == 300 * 1024 * 1024 and DEFAULTS.min_free_ratio == 0.15


def _storage(used: int | None, maximum: int | None, *, unbounded: bool = False) -> ShadowStorage:
    return ShadowStorage("(C:)", "(C:)", used, None, used, None, maximum, None, unbounded)


@pytest.mark.parametrize(
    ("associations", "expected"),
    [
        ((), None),
        ((_storage(1 * GIB, 10 * GIB),), True),
        ((_storage(10 * GIB, 10 * GIB),), False),
        ((_storage(1 * GIB, 10 * GIB), _storage(5 * GIB, 5 * GIB)), False),
        ((_storage(500 * GIB, None, unbounded=True),), True),
        ((_storage(None, 10 * GIB),), None),
        ((_storage(None, 10 * GIB), _storage(1, 2)), True),
    ],
    ids=["none", "room", "full", "one-of-two-full", "unbounded", "unknown-used", "unknown-and-room"],
)
def test_shadow_storage_check(associations: tuple[ShadowStorage, ...], expected: bool | None) -> None:
    assert judge_guest_checks(report(shadow_storage=associations), DEFAULTS).get("shadow_storage") is expected


def test_writer_and_provider_checks_need_evidence() -> None:
    checks = judge_guest_checks(report(writers=(), providers=(), qga_provider_present=False), DEFAULTS)
    assert "writers_stable" not in checks and "qga_vss_provider" not in checks


# --- could VSS have run? ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("healthy", None),
        ("two_failed_writers", None),
        ("low_disk", None),
        ("provider_missing", "qga_provider_missing"),
        ("vss_service_disabled", "vss_service_disabled"),
    ],
)
def test_vss_could_not_run_samples(name: str, expected: str | None) -> None:
    assert vss_could_not_run(report(name)) == expected


def test_vss_could_not_run_details() -> None:
    without_provider = report("provider_missing")
    vss_disabled = {"VSS": ServiceState(True, "Stopped", "Disabled")}
    # The service outranks the provider: with VSS disabled nothing else matters.
    assert vss_could_not_run(report("provider_missing", services=vss_disabled)) == "vss_service_disabled"
    assert vss_could_not_run(report(services={"VSS": ServiceState(False)})) == "vss_service_disabled"
    # vssadmin listed no providers at all (it failed): that is no evidence of a missing provider.
    assert vss_could_not_run(report(providers=(), qga_provider_present=False)) is None
    # SWPRV is not used by qemu-ga.
    assert vss_could_not_run(report(services={"SWPRV": ServiceState(True, "Stopped", "Disabled")})) is None
    assert without_provider.providers and not without_provider.qga_provider_present


def test_parsing_does_not_change_the_document() -> None:
    document = sample("two_failed_writers")
    before = copy.deepcopy(document)
    parse_guest_report(document, received_at=0.0)
    assert document == before


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    # Decoded JSON is never this deep, but the messages quote the instance, and repr() recurses.
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    assert validate_guest_report({"volumes": [nested]}) == ["(document): nested too deeply"]


@pytest.mark.parametrize(("letter", "expected"), [("C:", "C:\\"), ("C:\\", "C:\\"), (None, ""), ("", "")])
def test_a_reported_drive_is_spelled_as_the_guest_agent_spells_its_mount_point(letter, expected) -> None:
    """One volume, one spelling: guestosinfo says ``C:\\``, so the guest report's ``C:`` becomes that."""
    from exporter.state.guest_report import ReportedVolume

    assert ReportedVolume("\\\\?\\Volume{x}\\", letter, 1, 2, True).mount_point == expected
