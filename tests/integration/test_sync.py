"""docs/sync.md end to end: the handler against moto and both emulators."""

import json
from pathlib import Path

import pytest

from app import RunFailed
from dagsync.core.canary import CANARY_IP
from dagsync.store.snapshot import SnapshotStore
from dagsync.store.table import Table
from emulators.local import TABLE
from tests.integration.conftest import large_estate, workload

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEDULED = json.loads((EVENTS / "scheduled.json").read_text())


def ours(table: dict[str, frozenset[str]], prefix: str = "illumio.") -> dict[str, frozenset[str]]:
    """The device table without the canary, our prefix only."""
    result = {}
    for ip, tags in table.items():
        mine = frozenset(t for t in tags if t.startswith(prefix) and ip != CANARY_IP)
        if mine:
            result[ip] = mine
    return result


def uid_calls(panos, verb=None):
    return panos.calls("user-id", verb=verb)


def sent_pairs(panos, verb):
    """Every (ip, tag) sent with `verb`, from the emulator's parsed request log."""
    pairs = set()
    for entry in uid_calls(panos, verb):
        pairs.update(entry.uid_pairs[verb])
    return pairs


def manifest_item(deployment, target):
    return (
        deployment.client("dynamodb")
        .get_item(TableName=TABLE, Key={"pk": {"S": target}, "sk": {"S": "manifest"}}, ConsistentRead=True)
        .get("Item")
    )


def test_first_run_registers_exactly_the_desired_pairs(deployment, panos):
    summary = deployment.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    assert ours(panos.table()) == {
        "10.1.0.1": frozenset(
            {"illumio.role.Web", "illumio.app.Ordering", "illumio.env.Development", "illumio.loc.AMS"}
        ),
        "10.1.0.2": frozenset(
            {"illumio.role.Web", "illumio.app.Ordering", "illumio.env.Production", "illumio.loc.AMS"}
        ),
        "10.1.0.3": frozenset({"illumio.role.Db", "illumio.app.Ordering", "illumio.env.Production"}),
        "10.1.0.4": frozenset({"illumio.role.Lb", "illumio.app.Payments", "illumio.env.Production"}),
        "2001:db8::4": frozenset({"illumio.role.Lb", "illumio.app.Payments", "illumio.env.Production"}),
    }
    assert summary["workloads"] == 4 and summary["pairs"] == 17
    assert summary["targets"][0]["registered"] == 17


def test_registrations_are_persistent_posts_with_the_key_in_the_header(deployment, panos):
    deployment.invoke(SCHEDULED)
    for entry in uid_calls(panos, "register"):
        assert entry.method == "POST"
        assert entry.key_carriers == ("header",)
    for ip in ours(panos.table()):
        assert panos.record(ip).persistent


def test_second_run_with_nothing_changed_sends_no_registration_and_writes_no_snapshot(deployment, panos):
    target = deployment.invoke(SCHEDULED)["targets"][0]["target"]
    before = manifest_item(deployment, target)
    panos.clear_log()
    summary = deployment.invoke(SCHEDULED)
    assert summary["targets"][0] == {
        "target": target,
        "status": "ok",
        "registered": 0,
        "unregistered": 0,
        "api_calls": 1,
        "drift_repaired": 0,
    }
    assert uid_calls(panos) == []
    assert manifest_item(deployment, target) == before


class TestFullExportOfAnUnchangedEstate:
    """docs/snapshot.md#expected-content: shards that already hold the desired pairs are not read."""

    @pytest.fixture
    def settings(self):
        return {"CHANGE_FEED": "off"}

    @pytest.fixture
    def shards_read(self, monkeypatch):
        asked = []
        original = Table.get_many

        def spy(table, pk, sks):
            asked.extend(sks)
            return original(table, pk, sks)

        monkeypatch.setattr(Table, "get_many", spy)
        return asked

    def test_it_reads_the_manifest_and_no_shard(self, deployment, panos, shards_read):
        deployment.invoke(SCHEDULED)
        shards_read.clear()
        panos.clear_log()

        summary = deployment.invoke(SCHEDULED)

        assert summary["status"] == "ok" and summary["targets"][0]["registered"] == 0
        assert shards_read == []
        assert uid_calls(panos) == []

    def test_a_relabel_still_reaches_the_device(self, deployment, pce, panos, shards_read):
        deployment.invoke(SCHEDULED)
        pce.relabel("/orgs/1/workloads/web2", "env", "Quarantine")
        panos.clear_log()

        summary = deployment.invoke(SCHEDULED)

        assert summary["targets"][0]["registered"] == 1 and summary["targets"][0]["unregistered"] == 1
        assert sent_pairs(panos, "register") == {("10.1.0.2", "illumio.env.Quarantine")}
        assert sent_pairs(panos, "unregister") == {("10.1.0.2", "illumio.env.Production")}


def test_relabel_into_quarantine_moves_exactly_one_tag(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    panos.clear_log()
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    deployment.invoke(SCHEDULED)
    assert sent_pairs(panos, "register") == {("10.1.0.1", "illumio.env.Quarantine")}
    assert sent_pairs(panos, "unregister") == {("10.1.0.1", "illumio.env.Development")}
    assert panos.dag_members("'illumio.env.Quarantine'") == ["10.1.0.1"]


def test_ip_change_moves_the_tags_to_the_new_address(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    panos.clear_log()
    pce.set_addresses("/orgs/1/workloads/db1", ["10.1.0.33"])
    deployment.invoke(SCHEDULED)
    db_tags = {"illumio.role.Db", "illumio.app.Ordering", "illumio.env.Production"}
    assert sent_pairs(panos, "register") == {("10.1.0.33", tag) for tag in db_tags}
    assert sent_pairs(panos, "unregister") == {("10.1.0.3", tag) for tag in db_tags}
    assert "10.1.0.3" not in panos.table()


def test_deleted_workload_loses_its_tags_and_nothing_else_is_sent(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    panos.clear_log()
    pce.delete_workload("/orgs/1/workloads/web2")
    deployment.invoke(SCHEDULED)
    assert sent_pairs(panos, "register") == set()
    assert sent_pairs(panos, "unregister") == {
        ("10.1.0.2", t)
        for t in ("illumio.role.Web", "illumio.app.Ordering", "illumio.env.Production", "illumio.loc.AMS")
    }


def test_new_workload_gets_its_tags_and_nothing_else_is_sent(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    panos.clear_log()
    pce.upsert_workload(workload("new1", {"app": "Ordering", "env": "Development"}, ["10.1.0.9"]))
    deployment.invoke(SCHEDULED)
    assert sent_pairs(panos, "register") == {
        ("10.1.0.9", "illumio.app.Ordering"),
        ("10.1.0.9", "illumio.env.Development"),
    }
    assert sent_pairs(panos, "unregister") == set()
    assert panos.dag_members("'illumio.env.Development' and 'illumio.app.Ordering'") == [
        "10.1.0.1",
        "10.1.0.9",
    ]


def test_foreign_tags_are_never_unregistered_even_on_our_ips(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    panos.register_foreign("10.1.0.2", ["quarantine-by-soc", "illumio-legacy.web"])
    pce.delete_workload("/orgs/1/workloads/web2")
    deployment.invoke(SCHEDULED)
    assert panos.table()["10.1.0.2"] == frozenset({"quarantine-by-soc", "illumio-legacy.web"})
    assert not any(tag.startswith("quarantine") for _, tag in sent_pairs(panos, "unregister"))


def test_clear_is_never_sent(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    pce.set_workloads([])
    deployment.invoke({"force": True})
    assert not panos.clear_sent


def test_shared_ip_carries_the_union_of_both_workloads_tags(deployment, pce, panos):
    pce.upsert_workload(workload("ha-a", {"app": "Vip", "role": "Active"}, ["10.1.0.50"]))
    pce.upsert_workload(workload("ha-b", {"app": "Vip", "role": "Standby"}, ["10.1.0.50"]))
    deployment.invoke(SCHEDULED)
    assert panos.table()["10.1.0.50"] == frozenset(
        {"illumio.app.Vip", "illumio.role.Active", "illumio.role.Standby"}
    )


class TestRemovalGuard:
    @pytest.fixture
    def pce(self, pce):
        pce.set_workloads(large_estate(40))
        return pce

    def test_mass_removal_is_blocked_and_nothing_is_sent(self, deployment, pce, panos):
        deployment.invoke(SCHEDULED)
        before = ours(panos.table())
        panos.clear_log()
        pce.set_workloads(large_estate(20))
        summary = deployment.invoke(SCHEDULED)
        assert summary["status"] == "blocked"
        assert "removal guard" in summary["targets"][0]["error"]
        assert uid_calls(panos) == []
        assert ours(panos.table()) == before

    def test_blocked_target_keeps_its_snapshot(self, deployment, pce):
        target = deployment.invoke(SCHEDULED)["targets"][0]["target"]
        before = SnapshotStore(TABLE).load(target)
        pce.set_workloads(large_estate(20))
        deployment.invoke(SCHEDULED)
        assert SnapshotStore(TABLE).load(target).confirmed == before.confirmed

    def test_force_lets_the_removal_through(self, deployment, pce, panos):
        deployment.invoke(SCHEDULED)
        pce.set_workloads(large_estate(20))
        summary = deployment.invoke(json.loads((EVENTS / "manual-force.json").read_text()))
        assert summary["status"] == "ok"
        assert summary["targets"][0]["unregistered"] == 40
        assert len(ours(panos.table())) == 20

    def test_removal_within_the_ratio_goes_through(self, deployment, pce, panos):
        deployment.invoke(SCHEDULED)
        pce.set_workloads(large_estate(36))
        assert deployment.invoke(SCHEDULED)["status"] == "ok"
        assert len(ours(panos.table())) == 36


class TestDryRun:
    def test_dry_run_changes_neither_device_nor_snapshot_and_returns_the_plan(self, deployment, pce, panos):
        target = deployment.invoke(SCHEDULED)["targets"][0]["target"]
        before_table, before_manifest = panos.table(), manifest_item(deployment, target)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        panos.clear_log()
        summary = deployment.invoke(json.loads((EVENTS / "manual-dry-run.json").read_text()))
        assert summary["dry_run"] is True
        assert summary["targets"][0]["plan"] == {
            "register": [["10.1.0.1", "illumio.env.Quarantine"]],
            "unregister": [["10.1.0.1", "illumio.env.Development"]],
        }
        assert uid_calls(panos) == []
        assert panos.table() == before_table
        assert manifest_item(deployment, target) == before_manifest

    def test_dry_run_on_a_first_run_plans_every_pair(self, deployment, panos):
        summary = deployment.invoke({"dry_run": True})
        assert len(summary["targets"][0]["plan"]["register"]) == 17
        assert panos.table() == {}

    @pytest.fixture
    def settings(self):
        return {}

    def test_dry_run_setting_applies_to_scheduled_runs(self, pce, panos):
        from emulators.local import LocalDeployment

        with LocalDeployment(pce=pce, panos=panos, settings={"DRY_RUN": "true"}) as local:
            summary = local.invoke(SCHEDULED)
        assert summary["dry_run"] is True
        assert panos.table() == {}


class TestIncompleteInventory:
    @pytest.fixture
    def settings(self):
        # Every scheduled run exports, so each one meets the fault (docs/change-feed.md#decision).
        return {"CHANGE_FEED": "off"}

    @pytest.mark.parametrize(
        "fault",
        [
            pytest.param({"job_outcome": "failed"}, id="job-failed"),
            pytest.param({"datafile_body": b'[{"href": "/orgs/1/workloads/a"'}, id="truncated-json"),
            pytest.param({"datafile_body": b"<html>oops</html>"}, id="not-json"),
            pytest.param({"datafile_body": b'{"workloads": []}'}, id="wrong-shape"),
        ],
    )
    def test_bad_inventory_stops_the_run_before_any_device_call(self, deployment, pce, panos, fault):
        deployment.invoke(SCHEDULED)
        panos.clear_log()
        for name, value in fault.items():
            setattr(pce, name, value)
        with pytest.raises(RunFailed, match="PCE"):
            deployment.invoke(SCHEDULED)
        assert panos.requests == []

    def test_job_running_past_the_deadline_stops_the_run(self, deployment, pce, panos):
        pce.job_outcome = "running"
        with pytest.raises(RunFailed, match="PCE"):
            deployment.invoke(SCHEDULED)
        assert panos.requests == []


class TestPartialFailure:
    @pytest.fixture
    def settings(self):
        return {"BATCH_SIZE": "2"}

    def test_failed_batch_keeps_what_went_through_and_next_run_converges(self, deployment, pce, panos):
        deployment.invoke(SCHEDULED)
        for name in ("web1", "web2", "db1", "lb1"):
            pce.relabel(f"/orgs/1/workloads/{name}", "env", "Staging")
        panos.clear_log()
        panos.fail_next(10, type="user-id", after=1)  # batch 1 goes through; batch 2 fails every retry
        with pytest.raises(RunFailed, match="failed"):
            deployment.invoke(SCHEDULED)
        first_batch = set(uid_calls(panos, "register")[0].uid_ips["register"])
        assert {ip for ip, tags in panos.table().items() if "illumio.env.Staging" in tags} == first_batch
        assert sent_pairs(panos, "unregister") == set()
        panos.clear_faults()
        panos.clear_log()
        assert deployment.invoke(SCHEDULED)["status"] == "ok"
        resent = {ip for ip, _ in sent_pairs(panos, "register")}
        assert resent.isdisjoint(first_batch)
        assert {ip for ip, tags in ours(panos.table()).items() if "illumio.env.Staging" in tags} == {
            "10.1.0.1",
            "10.1.0.2",
            "10.1.0.3",
            "10.1.0.4",
            "2001:db8::4",
        }
        assert not any(
            "illumio.env.Production" in tags or "illumio.env.Development" in tags
            for tags in ours(panos.table()).values()
        )

    def test_refused_entries_make_the_run_partial_and_are_retried(self, deployment, pce, panos):
        panos.set_capacity(3)
        with pytest.raises(RunFailed, match="partial"):
            deployment.invoke(SCHEDULED)
        panos.set_capacity(None)
        assert deployment.invoke(SCHEDULED)["status"] == "ok"
        assert len(ours(panos.table())) == 5


def test_every_changed_pair_is_logged_once_as_an_audit_line(deployment, pce, log_lines):
    deployment.invoke(SCHEDULED)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    already = len(log_lines())
    deployment.invoke(SCHEDULED)
    lines = log_lines()[already:]
    audited = [
        (line["action"], line["ip"], tag)
        for line in lines
        if line.get("message") == "audit"
        for tag in line["tags"]
    ]
    assert sorted(audited) == [
        ("register", "10.1.0.1", "illumio.env.Quarantine"),
        ("unregister", "10.1.0.1", "illumio.env.Development"),
    ]


def test_first_run_removes_leftover_pairs_of_ours_that_no_snapshot_records(deployment, panos):
    panos.register_foreign("10.1.0.77", ["illumio.app.Retired", "other-tool.keep"])
    panos.register_foreign("10.1.0.1", ["illumio.env.Stale"])
    deployment.invoke(SCHEDULED)
    assert panos.table()["10.1.0.77"] == frozenset({"other-tool.keep"})
    assert "illumio.env.Stale" not in panos.table()["10.1.0.1"]
