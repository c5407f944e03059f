"""Server-side Table helpers."""

from __future__ import annotations

import pytest

from exporter.simulator.tables import human_age, table, wants_table


@pytest.mark.parametrize(("seconds", "text"), [
    (5, "5s"), (119, "119s"), (192, "3m12s"), (600, "10m"), (7200, "120m"), (3 * 3600 + 60, "3h1m"),
    (20 * 3600, "20h"), (3 * 86400 + 4 * 3600, "3d4h"), (12 * 86400, "12d"), (800 * 86400, "2y"), (-1, "<invalid>"),
])
def test_human_age(seconds: int, text: str) -> None:
    assert human_age(seconds) == text


def test_kubectl_accept_header_selects_tables() -> None:
    assert wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not wants_table("application/json")


def test_rows_survive_malformed_objects() -> None:
    body = table("virtualmachineinstances", [{"metadata": "x", "status": {"conditions": "y", "interfaces": 3}}],
                 now=0.0, metadata={})
    assert body["rows"][0]["cells"] == [None, "<unknown>", "", "", "", ""]
    assert table("pods", [{"status": {"containerStatuses": "bad"}}], now=0.0, metadata={})["rows"]
