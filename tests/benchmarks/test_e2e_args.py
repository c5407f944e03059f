"""The end-to-end benchmark's command line: a variant it does not know is refused, not run as another."""

from __future__ import annotations

import pytest

from benchmarks.e2e import parse_args


@pytest.mark.parametrize(
    ("given", "variants"),
    [
        ("exporter", ("exporter",)),
        ("naive", ("naive",)),
        ("both", ("exporter", "naive")),
        ("exporter,naive", ("exporter", "naive")),
        ("naive, exporter", ("naive", "exporter")),
        ("both,exporter", ("exporter", "naive")),
    ],
)
def test_variants(given: str, variants: tuple[str, ...]) -> None:
    assert parse_args(["--variants", given]).variants == variants


def test_default_runs_both() -> None:
    assert parse_args([]).variants == ("exporter", "naive")


@pytest.mark.parametrize("given", ["exporters", "prometheus", "", ","])
def test_unknown_variant_is_refused(given: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--variants", given])

    assert exited.value.code == 2
    assert "use exporter, naive or both" in capsys.readouterr().err
