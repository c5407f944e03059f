from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.state.vssadmin import (
    MAX_ASSOCIATIONS,
    MAX_FIELD_CHARS,
    MAX_PROVIDERS,
    MAX_WRITERS,
    QGA_PROVIDER_ID,
    Provider,
    ShadowStorage,
    Writer,
    has_qga_provider,
    parse_providers,
    parse_shadow_storage,
    parse_writers,
)

DATA = Path(__file__).parent.parent / "data" / "vssadmin"
GIB = 1024**3


def fixture(name: str) -> str:
    """Fixture text exactly as stored, CRLF line ends kept."""
    return (DATA / name).read_bytes().decode("utf-8")


def test_fixtures_keep_windows_line_ends() -> None:
    for path in DATA.glob("*.txt"):
        raw = path.read_bytes()
        assert b"\r\n" in raw, path.name
        assert raw.count(b"\n") == raw.count(b"\r\n"), path.name


def test_healthy_writers() -> None:
    writers = parse_writers(fixture("list-writers-healthy.txt"))

    assert [w.name for w in writers] == [
        "Task Scheduler Writer",
        "VSS Metadata Store Writer",
        "Performance Counters Writer",
        "System Writer",
        "SqlServerWriter",
        "ASR Writer",
        "Registry Writer",
        "COM+ REGDB Writer",
        "WMI Writer",
    ]
    assert all(w.state == 1 and not w.failed and w.last_error == "No error" for w in writers)
    assert writers[0] == Writer(
        name="Task Scheduler Writer",
        state=1,
        state_text="Stable",
        writer_id="{d61d61c8-d73a-4eee-8cdd-f6f9786b7124}",
        last_error="No error",
    )


def test_two_failed_writers() -> None:
    writers = {w.name: w for w in parse_writers(fixture("list-writers-two-failed.txt"))}

    failed = sorted((w.name, w.state, w.last_error) for w in writers.values() if w.failed)
    assert failed == [("SqlServerWriter", 8, "Non-retryable error"), ("System Writer", 9, "Timed out")]
    wmi = writers["WMI Writer"]
    assert (wmi.state, wmi.failed, wmi.state_text) == (5, False, "Waiting for completion")
    # The class id, not the instance id on the line after it.
    assert writers["System Writer"].writer_id == "{e8132975-6f93-4464-a53e-1050253ae220}"


def test_german_labels() -> None:
    writers = parse_writers(fixture("list-writers-german.txt"))

    assert [(w.name, w.state, w.last_error) for w in writers] == [
        ("Task Scheduler Writer", 1, "Kein Fehler"),
        ("VSS Metadata Store Writer", 1, "Kein Fehler"),
        ("Performance Counters Writer", 7, "Wiederholbarer Fehler"),
        ("System Writer", 1, "Kein Fehler"),
    ]
    assert writers[2].failed and writers[2].state_text == "Fehlgeschlagen"
    assert writers[2].writer_id == "{0bada1de-01a9-4625-8278-69e735f39dd2}"


@pytest.mark.parametrize(
    ("state", "failed"),
    [(0, False), (1, False)] + [(n, False) for n in range(2, 6)] + [(n, True) for n in range(6, 16)],
)
def test_state_classes(state: int, failed: bool) -> None:
    text = f"Writer name: 'W'\r\n   Writer Id: {{{'0' * 8}-0000-0000-0000-{'0' * 12}}}\r\n   State: [{state}] x\r\n"
    (writer,) = parse_writers(text)
    assert (writer.state, writer.failed) == (state, failed)


def test_chinese_xp_format_without_last_error() -> None:
    text = (
        "写入程序名: 'WMI Writer'\n"
        "   写入程序 Id: {a6ad56c2-b509-4e6c-bb19-49d8f43532f0}\n"
        "   写入程序范例 Id: {11111111-2222-3333-4444-555555555555}\n"
        "   状态: [1] 稳定\n"
    )
    assert parse_writers(text) == [
        Writer(
            name="WMI Writer",
            state=1,
            state_text="稳定",
            writer_id="{a6ad56c2-b509-4e6c-bb19-49d8f43532f0}",
            last_error=None,
        )
    ]


def test_tabs_lf_and_truncated_blocks() -> None:
    text = (
        "Writer name: 'System Writer'\n"
        "\tWriter Id: {E8132975-6F93-4464-A53E-1050253AE220}\n"
        "\tState: [9] Failed\n"
        "\tLast error: Timed out\n"
        "Writer name: 'Cut Writer'\n"
        "   Writer Id: {a6ad56c2-b509-4e6c-bb19-49d8f435"
    )
    system, cut = parse_writers(text)
    assert (system.state, system.writer_id, system.last_error) == (
        9,
        "{e8132975-6f93-4464-a53e-1050253ae220}",
        "Timed out",
    )
    assert cut == Writer("Cut Writer", 0, None, None, None)


def test_out_of_range_state_is_unknown() -> None:
    (writer,) = parse_writers("Writer name: 'W'\n   State: [99] Weird\n")
    assert writer.state == 0 and not writer.failed


def test_header_lines_and_errors_are_not_writers() -> None:
    text = (
        "vssadmin 1.1 - Volume Shadow Copy Service administrative command-line tool\r\n"
        "(C) Copyright 2001-2013 Microsoft Corp.\r\n\r\n"
        "Error: A Volume Shadow Copy Service component encountered an unexpected error.\r\n"
    )
    assert parse_writers(text) == []
    assert parse_providers(text) == []
    assert parse_shadow_storage(text) == []


def test_bounded_names_errors_and_counts() -> None:
    block = "Writer name: '{name}'\n   State: [8] Failed\n   Last error: {error}\n"
    long_block = block.format(name="N" * 1000, error="E" * 1000)
    (writer,) = parse_writers(long_block)
    assert len(writer.name) == MAX_FIELD_CHARS and len(writer.last_error or "") == MAX_FIELD_CHARS

    many = "".join(block.format(name=f"W{i}", error="x") for i in range(MAX_WRITERS + 50))
    assert len(parse_writers(many)) == MAX_WRITERS


def test_control_characters_are_removed_from_names() -> None:
    (writer,) = parse_writers("Writer name: 'Bad\x00\x1b[31mWriter'\n   State: [1] Stable\n")
    assert writer.name.isprintable()


def test_providers_with_qga() -> None:
    providers = parse_providers(fixture("list-providers-with-qga.txt"))

    assert providers == [
        Provider(
            name="Microsoft Software Shadow Copy provider 1.0",
            provider_type="System",
            provider_id="{b5946137-7b9f-4925-af80-51abd60b20d5}",
            version="1.0.0.7",
        ),
        Provider(
            name="QEMU Guest Agent VSS Provider",
            provider_type="Software",
            provider_id=QGA_PROVIDER_ID,
            version="108.0.2",
        ),
    ]
    assert has_qga_provider(providers)


def test_providers_without_qga() -> None:
    providers = parse_providers(fixture("list-providers-without-qga.txt"))

    assert [p.name for p in providers] == ["Microsoft Software Shadow Copy provider 1.0"]
    assert not has_qga_provider(providers)


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (Provider("renamed", None, "{3629D4ED-EE09-4E0E-9A5C-6D8BA2872AEF}".lower(), None), True),
        (Provider("qemu guest agent vss provider", None, None, None), True),
        (Provider("Other", "Software", "{00000000-0000-0000-0000-000000000000}", "1"), False),
    ],
    ids=["by-id", "by-name", "other"],
)
def test_qga_provider_by_id_or_name(provider: Provider, expected: bool) -> None:
    assert has_qga_provider([provider]) is expected


def test_provider_ids_are_lower_cased() -> None:
    text = "Provider name: 'QGA'\n   Provider type: Software\n   Provider Id: {3629D4ED-EE09-4E0E-9A5C-6D8BA2872AEF}\n"
    assert has_qga_provider(parse_providers(text))


def test_shadow_storage_association() -> None:
    (association,) = parse_shadow_storage(fixture("list-shadowstorage.txt"))

    volume = "(C:)\\\\?\\Volume{986da89b-4e1c-11ee-9f3b-806e6f6e6963}\\"
    assert association == ShadowStorage(
        for_volume=volume,
        storage_volume=volume,
        used_bytes=round(2.06 * GIB),
        used_percent=1,
        allocated_bytes=round(2.53 * GIB),
        allocated_percent=1,
        maximum_bytes=round(11.8 * GIB),
        maximum_percent=8,
        maximum_unbounded=False,
    )
    assert association.full is False


def test_shadow_storage_none() -> None:
    assert parse_shadow_storage(fixture("list-shadowstorage-none.txt")) == []


def test_shadow_storage_unbounded_decimal_comma_and_two_associations() -> None:
    text = (
        "Shadow Copy Storage association\r\n"
        "   For volume: (C:)\\\\?\\Volume{11111111-1111-1111-1111-111111111111}\\\r\n"
        "   Shadow Copy Storage volume: (C:)\\\\?\\Volume{11111111-1111-1111-1111-111111111111}\\\r\n"
        "   Used Shadow Copy Storage space: 0 B (0%)\r\n"
        "   Allocated Shadow Copy Storage space: 0 B (0%)\r\n"
        "   Maximum Shadow Copy Storage space: UNBOUNDED (100%)\r\n"
        "\r\n"
        "Schattenkopie-Speicherassoziation\r\n"
        "   Für Volume: (D:)\\\\?\\Volume{22222222-2222-2222-2222-222222222222}\\\r\n"
        "   Schattenkopie-Speichervolume: (E:)\\\\?\\Volume{33333333-3333-3333-3333-333333333333}\\\r\n"
        "   Verwendeter Schattenkopie-Speicherbereich: 1,5 GB (3%)\r\n"
        "   Zugewiesener Schattenkopie-Speicherbereich: 1,75 GB (3%)\r\n"
        "   Maximaler Schattenkopie-Speicherbereich: 1,5 GB (3%)\r\n"
    )
    unbounded, german = parse_shadow_storage(text)

    assert unbounded.maximum_unbounded and unbounded.maximum_bytes is None
    assert (unbounded.used_bytes, unbounded.full) == (0, False)
    assert german.for_volume == "(D:)\\\\?\\Volume{22222222-2222-2222-2222-222222222222}\\"
    assert german.storage_volume == "(E:)\\\\?\\Volume{33333333-3333-3333-3333-333333333333}\\"
    assert (german.used_bytes, german.allocated_bytes) == (round(1.5 * GIB), round(1.75 * GIB))
    assert german.full is True


def test_shadow_storage_without_blank_lines_or_indentation() -> None:
    one = (
        "For volume: (C:)\\\\?\\Volume{11111111-1111-1111-1111-111111111111}\\\n"
        "Shadow Copy Storage volume: (C:)\\\\?\\Volume{11111111-1111-1111-1111-111111111111}\\\n"
        "Used Shadow Copy Storage space: 512 MB (1%)\n"
    )
    first, second = parse_shadow_storage(one + one.replace("1111", "2222"))
    assert first.used_bytes == 512 * 1024**2 and first.maximum_bytes is None and first.full is None
    assert second.for_volume is not None and "22222222" in second.for_volume


def test_shadow_storage_truncated_and_capped() -> None:
    assert parse_shadow_storage("Shadow Copy Storage association\n   For volume: (C:)\\\\?\\Volume{1111") == []
    text = fixture("list-shadowstorage.txt")
    (cut,) = parse_shadow_storage(text[: text.index("Used Shadow Copy Storage space: 2.0")])
    assert cut.for_volume is not None and cut.storage_volume is not None
    assert (cut.used_bytes, cut.maximum_bytes, cut.full) == (None, None, None)

    block = (
        "Shadow Copy Storage association\n   For volume: (C:)\\\\?\\Volume{11111111-1111-1111-1111-111111111111}\\\n\n"
    )
    assert len(parse_shadow_storage(block * (MAX_ASSOCIATIONS + 10))) == MAX_ASSOCIATIONS


def test_many_providers_capped() -> None:
    block = "Provider name: 'P'\n   Provider type: Software\n"
    assert len(parse_providers(block * (MAX_PROVIDERS + 5))) == MAX_PROVIDERS


@pytest.mark.parametrize("value", [None, 42, b"Writer name: 'x'"])
def test_non_text_gives_nothing(value: object) -> None:
    assert parse_writers(value) == []  # type: ignore[arg-type]
    assert parse_providers(value) == []  # type: ignore[arg-type]
    assert parse_shadow_storage(value) == []  # type: ignore[arg-type]


_VSSADMIN_ALPHABET = st.sampled_from(
    [*"'[]{}()\\?:：%., \t\r\n\x00\x85\u2028", "Writer name: ", "State: [", "GB", "MB (", "UNBOUNDED"]
)
_vssadmin_like = st.lists(st.one_of(_VSSADMIN_ALPHABET, st.text(max_size=8)), max_size=200).map("".join)


def _assert_bounded(text: str) -> None:
    writers = parse_writers(text)
    providers = parse_providers(text)
    associations = parse_shadow_storage(text)
    assert len(writers) <= MAX_WRITERS and len(providers) <= MAX_PROVIDERS
    assert len(associations) <= MAX_ASSOCIATIONS
    for writer in writers:
        assert 0 <= writer.state <= 15
        for value in (writer.name, writer.last_error, writer.state_text):
            assert value is None or (len(value) <= MAX_FIELD_CHARS and value.isprintable())
    for provider in providers:
        for value in (provider.name, provider.provider_type, provider.version):
            assert value is None or (len(value) <= MAX_FIELD_CHARS and value.isprintable())
    for association in associations:
        assert association.for_volume is None or len(association.for_volume) <= MAX_FIELD_CHARS
        for amount in (association.used_bytes, association.allocated_bytes, association.maximum_bytes):
            assert amount is None or 0 <= amount < 2**63


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _assert_bounded(text)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_vssadmin_like)
def test_vssadmin_like_text_never_raises(text: str) -> None:
    _assert_bounded(text)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(p.name for p in DATA.glob("*.txt"))), st.data())
def test_cut_fixtures_never_raise(name: str, data: st.DataObject) -> None:
    text = fixture(name)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    _assert_bounded(text[:cut])


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [
        "a'" * 100_000,
        ("x: " + "1." * 2040 + "\n") * 60,
        ("x: " + "1 " * 2040 + "\n") * 60,
        ("(" * 4000 + "\\\\?\\Volume{\n") * 60,
        "[1" * 100_000,
        "\n" * 200_000,
    ],
    ids=["quotes", "dotted-number", "spaced-numbers", "parentheses", "brackets", "blank-lines"],
)
def test_pathological_text_is_parsed_in_linear_time(text: str) -> None:
    # Each of these took seconds with a backtracking size pattern; they must stay bounded and quick.
    _assert_bounded(text)
