"""Packaging metadata that keeps ``pip install`` quiet: the license as an SPDX expression (PEP 639)."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"


def test_license_is_an_spdx_string_and_the_backend_understands_it() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    # A table ({text = ...}) makes setuptools print a deprecation warning on every install.
    assert project["project"]["license"] == "Apache-2.0"
    requires = project["build-system"]["requires"]
    assert "setuptools>=77" in requires  # the first setuptools that reads an SPDX license string
