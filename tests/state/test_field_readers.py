"""Tolerant readers: wrong types become named problems, never exceptions."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.state import field_readers as read


def test_an_identified_object() -> None:
    problems, identity = read.identified({"metadata": {"namespace": "ns", "name": "a", "uid": "u"}})
    assert identity == read.ObjectIdentity("ns", "a", "u") and problems.items == []
    _, without_uid = read.identified({"metadata": {"namespace": "ns", "name": "a"}})
    assert without_uid == ("ns", "a", "")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "object_not_object"),
        ({"metadata": "x"}, "metadata_not_object"),
        ({"metadata": {"namespace": "ns"}}, "missing_name"),
        ({"metadata": {"namespace": 1, "name": "a"}}, "namespace_not_string"),
    ],
)
def test_an_object_without_identity_is_a_named_problem(raw: Any, problem: str) -> None:
    problems, identity = read.identified(raw)
    assert identity is None and problem in problems.items


def test_strings_are_bounded_and_wrong_types_named() -> None:
    problems = read.Problems()
    assert read.string({"a": "x" * 300}, "a", problems) == "x" * read.MAX_STRING
    assert read.string({"a": 5}, "a", problems) == ""
    assert read.sequence({"a": {}}, "a", problems) == []
    assert problems.items == ["a_too_long", "a_not_string", "a_not_list"]
