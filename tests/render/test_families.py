"""Exact exposition lines per family, and round trips through prometheus_client's parsers."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.render.families import FAMILIES, render_vm
from exporter.render.store import MetricsStore
from exporter.render.text import EOF_LINE
from exporter.state.records import (
    FailedWriter,
    FreezeErrorDetail,
    GuestFilesystem,
    SnapshotJudgement,
    VmKey,
    VmState,
    VolumeFreeSpace,
)
from tests.render.exposition import per_vm_body

WINDOWS = VmState(
    key=VmKey("default", "win2019"),
    node="node01",
    phase="Running",
    guest_os="mswindows",
    guest_os_version="Windows Server 2019 Standard",
    agent_version="100.0.0",
    agent_connected=True,
    agent_supported=True,
    fsfreeze_available=True,
    fs_frozen=True,
    frozen_since=1700000000.5,
    filesystems=(GuestFilesystem("\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\", "System Reserved", "NTFS"),),
    checks=(("agent_connected", True), ("not_stuck_frozen", False)),
    snapshot_count=3,
    oldest_snapshot_timestamp=1699990000.0,
    last_snapshot=SnapshotJudgement(
        "snap-1", "Succeeded", 2, "filesystem", "writers_failed", "GuestAgent,Online", 1.7e9
    ),
    last_consistent_snapshot_timestamp=1.7e9,
    writers_total=9,
    writers_failed=1,
    failed_writers=(FailedWriter('Writer "quoted"', 9, "Timed out"),),
    volume_free_space=(VolumeFreeSpace("C:\\", "C:\\", 1024, 4096),),
    guest_report_timestamp=1700000100.0,
    freeze_error_counts=(("add_volume_to_snapshot_set", "unknown", 2),),
    last_freeze_error_by_reason=(("add_volume_to_snapshot_set", 1700000050.0),),
    last_freeze_error=FreezeErrorDetail(
        "add_volume_to_snapshot_set", "unknown", "", "", "\\\\?\\Volume{2a1f}\\", "System Reserved", "snapshot", 1.7e9
    ),
)

EXPECTED_LINES = {
    "kubevirt_vss_vm_info": 'kubevirt_vss_vm_info{namespace="default",name="win2019",node="node01",phase="Running",'
    'guest_os="mswindows",guest_os_version="Windows Server 2019 Standard",agent_version="100.0.0"} 1.0\n',
    "kubevirt_vss_fs_frozen_since_timestamp_seconds": "kubevirt_vss_fs_frozen_since_timestamp_seconds"
    '{namespace="default",name="win2019"} 1.7000000005e+09\n',
    "kubevirt_vss_volume_info": 'kubevirt_vss_volume_info{namespace="default",name="win2019",'
    'volume="\\\\\\\\?\\\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\\\",mount_point="System Reserved",'
    'filesystem="NTFS"} 1.0\n',
    "kubevirt_vss_writer_failed_info": 'kubevirt_vss_writer_failed_info{namespace="default",name="win2019",'
    'writer="Writer \\"quoted\\"",state="9",last_error="Timed out"} 1.0\n',
    "kubevirt_vss_check_ok": 'kubevirt_vss_check_ok{namespace="default",name="win2019",check="agent_connected"} 1.0\n'
    'kubevirt_vss_check_ok{namespace="default",name="win2019",check="not_stuck_frozen"} 0.0\n',
    "kubevirt_vss_freeze_errors_total": 'kubevirt_vss_freeze_errors_total{namespace="default",name="win2019",'
    'reason="add_volume_to_snapshot_set",cause="unknown"} 2.0\n',
    "kubevirt_vss_last_snapshot_consistency": 'kubevirt_vss_last_snapshot_consistency{namespace="default",'
    'name="win2019"} 2.0\n',
}


def test_exact_lines_per_family() -> None:
    rendered = dict(zip((f.name for f in FAMILIES), render_vm(WINDOWS), strict=True))
    for family, expected in EXPECTED_LINES.items():
        assert rendered[family].decode() == expected, family


def test_absent_evidence_renders_no_series() -> None:
    stopped = VmState(key=VmKey("ns", "off"), phase="Stopped")
    rendered = dict(zip((f.name for f in FAMILIES), render_vm(stopped), strict=True))
    non_empty = {name for name, chunk in rendered.items() if chunk}
    assert non_empty == {"kubevirt_vss_vm_info"}


def test_family_names_follow_the_rules() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for family in FAMILIES:
        assert family.name.startswith("kubevirt_vss_")
        assert family.name.endswith("_total") == (family.kind == "counter")
        assert "namespace" not in family.labels and "name" not in family.labels


def _store() -> MetricsStore:
    store = MetricsStore()
    store.put(WINDOWS.key, WINDOWS)
    store.put(VmKey("default", "off"), VmState(key=VmKey("default", "off"), phase="Stopped"))
    return store


def test_text_round_trip() -> None:
    body = per_vm_body(_store(), openmetrics=False).decode()
    families = {f.name: f for f in parse_text(body)}
    assert families["kubevirt_vss_freeze_errors"].type == "counter"
    assert len(families["kubevirt_vss_vm_info"].samples) == 2
    volume = families["kubevirt_vss_volume_info"].samples[0].labels["volume"]
    assert volume == "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\"


def test_openmetrics_round_trip() -> None:
    body = (per_vm_body(_store(), openmetrics=True) + EOF_LINE).decode()
    families = {f.name: f for f in parse_openmetrics(body)}
    assert families["kubevirt_vss_vm"].type == "info"
    assert families["kubevirt_vss_freeze_errors"].type == "counter"
    sample = families["kubevirt_vss_freeze_errors"].samples[0]
    assert sample.name == "kubevirt_vss_freeze_errors_total" and sample.value == 2.0
    writer = families["kubevirt_vss_writer_failed"].samples[0]
    assert writer.labels["writer"] == 'Writer "quoted"'


def test_matches_a_naive_prometheus_client_collector() -> None:
    """Our bytes carry the same samples that prometheus_client itself would expose for these states."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    states = [WINDOWS, VmState(key=VmKey("default", "off"), phase="Stopped")]

    class Naive:
        def collect(self):  # type: ignore[no-untyped-def]
            for family in FAMILIES:
                labels = ["namespace", "name", *family.labels]
                if family.kind == "counter":
                    metric = CounterMetricFamily(family.name.removesuffix("_total"), family.help, labels=labels)
                else:
                    metric = GaugeMetricFamily(family.name, family.help, labels=labels)
                for state in states:
                    for values, value in family.samples(state):
                        metric.add_metric([state.key.namespace, state.key.name, *values], value)
                yield metric

    registry = CollectorRegistry()
    registry.register(Naive())
    naive = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in parse_text(generate_latest(registry).decode())
        for s in f.samples
    }
    store = MetricsStore()
    for state in states:
        store.put(state.key, state)
    ours = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in parse_text(per_vm_body(store, openmetrics=False).decode())
        for s in f.samples
    }
    assert ours == naive
