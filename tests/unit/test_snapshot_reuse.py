"""A commit re-encodes only the shards whose content changed since the store read or wrote them."""

from typing import Any

import pytest

from dagsync import shard_codec
from dagsync.shard_codec import ShardLimits
from dagsync.snapshot import SnapshotStore
from emulators.local import TABLE

TARGET = "fw.example.com/vsys1"
SMALL_SHARDS = ShardLimits(target_per_shard=20, min_per_shard=5, max_per_shard=40)


@pytest.fixture
def store(dynamodb: Any) -> SnapshotStore:
    return SnapshotStore(TABLE, client=dynamodb, sleep=lambda _: None, limits=SMALL_SHARDS)


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, frozenset[str]]]:
    """The confirmed part of every shard that gets encoded."""
    seen: list[dict[str, frozenset[str]]] = []
    original = shard_codec.encode_shard

    def spy(parts: Any, codec: Any) -> Any:
        seen.append(parts[0])
        return original(parts, codec)

    monkeypatch.setattr(shard_codec, "encode_shard", spy)
    return seen


def estate(count: int) -> dict[str, frozenset[str]]:
    return {
        f"10.0.{i // 250}.{i % 250 + 1}": frozenset({f"illumio.app.A{i % 7}", "illumio.env.P"})
        for i in range(count)
    }


def written_shards(store: SnapshotStore, target: str = TARGET) -> list[str]:
    return [ref.key for ref in store.load(target).manifest.shards]


def test_a_small_change_after_a_load_encodes_only_the_shards_it_touches(
    store: SnapshotStore, encoded: list[dict[str, frozenset[str]]]
) -> None:
    before = estate(640)
    store.commit(store.acquire(store.load(TARGET), "setup", 60), before, {})
    keys_before = written_shards(store)
    assert len(keys_before) == 32
    changed = dict(before)
    changed["10.0.0.1"] = frozenset({"illumio.env.Quarantine"})
    encoded.clear()

    lease = store.acquire(store.load(TARGET), "change", 60)
    store.commit(lease, changed, {})

    assert len(encoded) == 1 and "10.0.0.1" in encoded[0]
    keys_after = written_shards(store)
    assert sum(old != new for old, new in zip(keys_before, keys_after, strict=True)) == 1
    assert SnapshotStore(TABLE, client=store.client, limits=SMALL_SHARDS).load(TARGET).confirmed == changed


def test_a_commit_after_a_checkpoint_encodes_only_what_changed_since_the_checkpoint(
    store: SnapshotStore, encoded: list[dict[str, frozenset[str]]]
) -> None:
    before = estate(640)
    store.commit(store.acquire(store.load(TARGET), "setup", 60), before, {})
    ip = "10.0.1.7"
    new_tags = frozenset({"illumio.env.Quarantine"})
    lease = store.acquire(store.load(TARGET), "change", 60)
    lease = store.checkpoint(lease, {k: v for k, v in before.items() if k != ip}, {ip: before[ip] | new_tags})
    encoded.clear()

    store.commit(lease, {**before, ip: new_tags}, {})

    assert len(encoded) == 1 and ip in encoded[0]
    assert SnapshotStore(TABLE, client=store.client, limits=SMALL_SHARDS).load(TARGET).confirmed == {
        **before,
        ip: new_tags,
    }


def test_a_store_that_knows_nothing_encodes_every_shard_and_writes_the_same_items(
    store: SnapshotStore, encoded: list[dict[str, frozenset[str]]]
) -> None:
    before = estate(640)
    store.commit(store.acquire(store.load(TARGET), "setup", 60), before, {})
    keys_before = written_shards(store)
    changed = {**before, "10.0.0.1": frozenset({"illumio.env.Quarantine"})}
    fresh = SnapshotStore(TABLE, client=store.client, limits=SMALL_SHARDS)
    snapshot = SnapshotStore(TABLE, client=store.client, limits=SMALL_SHARDS).load(TARGET)
    encoded.clear()

    fresh.commit(fresh.acquire(snapshot, "change", 60), changed, {})

    assert len(encoded) == 32
    keys_after = written_shards(store)
    assert sum(old != new for old, new in zip(keys_before, keys_after, strict=True)) == 1
