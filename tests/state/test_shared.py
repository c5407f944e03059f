from __future__ import annotations

from exporter.state.shared import SharedValues


def test_an_equal_value_is_given_back_as_the_first_instance() -> None:
    shared = SharedValues()
    first = shared((("agent_connected", True), ("writers_stable", True)))
    second = shared(tuple([("agent_connected", True), ("writers_stable", True)]))
    assert second is first
    assert shared((("agent_connected", False),)) is not first
    assert len(shared) == 2


def test_a_full_table_returns_new_values_unshared_and_stops_growing() -> None:
    shared = SharedValues(limit=2)
    kept = shared(("a",))
    shared(("b",))
    extra = tuple(["c"])
    assert shared(extra) is extra
    assert shared(tuple(["c"])) is not extra  # not taken in: the table is full
    assert len(shared) == 2
    assert shared(("a",)) is kept  # what it holds is still shared
