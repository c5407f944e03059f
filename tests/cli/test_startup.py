"""Start-up that says what is wrong: one line, exit code 2, no traceback; help with every default;
the same log format and timestamp in ``run`` and ``simulate``."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from pathlib import Path

import pytest
import yaml

from exporter.cli import build_parser
from exporter.simulator import Simulator, SimulatorConfig

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def exporter(*args: str, timeout: float = 60.0) -> tuple[int, list[str]]:
    """Run the CLI as a user would; its exit code and its log lines (stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", *args, "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, stderr.decode().splitlines()


def one_error(lines: list[str], event: str) -> dict:
    assert not any("Traceback" in line for line in lines), lines
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert (record["event"], record["level"]) == (event, "error")
    assert ISO_UTC.match(record["timestamp"])
    return record


def kubeconfig(path: Path, server: str) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


@pytest.mark.slow  # runs the command as a process
async def test_a_missing_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, lines = await exporter("run", "--kubeconfig", str(tmp_path / "nowhere"), "--listen", "127.0.0.1:0")
    record = one_error(lines, "kubernetes_configuration_unusable")
    assert code == 2 and "does not exist" in record["problem"]


@pytest.mark.slow  # runs the command as a process
async def test_a_kubeconfig_that_is_not_one_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("just: [some, yaml]\n")
    code, lines = await exporter("run", "--kubeconfig", str(tmp_path / "kubeconfig"), "--listen", "127.0.0.1:0")
    record = one_error(lines, "kubernetes_configuration_unusable")
    assert code == 2 and str(tmp_path / "kubeconfig") in record["problem"]


@pytest.mark.slow  # runs the command as a process
async def test_no_cluster_behind_the_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    path = kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    code, lines = await exporter("run", "--kubeconfig", path, "--listen", "127.0.0.1:0")
    record = one_error(lines, "kubernetes_api_unreachable")
    assert code == 2 and f"127.0.0.1:{port}" in record["problem"]


@pytest.mark.slow  # runs the command as a process
async def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with Simulator(SimulatorConfig(story=False)) as simulator:
        simulator.write_kubeconfig(tmp_path / "kubeconfig")
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            code, lines = await exporter(
                "run", "--kubeconfig", str(tmp_path / "kubeconfig"), "--listen", f"127.0.0.1:{port}"
            )
    record = one_error(lines, "cannot_listen")
    assert code == 2 and record["address"] == f"127.0.0.1:{port}" and record["listener"] == "metrics"
    assert "in use" in record["problem"]


@pytest.mark.slow  # runs the command as a process
async def test_simulate_logs_with_the_same_timestamp_format_as_run(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "simulate", "--no-story", "--listen", "127.0.0.1:0", "--log-format", "json",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        first = json.loads(await asyncio.wait_for(process.stderr.readline(), 30))
    finally:
        process.terminate()
        await process.wait()
    assert first["event"] == "simulator_started" and ISO_UTC.match(first["timestamp"])


def test_run_help_shows_every_default() -> None:
    run = build_parser("run")._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    formatter = run._get_formatter()
    for action in run._actions:
        if not action.option_strings or action.nargs == 0:  # flags are off unless given
            continue
        shown = " ".join(formatter._expand_help(action).split())
        assert "default" in shown, action.option_strings
        if action.default not in (None, False):
            values = {str(action.default)} | ({f"{action.default:g}"} if isinstance(action.default, float) else set())
            assert any(value in shown for value in values), (action.option_strings, shown)


@pytest.mark.parametrize("command", ["run", "simulate"])
def test_both_commands_take_the_same_log_options(command: str) -> None:
    args = build_parser(command).parse_args([command, "--log-format", "json", "--log-level", "warning"])
    assert (args.log_format, args.log_level) == ("json", "warning")
