"""The simulator counts what it was asked, by kind."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from exporter.simulator.requests import kind_of

SUB = "/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/version", "discovery"),
        ("/api", "discovery"),
        ("/api/v1", "discovery"),
        ("/apis", "discovery"),
        ("/apis/kubevirt.io/v1", "discovery"),
        ("/api/v1/events", "list"),
        ("/api/v1/namespaces/ns/pods", "list"),
        ("/apis/kubevirt.io/v1/virtualmachineinstances", "list"),
        ("/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances", "list"),
        ("/apis/kubevirt.io/v1/virtualmachineinstances?watch=true", "watch"),
        ("/api/v1/namespaces/ns/pods?watch=1&resourceVersion=5", "watch"),
        ("/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm", "get"),
        ("/api/v1/namespaces/ns/pods/virt-launcher-vm-x/log?follow=true", "log"),
        (SUB + "/guestosinfo", "guestosinfo"),
        (SUB + "/userlist", "other_subresource"),
    ],
)
def test_kind_of(path: str, kind: str) -> None:
    assert kind_of(make_mocked_request("GET", path)) == kind
