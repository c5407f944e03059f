"""The metric contract: names documented in ``docs/metrics.md``, and the metric names a PromQL
expression (or an alert template's ``query``) uses. Shared by the rule and dashboard generators'
tests so that neither can depend on a metric the exporter does not promise."""

from __future__ import annotations

import re
from pathlib import Path

METRICS_DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"

#: Names that are not ours but may appear: Prometheus' scrape health and alert state series.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})

_ROW = re.compile(r"^\|\s*`(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(?P<kind>[^|]*)\|")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right",
        "offset", "atan2", "inf", "nan", "start", "end",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_TOKEN = re.compile(r"(?<![0-9.a-zA-Z_:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:]|\s*\()")
_TEMPLATE_QUERY = re.compile(r"printf\s+`([^`]*)`")


def documented_metrics(doc: Path = METRICS_DOC) -> frozenset[str]:
    """Every series name the exporter exposes according to the metrics reference tables."""
    names: set[str] = set()
    for line in doc.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        name = match["name"]
        names.add(name)
        if "histogram" in match["kind"]:
            names.update(name + suffix for suffix in _HISTOGRAM_SUFFIXES)
    return frozenset(names)


def metric_names(expr: str) -> set[str]:
    """Metric names used by a PromQL expression (label names, functions and keywords excluded)."""
    text = _STRING.sub(" ", expr)
    while True:  # nested selectors inside subqueries are cleared from the inside out
        stripped = _BRACKETS.sub(" ", _BRACES.sub(" ", text))
        if stripped == text:
            break
        text = stripped
    text = _LABEL_LIST.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    return {token for token in _TOKEN.findall(text) if token not in _KEYWORDS}


def template_metric_names(template: str) -> set[str]:
    """Metric names in the ``printf `selector` ... | query`` lookups of an alert template."""
    names: set[str] = set()
    for selector in _TEMPLATE_QUERY.findall(template):
        names |= metric_names(selector)
    return names


def undocumented(names: set[str], documented: frozenset[str] | None = None) -> set[str]:
    """The names neither in the metrics reference nor Prometheus' own series."""
    known = documented if documented is not None else documented_metrics()
    return {name for name in names if name not in known and name not in PROMETHEUS_SERIES}
