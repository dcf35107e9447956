"""Per-target freshness, stuck leases and the order of targets (docs/results.md#metrics,
docs/fan-out.md#deadlines, docs/snapshot.md#target-history)."""

import json
from pathlib import Path

import pytest

from app import RunFailed
from dagsync.store.snapshot import SnapshotStore
from emulators.local import TABLE
from emulators.panos import PanosEmulator
from tests.support.clock import FakeClock

SCHEDULED = json.loads((Path(__file__).resolve().parents[2] / "events" / "scheduled.json").read_text())
SERIALS = ("007951000000101", "007951000000102")
STUCK_AFTER = 2 * 900.0  # twice the function's timeout


@pytest.fixture
def wall_clock(fast_retries) -> FakeClock:
    """The wall clock the snapshot store keeps leases and the target history on."""
    clock = FakeClock()
    fast_retries.configure(wall_clock=clock)
    return clock


@pytest.fixture
def metrics(capsys):
    """The metrics of the runs so far, from the EMF blobs the function printed: per target
    (name -> {metric: value}) and for the run (the last run's)."""

    def read():
        per_target, run = {}, {}
        for line in capsys.readouterr().out.splitlines():
            if '"_aws"' not in line:
                continue
            blob = json.loads(line)
            names = [m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
            values = {name: blob[name][0] if isinstance(blob[name], list) else blob[name] for name in names}
            if "Target" in blob:
                per_target[blob["Target"]] = values
            else:
                run = values
        return per_target, run

    return read


def target_of(deployment):
    return deployment.invoke(SCHEDULED)["targets"][0]["target"]


def failing_run(deployment):
    with pytest.raises(RunFailed):
        deployment.invoke(SCHEDULED)


def test_a_target_that_ended_ok_reports_a_sync_age_of_zero(deployment, metrics):
    target = target_of(deployment)
    assert metrics()[0][target]["LastSyncAgeSeconds"] == 0


def test_a_quiet_ok_run_reports_a_sync_age_of_zero_and_writes_nothing(deployment, metrics):
    target = target_of(deployment)
    before = SnapshotStore(TABLE).load(target).generation
    metrics()
    deployment.invoke(SCHEDULED)
    assert metrics()[0][target]["LastSyncAgeSeconds"] == 0
    assert SnapshotStore(TABLE).load(target).generation == before


def test_a_failing_target_reports_the_time_since_it_last_ended_ok(
    deployment, pce, panos, metrics, wall_clock
):
    target = target_of(deployment)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    panos.fail_next(1000, status=500, type="user-id")
    failing_run(deployment)
    wall_clock.advance(600)
    failing_run(deployment)
    per_target, _ = metrics()
    assert per_target[target]["LastSyncAgeSeconds"] == 600


def test_the_age_goes_back_to_zero_once_the_target_ends_ok(deployment, pce, panos, metrics, wall_clock):
    target = target_of(deployment)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    panos.fail_next(1000, status=500, type="user-id")
    failing_run(deployment)
    wall_clock.advance(600)
    panos.clear_faults()
    deployment.invoke(SCHEDULED)
    assert metrics()[0][target]["LastSyncAgeSeconds"] == 0


def test_the_summary_counts_unfinished_targets(deployment):
    assert deployment.invoke(SCHEDULED)["unfinished"] == 0


class TestLeases:
    def hold_lease(self, deployment, pce, wall_clock, *, held_for):
        """Another run takes the target's lease and has held it `held_for` seconds by the next run."""
        target = target_of(deployment)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        store = SnapshotStore(TABLE, clock=wall_clock)
        store.acquire(store.load(target), "other-run", lease_seconds=held_for + 600)
        wall_clock.advance(held_for)
        return target

    def test_a_conflict_reports_how_long_the_lease_has_been_held(self, deployment, pce, wall_clock):
        self.hold_lease(deployment, pce, wall_clock, held_for=120)
        target = deployment.invoke(SCHEDULED)["targets"][0]
        assert (target["status"], target["conflict_seconds"]) == ("conflict", 120)

    def test_a_conflict_that_is_not_stuck_is_quiet(self, deployment, pce, wall_clock, metrics):
        target = self.hold_lease(deployment, pce, wall_clock, held_for=120)
        assert deployment.invoke(SCHEDULED)["status"] == "conflict"
        per_target, run = metrics()
        assert (per_target[target]["Conflict"], run["Conflict"]) == (0, 0)

    def test_a_stuck_lease_makes_the_run_raise_and_counts_as_a_conflict(
        self, deployment, pce, wall_clock, metrics
    ):
        target = self.hold_lease(deployment, pce, wall_clock, held_for=STUCK_AFTER + 100)
        with pytest.raises(RunFailed, match=r"run conflict; .*: it is stuck"):
            deployment.invoke(SCHEDULED)
        per_target, run = metrics()
        assert (per_target[target]["Conflict"], run["Conflict"]) == (1, 1)


class TestOrder:
    @pytest.fixture
    def panos(self):
        return PanosEmulator("panorama", api_keys=("test-api-key",), firewalls=SERIALS)

    @pytest.fixture
    def settings(self):
        return {"PANOS_TARGET_SERIALS": ",".join(SERIALS), "PANOS_MAX_CONCURRENCY": "1"}

    def first_pushed(self, panos):
        return next(entry.target for entry in panos.calls("user-id"))

    def test_targets_run_in_their_configured_order_when_all_are_up_to_date(self, deployment, pce, panos):
        deployment.invoke(SCHEDULED)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        panos.clear_log()
        deployment.invoke(SCHEDULED)
        assert self.first_pushed(panos) == SERIALS[0]

    @pytest.mark.parametrize("status", ["failed", "incomplete"])
    def test_a_target_the_last_run_left_unfinished_goes_first(self, deployment, pce, panos, status):
        summary = deployment.invoke(SCHEDULED)
        last = summary["targets"][1]["target"]
        store = SnapshotStore(TABLE)
        assert store.record_outcome(store.load(last), status)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        panos.clear_log()
        deployment.invoke(SCHEDULED)
        assert self.first_pushed(panos) == SERIALS[1]
