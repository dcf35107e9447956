"""A store does not redo work on shards whose content it knows: a commit re-encodes only the shards
whose content changed since the store read or wrote them, and a load that names the pairs it
expects reads only the shards that hold something else (docs/snapshot.md#expected-content)."""

from typing import Any

import pytest

from dagsync.store import codec as shard_codec
from dagsync.store.codec import ShardLimits
from dagsync.store.snapshot import SnapshotStore
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


@pytest.fixture
def shards_read(store: SnapshotStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The shard items every BatchGetItem of the store asked for."""
    asked: list[str] = []
    original = store.table.get_many

    def spy(pk: str, sks: Any) -> Any:
        asked.extend(sks)
        return original(pk, sks)

    monkeypatch.setattr(store.table, "get_many", spy)
    return asked


def committed(store: SnapshotStore, confirmed: dict[str, frozenset[str]], uncertain: Any = None) -> None:
    store.commit(store.acquire(store.load(TARGET), "setup", 60), confirmed, uncertain or {})


def test_a_load_expecting_exactly_the_committed_pairs_reads_no_shard(
    store: SnapshotStore, shards_read: list[str]
) -> None:
    pairs = estate(640)
    committed(store, pairs)
    shards_read.clear()

    snapshot = store.load(TARGET, expect=pairs)

    assert shards_read == []
    assert snapshot.part is None
    assert snapshot.confirmed == pairs and snapshot.uncertain == {}


def test_a_load_expecting_other_pairs_reads_only_the_shards_that_differ(
    store: SnapshotStore, shards_read: list[str]
) -> None:
    pairs = estate(640)
    committed(store, pairs)
    manifest = store.load(TARGET).manifest
    changed = dict(pairs)
    changed["10.0.0.1"] = frozenset({"illumio.env.Quarantine"})
    shards_read.clear()

    snapshot = store.load(TARGET, expect=changed)

    (index,) = shard_codec.shards_of(["10.0.0.1"], manifest.shard_count)
    assert shards_read == [manifest.shards[index].key]
    assert snapshot.confirmed == pairs


def test_a_shard_holding_uncertain_pairs_is_read_whatever_is_expected(
    store: SnapshotStore, shards_read: list[str]
) -> None:
    pairs = estate(640)
    committed(store, pairs, {"10.0.0.2": frozenset({"illumio.env.P"})})
    shards_read.clear()

    snapshot = store.load(TARGET, expect=pairs)

    assert len(shards_read) == 1
    assert snapshot.uncertain == {"10.0.0.2": frozenset({"illumio.env.P"})}
    assert snapshot.confirmed == pairs


def test_the_expected_layout_is_encoded_once_for_every_target_expecting_the_same_pairs(
    store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = estate(640)
    for target in ("fw-a/vsys1", "fw-b/vsys1", "fw-c/vsys1"):
        store.commit(store.acquire(store.load(target), "setup", 60), pairs, {})
    layouts: list[int] = []
    original = shard_codec.layout_digests

    def spy(maps: Any, codec: Any, count: int) -> Any:
        layouts.append(count)
        return original(maps, codec, count)

    monkeypatch.setattr("dagsync.store.snapshot.layout_digests", spy)

    for target in ("fw-a/vsys1", "fw-b/vsys1", "fw-c/vsys1"):
        assert store.load(target, expect=pairs).confirmed == pairs

    assert layouts == [32]


def test_a_commit_after_an_expecting_load_writes_only_the_changed_shard(
    store: SnapshotStore, encoded: list[dict[str, frozenset[str]]]
) -> None:
    pairs = estate(640)
    committed(store, pairs)
    keys_before = written_shards(store)
    changed = dict(pairs)
    changed["10.0.0.1"] = frozenset({"illumio.env.Quarantine"})
    encoded.clear()

    store.commit(store.acquire(store.load(TARGET, expect=pairs), "change", 60), changed, {})

    keys_after = written_shards(store)
    assert len(encoded) == 1 and "10.0.0.1" in encoded[0]
    assert sum(before != after for before, after in zip(keys_before, keys_after, strict=True)) == 1
    assert store.load(TARGET).confirmed == changed
