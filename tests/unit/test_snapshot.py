"""SnapshotStore against moto's in-process DynamoDB."""

import math
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dagsync.core.errors import SnapshotConflict, SnapshotError
from dagsync.store.codec import DEFAULT_LIMITS, ShardLimits
from dagsync.store.snapshot import Lease, SnapshotStore
from emulators.local import TABLE
from tests.support.clock import FakeClock
from tests.support.snapshot import TARGET, Proxy, estate, manifest, scan, shard_keys, unreferenced_items

START = 1_700_000_000.0
ITEM_LIMIT = 400 * 1024


class Crash(Exception):
    """Stands for the process dying: not a ClientError, so nothing catches it."""


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, operation)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


# About 20 IPs per shard, so a few hundred IPs exercise many shards quickly.
SMALL_SHARDS = ShardLimits(target_per_shard=20, min_per_shard=5, max_per_shard=40)


def make_store(client: Any, clock: FakeClock, limits: ShardLimits = DEFAULT_LIMITS) -> SnapshotStore:
    return SnapshotStore(TABLE, client=client, clock=clock, sleep=lambda _: None, limits=limits)


def commit(
    store: SnapshotStore,
    confirmed: dict[str, frozenset[str]],
    uncertain: dict[str, frozenset[str]] | None = None,
    *,
    run_id: str = "run-setup",
    target: str = TARGET,
) -> int:
    lease = store.acquire(store.load(target), run_id, 900)
    return store.commit(lease, confirmed, uncertain or {})


def item_size(item: dict[str, Any]) -> int:
    """An upper bound of DynamoDB's item size: names plus values, 3 bytes per list or map entry."""

    def value_size(value: dict[str, Any]) -> int:
        (kind, content), *_ = value.items()
        if kind == "B":
            return len(content)
        if kind in ("S", "N"):
            return len(content.encode()) + 1
        if kind == "SS":
            return sum(len(member.encode()) for member in content)
        if kind == "L":
            return 3 + sum(3 + value_size(entry) for entry in content)
        if kind == "M":
            return 3 + sum(3 + len(name.encode()) + value_size(entry) for name, entry in content.items())
        raise AssertionError(kind)

    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def test_load_of_a_target_never_committed_is_generation_zero_and_empty(
    dynamodb: Any, clock: FakeClock
) -> None:
    snapshot = make_store(dynamodb, clock).load(TARGET)

    assert (snapshot.target, snapshot.generation, snapshot.confirmed, snapshot.uncertain) == (
        TARGET,
        0,
        {},
        {},
    )


def test_commit_then_load_round_trips_confirmed_and_uncertain(dynamodb: Any, clock: FakeClock) -> None:
    confirmed = {
        "10.0.0.1": frozenset({"illumio.env.Production", "illumio.app.Web Shop"}),
        "2001:db8::1": frozenset({"illumio.loc.Zürich", 'illumio.role.DB "primary"'}),
        "10.0.0.2": frozenset(),
    }
    uncertain = {"10.0.0.1": frozenset({"illumio.env.Quarantine"}), "10.0.0.3": frozenset({"illumio.x.y"})}
    store = make_store(dynamodb, clock)
    commit(store, confirmed, uncertain)

    loaded = make_store(dynamodb, clock).load(TARGET)

    assert loaded.confirmed == confirmed
    assert loaded.uncertain == uncertain


def test_each_commit_returns_the_next_generation(dynamodb: Any, clock: FakeClock) -> None:
    store = make_store(dynamodb, clock)

    generations = [commit(store, estate(5, seed=seed)) for seed in range(3)]

    assert generations == [1, 2, 3]
    assert store.load(TARGET).generation == 3


def test_committing_empty_maps_records_an_empty_generation(dynamodb: Any, clock: FakeClock) -> None:
    store = make_store(dynamodb, clock)
    commit(store, estate(50))

    commit(store, {})

    loaded = store.load(TARGET)
    assert (loaded.generation, loaded.confirmed, loaded.uncertain) == (2, {}, {})


def test_manifest_records_generation_counts_and_shard_digests(dynamodb: Any, clock: FakeClock) -> None:
    confirmed = estate(10)
    commit(make_store(dynamodb, clock), confirmed, {"10.0.0.99": frozenset({"a", "b"})}, run_id="run-a")

    item = manifest(dynamodb)

    assert {name: item[name] for name in ("format", "generation", "shard_count", "ips")} == {
        "format": {"N": "1"},
        "generation": {"N": "1"},
        "shard_count": {"N": "1"},
        "ips": {"N": "11"},
    }
    assert (item["confirmed_pairs"], item["uncertain_pairs"]) == ({"N": "40"}, {"N": "2"})
    assert (item["updated_at"], item["updated_by"]) == ({"S": "2023-11-14T22:13:20+00:00"}, {"S": "run-a"})
    assert [set(entry["M"]) for entry in item["shards"]["L"]] == [{"key", "digest"}]
    assert not {"lease_holder", "lease_run_id", "lease_expires_at", "garbage", "abandoned"} & set(item)


def test_half_a_million_ips_commit_in_small_items_and_load_in_few_requests(
    dynamodb: Any, clock: FakeClock
) -> None:
    confirmed = estate(500_000)
    commit(make_store(dynamodb, clock), confirmed)
    proxy = Proxy(dynamodb)

    loaded = make_store(proxy, clock).load(TARGET)

    assert loaded.confirmed == confirmed
    shards = len(shard_keys(manifest(dynamodb)))
    assert proxy.names() == ["get_item"] + ["batch_get_item"] * math.ceil(shards / 100)
    assert max(item_size(item) for item in scan(dynamodb)) < ITEM_LIMIT


def test_load_reads_shards_in_batches_of_100_keys(dynamodb: Any, clock: FakeClock) -> None:
    commit(make_store(dynamodb, clock, SMALL_SHARDS), estate(5_000))
    proxy = Proxy(dynamodb)

    make_store(proxy, clock, SMALL_SHARDS).load(TARGET)

    batches = [len(kwargs["RequestItems"][TABLE]["Keys"]) for _, kwargs in proxy.calls[1:]]
    assert batches == [100, 100, 56]
    assert all(kwargs["RequestItems"][TABLE]["ConsistentRead"] for _, kwargs in proxy.calls[1:])


def test_small_change_rewrites_only_the_shards_it_touches(dynamodb: Any, clock: FakeClock) -> None:
    before = estate(50_000)
    commit(make_store(dynamodb, clock), before)
    old_keys = shard_keys(manifest(dynamodb))
    after = dict(before)
    for ip in list(before)[:3]:
        after[ip] = frozenset({"illumio.env.Quarantine"})
    proxy = Proxy(dynamodb)

    commit(make_store(proxy, clock), after, run_id="run-change")

    new_keys = shard_keys(manifest(dynamodb))
    rewritten = sum(old != new for old, new in zip(old_keys, new_keys, strict=True))
    assert 1 <= proxy.put_requests() == rewritten <= 3
    assert len(new_keys) == 16


def test_small_change_deletes_the_superseded_shards(dynamodb: Any, clock: FakeClock) -> None:
    before = estate(50_000)
    commit(make_store(dynamodb, clock), before)
    after = {**before, next(iter(before)): frozenset({"illumio.env.Quarantine"})}

    commit(make_store(dynamodb, clock), after, run_id="run-change")

    assert unreferenced_items(dynamodb) == set()
    assert make_store(dynamodb, clock).load(TARGET).confirmed == after


def test_committing_unchanged_maps_writes_no_shard(dynamodb: Any, clock: FakeClock) -> None:
    confirmed = estate(2_000)
    commit(make_store(dynamodb, clock), confirmed)
    proxy = Proxy(dynamodb)

    generation = commit(make_store(proxy, clock), dict(confirmed), run_id="run-again")

    assert generation == 2
    assert proxy.put_requests() == 0
    assert "batch_write_item" not in proxy.names()


def test_growth_past_the_shard_bound_reshards_and_deletes_the_old_layout(
    dynamodb: Any, clock: FakeClock
) -> None:
    store = make_store(dynamodb, clock, SMALL_SHARDS)
    commit(store, estate(30))
    grown = estate(1_000, seed=2)

    commit(store, grown, run_id="run-grow")

    assert len(shard_keys(manifest(dynamodb))) == 64
    assert store.load(TARGET).confirmed == grown
    assert unreferenced_items(dynamodb) == set()


def test_shard_count_is_kept_while_shards_stay_within_bounds(dynamodb: Any, clock: FakeClock) -> None:
    store = make_store(dynamodb, clock, SMALL_SHARDS)
    commit(store, estate(600))

    commit(store, estate(660), run_id="run-more")

    assert len(shard_keys(manifest(dynamodb))) == 32


def test_shards_split_further_when_their_content_is_too_large(dynamodb: Any, clock: FakeClock) -> None:
    limits = ShardLimits(max_shard_bytes=2_000)
    confirmed = estate(500)

    commit(make_store(dynamodb, clock, limits), confirmed)

    assert len(shard_keys(manifest(dynamodb))) > 1
    assert max(len(item["data"]["B"]) for item in scan(dynamodb) if "data" in item) <= 2_000
    assert make_store(dynamodb, clock, limits).load(TARGET).confirmed == confirmed


def test_estate_needing_too_many_shards_is_refused(dynamodb: Any, clock: FakeClock) -> None:
    store = make_store(dynamodb, clock, ShardLimits(max_shard_bytes=100, max_shards=4))
    lease = store.acquire(store.load(TARGET), "run-big", 900)

    with pytest.raises(SnapshotError, match="too large"):
        store.commit(lease, estate(500), {})


def test_second_run_cannot_acquire_while_the_first_holds_the_lease(dynamodb: Any, clock: FakeClock) -> None:
    store_a, store_b = make_store(dynamodb, clock), make_store(dynamodb, clock)
    snapshot_a, snapshot_b = store_a.load(TARGET), store_b.load(TARGET)
    store_a.acquire(snapshot_a, "run-a", 60)

    with pytest.raises(SnapshotConflict, match=r"another run \(run-a\) holds the lease"):
        store_b.acquire(snapshot_b, "run-b", 60)


def test_acquire_with_a_stale_snapshot_conflicts(dynamodb: Any, clock: FakeClock) -> None:
    stale = make_store(dynamodb, clock).load(TARGET)
    commit(make_store(dynamodb, clock), estate(10))

    with pytest.raises(SnapshotConflict, match="another run committed generation 1"):
        make_store(dynamodb, clock).acquire(stale, "run-late", 60)


def take_over(dynamodb: Any, clock: FakeClock) -> tuple[SnapshotStore, Lease, SnapshotStore, Lease]:
    """Run A acquires, its lease runs out, run B takes over."""
    store_a, store_b = make_store(dynamodb, clock), make_store(dynamodb, clock)
    lease_a = store_a.acquire(store_a.load(TARGET), "run-a", 60)
    clock.advance(61)
    lease_b = store_b.acquire(store_b.load(TARGET), "run-b", 60)
    return store_a, lease_a, store_b, lease_b


def test_expired_lease_lets_another_run_take_over(dynamodb: Any, clock: FakeClock) -> None:
    _, lease_a, _, lease_b = take_over(dynamodb, clock)

    assert manifest(dynamodb)["lease_run_id"] == {"S": "run-b"}
    assert lease_b.base.abandoned == {lease_a.holder}


def test_run_whose_lease_was_taken_over_cannot_commit(dynamodb: Any, clock: FakeClock) -> None:
    store_a, lease_a, _, _ = take_over(dynamodb, clock)

    with pytest.raises(SnapshotConflict, match=r"another run \(run-b\) holds the lease"):
        store_a.commit(lease_a, estate(10, seed=1), {})


def test_run_that_took_over_commits_after_the_loser_gave_up(dynamodb: Any, clock: FakeClock) -> None:
    store_a, lease_a, store_b, lease_b = take_over(dynamodb, clock)
    with pytest.raises(SnapshotConflict):
        store_a.commit(lease_a, estate(10, seed=1), {})
    wanted = estate(10, seed=2)

    assert store_b.commit(lease_b, wanted, {}) == 1

    assert store_b.load(TARGET).confirmed == wanted
    assert unreferenced_items(dynamodb) == set()


def test_commit_on_a_spent_lease_conflicts_and_leaves_no_orphan_shard(
    dynamodb: Any, clock: FakeClock
) -> None:
    store = make_store(dynamodb, clock)
    lease = store.acquire(store.load(TARGET), "run-a", 60)
    store.commit(lease, estate(100, seed=1), {})

    with pytest.raises(SnapshotConflict, match="another run"):
        store.commit(lease, estate(100, seed=2), {})

    assert unreferenced_items(dynamodb) == set()
    assert store.load(TARGET).confirmed == estate(100, seed=1)


def test_release_lets_another_run_acquire_at_once(dynamodb: Any, clock: FakeClock) -> None:
    store = make_store(dynamodb, clock)
    snapshot = store.load(TARGET)
    store.release(store.acquire(snapshot, "run-a", 600))

    lease = make_store(dynamodb, clock).acquire(make_store(dynamodb, clock).load(TARGET), "run-b", 600)

    assert lease.generation == 0


def test_release_after_a_commit_leaves_the_snapshot_alone(dynamodb: Any, clock: FakeClock) -> None:
    store = make_store(dynamodb, clock)
    lease = store.acquire(store.load(TARGET), "run-a", 600)
    store.commit(lease, estate(10), {})

    store.release(lease)

    assert store.load(TARGET).generation == 1
    assert unreferenced_items(dynamodb) == set()


def test_next_commit_deletes_shards_of_a_released_failed_commit(dynamodb: Any, clock: FakeClock) -> None:
    def throttle_swap(name: str, _: dict[str, Any]) -> None:
        if name == "put_item":
            raise client_error("ThrottlingException", "PutItem")

    failing = make_store(Proxy(dynamodb, before=throttle_swap), clock)
    lease = failing.acquire(failing.load(TARGET), "run-a", 600)
    with pytest.raises(SnapshotError):
        failing.commit(lease, estate(100), {})
    failing.release(lease)

    commit(make_store(dynamodb, clock), estate(100, seed=3), run_id="run-b")

    assert unreferenced_items(dynamodb) == set()


OLD = estate(400, seed=1)
NEW = {**estate(300, seed=1), **estate(200, seed=2, first=300)}
NEW_UNCERTAIN = {"10.0.1.44": frozenset({"illumio.env.Quarantine"})}
THIRD = estate(450, seed=3)


class CrashAt:
    """A hook that raises Crash on the call numbered `index`, counting from 1."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.calls = 0

    def __call__(self, _: str, __: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls == self.index:
            raise Crash


def crash_points(dynamodb: Any, clock: FakeClock, limits: ShardLimits) -> Iterator[tuple[str, Proxy]]:
    """One fresh target per crash point: before or after each call of acquire plus commit."""
    counter = Proxy(dynamodb)
    commit(make_store(dynamodb, clock, limits), OLD, target="probe")
    snapshot = make_store(dynamodb, clock, limits).load("probe")
    store = make_store(counter, clock, limits)
    store.commit(store.acquire(snapshot, "run-probe", 600), NEW, NEW_UNCERTAIN)
    for index in range(1, len(counter.calls) + 1):
        for when in ("before", "after"):
            target = f"fw/{index}/{when}"
            commit(make_store(dynamodb, clock, limits), OLD, target=target)
            hooks = {when: CrashAt(index)}
            yield target, Proxy(dynamodb, before=hooks.get("before"), after=hooks.get("after"))


def test_crash_at_any_call_leaves_the_old_or_the_new_generation_readable(
    dynamodb: Any, clock: FakeClock
) -> None:
    seen = set()
    for target, proxy in crash_points(dynamodb, clock, SMALL_SHARDS):
        snapshot = make_store(dynamodb, clock, SMALL_SHARDS).load(target)
        with pytest.raises(Crash):
            store = make_store(proxy, clock, SMALL_SHARDS)
            store.commit(store.acquire(snapshot, "run-crash", 600), NEW, NEW_UNCERTAIN)

        loaded = make_store(dynamodb, clock, SMALL_SHARDS).load(target)

        state = (loaded.confirmed, loaded.uncertain)
        assert state in ((OLD, {}), (NEW, NEW_UNCERTAIN)), target
        seen.add(loaded.generation)
    assert seen == {1, 2}


def test_run_after_a_crash_at_any_call_commits_and_leaves_no_stray_item(
    dynamodb: Any, clock: FakeClock
) -> None:
    targets = []
    for target, proxy in crash_points(dynamodb, clock, SMALL_SHARDS):
        snapshot = make_store(dynamodb, clock, SMALL_SHARDS).load(target)
        with pytest.raises(Crash):
            store = make_store(proxy, clock, SMALL_SHARDS)
            store.commit(store.acquire(snapshot, "run-crash", 600), NEW, NEW_UNCERTAIN)
        targets.append(target)
    clock.advance(601)

    for target in targets:
        commit(make_store(dynamodb, clock, SMALL_SHARDS), THIRD, run_id="run-next", target=target)

    assert all(
        make_store(dynamodb, clock, SMALL_SHARDS).load(target).confirmed == THIRD for target in targets
    )
    assert unreferenced_items(dynamodb) == set()


def overwrite_shard(dynamodb: Any, data: bytes) -> str:
    key = shard_keys(manifest(dynamodb))[0]
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": TARGET}, "sk": {"S": key}, "data": {"B": data}})
    return key


def test_shard_that_is_not_zlib_raises_snapshot_error_naming_target_and_key(
    dynamodb: Any, clock: FakeClock
) -> None:
    commit(make_store(dynamodb, clock), estate(100))
    key = overwrite_shard(dynamodb, b"not zlib at all")

    with pytest.raises(SnapshotError, match="corrupt") as raised:
        make_store(dynamodb, clock).load(TARGET)

    assert TARGET in str(raised.value)
    assert key in str(raised.value)


def test_shard_whose_content_does_not_match_its_digest_raises_snapshot_error(
    dynamodb: Any, clock: FakeClock
) -> None:
    commit(make_store(dynamodb, clock), estate(100))
    overwrite_shard(dynamodb, zlib.compress(b'{"tags":[],"sets":[],"confirmed":{},"uncertain":{}}'))

    with pytest.raises(SnapshotError, match="digest does not match"):
        make_store(dynamodb, clock).load(TARGET)


def test_manifest_of_a_newer_format_is_refused(dynamodb: Any, clock: FakeClock) -> None:
    commit(make_store(dynamodb, clock), estate(10))
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": TARGET}, "sk": {"S": "manifest"}},
        UpdateExpression="SET #format = :two",
        ExpressionAttributeNames={"#format": "format"},
        ExpressionAttributeValues={":two": {"N": "2"}},
    )

    with pytest.raises(SnapshotError, match="format 2 is not supported"):
        make_store(dynamodb, clock).load(TARGET)


def test_shard_missing_on_every_read_raises_snapshot_error(dynamodb: Any, clock: FakeClock) -> None:
    commit(make_store(dynamodb, clock), estate(100))
    key = shard_keys(manifest(dynamodb))[0]
    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": TARGET}, "sk": {"S": key}})
    proxy = Proxy(dynamodb)

    with pytest.raises(SnapshotError, match="missing"):
        make_store(proxy, clock).load(TARGET)

    assert proxy.names().count("get_item") == 3


def test_load_reads_again_when_a_concurrent_commit_replaced_the_shards(
    dynamodb: Any, clock: FakeClock
) -> None:
    commit(make_store(dynamodb, clock), OLD)
    raced = False

    def commit_in_between(name: str, _: dict[str, Any]) -> None:
        nonlocal raced
        if name == "batch_get_item" and not raced:
            raced = True
            commit(make_store(dynamodb, clock), THIRD, run_id="run-racer")

    loaded = make_store(Proxy(dynamodb, before=commit_in_between), clock).load(TARGET)

    assert (loaded.generation, loaded.confirmed) == (2, THIRD)


@pytest.mark.parametrize("operation", ["get_item", "batch_get_item"])
def test_throttling_on_load_raises_snapshot_error(dynamodb: Any, clock: FakeClock, operation: str) -> None:
    commit(make_store(dynamodb, clock), estate(10))

    def throttle(name: str, _: dict[str, Any]) -> None:
        if name == operation:
            raise client_error("ProvisionedThroughputExceededException", name)

    with pytest.raises(SnapshotError, match=f"on table '{TABLE}'.*ProvisionedThroughputExceeded") as raised:
        make_store(Proxy(dynamodb, before=throttle), clock).load(TARGET)

    assert not isinstance(raised.value, SnapshotConflict)


@pytest.mark.parametrize("operation", ["batch_write_item", "put_item"])
def test_throttling_on_commit_raises_snapshot_error(dynamodb: Any, clock: FakeClock, operation: str) -> None:
    def throttle(name: str, _: dict[str, Any]) -> None:
        if name == operation:
            raise client_error("ThrottlingException", name)

    store = make_store(Proxy(dynamodb, before=throttle), clock)
    lease = store.acquire(store.load(TARGET), "run-a", 60)

    with pytest.raises(SnapshotError, match="ThrottlingException") as raised:
        store.commit(lease, estate(10), {})

    assert not isinstance(raised.value, SnapshotConflict)
    assert make_store(dynamodb, clock).load(TARGET).generation == 0


class Stingy(Proxy):
    """Processes only the first item of each batch call, as DynamoDB may under load."""

    def __init__(self, client: Any, *, budget: int = 1) -> None:
        super().__init__(client)
        self.budget = budget

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.calls.append(("batch_get_item", kwargs))
        request = kwargs["RequestItems"][TABLE]
        keys = request["Keys"]
        response = self.client.batch_get_item(
            RequestItems={TABLE: {**request, "Keys": keys[: self.budget]}}, ReturnConsumedCapacity="TOTAL"
        )
        if keys[self.budget :]:
            response["UnprocessedKeys"] = {TABLE: {**request, "Keys": keys[self.budget :]}}
        return response

    def batch_write_item(self, **kwargs: Any) -> Any:
        self.calls.append(("batch_write_item", kwargs))
        requests = kwargs["RequestItems"][TABLE]
        response = (
            self.client.batch_write_item(
                RequestItems={TABLE: requests[: self.budget]}, ReturnConsumedCapacity="TOTAL"
            )
            if self.budget
            else {"UnprocessedItems": {}, "ConsumedCapacity": []}
        )
        if requests[self.budget :]:
            response["UnprocessedItems"] = {TABLE: requests[self.budget :]}
        return response


def test_load_retries_unprocessed_keys(dynamodb: Any, clock: FakeClock) -> None:
    commit(make_store(dynamodb, clock, SMALL_SHARDS), OLD)
    proxy = Stingy(dynamodb)

    loaded = make_store(proxy, clock, SMALL_SHARDS).load(TARGET)

    assert loaded.confirmed == OLD
    assert proxy.names().count("batch_get_item") == len(shard_keys(manifest(dynamodb)))


def test_commit_retries_unprocessed_items(dynamodb: Any, clock: FakeClock) -> None:
    commit(make_store(Stingy(dynamodb), clock, SMALL_SHARDS), OLD)

    assert make_store(dynamodb, clock, SMALL_SHARDS).load(TARGET).confirmed == OLD


def test_batch_that_never_makes_progress_raises_snapshot_error(dynamodb: Any, clock: FakeClock) -> None:
    store = make_store(Stingy(dynamodb, budget=0), clock)
    lease = store.acquire(store.load(TARGET), "run-a", 60)

    with pytest.raises(SnapshotError, match="unprocessed 8 times"):
        store.commit(lease, estate(10), {})


def test_store_counts_requests_and_consumed_capacity(dynamodb: Any, clock: FakeClock) -> None:
    proxy = Proxy(dynamodb)
    store = make_store(proxy, clock)

    commit(store, estate(100))
    store.load(TARGET)

    assert store.requests == len(proxy.calls)
    assert store.read_units > 0
    assert store.write_units > 0


def test_store_creates_a_client_with_standard_retries_on_first_use(dynamodb: Any) -> None:
    store = SnapshotStore(TABLE)

    assert store.load(TARGET).generation == 0
    config: Any = store.client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}


@pytest.mark.parametrize("run_id", ["", "run#1"])
def test_acquire_refuses_a_run_id_that_cannot_key_shards(
    dynamodb: Any, clock: FakeClock, run_id: str
) -> None:
    store = make_store(dynamodb, clock)

    with pytest.raises(ValueError, match="run id"):
        store.acquire(store.load(TARGET), run_id, 60)
