"""Typed records that flow from the API edge into judgement and rendering.

Everything here is immutable; state changes by building new records.
"""

from __future__ import annotations

from typing import NamedTuple


class VmKey(NamedTuple):
    """Identity of a VM across its VirtualMachine, its VMI lives and its snapshots."""

    namespace: str
    name: str
