"""Fan-out and deadlines (docs/fan-out.md): many targets behind one Panorama, slow devices, first
syncs that outlast one invocation, and a process killed in the middle of a long push.

The PAN-OS emulator charges every uid-message entry the device time of the published
measurement (docs/protocols.md#pan-os-device-speed), scaled by `time_scale`. Where the test is
about order and concurrency, that time is real and small; where it is about the deadline, the
device sleeps on the fake clock the engine and the clients keep time with, so no test waits.
"""

import os
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from dagsync.core.invocation import parse_event
from dagsync.core.result import RunResult
from dagsync.core.settings import load_settings
from dagsync.edges import runtime
from dagsync.sync.engine import SyncEngine
from dagsync.sync.push import ProgressPolicy
from emulators.local import PANOS_API_KEY, LocalDeployment
from emulators.panos import IngestCost, PanosEmulator
from emulators.pce import PceEmulator
from tests.faults.conftest import clock, seams
from tests.faults.harness import CANARY, Crash, Seams, desired_of, outcome
from tests.integration.conftest import ClientSetup, large_estate
from tests.support.clock import FakeClock

__all__ = ["clock", "seams"]

SERIALS = tuple(f"007952{n:09d}" for n in range(50))
PREFIX = "illumio."


def ours(table: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    return {
        ip: mine
        for ip, tags in table.items()
        if (mine := frozenset(tag for tag in tags if tag.startswith(PREFIX))) and ip not in CANARY
    }


def panorama(serials: tuple[str, ...], **options: Any) -> PanosEmulator:
    return PanosEmulator("panorama", api_keys=(PANOS_API_KEY,), firewalls=serials, **options)


def targets_settings(serials: tuple[str, ...], **more: str) -> dict[str, str]:
    return {"PANOS_TARGET_SERIALS": ",".join(serials), **more}


def duplicates(panos: PanosEmulator, serial: str) -> int:
    """Entries the firewall received more than once (registrations, the canary left out)."""
    received = panos.entries_received("register", serial=serial)
    return sum(count - 1 for ip, count in received.items() if ip not in CANARY)


def assert_every_target_exact(panos: PanosEmulator, serials: tuple[str, ...], pce: PceEmulator) -> None:
    desired = ours(desired_of(pce))
    for serial in serials:
        assert ours(panos.table(serial=serial)) == desired, f"{serial} differs from the desired pairs"


# -- parallel targets ---------------------------------------------------------------------------


class TestFiftySerialsBehindOnePanorama:
    @pytest.fixture
    def pce(self, pce: PceEmulator) -> PceEmulator:
        pce.set_workloads(large_estate(60))
        return pce

    @pytest.fixture
    def panos(self) -> PanosEmulator:
        # A few milliseconds of real device time a batch, so that requests overlap.
        return panorama(SERIALS, time_scale=0.1)

    @pytest.fixture
    def settings(self) -> dict[str, str]:
        return targets_settings(SERIALS, BATCH_SIZE="20")

    def test_never_more_than_five_requests_are_in_flight(self, deployment, panos):
        assert deployment.invoke({})["status"] == "ok"
        assert 1 < panos.max_concurrency <= 5

    def test_every_target_ends_exact(self, deployment, panos, pce):
        summary = deployment.invoke({})
        assert [target["status"] for target in summary["targets"]] == ["ok"] * len(SERIALS)
        assert_every_target_exact(panos, SERIALS, pce)

    def test_the_inventory_is_read_once_for_all_targets(self, deployment, pce):
        deployment.invoke({})
        assert sum(1 for entry in pce.requests if entry.path.endswith("/jobs")) <= 1


class TestOneSlowFirewall:
    FAST = SERIALS[:5]
    SLOW = SERIALS[5]
    SERIALS = (*FAST, SLOW)
    TIME_SCALE = 1.0  # the real per-entry cost, in real time: a third of a second a firewall

    @pytest.fixture
    def pce(self, pce: PceEmulator) -> PceEmulator:
        pce.set_workloads(large_estate(100))
        return pce

    @pytest.fixture
    def panos(self) -> PanosEmulator:
        device = panorama(self.SERIALS, time_scale=self.TIME_SCALE)
        device.set_slowness(10, serial=self.SLOW)
        return device

    @pytest.fixture
    def settings(self) -> dict[str, str]:
        return targets_settings(self.SERIALS, BATCH_SIZE="25")

    def test_the_others_finish_in_their_own_share_of_time(self, deployment, panos, pce):
        assert deployment.invoke({})["status"] == "ok"
        pushes = [entry for entry in panos.calls("user-id", verb="register") if entry.uid["register"] > 1]
        started = min(entry.started for entry in pushes)
        pushed = {
            serial: (
                min(entry.started for entry in pushes if entry.target == serial) - started,
                max(entry.finished for entry in pushes if entry.target == serial) - started,
            )
            for serial in self.SERIALS
        }
        own_share = 100 * IngestCost().register * self.TIME_SCALE  # one fast firewall's push, alone
        _, slow_done = pushed.pop(self.SLOW)
        assert slow_done >= 10 * own_share
        # Five fast firewalls share the four slots the slow one leaves: each push takes at most
        # about twice its own time, and all of them end long before the slow one.
        for first, last in pushed.values():
            assert last - first < 3 * own_share
        assert max(last for _, last in pushed.values()) < slow_done / 2
        assert_every_target_exact(panos, self.SERIALS, pce)


# -- deadlines ----------------------------------------------------------------------------------


class TestFirstSyncLongerThanOneInvocation:
    """Ten firewalls, 500 addresses each at the real per-entry cost: 17 s of device time, with runs
    allowed 7 s each (fake time). Two runs cannot do it; the third ends it."""

    SERIALS = SERIALS[:10]
    WORKLOADS = 500
    BATCH = 50
    BUDGET = 10 * WORKLOADS * IngestCost().register / 2.4

    @pytest.fixture
    def pce(self, pce: PceEmulator) -> PceEmulator:
        pce.set_workloads(large_estate(self.WORKLOADS))
        return pce

    @pytest.fixture
    def panos(self, fast_retries: ClientSetup) -> PanosEmulator:
        """The device's time passes on the clock the clients and the engine keep."""
        clock = fast_retries.clock
        return panorama(self.SERIALS, time_scale=1.0, sleep=clock.sleep, now=clock.monotonic)

    @pytest.fixture
    def settings(self) -> dict[str, str]:
        return targets_settings(self.SERIALS, BATCH_SIZE=str(self.BATCH))

    @pytest.fixture
    def run(
        self, deployment: LocalDeployment, fast_retries: ClientSetup, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Any]:
        """One invocation allowed BUDGET seconds of the fake clock, through the real composition root."""

        def invoke() -> RunResult:
            engine = runtime.build_engine(
                load_settings(os.environ),
                run_id=f"run-{fast_retries.clock.monotonic()}",
                lease_seconds=900,
                options=fast_retries.options,
                remaining_seconds=self.BUDGET,
            )
            return engine.run(parse_event({}))

        yield invoke

    def test_it_completes_in_three_runs(self, run, panos, pce):
        statuses = [run().targets for _ in range(3)]
        assert {target.status for target in statuses[1]} >= {"incomplete"}
        assert [target.status for target in statuses[2]] == ["ok"] * len(self.SERIALS)
        assert_every_target_exact(panos, self.SERIALS, pce)

    def test_an_incomplete_run_reports_what_remains_and_does_not_fail(self, run):
        first = run()
        assert not first.failures
        incomplete = [target for target in first.targets if target.status == "incomplete"]
        assert incomplete
        assert all(0 < target.remaining <= self.WORKLOADS * 2 for target in incomplete)

    def test_at_most_one_batch_is_resent_per_interruption(self, run, panos):
        for _ in range(3):
            run()
        interruptions = 2
        for serial in self.SERIALS:
            assert duplicates(panos, serial) <= interruptions * self.BATCH, serial

    def test_every_target_is_served_by_the_second_run(self, run, panos):
        run()
        first = {serial: len(panos.entries_received("register", serial=serial)) for serial in self.SERIALS}
        run()
        second = {serial: len(panos.entries_received("register", serial=serial)) for serial in self.SERIALS}
        assert all(second[serial] > 0 for serial in self.SERIALS), (first, second)


# -- a process killed in the middle of a long push ----------------------------------------------


class TestKilledDuringALongPush:
    BATCHES = 12  # 240 addresses in batches of 20
    EVERY_BATCHES = 3

    @pytest.fixture
    def pce(self, pce: PceEmulator) -> PceEmulator:
        pce.set_workloads(large_estate(20 * self.BATCHES))
        return pce

    @pytest.fixture
    def settings(self) -> dict[str, str]:
        return {"BATCH_SIZE": "20"}

    @pytest.fixture(autouse=True)
    def frequent_progress(self, monkeypatch: pytest.MonkeyPatch) -> None:
        policy = ProgressPolicy(every_batches=self.EVERY_BATCHES)
        monkeypatch.setattr(runtime, "SyncEngine", partial(SyncEngine, progress=policy))

    @pytest.mark.parametrize("kill_at", range(0, BATCHES, 2))
    def test_it_converges_and_repeats_only_what_followed_the_last_progress_commit(
        self, deployment, pce, panos, seams: Seams, clock: FakeClock, kill_at: int
    ):
        seams.crash_after(kill_at, "kill", among="panos register")
        assert isinstance(outcome(deployment), Crash)
        seams.heal()
        clock.advance(3600)  # the killed run's lease has expired
        summary = outcome(deployment)
        assert isinstance(summary, dict) and summary["status"] == "ok", summary
        assert ours(panos.table()) == ours(desired_of(pce))
        received = panos.entries_received("register", serial=panos.serial)
        resent = sum(count - 1 for ip, count in received.items() if ip not in CANARY)
        assert resent <= 20 * self.EVERY_BATCHES
        panos.clear_log()
        assert deployment.invoke({})["targets"][0]["registered"] == 0
