from __future__ import annotations

import pytest

from exporter.cli import main


def test_invalid_settings_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--listen", "nowhere", "--log-format", "json"]) == 2
    assert "invalid_setting" in capsys.readouterr().err


def test_a_missing_kubeconfig_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", "--kubeconfig", str(tmp_path / "missing"), "--listen", "127.0.0.1:0", "--log-format", "json"]) == 2
    )
    assert "kubernetes_configuration_unusable" in capsys.readouterr().err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "kubevirt-vss-exporter" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "simulate", "explain", "diagnose"):
        assert command in out


def test_conflicting_metric_lists_exit_2_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--metric-allowlist", "a", "--metric-denylist", "b", "--listen", "127.0.0.1:0"]
    argv += ["--log-format", "json"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "invalid_setting" in err and "metric_allowlist" in err and "mutually exclusive" in err
