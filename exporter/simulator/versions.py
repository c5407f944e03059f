"""KubeVirt release features that change what the simulated cluster writes (reference/kubevirt.md §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True, order=True, slots=True)
class KubeVirtVersion:
    """A KubeVirt release as ``major.minor.patch``; its properties say which behaviour it has."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> KubeVirtVersion:
        """Parse ``1.8.0`` or ``v1.8.0``; raise ValueError otherwise."""
        match = _VERSION.match(text.strip())
        if match is None:
            raise ValueError(f"not a KubeVirt version (want X.Y.Z): {text!r}")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @property
    def tag(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def _t(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def error_in_status(self) -> bool:
        """Freeze errors are written into snapshot ``status.error`` with the handler body (v1.4.1+)."""
        return self._t >= (1, 4, 1)

    @property
    def quiesce_failed(self) -> bool:
        """``QuiesceFailed`` is set after a failed freeze, whose error starts ``Failed freezing vm``."""
        t = self._t
        return (1, 5, 2) <= t < (1, 6, 4) or (1, 7, 0) <= t < (1, 7, 2)

    @property
    def quiesce_timeout(self) -> bool:
        """A Windows thaw past the 10 s VSS limit sets ``QuiesceTimeout``."""
        t = self._t
        return (1, 6, 4) <= t < (1, 7, 0) or t >= (1, 7, 2)

    @property
    def paused_indication(self) -> bool:
        """A paused VM is snapshotted without freeze and marked ``Paused``."""
        t = self._t
        return (1, 5, 3) <= t < (1, 6, 0) or t >= (1, 6, 1)

    @property
    def sorted_indications(self) -> bool:
        """Indications are a sorted set; older releases kept append order (Online first)."""
        return self._t >= (1, 4, 1) and self._t != (1, 5, 0)

    @property
    def source_indications(self) -> bool:
        return self._t >= (1, 7, 0)

    @property
    def snapshot_v1beta1(self) -> bool:
        return self._t >= (1, 3, 0)

    @property
    def backup_api(self) -> bool:
        return self._t >= (1, 8, 0)

    @property
    def freeze_error_event(self) -> bool:
        return self._t >= (1, 2, 1)

    @property
    def vmi_id_label(self) -> bool:
        return self._t >= (1, 7, 0)
