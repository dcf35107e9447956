"""Workload state and label groups as tags end to end (docs/mapping.md#state-tags,
docs/change-feed.md#state-events): the handler, moto and both emulators."""

import json
from pathlib import Path
from typing import Any

import pytest

from app import RunFailed
from dagsync.core.canary import CANARY_IP
from emulators.local import cold_start
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from tests.integration.conftest import ClientSetup, workload
from tests.support.clock import FakeClock

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEDULED = json.loads((EVENTS / "scheduled.json").read_text())
DRY_RUN = json.loads((EVENTS / "manual-dry-run.json").read_text())
WEB1 = "/orgs/1/workloads/web1"


def managed(name: str, labels: dict[str, str], address: str, mode: str) -> dict[str, Any]:
    """A managed workload as a PCE 25 answer shapes it: a VEN, an agent, a mode, online."""
    return {
        **workload(name, labels, [address]),
        "enforcement_mode": mode,
        "online": True,
        "agent": {"href": f"/orgs/1/agents/{name}", "type": "Host"},
        "ven": {"href": f"/orgs/1/vens/{name}", "hostname": name, "status": "active"},
    }


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pce(wall: FakeClock) -> PceEmulator:
    estate = [
        managed("web1", {"app": "Payments", "env": "Production"}, "10.1.0.1", "full"),
        managed("web2", {"app": "Payments", "env": "Production"}, "10.1.0.2", "selective"),
        {**workload("nas", {}, ["10.1.0.9"], managed=False), "ven": None, "online": True},
    ]
    emulator = PceEmulator(workloads=estate, clock=wall)
    emulator.retry_after = 0
    emulator.running_polls = 0
    return emulator


@pytest.fixture(autouse=True)
def feed_clock(fast_retries: ClientSetup, wall: FakeClock) -> None:
    fast_retries.configure(wall_clock=wall)


@pytest.fixture
def settings() -> dict[str, str]:
    return {"STATE_TAGS": "enforcement,managed,online", "LABEL_GROUP_TAGS": "true"}


def primed(deployment: Any, pce: PceEmulator, wall: FakeClock) -> Any:
    first = deployment.invoke(SCHEDULED)
    assert (first["status"], first["source"]) == ("ok", "export")
    wall.advance(60)
    pce.clear_log()
    return deployment


def test_state_tags_are_registered_on_a_full_export(deployment: Any, panos: PanosEmulator) -> None:
    deployment.invoke(SCHEDULED)
    table = panos.table()
    assert {"illumio.enforcement.full", "illumio.managed.yes", "illumio.online.yes"} <= table["10.1.0.1"]
    assert table["10.1.0.9"] == frozenset({"illumio.managed.no"})


def test_an_agent_going_offline_and_back_moves_through_the_feed_without_an_export(
    deployment: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    primed(deployment, pce, wall)
    jobs = pce.jobs_created
    pce.go_offline(WEB1)
    offline = deployment.invoke(SCHEDULED)
    assert (offline["source"], offline["workloads_fetched"]) == ("events", 1)
    assert "illumio.online.no" in panos.table()["10.1.0.1"]
    wall.advance(60)
    pce.come_online(WEB1)
    back = deployment.invoke(SCHEDULED)
    assert (back["source"], back["workloads_fetched"]) == ("events", 1)
    assert "illumio.online.yes" in panos.table()["10.1.0.1"]
    assert "illumio.online.no" not in panos.table()["10.1.0.1"]
    assert pce.jobs_created == jobs


def test_an_agent_goodbye_makes_the_workload_unmanaged_through_the_feed(
    deployment: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    primed(deployment, pce, wall)
    pce.agent_event(WEB1, "goodbye")
    summary = deployment.invoke(SCHEDULED)
    assert summary["source"] == "events"
    assert panos.table()["10.1.0.1"] == frozenset(
        {"illumio.app.Payments", "illumio.env.Production", "illumio.managed.no"}
    )


def test_a_label_group_update_makes_the_next_run_a_full_export(
    deployment: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    primed(deployment, pce, wall)
    payments = next(label for label in pce.workload(WEB1)["labels"] if label["key"] == "app")
    pce.set_label_group("Critical Apps", labels=[payments["href"]])
    pce.provision()
    summary = deployment.invoke(SCHEDULED)
    assert summary["source"] == "export"
    assert "illumio.lg.Critical Apps" in panos.table()["10.1.0.2"]


def test_an_unreadable_group_list_stops_the_run_before_any_device_call(
    deployment: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.fault_path = "/label_groups"
    pce.fail_next = 1
    pce.fail_status = 403
    with pytest.raises(RunFailed):
        deployment.invoke(SCHEDULED)
    assert panos.calls("user-id") == []


def test_turning_state_tags_off_makes_the_next_run_export_and_take_them_out(
    deployment: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    primed(deployment, pce, wall)
    with monkeypatch.context() as patch:  # undone here, before the deployment restores its environment
        patch.setenv("STATE_TAGS", "")
        cold_start()
        summary = deployment.invoke(SCHEDULED)
    cold_start()
    assert summary["source"] == "export"
    assert panos.table()["10.1.0.1"] == frozenset({"illumio.app.Payments", "illumio.env.Production"})


def test_turning_state_tags_off_goes_through_the_removal_guard(
    deployment: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pce.workloads.extend(
        managed(f"app{n}", {"app": "Payments", "env": "Production"}, f"10.2.0.{n}", "full")
        for n in range(1, 5)
    )
    primed(deployment, pce, wall)
    with monkeypatch.context() as patch:
        patch.setenv("STATE_TAGS", "")
        cold_start()
        summary = deployment.invoke(SCHEDULED)
    cold_start()
    assert summary["targets"][0]["status"] == "blocked"
    assert "illumio.online.yes" in panos.table()["10.2.0.1"]


class TestWithDags:
    @pytest.fixture
    def settings(self) -> dict[str, str]:
        return {"STATE_TAGS": "enforcement,online", "TAGS_IN_USE_ONLY": "true", "CHANGE_FEED": "off"}

    @pytest.fixture
    def panos(self, panos: PanosEmulator) -> PanosEmulator:
        panos.define_dag("trusted-payments", "'illumio.app.Payments' and 'illumio.enforcement.full'")
        panos.define_dag("offline", "'illumio.online.no'")
        return panos

    def test_tags_in_use_registers_the_state_tags_a_dag_names(
        self, deployment: Any, panos: PanosEmulator
    ) -> None:
        deployment.invoke(SCHEDULED)
        tags = {tag for ip, tags in panos.table().items() if ip != CANARY_IP for tag in tags}
        assert tags == {"illumio.app.Payments", "illumio.enforcement.full"}

    def test_a_dry_run_names_the_workload_that_would_join_the_offline_dag(
        self, deployment: Any, pce: PceEmulator
    ) -> None:
        deployment.invoke(SCHEDULED)
        pce.workload(WEB1)["online"] = False
        changes = {
            change["dag"]: change for change in deployment.invoke(DRY_RUN)["targets"][0]["dag_changes"]
        }
        assert (changes["offline"]["joins"], changes["offline"]["leaves"]) == (["10.1.0.1"], [])
        assert (changes["trusted-payments"]["joins"], changes["trusted-payments"]["leaves"]) == ([], [])
