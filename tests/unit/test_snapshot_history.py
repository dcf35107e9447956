"""The target history as the snapshot store keeps it: in the manifest, written only with commits
or, for runs that commit nothing, by one small conditional write when it says something new."""

from typing import Any

import pytest

from dagsync.core.errors import SnapshotError
from dagsync.core.history import RunOutcome, TargetHistory
from dagsync.store.snapshot import Snapshot, SnapshotStore
from emulators.local import TABLE
from tests.support.clock import FakeClock
from tests.support.snapshot import Proxy, estate, manifest

TARGET = "fw.example.com/vsys1"
START = 1_800_000_000.0


def store_of(client: Any, clock: FakeClock) -> SnapshotStore:
    return SnapshotStore(TABLE, client=client, clock=clock, sleep=lambda _: None)


def commit(
    store: SnapshotStore, confirmed: dict[str, frozenset[str]], outcome: RunOutcome | None = None
) -> Snapshot:
    lease = store.acquire(store.load(TARGET), "run", 600)
    store.commit(lease, confirmed, {}, outcome=outcome)
    return store.load(TARGET)


def test_a_commit_records_the_outcome_and_load_reads_it_back(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    commit(store, estate(50))
    clock.advance(60)

    loaded = commit(store, estate(40), RunOutcome("ok", removed=10 * 4, held=50 * 4))

    assert loaded.history == TargetHistory(
        removals=(loaded.history.removals[0],), last_ok_at=START + 60, last_status="ok", unfinished_runs=0
    )
    assert (loaded.history.removals[0].pairs, loaded.history.removals[0].held) == (40, 200)


def test_recording_the_outcome_with_a_commit_costs_no_extra_request(dynamodb: Any) -> None:
    clock = FakeClock(START)
    commit(store_of(dynamodb, clock), estate(50))
    plain, with_outcome = Proxy(dynamodb), Proxy(dynamodb)

    commit(store_of(plain, clock), estate(45))
    commit(store_of(with_outcome, clock), estate(40), RunOutcome("ok", removed=20, held=180))

    assert with_outcome.names() == plain.names()


def test_a_checkpoint_keeps_the_history_and_the_commit_after_it_adds_to_it(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    commit(store, estate(10), RunOutcome("failed"))
    lease = store.acquire(store.load(TARGET), "run-2", 600)

    lease = store.checkpoint(lease, estate(10), estate(2, seed=5))
    assert store_of(dynamodb, clock).load(TARGET).history.unfinished_runs == 1
    store.commit(lease, estate(12), {}, outcome=RunOutcome("failed"))

    assert store.load(TARGET).history.unfinished_runs == 2


def test_a_commit_without_an_outcome_keeps_the_history_as_it_was(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    recorded = commit(store, estate(10), RunOutcome("partial")).history

    assert commit(store, estate(11)).history == recorded


def test_the_history_survives_a_takeover_of_an_expired_lease(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    recorded = commit(store, estate(10), RunOutcome("incomplete")).history
    store.acquire(store.load(TARGET), "run-dead", 60)
    clock.advance(61)

    lease = store.acquire(store.load(TARGET), "run-next", 60)
    store.commit(lease, estate(10), {})

    assert store.load(TARGET).history == recorded


def test_a_quiet_ok_after_an_ok_writes_nothing(dynamodb: Any) -> None:
    clock = FakeClock(START)
    commit(store_of(dynamodb, clock), estate(10), RunOutcome("ok"))
    proxy = Proxy(dynamodb)
    store = store_of(proxy, clock)

    written = store.record_outcome(store.load(TARGET), "ok")

    assert written is False
    assert "update_item" not in proxy.names()


def test_a_run_that_is_not_ok_records_its_status_with_one_update(dynamodb: Any) -> None:
    clock = FakeClock(START)
    commit(store_of(dynamodb, clock), estate(10), RunOutcome("ok"))
    proxy = Proxy(dynamodb)
    store = store_of(proxy, clock)
    clock.advance(300)

    assert store.record_outcome(store.load(TARGET), "blocked") is True

    assert proxy.names() == ["get_item", "batch_get_item", "update_item"]
    loaded = store.load(TARGET)
    assert (loaded.generation, loaded.history.last_status, loaded.history.last_ok_at) == (
        1,
        "blocked",
        START + 300,
    )
    assert loaded.confirmed == estate(10)


def test_an_ok_after_a_run_that_was_not_is_recorded(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    commit(store, estate(10), RunOutcome("failed"))
    clock.advance(120)

    assert store.record_outcome(store.load(TARGET), "ok") is True

    history = store.load(TARGET).history
    assert (history.last_status, history.last_ok_at, history.unfinished_runs) == ("ok", START + 120, 0)


def test_unfinished_runs_that_commit_nothing_still_count_in_a_row(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    commit(store, estate(10), RunOutcome("incomplete"))

    for _ in range(5):
        store.record_outcome(store.load(TARGET), "incomplete")

    assert store.load(TARGET).history.unfinished_runs == 6


def test_an_outcome_read_before_another_run_committed_is_not_recorded(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    commit(store, estate(10), RunOutcome("ok"))
    stale = store.load(TARGET)
    newer = commit(store, estate(11), RunOutcome("ok"))

    assert store.record_outcome(stale, "failed") is False

    assert store.load(TARGET).history == newer.history


def test_a_conflict_is_never_recorded(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    commit(store, estate(10), RunOutcome("failed"))
    proxy = Proxy(dynamodb)

    assert store_of(proxy, clock).record_outcome(store.load(TARGET), "conflict") is False
    assert proxy.names() == []


def test_an_outcome_on_a_target_never_committed_leaves_a_snapshot_the_next_run_can_take(
    dynamodb: Any,
) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)

    assert store.record_outcome(store.load(TARGET), "failed") is True

    loaded = store.load(TARGET)
    assert (loaded.generation, loaded.confirmed, loaded.history.last_status) == (0, {}, "failed")
    assert commit(store, estate(5), RunOutcome("ok")).generation == 1


def test_a_manifest_whose_history_is_malformed_fails_the_load_naming_it(dynamodb: Any) -> None:
    clock = FakeClock(START)
    commit(store_of(dynamodb, clock), estate(5), RunOutcome("ok"))
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": TARGET}, "sk": {"S": "manifest"}},
        UpdateExpression="SET #history = :bad",
        ExpressionAttributeNames={"#history": "history"},
        ExpressionAttributeValues={":bad": {"M": {"removals": {"S": "not a list"}}}},
    )

    with pytest.raises(SnapshotError, match="is malformed: history"):
        store_of(dynamodb, clock).load(TARGET)

    assert "history" in manifest(dynamodb, TARGET)
