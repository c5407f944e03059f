"""Objects files: what ``kubectl get … -o yaml|json`` prints, read back as the objects to serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from exporter.simulator.replay import ObjectsFileError, read_objects, read_objects_file

VMI = {
    "apiVersion": "kubevirt.io/v1",
    "kind": "VirtualMachineInstance",
    "metadata": {"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "77", "managedFields": []},
}
SNAP = {
    "apiVersion": "snapshot.kubevirt.io/v1beta1",
    "kind": "VirtualMachineSnapshot",
    "metadata": {"name": "s", "namespace": "ns"},
    "status": {"phase": "Succeeded"},
}
CONTENT = {
    "apiVersion": "snapshot.kubevirt.io/v1beta1",
    "kind": "VirtualMachineSnapshotContent",
    "metadata": {"name": "c", "namespace": "ns"},
}
DATA_VOLUME = {
    "apiVersion": "cdi.kubevirt.io/v1beta1",
    "kind": "DataVolume",
    "metadata": {"name": "d", "namespace": "ns"},
}


@pytest.mark.parametrize(
    "text",
    [
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [VMI, SNAP, CONTENT, DATA_VOLUME]}),
        yaml.safe_dump_all([VMI, SNAP, CONTENT, DATA_VOLUME]),
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [VMI, {"kind": "List", "items": [SNAP, CONTENT]}, DATA_VOLUME],
            }
        ),
        json.dumps([VMI, SNAP, CONTENT, DATA_VOLUME]),
        "---\n" + yaml.safe_dump(VMI) + "---\n---\n" + yaml.safe_dump_all([SNAP, CONTENT, DATA_VOLUME]),
    ],
    ids=["yaml-list", "multi-doc", "json-nested-list", "json-array", "empty-documents"],
)
def test_every_kubectl_output_shape(text: str) -> None:
    loaded = read_objects(text)

    assert [(plural, obj["metadata"]["name"]) for plural, obj in loaded.objects] == [
        ("virtualmachineinstances", "a"),
        ("virtualmachinesnapshots", "s"),
        ("virtualmachinesnapshotcontents", "c"),
    ]
    assert dict(loaded.skipped) == {"DataVolume": 1}
    vmi = loaded.objects[0][1]
    assert vmi["metadata"] == {"name": "a", "namespace": "ns", "uid": "u1"}
    assert loaded.objects[1][1]["status"] == {"phase": "Succeeded"}


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ObjectsFileError):
        read_objects("kind: [")
    with pytest.raises(ObjectsFileError):
        read_objects_file(tmp_path / "missing.yaml")
    assert read_objects("").objects == []
    assert dict(read_objects(yaml.safe_dump({"kind": "Pod", "metadata": {}})).skipped) == {"Pod": 1}
