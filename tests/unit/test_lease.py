"""Leases that cannot be a live run's are taken over; a lease that is honoured says how long it has
been held, so the engine can tell a conflict that lasts too long."""

from typing import Any

import pytest

from dagsync.core.errors import LeaseHeld, SnapshotConflict
from dagsync.store.snapshot import SnapshotStore
from emulators.local import TABLE
from tests.support.clock import FakeClock
from tests.support.snapshot import estate, manifest, unreferenced_items

TARGET = "fw.example.com/vsys1"
START = 1_800_000_000.0
MAX_LEASE = 930.0


def store_of(client: Any, clock: FakeClock) -> SnapshotStore:
    return SnapshotStore(TABLE, client=client, clock=clock, sleep=lambda _: None, max_lease_seconds=MAX_LEASE)


def plant_lease(client: Any, *, run_id: str, expires_at: float, acquired_at: float | None) -> None:
    """A lease written by hand (a bad clock, an edited item, an older version of the tool)."""
    values: dict[str, Any] = {
        ":holder": {"S": f"{run_id}.0000"},
        ":run_id": {"S": run_id},
        ":expires_at": {"N": repr(expires_at)},
    }
    update = "SET lease_holder = :holder, lease_run_id = :run_id, lease_expires_at = :expires_at"
    if acquired_at is not None:
        update += ", lease_acquired_at = :acquired_at"
        values[":acquired_at"] = {"N": repr(acquired_at)}
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": TARGET}, "sk": {"S": "manifest"}},
        UpdateExpression=update,
        ExpressionAttributeValues=values,
    )


def committed(client: Any, clock: FakeClock) -> None:
    store = store_of(client, clock)
    store.commit(store.acquire(store.load(TARGET), "setup", 60), estate(20), {})


def test_a_lease_ending_further_ahead_than_any_run_lasts_is_taken_over(dynamodb: Any) -> None:
    clock = FakeClock(START)
    committed(dynamodb, clock)
    plant_lease(dynamodb, run_id="run-stuck", expires_at=START + MAX_LEASE + 60, acquired_at=START)
    store = store_of(dynamodb, clock)

    lease = store.acquire(store.load(TARGET), "run-next", 60)

    assert manifest(dynamodb, TARGET)["lease_run_id"] == {"S": "run-next"}
    assert lease.base.abandoned == {"run-stuck.0000"}


def test_the_run_that_took_over_a_stuck_lease_commits_and_leaves_no_garbage(dynamodb: Any) -> None:
    clock = FakeClock(START)
    committed(dynamodb, clock)
    plant_lease(dynamodb, run_id="run-stuck", expires_at=START + 10 * 365 * 86400, acquired_at=None)
    store = store_of(dynamodb, clock)

    lease = store.acquire(store.load(TARGET), "run-next", 60)
    store.commit(lease, estate(25), {})

    assert store.load(TARGET).confirmed == estate(25)
    assert unreferenced_items(dynamodb) == set()


def test_a_live_lease_within_the_bound_is_honoured(dynamodb: Any) -> None:
    clock = FakeClock(START)
    committed(dynamodb, clock)
    store_a, store_b = store_of(dynamodb, clock), store_of(dynamodb, clock)
    store_a.acquire(store_a.load(TARGET), "run-a", MAX_LEASE)
    snapshot_b = store_b.load(TARGET)

    with pytest.raises(LeaseHeld, match=r"another run \(run-a\) holds the lease"):
        store_b.acquire(snapshot_b, "run-b", 60)


def test_an_honoured_lease_says_how_long_it_has_been_held(dynamodb: Any) -> None:
    clock = FakeClock(START)
    committed(dynamodb, clock)
    store = store_of(dynamodb, clock)
    store.acquire(store.load(TARGET), "run-a", MAX_LEASE)
    clock.advance(400)
    snapshot = store.load(TARGET)

    with pytest.raises(LeaseHeld) as held:
        store_of(dynamodb, clock).acquire(snapshot, "run-b", 60)

    assert (held.value.run_id, held.value.held_for, held.value.expires_at) == (
        "run-a",
        400.0,
        START + MAX_LEASE,
    )
    assert "held for 400 s" in str(held.value)


def test_a_lease_recorded_without_its_start_is_honoured_without_a_duration(dynamodb: Any) -> None:
    clock = FakeClock(START)
    committed(dynamodb, clock)
    plant_lease(dynamodb, run_id="run-old", expires_at=START + 60, acquired_at=None)

    with pytest.raises(LeaseHeld) as held:
        store = store_of(dynamodb, clock)
        store.acquire(store.load(TARGET), "run-b", 60)

    assert held.value.held_for is None


def test_a_stuck_lease_taken_after_this_run_loaded_is_a_conflict_the_next_run_resolves(dynamodb: Any) -> None:
    clock = FakeClock(START)
    committed(dynamodb, clock)
    store = store_of(dynamodb, clock)
    snapshot = store.load(TARGET)
    plant_lease(dynamodb, run_id="run-stuck", expires_at=START + MAX_LEASE + 60, acquired_at=START)

    with pytest.raises(SnapshotConflict, match="ending further ahead than any run lasts") as raised:
        store.acquire(snapshot, "run-b", 60)

    assert not isinstance(raised.value, LeaseHeld)
    assert store.acquire(store.load(TARGET), "run-c", 60).run_id == "run-c"


def test_a_lease_longer_than_the_bound_is_refused(dynamodb: Any) -> None:
    store = store_of(dynamodb, FakeClock(START))

    with pytest.raises(ValueError, match="at most 930"):
        store.acquire(store.load(TARGET), "run-a", MAX_LEASE + 1)


def test_the_lease_records_when_it_was_taken(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)

    store.acquire(store.load(TARGET), "run-a", 60)

    item = manifest(dynamodb, TARGET)
    assert (item["lease_acquired_at"], item["lease_expires_at"]) == (
        {"N": repr(START)},
        {"N": repr(START + 60)},
    )


def test_a_checkpoint_keeps_the_time_the_lease_was_taken(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)
    lease = store.acquire(store.load(TARGET), "run-a", 600)
    clock.advance(100)

    store.checkpoint(lease, estate(5), {})

    assert manifest(dynamodb, TARGET)["lease_acquired_at"] == {"N": repr(START)}


def test_release_removes_every_lease_attribute(dynamodb: Any) -> None:
    clock = FakeClock(START)
    store = store_of(dynamodb, clock)

    store.release(store.acquire(store.load(TARGET), "run-a", 60))

    assert not {"lease_holder", "lease_run_id", "lease_expires_at", "lease_acquired_at"} & set(
        manifest(dynamodb, TARGET)
    )
