"""``python -m benchmarks.memory`` runs on small fleets and names the sites it finds. Nothing is timed."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

memory = importlib.import_module("benchmarks.memory")


def test_two_sizes_give_held_bytes_sites_and_a_marginal_cost() -> None:
    small, large = memory.trace(20), memory.trace(60)
    assert 0 < small.held < large.held <= large.peak
    assert any("state/" in site for site, _, _ in large.sites)
    text = memory.report([small, large], sites=3)
    assert "N=20: held" in text and "marginal 20 → 60 VMs" in text
