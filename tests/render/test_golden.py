"""Golden exposition files: the exact bytes of every family, in text 0.0.4 and OpenMetrics.

Regenerate with ``.venv/bin/python -m tests.render.golden`` (see tests/golden/README.md) and
review the diff. Each body is also parsed back with prometheus_client's own parsers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.render.families import FAMILIES
from tests.render.golden import (
    AWKWARD,
    GOLDEN_STATES,
    OPENMETRICS_FILE,
    SPECIAL_VALUES,
    TEXT_FILE,
    golden_bodies,
)

REGENERATE = "regenerate with: .venv/bin/python -m tests.render.golden"


def _sample_names(family_name: str, kind: str) -> str:
    """The family name as OpenMetrics and the text parser report it."""
    if kind == "counter":
        return family_name.removesuffix("_total")
    return family_name


def test_text_body_is_the_golden_file() -> None:
    text, _ = golden_bodies()
    assert text == TEXT_FILE.read_bytes(), REGENERATE


def test_openmetrics_body_is_the_golden_file() -> None:
    _, openmetrics = golden_bodies()
    assert openmetrics == OPENMETRICS_FILE.read_bytes(), REGENERATE


def test_every_family_has_samples_in_both_files() -> None:
    text = {f.name: f for f in parse_text(TEXT_FILE.read_text(encoding="utf-8"))}
    openmetrics = {f.name: f for f in parse_openmetrics(OPENMETRICS_FILE.read_text(encoding="utf-8"))}
    for family in FAMILIES:
        assert text[_sample_names(family.name, family.kind)].samples, family.name
        om_name = _sample_names(family.name, family.kind)
        if family.kind == "gauge" and family.name.endswith("_info"):
            om_name = family.name.removesuffix("_info")
        assert openmetrics[om_name].samples, family.name


SampleKey = tuple[str, tuple[tuple[str, str], ...]]
Parser = Callable[[str], Iterable[Metric]]


def _parsed_samples(body: str, parser: Parser) -> dict[SampleKey, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parser(body)
        for sample in family.samples
    }


def _expected_samples() -> dict[SampleKey, float]:
    expected: dict[SampleKey, float] = {}
    for state in GOLDEN_STATES:
        for family in FAMILIES:
            for values, value in family.samples(state):
                labels = dict(zip(("namespace", "name", *family.labels), (*state.key, *values), strict=True))
                expected[(family.name, tuple(sorted(labels.items())))] = value
    return expected


def _same(parsed: dict[SampleKey, float], expected: dict[SampleKey, float]) -> None:
    assert parsed.keys() == expected.keys()
    for key, value in expected.items():
        assert parsed[key] == value or (math.isnan(value) and math.isnan(parsed[key])), key


def test_text_parses_back_to_every_label_and_value() -> None:
    _same(_parsed_samples(TEXT_FILE.read_text(encoding="utf-8"), parse_text), _expected_samples())


def test_openmetrics_parses_back_to_every_label_and_value() -> None:
    _same(_parsed_samples(OPENMETRICS_FILE.read_text(encoding="utf-8"), parse_openmetrics), _expected_samples())


def test_the_golden_states_pin_escaping_and_special_values() -> None:
    text = TEXT_FILE.read_text(encoding="utf-8")
    assert '"back\\\\slash \\"quoted\\"\\nnew line, Größe 日本"' in text  # \ → \\, " → \", newline → \n
    assert "\n" in AWKWARD and "\\" in AWKWARD and '"' in AWKWARD and not AWKWARD.isascii()
    values = {line.rsplit(" ", 1)[1] for line in text.splitlines() if not line.startswith("#")}
    assert {"+Inf", "NaN", "-Inf"} <= values
    assert SPECIAL_VALUES.key.name == AWKWARD
