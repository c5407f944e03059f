"""Which VMs a shard exports: a stable hash of the VM's namespace/name, modulo the shard count.

The key is namespace/name rather than a UID because every source names the VM that way
(snapshots, events and VMIs without a VirtualMachine carry no VM UID), so each object can be
placed without first seeing another one, and a VM keeps its shard across VMI restarts.
"""

from __future__ import annotations

import hashlib

from exporter.state.records import VmKey


def shard_of(key: VmKey, total_shards: int) -> int:
    digest = hashlib.sha256(f"{key.namespace}/{key.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total_shards


def owns(key: VmKey, *, shard: int, total_shards: int) -> bool:
    """Whether shard ``shard`` of ``total_shards`` exports this VM (a single shard exports every VM)."""
    return total_shards <= 1 or shard_of(key, total_shards) == shard
