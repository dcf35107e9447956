"""docs/sync.md#crash-rules as a property: over random estates and random sequences of changes and faults, no run
touches another tool's tags, and once the faults stop at most two runs bring the device and the
snapshot to exactly the desired pairs. Derandomized, so CI runs the same examples every time."""

import copy
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from dagsync.core.diff import subtract, union
from tests.faults.harness import (
    CANARY,
    Seams,
    desired_of,
    load_snapshot,
    outcome,
    throttle,
    wipe_table,
)
from tests.integration.conftest import workload
from tests.support.clock import FakeClock

# An invocation that dies before its summary publishes no metrics; Lambda's Errors metric counts it.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
LEASE_SECONDS = 930.0
POOL = [f"10.8.0.{n}" for n in range(1, 7)] + ["2001:db8:8::1"]
KEYS = ["app", "env", "role"]
VALUES = ["A", "B", "Quarantine"]
FOREIGN = {"10.8.0.1": frozenset({"soc.watch"}), "10.8.9.9": frozenset({"other-tool.web"})}

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
addresses = st.lists(st.sampled_from(POOL), max_size=2, unique=True)
spec = st.tuples(labels, addresses)
change = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("add"), spec),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("relabel"), st.integers(0, 20), st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.tuples(st.just("readdress"), st.integers(0, 20), addresses),
    st.tuples(st.just("foreign"), st.sampled_from(POOL), st.sampled_from(["soc.block", "illumio-old.x"])),
)
modes = st.sampled_from(["exception", "kill"])
fault = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("crash"), st.integers(0, 18), modes, st.just("")),
    st.tuples(st.just("crash"), st.integers(0, 1), modes, st.just("panos register")),
    st.tuples(st.just("crash"), st.integers(0, 1), modes, st.just("panos unregister")),
    st.tuples(
        st.just("device"), st.sampled_from(["503", "reset-after-apply", "code-22", "403"]), st.integers(0, 3)
    ),
    st.just(("table-full",)),
    st.tuples(
        st.just("dynamodb"),
        st.sampled_from(["GetItem", "UpdateItem", "BatchWriteItem", "PutItem"]),
        st.integers(0, 2),
    ),
    st.just(("pce-job-failed",)),
    st.just(("reboot",)),
)
events = st.sampled_from([{}, {}, {"mode": "reconcile"}])


@pytest.fixture
def settings() -> dict[str, str]:
    return {"BATCH_SIZE": "2", "MAX_REMOVAL_RATIO": "1"}


class World:
    """One deployment reused by every example; `reset` puts it back to an empty start."""

    def __init__(self, deployment: Any, pce: Any, panos: Any, seams: Seams, clock: FakeClock) -> None:
        self.deployment, self.pce, self.panos, self.seams, self.clock = deployment, pce, panos, seams, clock
        self.foreign: dict[str, frozenset[str]] = {}
        self.serial = 0

    def reset(self, estate: list[tuple[dict[str, str], list[str]]]) -> None:
        self.heal()
        wipe_table(self.deployment)
        self.panos.clear_table()
        self.foreign = dict(FOREIGN)
        for ip, tags in FOREIGN.items():
            self.panos.register_foreign(ip, tags)
        self.pce.set_workloads([])
        for item in estate:
            self.add(item)
        self.seams.reset()

    def add(self, item: tuple[dict[str, str], list[str]]) -> None:
        self.serial += 1
        self.pce.upsert_workload(workload(f"p{self.serial}", item[0], item[1]))

    def apply(self, step: tuple[Any, ...]) -> None:
        workloads = self.pce.workloads
        match step:
            case ("add", item):
                self.add(item)
            case ("delete", index) if workloads:
                self.pce.delete_workload(workloads[index % len(workloads)]["href"])
            case ("relabel", index, key, value) if workloads:
                self.pce.relabel(workloads[index % len(workloads)]["href"], key, value)
            case ("readdress", index, ips) if workloads:
                self.pce.set_addresses(workloads[index % len(workloads)]["href"], ips)
            case ("foreign", ip, tag):
                self.panos.register_foreign(ip, [tag])
                self.foreign = union(self.foreign, {ip: frozenset({tag})})

    def inject(self, step: tuple[Any, ...]) -> None:
        match step:
            case ("crash", index, mode, among):
                self.seams.crash_after(index, mode, among=among)
            case ("device", "503", after):
                self.panos.fail_next(10, status=503, type="user-id", after=after)
            case ("device", "reset-after-apply", after):
                self.panos.reset_next(10, after_apply=True, type="user-id", after=after)
            case ("device", "code-22", after):
                self.panos.error_code_next(10, type="user-id", after=after)
            case ("device", "403", after):
                self.panos.revoke_keys_after(after + 1)
            case ("table-full",):
                self.panos.fill_table()
            case ("dynamodb", operation, skip):
                self.seams.fail(throttle(operation, skip=skip))
            case ("pce-job-failed",):
                self.pce.job_outcome = "failed"
            case ("reboot",):
                self.panos.reboot()

    def heal(self) -> None:
        self.seams.heal()
        self.panos.clear_faults()
        self.panos.set_capacity(None)
        self.panos.add_api_key("test-api-key")
        self.pce.job_outcome = "done"

    def exact(self) -> bool:
        desired = desired_of(self.pce)
        snapshot = load_snapshot(self.deployment)
        device = union(union(desired, self.foreign), CANARY)
        return self.panos.table() == device and (snapshot.confirmed, snapshot.uncertain) == (desired, {})


@pytest.fixture
def world(deployment, pce, panos, seams, clock) -> World:
    return World(deployment, pce, panos, seams, clock)


# Each example is several handler runs: half the profile's examples (50 in `ci`) keep `make test`
# inside its time budget; HYPOTHESIS_PROFILE=release searches 1000.
EXAMPLES = max(1, hypothesis.settings.default.max_examples // 2)


@hypothesis.settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    estate=st.lists(spec, max_size=4),
    synced=st.booleans(),
    steps=st.lists(st.tuples(change, fault, events, st.booleans()), min_size=1, max_size=4),
)
def test_after_any_faults_at_most_two_runs_converge_exactly(world: World, estate, synced, steps) -> None:
    """Each step changes the estate, runs once under a fault and, when its flag says so, undoes
    the change afterwards: what a faulty run sent must then be taken back, not just re-sent."""
    world.reset(estate)
    if synced:
        outcome(world.deployment)
    for change_step, fault_step, event, reverted in steps:
        before = copy.deepcopy(world.pce.workloads)
        world.apply(change_step)
        world.inject(fault_step)
        outcome(world.deployment, event)
        world.heal()
        assert not world.panos.clear_sent
        assert subtract(world.foreign, world.panos.table()) == {}, "another tool's tag was removed"
        if reverted:
            world.pce.set_workloads(before)
    world.clock.advance(LEASE_SECONDS + 1)
    runs = 0
    while not world.exact():
        runs += 1
        assert runs <= 2, f"not exact after two runs: {steps}"
        result = outcome(world.deployment)
        assert isinstance(result, dict) and result["status"] == "ok", result
