from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from exporter.cli.run import add_arguments
from exporter.settings import Address, Settings, SettingsError, from_args, parse_address, shard_from_pod_name


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9745", Address("127.0.0.1", 9745)), (":80", Address("0.0.0.0", 80)), ("[::1]:1", Address("::1", 1))],
)
def test_parse_address(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["9745", "host", "host:99999", "[::1]", "a:b"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_defaults() -> None:
    settings = from_args(parse())
    assert settings.listen == Address("0.0.0.0", 9745)
    assert settings.total_shards == 1 and settings.shard == 0
    assert settings.guest_report_listen is None and not settings.follow_launcher_logs


def test_every_flag_defaults_to_the_setting() -> None:
    parsed, defaults = from_args(parse()), Settings()

    differing = {f.name for f in fields(Settings) if getattr(parsed, f.name) != getattr(defaults, f.name)}

    assert differing == {"log_format"}  # left to start-up: console on a terminal, else json


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        from_args(parse("--listen", "nowhere", "--guestosinfo-concurrency", "0", "--guest-report-listen", ":9746"))
    assert set(error.value.problems) == {"listen", "guestosinfo_concurrency", "guest_report_token_file"}


def test_shard_from_statefulset_pod_name() -> None:
    assert shard_from_pod_name("kubevirt-vss-exporter-2") == 2
    assert shard_from_pod_name("exporter") is None
    settings = from_args(parse("--total-shards", "3"), environ={"POD_NAME": "kubevirt-vss-exporter-2"})
    assert (settings.shard, settings.total_shards) == (2, 3)
    with pytest.raises(SettingsError):
        from_args(parse("--total-shards", "3"), environ={"POD_NAME": "kubevirt-vss-exporter-7"})
    with pytest.raises(SettingsError):
        from_args(parse("--total-shards", "3"), environ={"HOSTNAME": "laptop"})


def test_namespaces_are_deduplicated(tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    settings = from_args(
        parse(
            "--namespace",
            "a",
            "--namespace",
            "b",
            "--namespace",
            "a",
            "--guest-report-listen",
            "127.0.0.1:0",
            "--guest-report-token-file",
            str(token),
        )
    )
    assert settings.namespaces == ("a", "b")
    assert settings.guest_report_listen == Address("127.0.0.1", 0)


def test_metric_lists_are_split_on_commas_and_kept() -> None:
    settings = from_args(parse("--metric-denylist", "kubevirt_vss_guest_volume_.*, kubevirt_vss_writer_failed_info"))
    assert settings.metric_denylist == ("kubevirt_vss_guest_volume_.*", "kubevirt_vss_writer_failed_info")
    assert settings.metric_allowlist == ()
    settings = from_args(
        parse("--metric-allowlist", "kubevirt_vss_vm_info", "--metric-allowlist", "kubevirt_vss_fs_.*")
    )
    assert settings.metric_allowlist == ("kubevirt_vss_vm_info", "kubevirt_vss_fs_.*")


def test_metric_allowlist_and_denylist_are_mutually_exclusive() -> None:
    with pytest.raises(SettingsError) as error:
        from_args(parse("--metric-allowlist", "kubevirt_vss_vm_info", "--metric-denylist", "kubevirt_vss_writers"))
    assert "mutually exclusive" in error.value.problems["metric_allowlist"]


def test_invalid_metric_pattern_is_named() -> None:
    with pytest.raises(SettingsError) as error:
        from_args(parse("--metric-denylist", "kubevirt_vss_ok,kubevirt_vss_(bad"))
    assert set(error.value.problems) == {"metric_denylist"}
    assert "'kubevirt_vss_(bad' is not a valid regular expression" in error.value.problems["metric_denylist"]


def test_runbook_base_url_defaults_to_the_projects_and_can_point_at_a_mirror() -> None:
    from exporter.state.runbooks import RUNBOOK_BASE_URL

    assert from_args(parse()).runbook_base_url == RUNBOOK_BASE_URL
    mirrored = from_args(parse("--runbook-base-url", "https://wiki.internal/runbooks"))
    assert mirrored.runbook_base_url == "https://wiki.internal/runbooks"
