"""The GitHub Actions workflows: actionlint finds nothing, and the image workflow publishes what deploy/ pulls.

actionlint comes with the test extras (a wheel that ships its binary). Without it the lint test
skips, except under CI (env ``CI`` set), where it fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.tools import required_tool

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
IMAGE_WORKFLOW = WORKFLOWS / "image.yaml"
PLATFORMS = {"linux/amd64", "linux/arm64"}


def _actionlint() -> str:
    # The test extras install it next to the interpreter running the tests.
    return required_tool("actionlint", hint="pip install -e '.[test]'", search_path=str(Path(sys.executable).parent))


def _workflow(path: Path) -> dict[Any, Any]:
    return yaml.safe_load(path.read_text())


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]


def test_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yaml")) + sorted(WORKFLOWS.glob("*.yml"))
    assert files
    # shellcheck, when installed, lets actionlint check the run: scripts too.
    result = subprocess.run(
        [_actionlint(), "-no-color", "-oneline", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tags_push_both_platforms_with_sbom_and_provenance() -> None:
    workflow = _workflow(IMAGE_WORKFLOW)
    # PyYAML reads the bare key `on` as True.
    assert workflow[True]["push"]["tags"] == ["v*.*.*"]
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"contents": "read", "packages": "write"}
    (meta,) = _steps_using(publish, "docker/metadata-action")
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository }}"
    (login,) = _steps_using(publish, "docker/login-action")
    assert login["with"]["registry"] == "ghcr.io"
    (build,) = _steps_using(publish, "docker/build-push-action")
    options = build["with"]
    assert options["push"] is True
    assert set(workflow["env"]["PLATFORMS"].split(",")) == PLATFORMS
    assert options["platforms"] == "${{ env.PLATFORMS }}"
    assert options["sbom"] is True
    assert options["provenance"] == "mode=max"
    assert "VERSION=${{ steps.meta.outputs.version }}" in options["build-args"]


def test_pull_requests_build_without_pushing_or_credentials() -> None:
    workflow = _workflow(IMAGE_WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    build_job = workflow["jobs"]["build"]
    assert build_job["if"] == "github.event_name == 'pull_request'"
    assert "permissions" not in build_job
    assert not _steps_using(build_job, "docker/login-action")
    (build,) = _steps_using(build_job, "docker/build-push-action")
    assert build["with"]["push"] is False
    assert build["with"]["platforms"] == "${{ env.PLATFORMS }}"
    for path in ("Dockerfile", "requirements.lock", "exporter/**"):
        assert path in workflow[True]["pull_request"]["paths"]


def test_every_checkout_drops_its_credentials() -> None:
    for path in WORKFLOWS.glob("*.yaml"):
        for name, job in _workflow(path)["jobs"].items():
            for step in _steps_using(job, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False, (path.name, name)
