"""Per-VM pre-rendered bytes, joined per family at scrape time (the kube-state-metrics approach).

A VM's lines are rendered once when its state changes; a scrape only concatenates. The joined
body is cached until the next change, so repeated scrapes of an idle fleet cost one lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.render.families import FAMILIES, render_vm
from exporter.state.records import VmKey, VmState

_TEXT_HEADERS = tuple(family.header.text() for family in FAMILIES)
_OPENMETRICS_HEADERS = tuple(family.header.openmetrics() for family in FAMILIES)


@dataclass(slots=True)
class MetricsStore:
    """VM key → rendered bytes per family. Not thread-safe: one event loop owns it."""

    _families: list[dict[VmKey, bytes]] = field(default_factory=lambda: [{} for _ in FAMILIES])
    _keys: set[VmKey] = field(default_factory=set)
    _cache: dict[bool, bytes] = field(default_factory=dict)
    generation: int = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def put(self, key: VmKey, state: VmState | None) -> None:
        """Render and store one VM; ``None`` removes it and all its series."""
        if state is None:
            self.delete(key)
            return
        for per_family, chunk in zip(self._families, render_vm(state), strict=True):
            if chunk:
                per_family[key] = chunk
            else:
                per_family.pop(key, None)
        self._keys.add(key)
        self._changed()

    def delete(self, key: VmKey) -> None:
        if key not in self._keys:
            return
        for per_family in self._families:
            per_family.pop(key, None)
        self._keys.discard(key)
        self._changed()

    def render(self, *, openmetrics: bool) -> bytes:
        """The per-VM part of a scrape body: each family's header, then every VM's lines for it."""
        cached = self._cache.get(openmetrics)
        if cached is not None:
            return cached
        headers = _OPENMETRICS_HEADERS if openmetrics else _TEXT_HEADERS
        parts: list[bytes] = []
        for header, per_family in zip(headers, self._families, strict=True):
            parts.append(header)
            parts.append(b"".join(per_family.values()))
        body = b"".join(parts)
        self._cache[openmetrics] = body
        return body

    def _changed(self) -> None:
        self.generation += 1
        self._cache.clear()
