"""``make image``: builds with whichever of docker, podman or buildah is on PATH, and says so when none is."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.tools import required_tool

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
PUBLISHED = "ghcr.io/kubevirt-vss-exporter/kubevirt-vss-exporter"


def _path_with(tmp_path: Path, *engines: str) -> str:
    """A PATH with only ``sed`` (the Makefile reads the version with it) and fake engines that echo their argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    sed = shutil.which("sed")
    assert sed is not None
    (bin_dir / "sed").symlink_to(sed)
    for engine in engines:
        fake = bin_dir / engine
        fake.write_text(f'#!/bin/sh\necho "{engine} $*"\n')
        fake.chmod(0o755)
    return str(bin_dir)


def _make_image(tmp_path: Path, *engines: str, variables: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {"PATH": _path_with(tmp_path, *engines), "HOME": str(tmp_path)}
    return subprocess.run(
        [required_tool("make"), "--no-print-directory", "-s", "-C", str(REPO), "image", *variables],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_without_an_engine_it_fails_with_a_clear_error(tmp_path: Path) -> None:
    result = _make_image(tmp_path)
    assert result.returncode != 0
    assert "make image needs docker, podman or buildah on PATH; none was found" in result.stderr


@pytest.mark.parametrize("engine", ["docker", "podman", "buildah"])
def test_it_builds_the_published_name_at_the_package_version_with_any_engine(tmp_path: Path, engine: str) -> None:
    result = _make_image(tmp_path, engine)
    assert result.returncode == 0, result.stderr
    built = result.stdout.strip().splitlines()[-1].split()
    assert built[:2] == [engine, "build"]
    assert built[built.index("-t") + 1] == f"{PUBLISHED}:{VERSION}"
    assert f"VERSION={VERSION}" in built and built[-1] == "."


def test_docker_is_preferred_and_every_name_can_be_overridden(tmp_path: Path) -> None:
    result = _make_image(tmp_path, "buildah", "podman", "docker")
    assert result.stdout.split()[0] == "docker"
    overrides = ("CONTAINER_ENGINE=podman", "IMAGE=reg.example/x", "VERSION=9")
    result = _make_image(tmp_path / "again", "podman", "docker", variables=overrides)
    built = result.stdout.split()
    assert built[0] == "podman"
    assert built[built.index("-t") + 1] == "reg.example/x:9"
