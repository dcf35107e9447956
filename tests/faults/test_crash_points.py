"""docs/sync.md#crash-rules: stop a multi-batch sync after every single I/O call it makes, then check that the
next run leaves the device and the snapshot exactly right.

Two syncs are crashed, on a device that also holds another tool's tags (BATCH_SIZE=2):
`first-run` registers four batches into an empty snapshot and ends with the drift canary;
`change` registers two batches and unregisters two on a synced estate. Every PCE, PAN-OS and
DynamoDB call of a clean run is a crash point: after each batch the device answered, around the
write-ahead record, between the shard writes and the manifest swap, after the swap, after the
canary, and after the HA state query. A crash is either an exception inside the function (its
cleanup still runs) or a killed process (nothing after the crash point runs; its lease has to
expire).
"""

from typing import Any

import pytest

from app import RunFailed
from tests.faults.harness import (
    Crash,
    CrashMode,
    InjectedFault,
    Seams,
    assert_exact,
    desired_of,
    load_snapshot,
    outcome,
    wipe_table,
)
from tests.integration.conftest import workload
from tests.support.clock import FakeClock

# An invocation that dies before its summary publishes no metrics; Lambda's Errors metric counts it.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
# The handler's lease: the invocation's remaining time (900 s in FakeContext) plus its margin.
LEASE_SECONDS = 930.0
FOREIGN = {
    "10.9.0.1": frozenset({"soc.quarantine"}),
    "10.9.9.9": frozenset({"other-tool.web"}),
}
SCENARIOS = ["first-run", "change"]
WRITE_AHEAD = ["dynamodb BatchWriteItem", "dynamodb PutItem"]
COMMIT = ["dynamodb BatchWriteItem", "dynamodb PutItem", "dynamodb BatchWriteItem", "dynamodb UpdateItem"]
TRACES = {
    "first-run": [
        *(
            "pce workloads",
            "pce jobs",
            "pce datafiles",
            "panos ha-state",
            "dynamodb GetItem",
            "panos show all",
        ),
        "dynamodb UpdateItem",
        *WRITE_AHEAD,
        *("panos register",) * 4,
        *COMMIT,
        "panos canary",
    ],
    "change": [
        *("pce workloads", "pce jobs", "pce datafiles", "panos ha-state", "dynamodb GetItem"),
        "dynamodb BatchGetItem",
        *("panos show canary", "dynamodb UpdateItem"),
        *COMMIT,
        *("panos register", "panos register", "panos unregister", "panos unregister"),
        *COMMIT,
    ],
}


def initial_estate() -> list[dict[str, Any]]:
    return [workload(f"w{n}", {"app": f"App{n % 3}", "env": "Prod"}, [f"10.9.0.{n}"]) for n in range(1, 9)]


def change(pce: Any) -> None:
    """Two register batches and two unregister batches: three new, three gone, one relabelled."""
    for n in (6, 7, 8):
        pce.delete_workload(f"/orgs/1/workloads/w{n}")
    for n in (1, 2, 3):
        pce.upsert_workload(workload(f"n{n}", {"app": "New", "env": "Prod"}, [f"10.9.1.{n}"]))
    pce.relabel("/orgs/1/workloads/w1", "env", "Quarantine")


@pytest.fixture
def settings() -> dict[str, str]:
    # The snapshot's crash points; the change feed's have their own (test_change_feed_crash_points).
    return {"BATCH_SIZE": "2", "MAX_REMOVAL_RATIO": "1", "CHANGE_FEED": "off"}


def start_over(deployment: Any, pce: Any, panos: Any, seams: Seams, scenario: str) -> list[dict[str, Any]]:
    """Set the scenario up to the run that is crashed; returns the estate before that run's change."""
    wipe_table(deployment)
    panos.clear_table()
    panos.clear_faults()
    for ip, tags in FOREIGN.items():
        panos.register_foreign(ip, tags)
    if scenario == "first-run":
        pce.set_workloads(initial_estate())
        seams.reset()
        return []
    pce.set_workloads(initial_estate())
    assert deployment.invoke({})["status"] == "ok"
    change(pce)
    seams.reset()
    return initial_estate()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_crashed_syncs_span_several_batches_and_a_sharded_commit(deployment, pce, panos, seams, scenario):
    start_over(deployment, pce, panos, seams, scenario)
    assert deployment.invoke({})["status"] == "ok"
    assert seams.trace == TRACES[scenario]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("mode", ["exception", "kill"])
@pytest.mark.parametrize("estate_after", ["unchanged", "reverted"])
def test_a_crash_after_any_io_call_is_repaired_exactly_by_the_next_run(
    deployment, pce, panos, seams: Seams, clock: FakeClock, scenario: str, mode: CrashMode, estate_after: str
):
    """`reverted`: the change is undone before the next run, so whatever the crashed run sent
    must be taken back (registrations) or put back (unregistrations), not just sent again."""
    start_over(deployment, pce, panos, seams, scenario)
    deployment.invoke({})
    assert seams.trace == TRACES[scenario]  # every call of the clean run is a crash point below
    for index, label in enumerate(TRACES[scenario]):
        before_change = start_over(deployment, pce, panos, seams, scenario)
        seams.crash_after(index, mode)
        crashed = outcome(deployment)
        expected_error = Crash if mode == "kill" else (RunFailed, InjectedFault)
        assert isinstance(crashed, expected_error), f"crash after call {index} ({label}): {crashed!r}"
        seams.heal()
        if mode == "kill":
            clock.advance(LEASE_SECONDS + 1)
        if estate_after == "reverted":
            pce.set_workloads(before_change)
        first = outcome(deployment)
        assert isinstance(first, dict), f"crash after call {index} ({label}): next run {first!r}"
        assert first["status"] == "ok", f"crash after call {index} ({label}): {first}"
        try:
            assert_exact(deployment, panos, desired_of(pce), FOREIGN, now=clock.now)
        except AssertionError as exc:
            raise AssertionError(f"crash after call {index} ({label}), then one run: {exc}") from exc
        panos.clear_log()
        assert deployment.invoke({})["targets"][0]["registered"] == 0
        assert panos.calls("user-id") == []


def test_a_killed_runs_lease_keeps_other_runs_out_until_it_expires(
    deployment, pce, panos, seams: Seams, clock: FakeClock
):
    start_over(deployment, pce, panos, seams, "change")
    seams.crash_after(TRACES["change"].index("panos register"), "kill")
    assert isinstance(outcome(deployment), Crash)
    seams.heal()
    panos.clear_log()
    clock.advance(LEASE_SECONDS - 1)
    blocked = deployment.invoke({})["targets"][0]
    assert (blocked["status"], panos.calls("user-id")) == ("conflict", [])
    assert "holds the lease" in blocked["error"]
    clock.advance(2)
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), FOREIGN, now=clock.now)
    assert load_snapshot(deployment).manifest.abandoned == frozenset()
