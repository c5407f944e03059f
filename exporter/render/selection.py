"""Which per-VM metric families are rendered: an allow list or a deny list of name patterns.

Modelled on kube-state-metrics' ``--metric-allowlist`` / ``--metric-denylist``: comma-separated
regular expressions, one list or the other. Each pattern must match the whole family name
(``kubevirt_vss_guest_volume_.*``, not a substring). The choice is made once, when the store is
built, so a denied family is never rendered at all; the exporter's own ``kubevirt_vss_exporter_*``
metrics are not per-VM families and are always served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from exporter.render.families import FAMILIES, FamilySpec


def split_patterns(values: Iterable[str]) -> tuple[str, ...]:
    """Comma-separated flag values (possibly repeated) → patterns, blanks dropped, order kept."""
    patterns = (p.strip() for value in values for p in value.split(","))
    return tuple(dict.fromkeys(p for p in patterns if p))


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable regular expression, or None."""
    try:
        re.compile(pattern)
    except re.error as error:
        return f"{pattern!r} is not a valid regular expression: {error}"
    return None


@dataclass(frozen=True, slots=True)
class FamilySelection:
    """At most one of ``allow`` and ``deny``; no patterns at all selects every family."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.allow and self.deny:
            raise ValueError("an allow list and a deny list are mutually exclusive")
        problems = [p for p in map(pattern_problem, self.allow + self.deny) if p]
        if problems:
            raise ValueError("; ".join(problems))

    def keeps(self, name: str) -> bool:
        if self.allow:
            return any(re.fullmatch(p, name) for p in self.allow)
        return not any(re.fullmatch(p, name) for p in self.deny)

    def select(self, families: Sequence[FamilySpec] = FAMILIES) -> tuple[FamilySpec, ...]:
        return tuple(f for f in families if self.keeps(f.name))

    def unmatched(self, families: Sequence[FamilySpec] = FAMILIES) -> tuple[str, ...]:
        """Patterns that match no family: most likely typos, worth a warning."""
        return tuple(
            p for p in self.allow + self.deny if not any(re.fullmatch(p, f.name) for f in families)
        )
