"""RFC 7386 and RFC 6902 on the examples of the RFCs and the cases kubectl sends."""

from __future__ import annotations

import pytest

from exporter.simulator.patches import PatchError, json_patch, merge_patch


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        # RFC 7386 appendix A, a selection.
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "foo"}, "bar", "bar"),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch(target: object, patch: object, result: object) -> None:
    assert merge_patch(target, patch) == result


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "list": [1, 2]}
    ops = [
        {"op": "test", "path": "/metadata/labels/a", "value": "1"},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "add", "path": "/list/0", "value": 0},
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
        {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/b"},
        {"op": "move", "from": "/metadata/labels/b", "path": "/moved"},
        {"op": "remove", "path": "/list/1"},
        {"op": "add", "path": "/metadata/annotations", "value": {"x~/y": "z"}},
        {"op": "remove", "path": "/metadata/annotations/x~0~1y"},
    ]
    assert json_patch(doc, ops) == {
        "metadata": {"labels": {"a": "2"}, "annotations": {}},
        "list": [0, 2, 3],
        "moved": "2",
    }
    assert doc == {"metadata": {"labels": {"a": "1"}}, "list": [1, 2]}


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add"},
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/a"}],
        [{"op": "add", "path": "/list/9", "value": 1}],
        [{"op": "frobnicate", "path": "/a"}],
        [{"op": "add", "path": "no-slash", "value": 1}],
    ],
)
def test_json_patch_errors(ops: object) -> None:
    with pytest.raises(PatchError):
        json_patch({"a": 1, "list": []}, ops)
