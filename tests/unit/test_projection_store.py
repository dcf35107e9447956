"""The change feed's projection and watermark against moto's in-process DynamoDB."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dagsync.core.errors import SnapshotConflict, SnapshotError
from dagsync.core.records import Projection, Watermark
from dagsync.store.codec import ShardLimits, shards_of
from dagsync.store.projection import PROJECTION_PK, WATERMARK_KEY, ProjectionStore
from dagsync.store.table import Table
from emulators.local import TABLE
from tests.support.clock import FakeClock
from tests.support.snapshot import Proxy, unreferenced_items

SMALL_SHARDS = ShardLimits(target_per_shard=20, min_per_shard=5, max_per_shard=40)
EVENT_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = 600.0


def store_of(client: Any, clock: FakeClock | None = None) -> ProjectionStore:
    return ProjectionStore(Table(TABLE, client=client), clock=clock or FakeClock(), limits=SMALL_SHARDS)


def href(n: int) -> str:
    return f"/orgs/1/workloads/w{n}"


def estate(count: int) -> dict[str, tuple[tuple[str, ...], frozenset[str]]]:
    return {
        href(n): (
            (f"10.0.{n // 250}.{n % 250 + 1}", f"2001:db8::{n:x}"),
            frozenset({f"illumio.app.A{n % 7}"}),
        )
        for n in range(count)
    }


def exported(store: ProjectionStore, entries: Any, **marks: Any) -> Watermark:
    watermark = store.load_watermark()
    return store.replace(
        store.load().generation,
        entries,
        Watermark(exported_at=EVENT_AT, revision=watermark.revision, **marks),
        run_id="run-export",
        lease_seconds=LEASE,
    )


def written_shards(proxy: Proxy) -> int:
    return proxy.put_requests()


def garbage(client: Any) -> set[tuple[str, str]]:
    """Shard items no manifest references, and pending garbage (the watermark is no shard)."""
    return unreferenced_items(client) - {(PROJECTION_PK, WATERMARK_KEY)}


def test_nothing_stored_loads_as_generation_zero_and_an_empty_watermark(dynamodb: Any) -> None:
    store = store_of(dynamodb)

    assert store.load() == Projection(0, {})
    assert store.load_watermark() == Watermark()
    assert not Watermark().describes(store.load())


def test_an_export_round_trips_every_entry(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(300))

    loaded = store_of(dynamodb).load()

    assert (loaded.generation, loaded.entries) == (1, estate(300))


def test_the_watermark_is_written_with_the_projection_and_describes_it(dynamodb: Any) -> None:
    applied = frozenset({"/orgs/1/events/a", "/orgs/1/events/b"})

    written = exported(store_of(dynamodb), estate(10), last_event_at=EVENT_AT, applied=applied)

    read = store_of(dynamodb).load_watermark()
    assert read == written == Watermark(EVENT_AT, applied, EVENT_AT, projection_generation=1, revision=1)
    assert read.describes(store_of(dynamodb).load())


def test_an_export_of_an_unchanged_inventory_writes_no_shard(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(300))
    proxy = Proxy(dynamodb)

    exported(store_of(proxy), estate(300))

    assert written_shards(proxy) == 0
    assert store_of(dynamodb).load().generation == 2


def shards_holding(client: Any, keys: set[str]) -> int:
    """How many shards of the committed projection hold `keys` (hrefs or addresses)."""
    manifest = Table(TABLE, client=client).get(PROJECTION_PK, "manifest")
    assert manifest is not None
    return len(shards_of(keys, int(manifest["shard_count"]["N"])))


def keys_of_a_move(n: int, new_address: str) -> set[str]:
    """What moving workload n to `new_address` changes: its entry, and the claimants of the
    addresses it had and has."""
    return {href(n), *estate(n + 1)[href(n)][0], new_address}


def test_an_export_writes_only_the_shards_that_changed(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(300))
    proxy = Proxy(dynamodb)

    exported(
        store_of(proxy), {**estate(300), href(7): (("10.9.9.9",), frozenset({"illumio.env.Quarantine"}))}
    )

    assert written_shards(proxy) == shards_holding(dynamodb, keys_of_a_move(7, "10.9.9.9"))
    assert garbage(dynamodb) == set()


def test_a_targeted_commit_applies_changes_and_removals(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(300))
    store = store_of(dynamodb)
    projection, watermark = store.load(), store.load_watermark()
    moved = (("10.9.9.9",), frozenset({"illumio.env.Quarantine"}))

    store.commit(
        projection.generation,
        {href(7): moved, href(8): None, href(999): moved},
        Watermark(
            EVENT_AT, frozenset({"/orgs/1/events/x"}), watermark.exported_at, revision=watermark.revision
        ),
        run_id="run-feed",
        lease_seconds=LEASE,
    )

    expected = {**estate(300), href(7): moved, href(999): moved}
    del expected[href(8)]
    assert store_of(dynamodb).load().entries == expected
    assert garbage(dynamodb) == set()


def test_a_targeted_commit_after_a_load_reads_no_shard_again_and_writes_only_the_touched_ones(
    dynamodb: Any,
) -> None:
    exported(store_of(dynamodb), estate(300))
    proxy = Proxy(dynamodb)
    store = store_of(proxy)
    projection, watermark = store.load(), store.load_watermark()
    proxy.calls.clear()

    store.commit(
        projection.generation,
        {href(7): (("10.9.9.9",), frozenset())},
        Watermark(EVENT_AT, revision=watermark.revision),
        run_id="run-feed",
        lease_seconds=LEASE,
    )

    assert "batch_get_item" not in proxy.names()
    assert written_shards(proxy) == shards_holding(dynamodb, keys_of_a_move(7, "10.9.9.9"))


def test_a_targeted_commit_from_a_store_that_never_loaded_reads_what_it_needs(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(100))
    watermark = store_of(dynamodb).load_watermark()

    store_of(dynamodb).commit(
        1, {href(3): None}, Watermark(revision=watermark.revision), run_id="run-feed", lease_seconds=LEASE
    )

    assert href(3) not in store_of(dynamodb).load().entries
    assert len(store_of(dynamodb).load().entries) == 99


def test_a_commit_on_a_generation_another_run_replaced_conflicts_and_changes_nothing(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(100))
    stale = store_of(dynamodb)
    projection, watermark = stale.load(), stale.load_watermark()
    exported(store_of(dynamodb), estate(120))

    with pytest.raises(SnapshotConflict, match="another run committed generation 2"):
        stale.commit(
            projection.generation, {href(1): None}, watermark, run_id="run-late", lease_seconds=LEASE
        )

    assert store_of(dynamodb).load().entries == estate(120)
    assert garbage(dynamodb) == set()


def test_a_commit_while_another_run_holds_the_projection_conflicts(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(10))
    table = Table(TABLE, client=dynamodb)
    table.update(
        PROJECTION_PK,
        "manifest",
        update="SET #lease_holder = :h, #lease_run_id = :r, #lease_expires_at = :e, #lease_acquired_at = :a",
        condition="attribute_exists(#generation)",
        values={
            ":h": {"S": "other.0000"},
            ":r": {"S": "other"},
            ":e": {"N": "1700000100"},
            ":a": {"N": "1700000000"},
        },
    )
    store = store_of(dynamodb, FakeClock(1_700_000_050.0))

    with pytest.raises(SnapshotConflict, match=r"another run \(other\) holds the lease"):
        store.commit(1, {href(1): None}, store.load_watermark(), run_id="run-b", lease_seconds=LEASE)


def test_advancing_the_watermark_is_one_small_write_and_leaves_the_projection_alone(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(100))
    proxy = Proxy(dynamodb)
    store = store_of(proxy)

    read = store.load_watermark()
    later = Watermark(
        EVENT_AT + timedelta(minutes=1), frozenset({"/orgs/1/events/y"}), read.exported_at, 1, read.revision
    )
    written = store.advance_watermark(later)

    assert proxy.names() == ["get_item", "put_item"]
    assert proxy.calls[0][1]["Key"]["sk"] == {"S": WATERMARK_KEY}
    assert store_of(dynamodb).load_watermark() == written
    assert written.revision == read.revision + 1
    assert written.describes(store_of(dynamodb).load())


def test_advancing_a_watermark_another_run_wrote_since_it_was_read_conflicts(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(10))
    read = store_of(dynamodb).load_watermark()
    store_of(dynamodb).advance_watermark(read)

    with pytest.raises(SnapshotConflict, match="watermark"):
        store_of(dynamodb).advance_watermark(read)


def test_a_watermark_naming_another_generation_does_not_describe_the_projection(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(10))
    exported(store_of(dynamodb), estate(11))
    stale = Watermark(projection_generation=1, revision=5)

    assert not stale.describes(store_of(dynamodb).load())


def test_a_malformed_watermark_fails_naming_the_item_to_delete(dynamodb: Any) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": PROJECTION_PK},
            "sk": {"S": WATERMARK_KEY},
            "format": {"N": "1"},
        },
    )

    with pytest.raises(SnapshotError, match=r"watermark .* is malformed.*delete the item"):
        store_of(dynamodb).load_watermark()


def test_the_projection_lives_in_its_own_partition(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(50))

    items = dynamodb.scan(TableName=TABLE)["Items"]

    assert {item["pk"]["S"] for item in items} == {PROJECTION_PK}


def shared_estate() -> dict[str, tuple[tuple[str, ...], frozenset[str]]]:
    """300 workloads, two of which (w1 and w2) share the address 10.200.0.1."""
    entries = estate(300)
    entries[href(1)] = ((*entries[href(1)][0], "10.200.0.1"), entries[href(1)][1])
    entries[href(2)] = ((*entries[href(2)][0], "10.200.0.1"), entries[href(2)][1])
    return entries


def batch_gets(proxy: Proxy) -> list[int]:
    """The number of items each BatchGetItem asked for."""
    return [
        len(kwargs["RequestItems"][TABLE]["Keys"]) for name, kwargs in proxy.calls if name == "batch_get_item"
    ]


def test_a_read_around_a_workload_holds_it_and_every_workload_sharing_an_address(dynamodb: Any) -> None:
    exported(store_of(dynamodb), shared_estate())

    around = store_of(dynamodb).load_around({href(1)}, {"10.0.0.2"})

    assert around is not None
    assert around.entries == {href(1): shared_estate()[href(1)], href(2): shared_estate()[href(2)]}
    assert (around.generation, around.workloads) == (1, 300)


def test_a_read_around_a_workload_reads_only_the_shards_it_needs(dynamodb: Any) -> None:
    exported(store_of(dynamodb), shared_estate())
    proxy = Proxy(dynamodb)
    needed = {href(1), href(2), *shared_estate()[href(1)][0]}

    store_of(proxy).load_around({href(1)}, set())

    assert sum(batch_gets(proxy)) <= shards_holding(dynamodb, needed)
    assert sum(batch_gets(proxy)) < shards_holding(dynamodb, set(shared_estate()))


def test_a_read_around_a_new_workload_finds_the_workloads_already_on_its_address(dynamodb: Any) -> None:
    exported(store_of(dynamodb), shared_estate())

    around = store_of(dynamodb).load_around({href(999)}, {"10.200.0.1"})

    assert around is not None
    assert set(around.entries) == {href(1), href(2)}


def test_a_commit_after_a_read_around_writes_only_the_shards_it_read_and_keeps_the_rest(
    dynamodb: Any,
) -> None:
    exported(store_of(dynamodb), shared_estate())
    proxy = Proxy(dynamodb)
    store = store_of(proxy)
    moved = (("10.200.0.1",), frozenset({"illumio.env.Quarantine"}))
    around = store.load_around({href(5)}, {"10.200.0.1"})
    assert around is not None
    read = sum(batch_gets(proxy))

    store.commit(
        around.generation,
        {href(5): moved, href(6): None},
        Watermark(EVENT_AT, revision=store.load_watermark().revision),
        run_id="run-feed",
        lease_seconds=LEASE,
    )

    expected = {**shared_estate(), href(5): moved}
    del expected[href(6)]
    whole = store_of(dynamodb).load()
    assert (whole.entries, whole.workloads) == (expected, 299)
    assert written_shards(proxy) <= read + shards_holding(dynamodb, {href(6), *estate(7)[href(6)][0]})
    assert garbage(dynamodb) == set()


def test_the_claimants_index_follows_a_commit_after_a_read_around(dynamodb: Any) -> None:
    exported(store_of(dynamodb), shared_estate())
    store = store_of(dynamodb)
    around = store.load_around({href(1)}, set())
    assert around is not None
    store.commit(
        around.generation,
        {href(1): (("10.0.0.2",), frozenset())},
        Watermark(EVENT_AT, revision=store.load_watermark().revision),
        run_id="run-feed",
        lease_seconds=LEASE,
    )

    again = store_of(dynamodb).load_around({href(999)}, {"10.200.0.1"})

    on_new_address = store_of(dynamodb).load_around({href(998)}, {"10.0.0.2"})
    assert again is not None
    assert on_new_address is not None
    assert set(again.entries) == {href(2)}
    assert set(on_new_address.entries) == {href(1)}


def test_a_projection_without_the_claimants_index_cannot_be_read_around(dynamodb: Any) -> None:
    exported(store_of(dynamodb), estate(20))
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": PROJECTION_PK}, "sk": {"S": "manifest"}},
        UpdateExpression="REMOVE claimants_indexed",
    )

    assert store_of(dynamodb).load_around({href(1)}, set()) is None


def test_nothing_stored_cannot_be_read_around(dynamodb: Any) -> None:
    assert store_of(dynamodb).load_around({href(1)}, {"10.0.0.2"}) is None


def test_the_watermark_keeps_the_mapping_rules_it_was_written_under(dynamodb: Any) -> None:
    written = exported(store_of(dynamodb), estate(10), rules="rules-fingerprint")

    assert store_of(dynamodb).load_watermark().rules == written.rules == "rules-fingerprint"
