"""The change feed's projection and watermark under a crash after every DynamoDB call of a commit.

Two commits are crashed: `targeted` (a targeted update: load, then apply three changed workloads)
and `export` (a full export replacing the projection). Every call of a clean commit is a crash
point, as an exception inside the store (its cleanup runs) or a killed process (nothing after the
crash runs; its lease has to expire). After each crash the next load is consistent: the old or
the new projection, and a watermark that either describes it exactly or names another
generation (then the next run exports in full). The next run, whichever it does, ends with the
new projection, a watermark that describes it, and no garbage.
"""

from datetime import UTC, datetime
from typing import Any

import pytest

from dagsync.core.records import Watermark
from dagsync.store.codec import ShardLimits
from dagsync.store.projection import PROJECTION_PK, WATERMARK_KEY, ProjectionStore
from dagsync.store.table import Table
from emulators.local import TABLE
from tests.faults.harness import Crash, CrashMode, InjectedFault, Seams, table_items, wipe_table
from tests.support.clock import FakeClock

LEASE_SECONDS = 930.0
SMALL_SHARDS = ShardLimits(target_per_shard=20, min_per_shard=5, max_per_shard=40)
OLD_MARK = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NEW_MARK = datetime(2026, 12, 1, 9, 1, tzinfo=UTC)


def href(n: int) -> str:
    return f"/orgs/1/workloads/w{n}"


def entry(n: int, env: str = "Prod") -> tuple[tuple[str, ...], frozenset[str]]:
    return (f"10.9.{n // 250}.{n % 250 + 1}",), frozenset({f"illumio.app.A{n % 5}", f"illumio.env.{env}"})


OLD = {href(n): entry(n) for n in range(200)}
CHANGES = {href(3): entry(3, "Quarantine"), href(4): None, href(500): entry(500)}
NEW = {
    **{k: v for k, v in OLD.items() if k != href(4)},
    href(3): entry(3, "Quarantine"),
    href(500): entry(500),
}
SCENARIOS = ["targeted", "export"]
COMMIT = [
    *("dynamodb UpdateItem", "dynamodb BatchWriteItem", "dynamodb PutItem", "dynamodb PutItem"),
    *("dynamodb BatchWriteItem", "dynamodb UpdateItem"),
]
TRACES = {
    "targeted": ["dynamodb GetItem", "dynamodb BatchGetItem", "dynamodb GetItem", *COMMIT],
    "export": ["dynamodb GetItem", "dynamodb GetItem", *COMMIT],
}

# One case per crash point: (scenario, index of the call the commit is stopped after, that call).
CRASH_POINTS = [
    pytest.param(scenario, index, call, id=f"{scenario}-{index}-{call.split()[-1]}")
    for scenario in SCENARIOS
    for index, call in enumerate(TRACES[scenario])
]


def store_of(clock: FakeClock) -> ProjectionStore:
    return ProjectionStore(Table(TABLE), clock=clock, limits=SMALL_SHARDS)


def start_over(deployment: Any, seams: Seams, clock: FakeClock) -> None:
    wipe_table(deployment)
    store = store_of(clock)
    store.replace(
        store.current_generation(),
        OLD,
        Watermark(last_event_at=OLD_MARK, exported_at=OLD_MARK),
        run_id="setup",
        lease_seconds=60,
    )
    seams.reset()


def crashed_run(scenario: str, clock: FakeClock) -> None:
    """The commit that is crashed: both end with NEW, and a watermark at NEW_MARK."""
    store = store_of(clock)
    if scenario == "targeted":
        projection, watermark = store.load(), store.load_watermark()
        mark = Watermark(
            NEW_MARK, frozenset({"/orgs/1/events/e1"}), watermark.exported_at, revision=watermark.revision
        )
        store.commit(projection.generation, CHANGES, mark, run_id="run-feed", lease_seconds=LEASE_SECONDS)
        return
    watermark = store.load_watermark()
    store.replace(
        store.current_generation(),
        NEW,
        Watermark(NEW_MARK, exported_at=NEW_MARK, revision=watermark.revision),
        run_id="run-export",
        lease_seconds=LEASE_SECONDS,
    )


def next_run(clock: FakeClock) -> None:
    """What the engine does next: retry the targeted update when the watermark describes the
    projection, else a full export."""
    store = store_of(clock)
    projection, watermark = store.load(), store.load_watermark()
    mark = Watermark(NEW_MARK, exported_at=NEW_MARK, revision=watermark.revision)
    if watermark.describes(projection):
        store.commit(projection.generation, CHANGES, mark, run_id="run-next", lease_seconds=LEASE_SECONDS)
    else:
        store.replace(projection.generation, NEW, mark, run_id="run-next", lease_seconds=LEASE_SECONDS)


def garbage(deployment: Any) -> set[str]:
    """Shard items no manifest references, and anything a manifest still lists to delete."""
    items = table_items(deployment)
    manifest = next(item for item in items if item["sk"]["S"] == "manifest")
    referenced = {entry["M"]["key"]["S"] for entry in manifest["shards"]["L"]}
    shards = {item["sk"]["S"] for item in items if item["sk"]["S"].startswith("shard#")}
    pending = {name for name in ("garbage", "abandoned") if name in manifest}
    assert {item["pk"]["S"] for item in items} == {PROJECTION_PK}
    return (shards - referenced) | pending


def assert_consistent(clock: FakeClock, label: str) -> None:
    store = store_of(clock)
    projection, watermark = store.load(), store.load_watermark()
    assert projection.entries in (OLD, NEW), f"{label}: projection is neither the old nor the new one"
    if watermark.describes(projection):
        expected = NEW_MARK if projection.entries == NEW else OLD_MARK
        assert watermark.last_event_at == expected, f"{label}: the watermark does not match the projection"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_crashed_commits_touch_several_shards(
    deployment, seams: Seams, clock: FakeClock, scenario: str
) -> None:
    start_over(deployment, seams, clock)
    crashed_run(scenario, clock)
    assert seams.trace == TRACES[scenario]
    assert store_of(clock).load().entries == NEW
    assert garbage(deployment) == set()


@pytest.mark.parametrize(("scenario", "index", "call"), CRASH_POINTS)
@pytest.mark.parametrize("mode", ["exception", "kill"])
def test_a_crash_after_any_call_leaves_a_consistent_state_and_the_next_run_ends_exact_without_garbage(
    deployment, seams: Seams, clock: FakeClock, scenario: str, index: int, call: str, mode: CrashMode
) -> None:
    label = f"crash after call {index} ({call})"
    start_over(deployment, seams, clock)
    seams.crash_after(index, mode)
    with pytest.raises(Crash if mode == "kill" else InjectedFault):
        crashed_run(scenario, clock)
    seams.heal()
    if mode == "kill":
        clock.advance(LEASE_SECONDS + 1)

    assert_consistent(clock, label)
    next_run(clock)

    store = store_of(clock)
    projection, watermark = store.load(), store.load_watermark()
    assert projection.entries == NEW, label
    assert watermark.describes(projection), label
    assert garbage(deployment) == set(), label
    assert (PROJECTION_PK, WATERMARK_KEY) in {(i["pk"]["S"], i["sk"]["S"]) for i in table_items(deployment)}
