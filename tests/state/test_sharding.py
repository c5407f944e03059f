from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from exporter.state.records import VmKey
from exporter.state.sharding import owns, shard_of


def test_documented_hash() -> None:
    key = VmKey("finance", "win-sql-01")
    digest = hashlib.sha256(b"finance/win-sql-01").digest()
    assert shard_of(key, 7) == int.from_bytes(digest[:8], "big") % 7


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), st.integers(min_value=1, max_value=16))
def test_exactly_one_shard_owns_each_vm(namespace: str, name: str, total: int) -> None:
    key = VmKey(namespace, name)
    owners = [shard for shard in range(total) if owns(key, shard=shard, total_shards=total)]
    assert owners == [shard_of(key, total)]


def test_single_shard_owns_everything() -> None:
    assert owns(VmKey("a", "b"), shard=0, total_shards=1)
