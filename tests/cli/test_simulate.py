"""The ``simulate`` subcommand: arguments, serving until stopped, and a real process stopped by a signal."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from exporter.cli import simulate

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

RUN_SIMULATE = (
    "import argparse, sys\n"
    "from exporter.cli import simulate\n"
    "parser = argparse.ArgumentParser()\n"
    "simulate.add_arguments(parser)\n"
    "sys.exit(simulate.main(parser.parse_args(sys.argv[1:])))\n"
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults() -> None:
    config, options = simulate.config_from_args(parse())

    assert (config.host, config.port, config.vms, config.seed, config.tls) == ("127.0.0.1", 0, None, 1, True)
    assert (config.kubevirt_version, config.time_speed, config.story) == ("1.8.0", 1.0, True)
    assert options == simulate.ServeOptions()
    assert config.compaction_interval == 300.0  # kube-apiserver's default --etcd-compaction-interval


def test_compaction_interval_zero_turns_compaction_by_the_clock_off() -> None:
    config, _ = simulate.config_from_args(parse("--compaction-interval", "0"))
    assert config.compaction_interval is None


def test_every_flag_reaches_the_config(tmp_path: Path) -> None:
    config, options = simulate.config_from_args(parse(
        "--listen", "[::1]:8443", "--vms", "500", "--seed", "7", "--tls", "--kubevirt-version", "v1.5.2",
        "--time-speed", "30", "--no-story", "--snapshot-interval", "60", "--write-kubeconfig", str(tmp_path / "k"),
        "--guestosinfo-delay", "0.5", "--guestosinfo-fail-rate", "0.1", "--expire-watches-every", "20",
        "--drop-streams-every", "30", "--malformed", "3", "--history-limit", "50", "--compaction-interval", "90",
    ))

    assert (config.host, config.port, config.vms, config.seed, config.tls) == ("::1", 8443, 500, 7, True)
    assert (config.kubevirt_version, config.time_speed, config.story, config.snapshot_interval) == (
        "v1.5.2", 30.0, False, 60.0)
    assert (config.history_limit, config.compaction_interval) == (50, 90.0)
    assert options == simulate.ServeOptions(
        kubeconfig=tmp_path / "k", guestosinfo_delay=0.5, guestosinfo_fail_rate=0.1, expire_watches_every=20.0,
        drop_streams_every=30.0, malformed=3)


@pytest.mark.parametrize("argv", [
    ["--listen", "nowhere"], ["--listen", "127.0.0.1:99999"], ["--kubevirt-version", "latest"],
    ["--time-speed", "0"], ["--guestosinfo-fail-rate", "2"], ["--vms", "-1"], ["--compaction-interval", "-1"],
])
def test_bad_arguments_are_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


async def test_serve_until_stopped_with_faults(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    config, options = simulate.config_from_args(parse(
        "--write-kubeconfig", str(kubeconfig), "--malformed", "2", "--expire-watches-every", "0.3",
        "--guestosinfo-fail-rate", "1", "--no-tls",
    ))
    stop = asyncio.Event()
    started = asyncio.Event()
    server = asyncio.create_task(simulate.serve(config, options, stop=stop, on_started=lambda _: started.set()))
    try:
        async with asyncio.timeout(15):
            await started.wait()
        loaded = yaml.safe_load(kubeconfig.read_text())
        url = loaded["clusters"][0]["cluster"]["server"]
        headers = {"Authorization": f"Bearer {loaded['users'][0]['user']['token']}"}
        async with aiohttp.ClientSession(base_url=url, headers=headers) as http:
            async with http.get("/apis/kubevirt.io/v1/namespaces/sim-malformed/virtualmachineinstances") as r:
                assert len((await r.json())["items"]) == 2
            path = "/apis/subresources.kubevirt.io/v1/namespaces/finance/virtualmachineinstances/win-ad-01/guestosinfo"
            async with http.get(path) as r:
                assert r.status == 500
            async with http.get("/api/v1/pods", params={"watch": "true", "resourceVersion": "0"}) as r:
                lines = [json.loads(line) async for line in r.content]
        assert lines[-1]["type"] == "ERROR"
        assert lines[-1]["object"]["code"] == 410
    finally:
        stop.set()
        assert await asyncio.wait_for(server, timeout=10) == 0


@pytest.mark.slow
def test_process_logs_its_url_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_SIMULATE, "--write-kubeconfig", str(kubeconfig), "--time-speed", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kubeconfig.exists()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert process.returncode == 0, err
    # Logs go to standard error, as the exporter's do.
    assert "simulator_started" in err
    assert url in err
    assert "simulator_stopped" in err


async def test_objects_file_is_served_exactly_without_a_story(tmp_path: Path) -> None:
    objects = tmp_path / "dump.yaml"
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "w1", "namespace": "cust", "uid": "vm-uid", "resourceVersion": "123456"},
          "status": {"printableStatus": "Running"}}
    unserved = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                "metadata": {"name": "d", "namespace": "cust"}}
    objects.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [vm, unserved]}))
    config, options = simulate.config_from_args(parse("--objects", str(objects), "--no-tls"))
    assert config.story is False and options.objects == objects

    stop = asyncio.Event()
    started = asyncio.Event()
    served: list[simulate.Simulator] = []

    def on_started(sim: simulate.Simulator) -> None:
        served.append(sim)
        started.set()

    server = asyncio.create_task(simulate.serve(config, options, stop=stop, on_started=on_started))
    try:
        async with asyncio.timeout(15):
            await started.wait()
        sim = served[0]
        async with aiohttp.ClientSession(base_url=sim.url, headers={"Authorization": f"Bearer {sim.token}"}) as http:
            async with http.get("/apis/kubevirt.io/v1/virtualmachines") as r:
                items = (await r.json())["items"]
            async with http.get("/apis/kubevirt.io/v1/virtualmachineinstances") as r:
                assert (await r.json())["items"] == []
        assert [(i["metadata"]["name"], i["metadata"]["uid"]) for i in items] == [("w1", "vm-uid")]
        assert items[0]["metadata"]["resourceVersion"] != "123456"
    finally:
        stop.set()
        assert await asyncio.wait_for(server, timeout=10) == 0


def test_unreadable_objects_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [")
    assert simulate.main(parse("--objects", str(bad), "--no-tls")) == 2
