from __future__ import annotations

import pytest

from exporter.state.records import FreezeErrorDetail, SnapshotJudgement, VmKey, VmState
from exporter.web.fleet_table import MAX_PAGE_SIZE, FleetQuery, fleet_page, fleet_row


def state(name: str, *, namespace: str = "ns", level: int | None = 3, agent: bool | None = True, **kw) -> VmState:
    last = SnapshotJudgement("s", "Succeeded", level, "x", "", "", 100.0) if level is not None else None
    checks = (("agent_connected", agent),) if agent is not None else ()
    return VmState(
        key=VmKey(namespace, name),
        phase="Running" if agent is not None else "Stopped",
        agent_connected=agent,
        agent_supported=True if agent else None,
        checks=checks,
        last_snapshot=last,
        last_consistent_snapshot_timestamp=100.0 if level is not None and level >= 2 else None,
        **kw,
    )


FLEET = [
    state("a-ok"),
    state("b-crash", level=1),
    state("c-down", agent=False, level=None),
    state("d-stopped", agent=None, namespace="other", level=3),
    state(
        "e-freeze",
        level=3,
        node="node07",
        last_freeze_error=FreezeErrorDetail("add_volume_to_snapshot_set", "unknown", "", "", "", "", "event", 200.0),
    ),
]


def names(query: FleetQuery) -> list[str]:
    return [row.name for row in fleet_page([fleet_row(s) for s in FLEET], query).rows]


def test_rows_carry_agent_state_and_failing_checks() -> None:
    rows = {row.name: row for row in map(fleet_row, FLEET)}
    assert rows["a-ok"].healthy and rows["a-ok"].agent == "connected"
    assert rows["b-crash"].failing == ("last_snapshot_consistent",)
    assert rows["c-down"].agent == "disconnected" and rows["c-down"].failing == ("agent_connected",)
    assert rows["d-stopped"].agent == "not running"
    assert rows["e-freeze"].failing == ("freeze_not_failing",)


def test_default_order_puts_problems_first_then_by_name() -> None:
    assert names(FleetQuery()) == ["b-crash", "c-down", "e-freeze", "a-ok", "d-stopped"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "NODE07"}, ["e-freeze"]),
        ({"q": "ns/c-"}, ["c-down"]),
        ({"namespace": "other"}, ["d-stopped"]),
        ({"agent": "disconnected"}, ["c-down"]),
        ({"level": "none"}, ["c-down"]),
        ({"level": "1"}, ["b-crash"]),
        ({"problems": "1"}, ["b-crash", "c-down", "e-freeze"]),
        ({"check": "freeze_not_failing"}, ["e-freeze"]),
        ({"sort": "name", "dir": "desc"}, ["e-freeze", "d-stopped", "c-down", "b-crash", "a-ok"]),
        ({"sort": "level"}, ["b-crash", "a-ok", "e-freeze", "d-stopped", "c-down"]),
        ({"agent": "bogus", "level": "9", "sort": "bogus"}, ["b-crash", "c-down", "e-freeze", "a-ok", "d-stopped"]),
    ],
)
def test_filters_and_sorting(params: dict[str, str], expected: list[str]) -> None:
    assert names(FleetQuery.parse(params)) == expected


def test_paging_and_counts_over_the_whole_fleet() -> None:
    page = fleet_page([fleet_row(s) for s in FLEET], FleetQuery.parse({"per_page": "2", "page": "3"}))
    assert [r.name for r in page.rows] == ["d-stopped"] and page.pages == 3 and page.matched == 5
    assert page.levels == {"0": 0, "1": 1, "2": 0, "3": 3, "none": 1}
    assert page.agents == {"connected": 3, "disconnected": 1, "unsupported": 0, "not running": 1}
    assert page.unhealthy == 3


@pytest.mark.parametrize(
    ("params", "page", "per_page"),
    [({"page": "0"}, 1, 50), ({"page": "x"}, 1, 50), ({"per_page": "100000"}, 1, MAX_PAGE_SIZE)],
)
def test_bad_paging_values_are_bounded(params: dict[str, str], page: int, per_page: int) -> None:
    query = FleetQuery.parse(params)
    assert (query.page, query.per_page) == (page, per_page)


def test_params_round_trip_and_leave_defaults_out() -> None:
    query = FleetQuery.parse({"q": "win", "sort": "level", "dir": "desc", "page": "2"})
    assert query.params() == {"q": "win", "sort": "level", "dir": "desc", "page": "2"}
    assert FleetQuery.parse(query.params()) == query
    assert FleetQuery().params() == {}
