"""Dashboard queries for tests: every PromQL expression of a dashboard, with its template variables
replaced by concrete values."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: Grafana's built-in interval variables, replaced by values valid for a 2 s to 1 m scrape interval.
BUILTINS = {"__rate_interval": "1m", "__interval": "30s", "__range": "1h"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    expr: str


def panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including panels nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Mapping[str, Any]) -> Iterator[Query]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield Query(dashboard["uid"], panel["title"], target["refId"], target["expr"])


def variable_selectors(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(variable name, series selector) of every ``label_values(selector, label)`` variable."""
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = _LABEL_VALUES.match(variable["definition"])
        assert match, f"unsupported variable query: {variable['definition']}"
        yield variable["name"], match["selector"] or ""


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` by ``values`` or the built-in interval variables."""
    known = {**BUILTINS, **values}

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in known:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return known[name]

    return _VARIABLE.sub(replace, expr)
