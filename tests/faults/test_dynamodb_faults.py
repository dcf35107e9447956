"""The fault matrix of docs/reliability.md#faults-and-outcomes, DynamoDB side: throttling that outlasts the
SDK's retries, conflicts, answers lost after a write went through, and items that cannot be decoded."""

import zlib

import pytest

from app import RunFailed
from dagsync.core.diff import subtract, union
from dagsync.store.snapshot import SnapshotStore
from emulators.local import TABLE
from tests.faults.harness import (
    CANARY,
    Seams,
    assert_exact,
    desired_of,
    load_snapshot,
    table_items,
    target_of,
    throttle,
    wipe_table,
)
from tests.support.clock import FakeClock

LEASE_SECONDS = 930.0


def target_items(deployment):
    """The targets' items; the change feed's own (which a failed run may touch) are left out."""
    return [item for item in table_items(deployment) if not item["pk"]["S"].startswith("feed#")]


def relabel_and_move(pce) -> None:
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    pce.set_addresses("/orgs/1/workloads/db1", ["10.1.0.33"])


@pytest.mark.parametrize("operation", ["GetItem", "BatchGetItem"])
def test_throttled_snapshot_read_fails_the_target_before_any_device_call(
    deployment, pce, panos, seams: Seams, clock, operation
):
    deployment.invoke({})
    before, items_before = panos.table(), target_items(deployment)
    relabel_and_move(pce)
    panos.clear_log()
    seams.fail(throttle(operation))
    with pytest.raises(RunFailed, match=rf"DynamoDB {operation} .*ProvisionedThroughputExceededException"):
        deployment.invoke({})
    assert panos.non_ha_requests() == []
    assert (panos.table(), target_items(deployment)) == (before, items_before)
    seams.heal()
    deployment.invoke({})
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(("UpdateItem", 0), id="acquire"),
        pytest.param(("BatchWriteItem", 0), id="checkpoint-shards"),
        pytest.param(("PutItem", 0), id="checkpoint-manifest"),
    ],
)
def test_throttling_before_the_write_ahead_record_sends_nothing(
    deployment, pce, panos, seams: Seams, clock: FakeClock, rule
):
    deployment.invoke({})
    before, snapshot_before = panos.table(), load_snapshot(deployment)
    relabel_and_move(pce)
    panos.clear_log()
    operation, skip = rule
    seams.fail(throttle(operation, skip=skip))
    with pytest.raises(RunFailed, match=rf"DynamoDB {operation} .*ProvisionedThroughputExceededException"):
        deployment.invoke({})
    assert panos.calls("user-id") == []
    assert (panos.table(), load_snapshot(deployment)) == (before, snapshot_before)
    seams.heal()
    clock.advance(LEASE_SECONDS + 1)  # a lease the outage kept the run from giving back
    deployment.invoke({})
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_throttled_commit_keeps_the_write_ahead_record_and_the_next_run_resends_it(
    deployment, pce, panos, seams: Seams, clock
):
    deployment.invoke({})
    baseline = load_snapshot(deployment).confirmed
    relabel_and_move(pce)
    desired = desired_of(pce)
    seams.fail(throttle("PutItem", skip=1))  # the write-ahead record goes through, the commit does not
    with pytest.raises(RunFailed, match=r"DynamoDB PutItem .*ProvisionedThroughputExceededException"):
        deployment.invoke({})
    assert panos.table() == union(desired, CANARY)
    snapshot = load_snapshot(deployment)
    register, unregister = subtract(desired, baseline), subtract(baseline, desired)
    assert (snapshot.confirmed, snapshot.uncertain) == (
        subtract(baseline, unregister),
        union(register, unregister),
    )
    seams.heal()
    panos.clear_log()
    assert deployment.invoke({})["status"] == "ok"
    assert len(panos.calls("user-id")) == 2  # everything uncertain is sent again, once
    assert_exact(deployment, panos, desired, {}, now=clock.now)


def test_a_run_that_loses_its_expired_lease_mid_push_reports_conflict_and_the_next_run_converges(
    deployment, pce, panos, seams: Seams, clock: FakeClock
):
    deployment.invoke({})
    relabel_and_move(pce)
    target = target_of(deployment)
    taken: list[int] = []

    def overtaken(label: str) -> None:
        """Before this run commits, its lease runs out and another run takes over and commits."""
        if label != "dynamodb PutItem" or taken or seams.count("dynamodb PutItem") < 1:
            return None
        taken.append(1)
        clock.advance(LEASE_SECONDS + 1)
        other = SnapshotStore(TABLE, clock=clock)
        snapshot = other.load(target)
        other.commit(other.acquire(snapshot, "other-run", 60), snapshot.confirmed, snapshot.uncertain)
        return None

    seams.fail(overtaken)
    summary = deployment.invoke({})
    assert summary["targets"][0]["status"] == "conflict"
    assert "another run committed generation" in summary["targets"][0]["error"]
    seams.heal()
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_a_run_that_loaded_before_another_committed_sends_nothing(
    deployment, pce, panos, seams: Seams, clock
):
    deployment.invoke({})
    relabel_and_move(pce)
    target = target_of(deployment)
    fired: list[int] = []

    def other_run_commits_first(label: str) -> None:
        if label != "dynamodb UpdateItem" or fired:
            return None
        fired.append(1)
        other = SnapshotStore(TABLE, clock=clock)
        snapshot = other.load(target)
        other.commit(other.acquire(snapshot, "other-run", 60), snapshot.confirmed, snapshot.uncertain)
        return None

    seams.fail(other_run_commits_first)
    panos.clear_log()
    summary = deployment.invoke({})
    assert summary["targets"][0]["status"] == "conflict"
    assert panos.calls("user-id") == []
    seams.heal()
    deployment.invoke({})
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


@pytest.mark.parametrize("operation", ["UpdateItem", "PutItem"])
def test_a_write_whose_answer_was_lost_and_was_resent_still_counts(
    deployment, pce, panos, seams: Seams, clock, operation
):
    """The SDK resends a write whose answer was lost; the resend fails its condition because the
    first write went through. The acquire still holds the lease; the commit keeps its shards."""
    deployment.invoke({})
    relabel_and_move(pce)
    seams.resend(operation)
    assert deployment.invoke({})["status"] == "ok"
    seams.heal()
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)
    panos.clear_log()
    assert deployment.invoke({})["status"] == "ok"
    assert panos.calls("user-id") == []


def corrupt_shard(deployment) -> None:
    client = deployment.client("dynamodb")
    shard = next(item for item in table_items(deployment) if item["sk"]["S"].startswith("shard#"))
    client.put_item(TableName=TABLE, Item={**shard, "data": {"B": zlib.compress(b"not the shard")}})


def unsupported_manifest(deployment) -> None:
    client = deployment.client("dynamodb")
    manifest = next(item for item in table_items(deployment) if item["sk"]["S"] == "manifest")
    client.put_item(TableName=TABLE, Item={**manifest, "format": {"N": "99"}})


def truncated_shard(deployment) -> None:
    client = deployment.client("dynamodb")
    shard = next(item for item in table_items(deployment) if item["sk"]["S"].startswith("shard#"))
    client.put_item(TableName=TABLE, Item={**shard, "data": {"B": shard["data"]["B"][:10]}})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(corrupt_shard, r"is corrupt: shard item .* cannot be decoded", id="wrong-content"),
        pytest.param(truncated_shard, r"is corrupt: shard item .* cannot be decoded", id="truncated-shard"),
        pytest.param(unsupported_manifest, r"manifest of .* is malformed: .*format 99", id="manifest-format"),
    ],
)
def test_a_snapshot_that_cannot_be_decoded_fails_the_target_and_touches_nothing(
    deployment, pce, panos, clock, damage, message
):
    deployment.invoke({})
    damage(deployment)
    before, items_before = panos.table(), target_items(deployment)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    panos.clear_log()
    with pytest.raises(RunFailed, match=message):
        deployment.invoke({})
    assert panos.non_ha_requests() == []
    assert (panos.table(), target_items(deployment)) == (before, items_before)


def test_deleting_an_undecodable_snapshot_and_reconciling_recovers_exactly(deployment, pce, panos, clock):
    deployment.invoke({})
    corrupt_shard(deployment)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    panos.register_foreign("10.1.0.2", ["soc.watch"])
    wipe_table(deployment)
    assert deployment.invoke({"mode": "reconcile"})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {"10.1.0.2": frozenset({"soc.watch"})}, now=clock.now)
