"""What the store reads is bounded: a shard is checked before it is inflated, a manifest by size."""

import zlib
from typing import Any

import pytest

from dagsync.core.errors import SnapshotError
from dagsync.store.codec import DEFAULT_LIMITS, ShardLimits
from dagsync.store.snapshot import SnapshotStore
from emulators.local import TABLE
from tests.support.clock import FakeClock
from tests.support.snapshot import estate, manifest, shard_keys

TARGET = "fw.example.com/vsys1"


def store_of(client: Any, limits: ShardLimits = DEFAULT_LIMITS) -> SnapshotStore:
    return SnapshotStore(TABLE, client=client, clock=FakeClock(), sleep=lambda _: None, limits=limits)


def committed(client: Any, count: int = 50) -> None:
    store = store_of(client)
    store.commit(store.acquire(store.load(TARGET), "setup", 60), estate(count), {})


def test_a_shard_that_would_inflate_past_the_limit_fails_the_load_naming_target_and_shard(
    dynamodb: Any,
) -> None:
    committed(dynamodb)
    key = shard_keys(manifest(dynamodb, TARGET))[0]
    bomb = zlib.compress(b"[" * 20_000_000, 9)
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": TARGET}, "sk": {"S": key}, "data": {"B": bomb}})

    with pytest.raises(SnapshotError, match="inflates past the limit") as raised:
        store_of(dynamodb).load(TARGET)

    assert TARGET in str(raised.value)
    assert key in str(raised.value)


def test_the_store_never_writes_a_shard_it_could_not_read_back(dynamodb: Any) -> None:
    limits = ShardLimits(max_inflated_bytes=4_000)
    store = store_of(dynamodb, limits)
    store.commit(store.acquire(store.load(TARGET), "setup", 60), estate(500), {})

    assert store_of(dynamodb, limits).load(TARGET).confirmed == estate(500)


def test_a_manifest_larger_than_the_limit_is_refused(dynamodb: Any) -> None:
    committed(dynamodb)

    with pytest.raises(SnapshotError, match=r"manifest of .* is malformed: .*more than the limit of 200"):
        store_of(dynamodb, ShardLimits(max_manifest_bytes=200)).load(TARGET)


def test_a_manifest_naming_more_shards_than_the_limit_is_refused(dynamodb: Any) -> None:
    committed(dynamodb, 20_000)

    with pytest.raises(SnapshotError, match="8 shards is more than the limit of 4"):
        store_of(dynamodb, ShardLimits(max_shards=4)).load(TARGET)
