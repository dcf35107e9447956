"""A targeted update through the change feed, killed after each of its DynamoDB writes
(docs/sync.md#crash-rules, docs/change-feed.md#watermark).

The crashed run applies three changes from the events (a relabel, a deletion, a new workload):
it writes the target's write-ahead and commit, then the projection's lease, shards, manifest and
watermark. After a crash at any of those writes, as an exception (the function's cleanup runs) or
a killed process (its leases have to expire), the next scheduled run leaves the device and the
snapshot exact, and the next run that commits leaves no garbage in the table.
"""

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from app import RunFailed
from dagsync.edges import runtime
from dagsync.store.manifest import MANIFEST_KEY
from dagsync.store.projection import PROJECTION_PK, WATERMARK_KEY, ProjectionStore
from tests.faults.harness import (
    Crash,
    CrashMode,
    InjectedFault,
    Seams,
    assert_exact,
    desired_of,
    outcome,
    table_items,
    wipe_table,
)
from tests.integration.conftest import ClientSetup, workload
from tests.support.clock import FakeClock

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
SCHEDULED = json.loads((Path(__file__).resolve().parents[2] / "events" / "scheduled.json").read_text())
LEASE_SECONDS = 930.0
WRITES = ("dynamodb PutItem", "dynamodb UpdateItem", "dynamodb BatchWriteItem", "dynamodb DeleteItem")


@pytest.fixture(autouse=True)
def feed_on_the_fake_clock(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, fast_retries: ClientSetup, pce: Any
) -> None:
    """Event timestamps, the watermark and the projection's lease all read the test's clock."""
    pce.clock = clock
    fast_retries.configure(wall_clock=clock)
    monkeypatch.setattr(runtime, "ProjectionStore", partial(ProjectionStore, clock=clock))


def initial_estate() -> list[dict[str, Any]]:
    return [workload(f"w{n}", {"app": f"App{n % 3}", "env": "Prod"}, [f"10.9.0.{n}"]) for n in range(1, 9)]


def start_over(deployment: Any, pce: Any, panos: Any, seams: Seams, clock: FakeClock) -> None:
    """A full export recorded, then three changes written to the PCE's events a minute later."""
    wipe_table(deployment)
    panos.clear_table()
    pce.set_workloads(initial_estate())
    clock.advance(600)  # the events of that reset fall out of the next run's read-back window
    seams.reset()
    first = deployment.invoke(SCHEDULED)
    assert (first["status"], first["source"]) == ("ok", "export")
    clock.advance(60)
    pce.relabel("/orgs/1/workloads/w1", "env", "Quarantine")
    pce.delete_workload("/orgs/1/workloads/w6")
    pce.upsert_workload(workload("n1", {"app": "New", "env": "Prod"}, ["10.9.1.1"]))
    seams.reset()


def garbage(deployment: Any) -> set[str]:
    """Items no manifest references, and anything a manifest still lists to delete."""
    items = table_items(deployment)
    manifests = {item["pk"]["S"]: item for item in items if item["sk"]["S"] == MANIFEST_KEY}
    found = set()
    for item in items:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk in (MANIFEST_KEY, WATERMARK_KEY) and pk in (PROJECTION_PK, *manifests):
            continue
        manifest = manifests.get(pk)
        referenced = {entry["M"]["key"]["S"] for entry in manifest["shards"]["L"]} if manifest else set()
        if sk not in referenced:
            found.add(f"{pk} {sk}")
    for pk, manifest in manifests.items():
        found.update(f"{pk} {name}" for name in ("garbage", "abandoned") if name in manifest)
    return found


def write_points(deployment: Any, pce: Any, panos: Any, seams: Seams, clock: FakeClock) -> list[int]:
    """The index, among DynamoDB calls, of every write of a clean targeted update."""
    start_over(deployment, pce, panos, seams, clock)
    summary = deployment.invoke(SCHEDULED)
    assert (summary["status"], summary["source"], summary["workloads_fetched"]) == ("ok", "events", 3)
    calls = [label for label in seams.trace if label.startswith("dynamodb")]
    return [index for index, label in enumerate(calls) if label in WRITES]


@pytest.mark.parametrize("mode", ["exception", "kill"])
def test_a_crash_at_any_dynamodb_write_of_a_targeted_update_converges_without_garbage(
    deployment: Any, pce: Any, panos: Any, seams: Seams, clock: FakeClock, mode: CrashMode
) -> None:
    points = write_points(deployment, pce, panos, seams, clock)
    assert len(points) >= 6  # the target's write-ahead and commit, the projection's commit
    for index in points:
        start_over(deployment, pce, panos, seams, clock)
        seams.crash_after(index, mode, among="dynamodb")
        crashed = outcome(deployment, SCHEDULED)
        assert isinstance(crashed, (Crash, RunFailed, InjectedFault)), (
            f"crash after write {index}: {crashed!r}"
        )
        seams.heal()
        if mode == "kill":
            clock.advance(LEASE_SECONDS + 1)
        after = outcome(deployment, SCHEDULED)
        assert isinstance(after, dict) and after["status"] == "ok", (
            f"crash after write {index}: next run {after!r}"
        )
        assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)
        clock.advance(60)
        pce.relabel("/orgs/1/workloads/w2", "env", "Staging")
        committing = deployment.invoke(SCHEDULED)
        assert committing["status"] == "ok", f"crash after write {index}: {committing}"
        assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)
        assert garbage(deployment) == set(), f"crash after write {index}: garbage left"
