"""TAGS_IN_USE_ONLY and membership plans against the PAN-OS emulator's configuration API
(docs/dag-awareness.md#tags-in-use, docs/dag-awareness.md#membership-plans)."""

import json
from pathlib import Path

import pytest

from app import RunFailed
from dagsync.core.canary import CANARY_IP
from emulators.local import cold_start
from emulators.pce import PceEmulator
from tests.integration.conftest import large_estate, small_estate
from tests.support.clock import FakeClock

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEDULED = json.loads((EVENTS / "scheduled.json").read_text())
DRY_RUN = json.loads((EVENTS / "manual-dry-run.json").read_text())
REFRESH = 301.0  # past the five minutes a set of tags in use stands


@pytest.fixture
def settings():
    # Every run a full export, so a DAG changed on the device is seen by the very next run; with
    # the change feed (TestWithTheChangeFeed) a quiet run sees it and leaves it to a full export.
    return {"TAGS_IN_USE_ONLY": "true", "CHANGE_FEED": "off"}


@pytest.fixture
def wall_clock(fast_retries) -> FakeClock:
    """The wall clock the tags-in-use cache keeps its reads on."""
    clock = FakeClock()
    fast_retries.configure(wall_clock=clock)
    return clock


@pytest.fixture
def panos(panos):
    panos.define_dag("web", "'illumio.role.Web'")
    return panos


def tags_on(panos) -> set[str]:
    return {tag for ip, tags in panos.table().items() if ip != CANARY_IP for tag in tags}


def test_only_tags_some_dag_names_are_registered(deployment, panos):
    deployment.invoke(SCHEDULED)
    assert tags_on(panos) == {"illumio.role.Web"}
    assert set(panos.table()) == {"10.1.0.1", "10.1.0.2", CANARY_IP}


def test_the_canary_is_registered_whatever_the_dags(deployment, panos):
    deployment.invoke(SCHEDULED)
    assert CANARY_IP in panos.table()


def test_a_dag_added_on_the_device_brings_its_tags_in_on_the_next_run(deployment, panos, wall_clock):
    deployment.invoke(SCHEDULED)
    panos.define_dag("production", "'illumio.env.Production' and 'illumio.app.Ordering'")
    wall_clock.advance(REFRESH)
    deployment.invoke(SCHEDULED)
    assert tags_on(panos) == {"illumio.role.Web", "illumio.env.Production", "illumio.app.Ordering"}


def test_a_dag_removed_takes_its_tags_out(deployment, panos, wall_clock):
    panos.define_dag("db", "'illumio.role.Db'")
    deployment.invoke(SCHEDULED)
    panos.remove_dag("db")
    wall_clock.advance(REFRESH)
    summary = deployment.invoke(SCHEDULED)
    assert (summary["status"], summary["targets"][0]["unregistered"]) == ("ok", 1)
    assert tags_on(panos) == {"illumio.role.Web"}


def test_a_refused_config_read_keeps_the_last_set_and_warns(deployment, pce, panos, wall_clock):
    deployment.invoke(SCHEDULED)
    panos.deny_permission("config")
    wall_clock.advance(REFRESH)
    pce.relabel("/orgs/1/workloads/db1", "role", "Web")
    summary = deployment.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    assert any("could not be read" in warning for warning in summary["warnings"])
    assert tags_on(panos) == {"illumio.role.Web"}
    assert "illumio.role.Web" in panos.table()["10.1.0.3"]


def test_with_no_set_ever_read_the_target_fails_naming_the_permission(deployment, panos):
    panos.deny_permission("config")
    with pytest.raises(RunFailed, match="Configuration read"):
        deployment.invoke(SCHEDULED)
    assert panos.calls("user-id") == []


def test_tags_of_other_tools_are_never_touched(deployment, panos):
    panos.register_foreign("10.1.0.3", ["quarantine-by-soc"])
    deployment.invoke(SCHEDULED)
    assert panos.table()["10.1.0.3"] == frozenset({"quarantine-by-soc"})


class TestWithTheChangeFeed:
    """CHANGE_FEED=events: a quiet run or a targeted update reads the definitions when their refresh
    is due, and a set other than the one the target was synced with waits for a full export
    (docs/dag-awareness.md#tags-in-use)."""

    @pytest.fixture
    def settings(self):
        return {"TAGS_IN_USE_ONLY": "true"}

    @pytest.fixture
    def pce(self, wall_clock):
        emulator = PceEmulator(workloads=small_estate(), clock=wall_clock)
        emulator.retry_after, emulator.running_polls = 0, 0
        return emulator

    @pytest.fixture
    def primed(self, deployment, pce, panos, wall_clock):
        """After a first run (a full export), past the refresh of its tags in use, logs cleared."""
        first = deployment.invoke(SCHEDULED)
        assert (first["status"], first["source"]) == ("ok", "export")
        wall_clock.advance(REFRESH)
        pce.clear_log()
        panos.clear_log()
        return deployment

    def test_turning_tags_in_use_off_makes_the_next_run_export_and_register_every_tag(
        self, primed, panos, monkeypatch
    ):
        cut = tags_on(panos)
        with monkeypatch.context() as patch:  # undone here, before the deployment restores its environment
            patch.setenv("TAGS_IN_USE_ONLY", "false")
            cold_start()
            summary = primed.invoke(SCHEDULED)
        cold_start()
        assert (summary["source"], summary["status"]) == ("export", "ok")
        assert tags_on(panos) > cut
        assert {"illumio.env.Production", "illumio.app.Ordering"} <= tags_on(panos)

    def test_a_dag_added_on_the_device_brings_its_tags_in_within_two_runs(self, primed, panos):
        panos.define_dag("production", "'illumio.env.Production' and 'illumio.app.Ordering'")
        quiet, full = primed.invoke(SCHEDULED), primed.invoke(SCHEDULED)
        assert (quiet["source"], quiet["status"], full["source"], full["status"]) == (
            "none",
            "incomplete",
            "export",
            "ok",
        )
        assert tags_on(panos) == {"illumio.role.Web", "illumio.env.Production", "illumio.app.Ordering"}

    def test_the_run_that_finds_a_new_set_says_why_and_sends_nothing(self, primed, panos):
        panos.define_dag("production", "'illumio.env.Production'")
        target = primed.invoke(SCHEDULED)["targets"][0]
        assert target["error"] == (
            "the DAGs on the device now name other tags (1 in use added, 0 removed); "
            "the next run reads the whole inventory and syncs this target from it"
        )
        assert panos.calls("user-id") == []

    def test_a_dag_removed_takes_its_tags_out_through_the_guard(self, primed, panos, wall_clock):
        panos.define_dag("db", "'illumio.role.Db'")
        primed.invoke(SCHEDULED)
        primed.invoke(SCHEDULED)
        assert "illumio.role.Db" in tags_on(panos)
        panos.remove_dag("db")
        primed.invoke(SCHEDULED)  # within the refresh: nothing read, nothing changes
        assert "illumio.role.Db" in tags_on(panos)
        wall_clock.advance(REFRESH)
        quiet, full = primed.invoke(SCHEDULED), primed.invoke(SCHEDULED)
        assert (quiet["status"], full["status"], full["targets"][0]["unregistered"]) == (
            "incomplete",
            "ok",
            1,
        )
        assert tags_on(panos) == {"illumio.role.Web"}

    def test_a_targeted_update_that_finds_a_new_set_leaves_both_to_the_next_full_export(
        self, primed, pce, panos
    ):
        pce.relabel("/orgs/1/workloads/db1", "role", "Web")
        panos.define_dag("production", "'illumio.env.Production'")
        targeted = primed.invoke(SCHEDULED)
        assert (targeted["source"], targeted["status"], panos.calls("user-id")) == (
            "events",
            "incomplete",
            [],
        )
        full = primed.invoke(SCHEDULED)
        assert (full["source"], full["status"]) == ("export", "ok")
        assert panos.table()["10.1.0.3"] == {"illumio.role.Web", "illumio.env.Production"}

    def test_a_quiet_run_reads_the_definitions_at_most_every_five_minutes(self, primed, panos, wall_clock):
        for _ in range(5):  # a run a minute
            assert primed.invoke(SCHEDULED)["status"] == "ok"
            wall_clock.advance(60)
        shared_reads = [
            call for call in panos.calls("config") if call.params["xpath"].startswith("/config/shared/")
        ]
        assert len(shared_reads) == 1

    def test_a_refused_config_read_keeps_the_last_set_and_the_feed_goes_on(self, primed, pce, panos):
        panos.deny_permission("config")
        pce.relabel("/orgs/1/workloads/db1", "role", "Web")
        summary = primed.invoke(SCHEDULED)
        assert (summary["source"], summary["status"]) == ("events", "ok")
        assert any("could not be read" in warning for warning in summary["warnings"])
        assert tags_on(panos) == {"illumio.role.Web"}
        assert "illumio.role.Web" in panos.table()["10.1.0.3"]

    def test_tags_of_other_tools_are_never_touched(self, deployment, panos, wall_clock):
        panos.register_foreign("10.1.0.3", ["quarantine-by-soc"])
        panos.register_foreign("10.1.0.9", ["illumio-like.but.not.ours"])
        deployment.invoke(SCHEDULED)
        panos.define_dag("soc", "'quarantine-by-soc' or 'illumio.role.Db'")
        wall_clock.advance(REFRESH)
        deployment.invoke(SCHEDULED)
        deployment.invoke(SCHEDULED)
        assert panos.table()["10.1.0.3"] == {"quarantine-by-soc", "illumio.role.Db"}
        assert panos.table()["10.1.0.9"] == {"illumio-like.but.not.ours"}

    def test_a_dag_removal_that_would_empty_most_pairs_is_blocked_by_the_guard(
        self, deployment, pce, panos, wall_clock
    ):
        pce.workloads = large_estate(40)
        panos.define_dag("production", "'illumio.env.Production'")
        deployment.invoke(SCHEDULED)
        panos.remove_dag("production")
        wall_clock.advance(REFRESH)
        deployment.invoke(SCHEDULED)
        target = deployment.invoke(SCHEDULED)["targets"][0]
        assert target["status"] == "blocked"
        assert target["error"].startswith(
            "removal guard (one run rule): 40 of 40 pairs would be unregistered"
        )
        assert "illumio.env.Production" in tags_on(panos)
        assert panos.calls("user-id", verb="unregister") == []


class TestMembershipPlan:
    @pytest.fixture
    def settings(self):
        return {}

    @pytest.fixture
    def panos(self, panos):
        panos.define_dag("quarantine", "'illumio.env.Quarantine'")
        panos.define_dag("development", "'illumio.env.Development' or ('illumio.role.Db')")
        panos.define_dag("unknown", "not 'illumio.env.Quarantine'")
        return panos

    def test_the_dry_run_for_a_relabel_into_quarantine_names_the_dags_joined_and_left(self, deployment, pce):
        deployment.invoke(SCHEDULED)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        changes = {
            change["dag"]: change for change in deployment.invoke(DRY_RUN)["targets"][0]["dag_changes"]
        }
        assert (changes["quarantine"]["joins"], changes["quarantine"]["leaves"]) == (["10.1.0.1"], [])
        assert (changes["development"]["joins"], changes["development"]["leaves"]) == ([], ["10.1.0.1"])
        assert (changes["web"]["joins"], changes["web"]["leaves"]) == ([], [])

    def test_the_dry_run_for_a_relabel_into_quarantine_names_the_workload_s_hostname(self, deployment, pce):
        deployment.invoke(SCHEDULED)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        changes = {
            change["dag"]: change for change in deployment.invoke(DRY_RUN)["targets"][0]["dag_changes"]
        }
        assert changes["quarantine"]["hostnames"] == {"10.1.0.1": "web1"}
        assert changes["development"]["hostnames"] == {"10.1.0.1": "web1"}
        assert "hostnames" not in changes["web"]

    def test_a_scheduled_dry_run_through_the_feed_names_the_fetched_workload_s_hostname(
        self, deployment, pce, monkeypatch
    ):
        deployment.invoke(SCHEDULED)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        monkeypatch.setenv("DRY_RUN", "true")
        summary = deployment.invoke(SCHEDULED)
        changes = {change["dag"]: change for change in summary["targets"][0]["dag_changes"]}
        assert (summary["source"], summary["workloads_fetched"]) == ("events", 1)
        assert (changes["quarantine"]["joins"], changes["development"]["leaves"]) == (
            ["10.1.0.1"],
            ["10.1.0.1"],
        )
        assert changes["quarantine"]["hostnames"] == {"10.1.0.1": "web1"}

    def test_a_filter_that_cannot_be_evaluated_is_listed_as_such(self, deployment, pce):
        deployment.invoke(SCHEDULED)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        changes = {
            change["dag"]: change for change in deployment.invoke(DRY_RUN)["targets"][0]["dag_changes"]
        }
        assert changes["unknown"]["evaluable"] is False

    def test_a_dry_run_without_config_read_has_no_membership_plan(self, deployment, panos):
        panos.deny_permission("config")
        target = deployment.invoke(DRY_RUN)["targets"][0]
        assert "dag_changes" not in target
        assert len(target["plan"]["register"]) == 17
