"""External tools the tests drive (kubectl, make, actionlint): found on PATH, or the test cannot run.

Without the tool a test skips on a developer machine and fails under CI (env ``CI`` set), where
.ci/run installs everything the suite needs.
"""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, *, hint: str = "", search_path: str | None = None) -> str:
    """The path of ``name`` (looked up in ``search_path`` first, then PATH)."""
    found = (search_path and shutil.which(name, path=search_path)) or shutil.which(name)
    if found is None:
        message = f"{name} is required and is not installed{f' ({hint})' if hint else ''}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
