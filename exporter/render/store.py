"""Per-VM pre-rendered bytes, joined per family at scrape time (the kube-state-metrics approach).

A VM's lines are rendered once when its state changes; a scrape only concatenates. VMs are
spread over a fixed number of blocks per family, and each block keeps its lines only as one gzip
member (a gzip body may be several members back to back, RFC 1952 §2.2, which is how they are
served), with each VM's slot, length and a hash of its lines beside it. A change to one VM that
alters a family's lines is held until the next scrape, which inflates that block once, puts
every changed VM's lines in and compresses it again; lines that did not change (same hash) touch
nothing. Plain-text scrapes inflate the members: Prometheus asks for gzip, and keeping the plain
lines as well would cost ten times the memory of the compressed ones. They inflate one member at a
time as the body is sent (``plain_pieces``), from the members as they were when the scrape began,
so a text scrape never holds the whole plain body and its first bytes leave at once.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from exporter.render.families import FAMILIES, FamilySpec, render_vm
from exporter.state.records import VmKey, VmState

# At 10k VMs a block holds ~40 VMs (a few KiB of lines per family), at 100k ~400: small enough
# that re-compressing one after a change is cheap, large enough to compress well.
BLOCKS = 256
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
    """The lines of some VMs for one family: one gzip member, each VM's length and hash by slot,
    and lines changed since the member was built."""

    __slots__ = ("gzipped", "hashes", "pending", "plain_size", "sizes")

    def __init__(self) -> None:
        self.gzipped = b""
        self.plain_size = 0  # bytes the member inflates to
        self.sizes = array("I")
        self.hashes = array("q")
        self.pending: dict[int, bytes] | None = None

    def set(self, slot: int, chunk: bytes) -> bool:
        """Put ``chunk`` in ``slot``; False when it holds those very lines already."""
        digest = hash(chunk)  # hash(b"") == 0: a new, empty slot is unchanged
        if slot < len(self.hashes) and self.hashes[slot] == digest:
            return False
        missing = slot + 1 - len(self.hashes)
        if missing > 0:
            self.hashes.extend([0] * missing)
        self.hashes[slot] = digest
        if self.pending is None:
            self.pending = {}
        self.pending[slot] = chunk
        return True

    def compressed(self) -> bytes:
        if self.pending is not None:
            chunks = self._chunks()
            missing = len(self.hashes) - len(chunks)
            chunks.extend([b""] * missing)
            for slot, chunk in self.pending.items():
                chunks[slot] = chunk
            plain = b"".join(chunks)
            self.gzipped = _gzip(plain) if plain else b""
            self.plain_size = len(plain)
            self.sizes = array("I", map(len, chunks))
            self.pending = None
        return self.gzipped

    def _chunks(self) -> list[bytes]:
        """The member's lines split back into slots."""
        if not self.gzipped:
            return [b""] * len(self.sizes)
        plain = memoryview(zlib.decompress(self.gzipped, wbits=31))
        chunks: list[bytes] = []
        offset = 0
        for size in self.sizes:
            chunks.append(bytes(plain[offset : offset + size]))
            offset += size
        return chunks


class MetricsStore:
    """VM key → rendered bytes per family. Not thread-safe: one event loop owns it.

    Only ``families`` are ever rendered (see render/selection.py): a family left out costs nothing.
    """

    def __init__(self, families: Sequence[FamilySpec] = FAMILIES) -> None:
        self.families = tuple(families)
        self._headers = _Headers.of(self.families)
        self._blocks = [[_Block() for _ in range(BLOCKS)] for _ in self.families]
        # Each VM's slot in its block (the same in every family); slots of deleted VMs are reused.
        self._slots: dict[VmKey, int] = {}
        self._slots_used = [0] * BLOCKS
        self._free_slots: list[list[int]] = [[] for _ in range(BLOCKS)]
        # Blocks with lines changed since their member was built: compressed ahead of the next
        # scrape by ``compress_pending`` when the owner calls it, else by the scrape itself.
        self._pending: dict[_Block, None] = {}
        self.generation = 0

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def put(self, key: VmKey, state: VmState | None) -> None:
        """Render and store one VM; ``None`` removes it and all its series."""
        if state is None:
            self.delete(key)
            return
        block = _block_of(key)
        slot = self._slots.get(key)
        if slot is None:
            free = self._free_slots[block]
            if free:
                slot = free.pop()
            else:
                slot = self._slots_used[block]
                self._slots_used[block] += 1
            self._slots[key] = slot
        changed = False
        for per_family, chunk in zip(self._blocks, render_vm(state, self.families), strict=True):
            if per_family[block].set(slot, chunk):
                self._pending[per_family[block]] = None
                changed = True
        if changed:
            self.generation += 1

    def delete(self, key: VmKey) -> None:
        slot = self._slots.pop(key, None)
        if slot is None:
            return
        block = _block_of(key)
        for per_family in self._blocks:
            if per_family[block].set(slot, b""):
                self._pending[per_family[block]] = None
        self._free_slots[block].append(slot)
        self.generation += 1

    def compress_pending(self, limit: int) -> int:
        """Build the members of up to ``limit`` changed blocks now; returns how many are left.

        Called between other work, it keeps a scrape after a burst of changes from having to
        compress them all itself.
        """
        for block in list(itertools.islice(self._pending, limit)):
            del self._pending[block]
            block.compressed()
        return len(self._pending)

    def pieces(self, *, openmetrics: bool, compress: bool) -> list[bytes]:
        """The per-VM part of a scrape as a list of byte strings to send in order.

        Built synchronously, so a response streamed from it is one consistent view even if the
        store changes while it is being written. With ``compress`` every piece is a gzip member.
        """
        if not compress:
            return list(self.plain_pieces(openmetrics=openmetrics))
        h = self._headers
        out: list[bytes] = []
        for header, blocks in zip(h.openmetrics_gz if openmetrics else h.text_gz, self._blocks, strict=True):
            out.append(header)
            for block in blocks:
                piece = block.compressed()
                if piece:
                    out.append(piece)
        self._pending.clear()  # every block was built above
        return out

    def plain_pieces(self, *, openmetrics: bool) -> PlainPieces:
        """The per-VM part of a plain scrape, inflated piece by piece as it is iterated.

        The members are taken now (building changed ones), so the body is the store as it is at
        this call however it changes while the pieces are sent; only one inflated piece exists at a time.
        """
        h = self._headers
        parts: list[tuple[bool, bytes]] = []
        size = 0
        for header, blocks in zip(h.openmetrics if openmetrics else h.text, self._blocks, strict=True):
            parts.append((False, header))
            size += len(header)
            for block in blocks:
                member = block.compressed()
                if member:
                    parts.append((True, member))
                    size += block.plain_size
        self._pending.clear()  # every block was built above
        return PlainPieces(parts, size)


class PlainPieces:
    """A plain body as it will be sent: headers as they are, gzip members inflated on the way."""

    __slots__ = ("_parts", "size")

    def __init__(self, parts: list[tuple[bool, bytes]], size: int) -> None:
        self._parts = parts
        self.size = size  # bytes in all, known without inflating anything

    def __iter__(self) -> Iterator[bytes]:
        for gzipped, data in self._parts:
            yield zlib.decompress(data, wbits=31) if gzipped else data
