"""The fleet table behind the status page and ``/api/v1/vms``: one row per VM, filtered, sorted, paged.

A row is built once per published VM state; a request filters and sorts the rows and renders one page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.state.diagnosis import failing_checks
from exporter.state.evidence import iso
from exporter.state.records import VmState

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_QUERY_CHARS = 200
NOT_RUNNING = "not running"
AGENT_STATES = ("connected", "disconnected", "unsupported", NOT_RUNNING)
LEVELS = ("0", "1", "2", "3", "none")
SORT_COLUMNS = (
    "problems",
    "namespace",
    "name",
    "node",
    "os",
    "agent",
    "frozen",
    "level",
    "snapshot",
    "freeze",
    "writers",
)


@dataclass(frozen=True, slots=True)
class FleetRow:
    namespace: str
    name: str
    node: str
    os: str
    phase: str
    agent: str
    frozen: bool | None
    level: int | None
    consistency: str
    snapshot_time: float | None
    freeze_reason: str
    freeze_cause: str
    freeze_time: float | None
    writers_failed: int | None
    failing: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.failing

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm": f"{self.namespace}/{self.name}",
            "namespace": self.namespace,
            "name": self.name,
            "node": self.node,
            "os": self.os,
            "phase": self.phase,
            "agent": self.agent,
            "frozen": self.frozen,
            "last_snapshot": {"level": self.level, "consistency": self.consistency, "time": iso(self.snapshot_time)}
            if self.level is not None
            else None,
            "last_freeze_error": (
                {"reason": self.freeze_reason, "cause": self.freeze_cause, "time": iso(self.freeze_time)}
                if self.freeze_reason
                else None
            ),
            "writers_failed": self.writers_failed,
            "failing_checks": list(self.failing),
            "healthy": self.healthy,
        }


def agent_state(state: VmState) -> str:
    if state.agent_connected is None:
        return NOT_RUNNING
    if not state.agent_connected:
        return "disconnected"
    return "unsupported" if state.agent_supported is False else "connected"


def fleet_row(state: VmState) -> FleetRow:
    last, error = state.last_snapshot, state.last_freeze_error
    return FleetRow(
        namespace=state.key.namespace,
        name=state.key.name,
        node=state.node,
        os=state.guest_os_version or state.guest_os,
        phase=state.phase,
        agent=agent_state(state),
        frozen=state.fs_frozen,
        level=last.level if last is not None else None,
        consistency=last.consistency if last is not None else "",
        snapshot_time=last.timestamp if last is not None else None,
        freeze_reason=error.reason if error is not None else "",
        freeze_cause=error.cause if error is not None else "",
        freeze_time=error.timestamp if error is not None else None,
        writers_failed=state.writers_failed,
        failing=failing_checks(state),
    )


@dataclass(frozen=True, slots=True)
class FleetQuery:
    """Filters, order and page of the fleet table, from URL query parameters (bad values fall back)."""

    text: str = ""
    namespace: str = ""
    agent: str = ""
    level: str = ""
    problems: bool = False
    check: str = ""
    sort: str = "problems"
    descending: bool = False
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FleetQuery:
        def text(name: str) -> str:
            return (params.get(name) or "").strip()[:MAX_QUERY_CHARS]

        sort = text("sort")
        return cls(
            text=text("q"),
            namespace=text("namespace"),
            agent=text("agent") if text("agent") in AGENT_STATES else "",
            level=text("level") if text("level") in LEVELS else "",
            problems=text("problems") in ("1", "true", "yes", "on"),
            check=text("check"),
            sort=sort if sort in SORT_COLUMNS else "problems",
            descending=text("dir") == "desc",
            page=_bounded_int(text("page"), 1, 1, 1_000_000),
            per_page=_bounded_int(text("per_page"), DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """URL query parameters of this query with some changed; defaults are left out."""
        values = {
            "q": self.text,
            "namespace": self.namespace,
            "agent": self.agent,
            "level": self.level,
            "problems": "1" if self.problems else "",
            "check": self.check,
            "sort": "" if self.sort == "problems" else self.sort,
            "dir": "desc" if self.descending else "",
            "page": "" if self.page == 1 else str(self.page),
            "per_page": "" if self.per_page == DEFAULT_PAGE_SIZE else str(self.per_page),
        }
        for name, value in changes.items():
            values[name] = "" if value is None else str(value)
        return {name: value for name, value in values.items() if value}

    def matches(self, row: FleetRow) -> bool:
        if self.namespace and row.namespace != self.namespace:
            return False
        if self.agent and row.agent != self.agent:
            return False
        if self.level and (str(row.level) if row.level is not None else "none") != self.level:
            return False
        if self.problems and row.healthy:
            return False
        if self.check and self.check not in row.failing:
            return False
        if self.text:
            needle = self.text.casefold()
            haystack = f"{row.namespace}/{row.name} {row.node} {row.os} {row.freeze_reason}".casefold()
            return needle in haystack
        return True


def _bounded_int(text: str, default: int, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        return default
    return min(max(value, low), high)


def _sort_key(column: str) -> Any:
    def nulls_last(value: Any) -> tuple[bool, Any]:
        return (value is None, value if value is not None else 0)

    keys: dict[str, Any] = {
        "problems": lambda r: (r.healthy, -len(r.failing), r.namespace, r.name),
        "namespace": lambda r: (r.namespace, r.name),
        "name": lambda r: (r.name, r.namespace),
        "node": lambda r: (r.node, r.namespace, r.name),
        "os": lambda r: (r.os, r.namespace, r.name),
        "agent": lambda r: (r.agent, r.namespace, r.name),
        "frozen": lambda r: (nulls_last(r.frozen), r.namespace, r.name),
        "level": lambda r: (nulls_last(r.level), r.namespace, r.name),
        "snapshot": lambda r: (nulls_last(r.snapshot_time), r.namespace, r.name),
        "freeze": lambda r: (r.freeze_reason == "", r.freeze_reason, r.namespace, r.name),
        "writers": lambda r: (nulls_last(r.writers_failed), r.namespace, r.name),
    }
    return keys[column]


@dataclass(frozen=True, slots=True)
class FleetPage:
    rows: tuple[FleetRow, ...]
    matched: int
    total: int
    unhealthy: int
    levels: Mapping[str, int]
    agents: Mapping[str, int]
    query: FleetQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.matched // self.query.per_page))


def fleet_page(rows: Sequence[FleetRow], query: FleetQuery) -> FleetPage:
    """Counts over the whole fleet, and the requested page of the filtered, sorted rows."""
    levels = Counter(str(r.level) if r.level is not None else "none" for r in rows)
    agents = Counter(r.agent for r in rows)
    matched = [r for r in rows if query.matches(r)]
    matched.sort(key=_sort_key(query.sort), reverse=query.descending)
    start = (query.page - 1) * query.per_page
    return FleetPage(
        rows=tuple(matched[start : start + query.per_page]),
        matched=len(matched),
        total=len(rows),
        unhealthy=sum(1 for r in rows if not r.healthy),
        levels={level: levels.get(level, 0) for level in LEVELS},
        agents={agent: agents.get(agent, 0) for agent in AGENT_STATES},
        query=query,
    )
