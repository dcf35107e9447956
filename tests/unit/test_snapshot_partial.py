"""Partial reads (docs/snapshot.md#partial-reads): a targeted update reads and commits only the
shards that hold its IPs, and the rest of the snapshot stays exactly as committed."""

from typing import Any

import pytest

from dagsync.store.codec import ShardLimits, shards_of
from dagsync.store.snapshot import SnapshotStore
from emulators.local import TABLE
from tests.support.snapshot import Proxy, unreferenced_items

TARGET = "fw.example.com/vsys1"
SMALL_SHARDS = ShardLimits(target_per_shard=20, min_per_shard=5, max_per_shard=40)
QUARANTINE = frozenset({"illumio.env.Quarantine"})


def store_of(client: Any, limits: ShardLimits = SMALL_SHARDS) -> SnapshotStore:
    return SnapshotStore(TABLE, client=client, sleep=lambda _: None, limits=limits)


def estate(count: int) -> dict[str, frozenset[str]]:
    return {
        f"10.0.{i // 250}.{i % 250 + 1}": frozenset({f"illumio.app.A{i % 7}", "illumio.env.P"})
        for i in range(count)
    }


@pytest.fixture
def committed(dynamodb: Any) -> dict[str, frozenset[str]]:
    """640 IPs in 32 shards, uncertain pairs on two of them."""
    store = store_of(dynamodb)
    store.commit(
        store.acquire(store.load(TARGET), "setup", 60),
        estate(640),
        {"10.0.1.1": frozenset({"illumio.app.A9"}), "10.0.2.7": frozenset({"illumio.app.A8"})},
    )
    return estate(640)


def shards_read(proxy: Proxy) -> int:
    return sum(
        len(kwargs["RequestItems"][TABLE]["Keys"]) for name, kwargs in proxy.calls if name == "batch_get_item"
    )


def test_a_partial_read_reads_only_the_shards_holding_the_ips(
    dynamodb: Any, committed: dict[str, frozenset[str]]
) -> None:
    proxy = Proxy(dynamodb)

    snapshot = store_of(proxy).load(TARGET, ips={"10.0.0.1", "10.0.1.1"})

    assert shards_read(proxy) == len(shards_of({"10.0.0.1", "10.0.1.1"}, 32)) <= 2
    assert snapshot.confirmed["10.0.0.1"] == committed["10.0.0.1"]
    assert snapshot.uncertain == {"10.0.1.1": frozenset({"illumio.app.A9"})}
    assert len(snapshot.confirmed) < len(committed)


def test_a_partial_read_is_complete_for_every_ip_of_the_shards_it_read(
    dynamodb: Any, committed: dict[str, frozenset[str]]
) -> None:
    snapshot = store_of(dynamodb).load(TARGET, ips={"10.0.0.1"})

    assert snapshot.part is not None
    held = {ip for ip in committed if shards_of({ip}, 32) <= snapshot.part}
    assert set(snapshot.confirmed) == held


def test_a_partial_read_knows_the_pairs_of_the_whole_snapshot(
    dynamodb: Any, committed: dict[str, frozenset[str]]
) -> None:
    snapshot = store_of(dynamodb).load(TARGET, ips={"10.0.0.1"})

    assert snapshot.recorded_pairs == 2 * 640 + 2


def test_a_commit_after_a_partial_read_writes_only_those_shards_and_keeps_every_other_pair(
    dynamodb: Any, committed: dict[str, frozenset[str]]
) -> None:
    proxy = Proxy(dynamodb)
    store = store_of(proxy)
    snapshot = store.load(TARGET, ips={"10.0.0.1"})
    confirmed = {**snapshot.confirmed, "10.0.0.1": QUARANTINE}

    store.commit(store.acquire(snapshot, "feed", 60), confirmed, snapshot.uncertain)

    whole = store_of(dynamodb).load(TARGET)
    assert proxy.put_requests() == 1
    assert whole.confirmed == {**committed, "10.0.0.1": QUARANTINE}
    assert whole.uncertain == {
        "10.0.1.1": frozenset({"illumio.app.A9"}),
        "10.0.2.7": frozenset({"illumio.app.A8"}),
    }
    assert unreferenced_items(dynamodb) == set()


def test_the_manifest_counts_stay_those_of_the_whole_snapshot_after_a_partial_commit(
    dynamodb: Any, committed: dict[str, frozenset[str]]
) -> None:
    store = store_of(dynamodb)
    snapshot = store.load(TARGET, ips={"10.0.0.1", "10.9.9.9"})
    confirmed = {**snapshot.confirmed, "10.9.9.9": QUARANTINE}
    del confirmed["10.0.0.1"]

    store.commit(store.acquire(snapshot, "feed", 60), confirmed, snapshot.uncertain)

    item = store_of(dynamodb).load(TARGET).manifest.item
    assert (item["ips"]["N"], item["confirmed_pairs"]["N"], item["uncertain_pairs"]["N"]) == (
        "640",
        "1279",
        "2",
    )


def test_a_checkpoint_after_a_partial_read_keeps_the_commit_that_follows_partial(
    dynamodb: Any, committed: dict[str, frozenset[str]]
) -> None:
    proxy = Proxy(dynamodb)
    store = store_of(proxy)
    snapshot = store.load(TARGET, ips={"10.0.0.1"})
    lease = store.acquire(snapshot, "feed", 60)

    lease = store.checkpoint(lease, snapshot.confirmed, {**snapshot.uncertain, "10.0.0.1": QUARANTINE})
    store.commit(lease, {**snapshot.confirmed, "10.0.0.1": QUARANTINE}, snapshot.uncertain)

    assert shards_read(proxy) == 1
    assert store_of(dynamodb).load(TARGET).confirmed == {**committed, "10.0.0.1": QUARANTINE}
    assert unreferenced_items(dynamodb) == set()


def test_a_partial_commit_naming_an_ip_outside_the_shards_it_read_commits_the_whole_snapshot(
    dynamodb: Any, committed: dict[str, frozenset[str]]
) -> None:
    store = store_of(dynamodb)
    snapshot = store.load(TARGET, ips={"10.0.0.1"})
    assert snapshot.part is not None
    outside = next(ip for ip in committed if not shards_of({ip}, 32) <= snapshot.part)

    store.commit(store.acquire(snapshot, "feed", 60), {**snapshot.confirmed, outside: QUARANTINE}, {})

    assert store_of(dynamodb).load(TARGET).confirmed == {**committed, outside: QUARANTINE}
    assert unreferenced_items(dynamodb) == set()
