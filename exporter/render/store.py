"""Per-VM pre-rendered bytes, joined per family at scrape time (the kube-state-metrics approach).

A VM's lines are rendered once when its state changes; a scrape only concatenates. VMs are
spread over a fixed number of blocks per family, and each block caches its gzip member, so a
change to one VM costs re-compressing one block of the families whose lines changed — not the
whole body. Plain bodies are joined per scrape rather than cached: Prometheus asks for gzip, and
a second copy of every line would double the store's memory. A gzip body may be several members back to back
(RFC 1952 §2.2), which is how the cached members are served.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.render.families import FAMILIES, FamilySpec, render_vm
from exporter.state.records import VmKey, VmState

BLOCKS = 64
GZIP_LEVEL = 6


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def _block_of(key: VmKey) -> int:
    # adler32 is fast and stable across processes (unlike hash()); it only spreads VMs over blocks.
    return zlib.adler32(f"{key.namespace}/{key.name}".encode()) % BLOCKS


@dataclass(frozen=True, slots=True)
class _Headers:
    """HELP/TYPE lines of the stored families, per format, plain and as gzip members."""

    text: tuple[bytes, ...]
    openmetrics: tuple[bytes, ...]
    text_gz: tuple[bytes, ...]
    openmetrics_gz: tuple[bytes, ...]

    @classmethod
    def of(cls, families: Sequence[FamilySpec]) -> _Headers:
        text = tuple(family.header.text() for family in families)
        openmetrics = tuple(family.header.openmetrics() for family in families)
        return cls(text, openmetrics, tuple(map(_gzip, text)), tuple(map(_gzip, openmetrics)))


class _Block:
    """The lines of some VMs for one family, with a cached gzip member."""

    __slots__ = ("chunks", "gzipped")

    def __init__(self) -> None:
        self.chunks: dict[VmKey, bytes] = {}
        self.gzipped: bytes | None = b""

    def set(self, key: VmKey, chunk: bytes) -> bool:
        if chunk:
            if self.chunks.get(key) == chunk:
                return False
            self.chunks[key] = chunk
        elif self.chunks.pop(key, None) is None:
            return False
        self.gzipped = None
        return True

    def plain(self) -> bytes:
        return b"".join(self.chunks.values())

    def compressed(self) -> bytes:
        if self.gzipped is None:
            plain = self.plain()
            self.gzipped = _gzip(plain) if plain else b""
        return self.gzipped


class MetricsStore:
    """VM key → rendered bytes per family. Not thread-safe: one event loop owns it.

    Only ``families`` are ever rendered (see render/selection.py): a family left out costs nothing.
    """

    def __init__(self, families: Sequence[FamilySpec] = FAMILIES) -> None:
        self.families = tuple(families)
        self._headers = _Headers.of(self.families)
        self._blocks = [[_Block() for _ in range(BLOCKS)] for _ in self.families]
        self._keys: set[VmKey] = set()
        self.generation = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def put(self, key: VmKey, state: VmState | None) -> None:
        """Render and store one VM; ``None`` removes it and all its series."""
        if state is None:
            self.delete(key)
            return
        block = _block_of(key)
        changed = False
        for per_family, chunk in zip(self._blocks, render_vm(state, self.families), strict=True):
            changed |= per_family[block].set(key, chunk)
        self._keys.add(key)
        if changed:
            self.generation += 1

    def delete(self, key: VmKey) -> None:
        if key not in self._keys:
            return
        block = _block_of(key)
        for per_family in self._blocks:
            per_family[block].set(key, b"")
        self._keys.discard(key)
        self.generation += 1

    def pieces(self, *, openmetrics: bool, compress: bool) -> list[bytes]:
        """The per-VM part of a scrape as a list of byte strings to send in order.

        Built synchronously, so a response streamed from it is one consistent view even if the
        store changes while it is being written. With ``compress`` every piece is a gzip member.
        """
        h = self._headers
        if compress:
            headers = h.openmetrics_gz if openmetrics else h.text_gz
        else:
            headers = h.openmetrics if openmetrics else h.text
        out: list[bytes] = []
        for header, blocks in zip(headers, self._blocks, strict=True):
            out.append(header)
            for block in blocks:
                piece = block.compressed() if compress else block.plain()
                if piece:
                    out.append(piece)
        return out
