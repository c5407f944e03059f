"""Label and field selectors."""

from __future__ import annotations

import pytest

from exporter.simulator.selectors import SelectorError, combine, parse_field_selector, parse_label_selector

POD = {"metadata": {"name": "p", "namespace": "ns1", "labels": {"kubevirt.io": "virt-launcher", "tier": "db"}},
       "status": {"phase": "Running"}}
EVENT = {"metadata": {"name": "e"}, "reason": "FreezeError", "involvedObject": {"kind": "VirtualMachineInstance"},
         "source": {"component": "virt-handler"}}


@pytest.mark.parametrize(("selector", "matches"), [
    ("kubevirt.io=virt-launcher", True),
    ("kubevirt.io==virt-launcher", True),
    ("kubevirt.io!=virt-launcher", False),
    ("tier in (db, web)", True),
    ("tier notin (db)", False),
    ("tier", True),
    ("!tier", False),
    ("!missing,kubevirt.io=virt-launcher", True),
    ("kubevirt.io=virt-launcher,tier=web", False),
])
def test_label_selector(selector: str, matches: bool) -> None:
    predicate = parse_label_selector(selector)
    assert predicate is not None
    assert predicate(POD) is matches


@pytest.mark.parametrize(("selector", "obj", "matches"), [
    ("involvedObject.kind=VirtualMachineInstance,reason=FreezeError", EVENT, True),
    ("reason!=FreezeError", EVENT, False),
    ("source=virt-handler", EVENT, True),
    ("metadata.namespace=ns1", POD, True),
    ("status.phase==Pending", POD, False),
    ("spec.nodeName=", POD, True),
])
def test_field_selector(selector: str, obj: dict, matches: bool) -> None:
    predicate = parse_field_selector(selector)
    assert predicate is not None
    assert predicate(obj) is matches


def test_empty_selectors_are_none_and_bad_ones_raise() -> None:
    assert parse_label_selector("") is None
    assert parse_field_selector("") is None
    assert combine(None, None) is None
    with pytest.raises(SelectorError):
        parse_label_selector("a b")
    with pytest.raises(SelectorError):
        parse_field_selector("reason")


def test_malformed_objects_do_not_break_selectors() -> None:
    predicate = combine(parse_label_selector("a=b"), parse_field_selector("status.phase=Running"))
    assert predicate is not None
    assert predicate({"metadata": "x", "status": "y"}) is False
