"""docs/sync.md#drift end to end: the canary, reconcile, and per-target isolation."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

import app
from app import RunFailed
from dagsync.core.canary import CANARY_IP
from dagsync.net.credentials import PanosCredentials
from dagsync.panos.client import PanosClient
from dagsync.store.snapshot import SnapshotStore
from emulators.local import PANOS_API_KEY, TABLE, LocalDeployment
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from tests.integration.conftest import large_estate, workload

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEDULED = json.loads((EVENTS / "scheduled.json").read_text())
RECONCILE = json.loads((EVENTS / "manual-reconcile.json").read_text())
CANARY_TAG = "illumio.canary"
SERIALS = ("007951000000011", "007951000000012", "007951000000013")


@pytest.fixture(autouse=True)
def every_run_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    """These runs read the whole inventory; with the change feed a quiet run that finds the
    canary missing leaves the reconcile to the next run's full export (docs/change-feed.md#watermark)."""
    monkeypatch.setenv("CHANGE_FEED", "off")


def ours(table: dict[str, frozenset[str]], prefix: str = "illumio.") -> dict[str, frozenset[str]]:
    """Our prefix's pairs on the device, the canary left out."""
    result = {}
    for ip, tags in table.items():
        mine = frozenset(t for t in tags if t.startswith(prefix))
        if mine and ip != CANARY_IP:
            result[ip] = mine
    return result


def sent_pairs(panos: PanosEmulator, verb: str, target: str | None = None) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for entry in panos.calls("user-id", verb=verb, target=target):
        pairs.update(entry.uid_pairs[verb])
    return pairs


def canary_checks(panos: PanosEmulator, target: str | None = None) -> list[Any]:
    return [e for e in panos.calls("op", target=target) if f"<ip>{CANARY_IP}</ip>" in e.params["cmd"]]


def table_reads(panos: PanosEmulator, target: str | None = None) -> list[int]:
    """The start-point of every full-table page read (a reconcile), in order."""
    return [
        int(re.search(r"<start-point>(\d+)</start-point>", e.params["cmd"]).group(1))
        for e in panos.calls("op", target=target)
        if "<all" in e.params["cmd"]
    ]


def canary_on(panos: PanosEmulator, serial: str | None = None) -> bool:
    record = panos.record(CANARY_IP, serial=serial)
    return record is not None and set(record.tags) == {CANARY_TAG} and not record.persistent


def other_tool(deployment: Any) -> PanosClient:
    """Another integration writing to the same device through the same XML API."""
    return PanosClient(deployment.env["PANOS_URL"], PanosCredentials(api_key=PANOS_API_KEY))


@pytest.fixture
def summaries(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every run's summary, including runs that raise RunFailed."""
    seen: list[dict[str, Any]] = []
    publish = app.publish_metrics

    def record(result: Any) -> None:
        seen.append(result.to_dict())
        publish(result)

    monkeypatch.setattr(app, "publish_metrics", record)
    return seen


# -- reboot, clear, canary ----------------------------------------------------------------------


def test_first_commit_registers_the_canary_non_persistent(deployment, panos):
    deployment.invoke(SCHEDULED)
    assert canary_on(panos)
    assert sent_pairs(panos, "register") >= {(CANARY_IP, CANARY_TAG)}


def test_reboot_that_lost_every_pair_is_restored_by_the_next_scheduled_run_with_one_reconcile(
    deployment, panos
):
    deployment.invoke(SCHEDULED)
    expected = ours(panos.table())
    panos.reboot(keep_persistent=False)
    assert panos.table() == {}
    panos.clear_log()
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert target["status"] == "ok"
    assert target["reconciled"] is True
    assert target["registered"] == target["drift_repaired"] == 17
    assert ours(panos.table()) == expected
    assert table_reads(panos) == [1]
    assert canary_on(panos)
    assert SnapshotStore(TABLE).load(target["target"]).confirmed == expected


def test_run_after_a_reboot_repair_is_back_to_zero_registration_calls(deployment, panos):
    deployment.invoke(SCHEDULED)
    panos.reboot(keep_persistent=False)
    deployment.invoke(SCHEDULED)
    panos.clear_log()
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert panos.calls("user-id") == []
    assert len(panos.non_ha_requests()) == len(canary_checks(panos)) == 1
    assert (target["api_calls"], target["drift_repaired"], "reconciled" in target) == (1, 0, False)


def test_plain_reboot_drops_only_the_canary_and_the_reconcile_finds_nothing_to_repair(deployment, panos):
    deployment.invoke(SCHEDULED)
    expected = ours(panos.table())
    panos.reboot()
    assert CANARY_IP not in panos.table()
    panos.clear_log()
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert (target["reconciled"], target["drift_repaired"], target["registered"]) == (True, 0, 0)
    assert sent_pairs(panos, "register") == {(CANARY_IP, CANARY_TAG)}
    assert sent_pairs(panos, "unregister") == set()
    assert ours(panos.table()) == expected
    assert canary_on(panos)


def test_canary_registration_failure_keeps_the_commit_and_the_next_run_reconciles(deployment, panos):
    panos.fail_next(10, type="user-id", after=1)  # the pairs go through; the canary never does
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert (target["status"], target["registered"]) == ("ok", 17)
    assert not canary_on(panos)
    expected = ours(panos.table())
    assert SnapshotStore(TABLE).load(target["target"]).confirmed == expected
    panos.clear_faults()
    panos.clear_log()
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert (target["reconciled"], target["drift_repaired"]) == (True, 0)
    assert sent_pairs(panos, "register") == {(CANARY_IP, CANARY_TAG)}
    assert canary_on(panos)


def test_changed_tag_prefix_misses_its_canary_and_reconciles_leaving_the_old_tags_alone(
    deployment, panos, monkeypatch
):
    deployment.invoke(SCHEDULED)
    before = panos.table()
    monkeypatch.setenv("TAG_PREFIX", "corp.")
    panos.clear_log()
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert (target["reconciled"], target["registered"], target["unregistered"]) == (True, 17, 0)
    assert panos.calls("user-id", verb="unregister") == []
    assert panos.table()[CANARY_IP] == frozenset({CANARY_TAG, "corp.canary"})
    for ip, tags in ours(before).items():
        assert panos.table()[ip] == tags | {"corp." + tag.removeprefix("illumio.") for tag in tags}


def test_workload_on_the_canary_address_is_not_tagged_and_is_warned_about(deployment, pce, panos):
    pce.upsert_workload(workload("odd", {"app": "Odd", "env": "Production"}, [CANARY_IP, "10.1.0.77"]))
    summary = deployment.invoke(SCHEDULED)
    assert any(CANARY_IP in warning and "odd" in warning for warning in summary["warnings"])
    assert panos.table()[CANARY_IP] == frozenset({CANARY_TAG})
    assert ours(panos.table())["10.1.0.77"] == frozenset({"illumio.app.Odd", "illumio.env.Production"})
    panos.clear_log()
    assert deployment.invoke(SCHEDULED)["targets"][0]["api_calls"] == 1


def test_another_deployments_canary_under_our_prefix_fails_the_reconcile_and_removes_nothing(
    pce: PceEmulator, panos: PanosEmulator
) -> None:
    with LocalDeployment(pce=pce, panos=panos, settings={"DEPLOYMENT_ID": "stack-a"}) as first:
        first.invoke(SCHEDULED)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    before = panos.table()
    second = LocalDeployment(pce=pce, panos=panos, settings={"DEPLOYMENT_ID": "stack-b"})
    with second, pytest.raises(RunFailed, match="another deployment's canary"):
        second.invoke(RECONCILE)
    assert panos.table() == before


def test_drift_repaired_is_reported_in_the_result_and_the_metric(deployment, panos, capsys):
    deployment.invoke(SCHEDULED)
    panos.reboot(keep_persistent=False)
    capsys.readouterr()
    target = deployment.invoke(SCHEDULED)["targets"][0]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"DriftRepaired"' in line]
    assert target["drift_repaired"] == 17
    assert [(blob["Target"], blob["DriftRepaired"]) for blob in emf] == [(target["target"], [17.0])]


def test_drift_repaired_counts_only_what_the_repair_sent_and_the_device_took(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    panos.reboot(keep_persistent=False)
    pce.delete_workload("/orgs/1/workloads/web2")  # 4 lost pairs that are no longer wanted either
    panos.clear_log()
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert (target["registered"], target["unregistered"], target["drift_repaired"]) == (13, 0, 13)
    assert "10.1.0.2" not in panos.table()


def test_canary_check_looks_for_our_canary_tag_not_just_its_address(deployment, panos):
    deployment.invoke(SCHEDULED)
    panos.clear_table()
    panos.register_foreign(CANARY_IP, ["soc.test-net"])
    target = deployment.invoke(SCHEDULED)["targets"][0]
    assert (target["reconciled"], target["drift_repaired"]) == (True, 17)
    assert panos.table()[CANARY_IP] == frozenset({"soc.test-net", CANARY_TAG})


# -- foreign tools, stale pairs -----------------------------------------------------------------


def test_foreign_tags_on_our_ips_are_never_touched_by_a_reconcile(deployment, panos):
    deployment.invoke(SCHEDULED)
    expected = ours(panos.table())
    foreign = {"10.1.0.2": {"soc.quarantine", "illumio-legacy.web"}, "10.9.0.1": {"soc.scanner"}}
    for ip, tags in foreign.items():
        panos.register_foreign(ip, tags)
    panos.clear_log()
    target = deployment.invoke(RECONCILE)["targets"][0]
    assert (target["status"], target["drift_repaired"]) == ("ok", 0)
    assert panos.calls("user-id", verb="unregister") == []
    assert panos.table()["10.1.0.2"] == expected["10.1.0.2"] | foreign["10.1.0.2"]
    assert panos.table()["10.9.0.1"] == frozenset(foreign["10.9.0.1"])


def test_foreign_unregister_of_our_tag_is_not_seen_by_the_canary_and_a_manual_reconcile_restores_it(
    deployment, panos
):
    deployment.invoke(SCHEDULED)
    expected = ours(panos.table())
    tool = other_tool(deployment)
    tool.register({"10.1.0.2": frozenset({"soc.blocked"})})
    tool.unregister({"10.1.0.2": frozenset({"illumio.env.Production", "soc.blocked"})})
    tool.register({"10.1.0.2": frozenset({"soc.watch"}), "10.1.0.3": frozenset({"soc.watch"})})
    panos.clear_log()
    deployment.invoke(SCHEDULED)
    assert panos.calls("user-id") == []
    assert "illumio.env.Production" not in panos.table()["10.1.0.2"]
    target = deployment.invoke(RECONCILE)["targets"][0]
    assert sent_pairs(panos, "register") == {("10.1.0.2", "illumio.env.Production"), (CANARY_IP, CANARY_TAG)}
    assert sent_pairs(panos, "unregister") == set()
    assert target["drift_repaired"] == 1
    assert ours(panos.table()) == expected
    assert panos.table()["10.1.0.2"] == expected["10.1.0.2"] | {"soc.watch"}
    assert panos.table()["10.1.0.3"] == expected["10.1.0.3"] | {"soc.watch"}


def test_stale_pair_left_by_a_crash_between_push_and_commit_is_removed_by_reconcile(
    deployment, pce, panos, monkeypatch
):
    target_name = deployment.invoke(SCHEDULED)["targets"][0]["target"]
    expected = ours(panos.table())

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Lambda killed before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(SnapshotStore, "commit", crash)
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        with pytest.raises(RunFailed):
            deployment.invoke(SCHEDULED)
    assert "illumio.env.Quarantine" in panos.table()["10.1.0.1"]
    pce.relabel("/orgs/1/workloads/web1", "env", "Development")
    panos.clear_log()
    assert deployment.invoke(RECONCILE)["status"] == "ok"
    assert sent_pairs(panos, "unregister") == {("10.1.0.1", "illumio.env.Quarantine")}
    assert ("10.1.0.1", "illumio.env.Development") in sent_pairs(panos, "register")
    assert ours(panos.table()) == expected
    snapshot = SnapshotStore(TABLE).load(target_name)
    assert (snapshot.confirmed, snapshot.uncertain) == (expected, {})


def test_pairs_of_ours_in_no_snapshot_are_removed_by_reconcile(deployment, panos):
    deployment.invoke(SCHEDULED)
    expected = ours(panos.table())
    # Sent by a run whose record is gone: an earlier deployment with other LABEL_KEYS, or a
    # snapshot table that was recreated or restored from a backup.
    panos.register_foreign("10.1.0.1", ["illumio.owner.alice", "soc.keep"])
    panos.register_foreign("10.1.0.99", ["illumio.app.Retired"])
    panos.clear_log()
    target = deployment.invoke(RECONCILE)["targets"][0]
    assert sent_pairs(panos, "unregister") == {
        ("10.1.0.1", "illumio.owner.alice"),
        ("10.1.0.99", "illumio.app.Retired"),
    }
    assert target["drift_repaired"] == target["unregistered"] == 2
    assert ours(panos.table()) == expected
    assert "soc.keep" in panos.table()["10.1.0.1"]
    assert "10.1.0.99" not in panos.table()


def test_dry_run_reconcile_shows_the_drift_in_the_plan_and_changes_nothing(deployment, panos):
    target_name = deployment.invoke(SCHEDULED)["targets"][0]["target"]
    panos.register_foreign("10.1.0.99", ["illumio.app.Retired"])
    other_tool(deployment).unregister({"10.1.0.4": frozenset({"illumio.env.Production"})})
    before_table, before_snapshot = panos.table(), SnapshotStore(TABLE).load(target_name)
    panos.clear_log()
    target = deployment.invoke({**RECONCILE, "dry_run": True})["targets"][0]
    assert target["plan"] == {
        "register": [["10.1.0.4", "illumio.env.Production"]],
        "unregister": [["10.1.0.99", "illumio.app.Retired"]],
    }
    assert target["drift_repaired"] == 2
    assert panos.calls("user-id") == []
    assert panos.table() == before_table
    loaded = SnapshotStore(TABLE).load(target_name)
    assert (loaded.generation, loaded.confirmed) == (before_snapshot.generation, before_snapshot.confirmed)


# -- the removal guard during a reconcile -------------------------------------------------------


class TestReconcileGuard:
    @pytest.fixture
    def pce(self, pce):
        pce.set_workloads(large_estate(40))  # 80 pairs
        return pce

    def test_cleared_table_is_restored_and_is_not_a_removal(self, deployment, panos):
        deployment.invoke(SCHEDULED)
        expected = ours(panos.table())
        panos.clear_table()
        target = deployment.invoke(SCHEDULED)["targets"][0]
        assert (target["status"], target["registered"], target["drift_repaired"]) == ("ok", 80, 80)
        assert ours(panos.table()) == expected

    def test_reconcile_that_would_unregister_many_stale_pairs_is_blocked(self, deployment, panos):
        target_name = deployment.invoke(SCHEDULED)["targets"][0]["target"]
        for ip in ours(panos.table()):
            panos.register_foreign(ip, ["illumio.loc.Old"])  # 40 stale of 120 on the device
        before_table, before = panos.table(), SnapshotStore(TABLE).load(target_name)
        panos.clear_log()
        summary = deployment.invoke(RECONCILE)
        target = summary["targets"][0]
        assert (summary["status"], target["status"], target["drift_repaired"]) == ("blocked", "blocked", 0)
        assert "40 of 120" in target["error"]
        assert panos.calls("user-id") == []
        assert panos.table() == before_table
        assert SnapshotStore(TABLE).load(target_name).generation == before.generation

    def test_forced_reconcile_removes_the_stale_pairs(self, deployment, panos):
        deployment.invoke(SCHEDULED)
        expected = ours(panos.table())
        for ip in expected:
            panos.register_foreign(ip, ["illumio.loc.Old"])
        target = deployment.invoke({**RECONCILE, "force": True})["targets"][0]
        assert (target["status"], target["unregistered"], target["drift_repaired"]) == ("ok", 40, 40)
        assert ours(panos.table()) == expected

    def test_reconcile_with_a_shrunken_inventory_is_blocked_against_the_device(self, deployment, pce, panos):
        deployment.invoke(SCHEDULED)
        expected = ours(panos.table())
        panos.reboot()  # canary gone: the next run reconciles
        pce.set_workloads(large_estate(20))
        summary = deployment.invoke(SCHEDULED)
        assert summary["targets"][0]["status"] == "blocked"
        assert ours(panos.table()) == expected


# -- paging -------------------------------------------------------------------------------------


class TestPaging:
    @pytest.fixture
    def pce(self, pce):
        pce.set_workloads(large_estate(1600))
        return pce

    def test_reconcile_of_1600_registered_ips_reads_every_page(self, deployment, panos):
        deployment.invoke(SCHEDULED)
        expected = ours(panos.table())
        last = max(expected, key=lambda ip: tuple(int(part) for part in ip.split(".")))
        middle = "10.2.3.1"  # the 751st address: on the second page
        tool = other_tool(deployment)
        tool.unregister({last: expected[last], middle: frozenset({"illumio.env.Production"})})
        panos.register_foreign("10.2.6.200", ["illumio.app.Retired"])  # 1,601st IP: the last page
        panos.clear_log()
        target = deployment.invoke(RECONCILE)["targets"][0]
        assert table_reads(panos) == [1, 501, 1001, 1501]
        assert sent_pairs(panos, "register") == {(last, tag) for tag in expected[last]} | {
            (middle, "illumio.env.Production"),
            (CANARY_IP, CANARY_TAG),
        }
        assert sent_pairs(panos, "unregister") == {("10.2.6.200", "illumio.app.Retired")}
        assert target["drift_repaired"] == 4
        assert ours(panos.table()) == expected


# -- several targets ----------------------------------------------------------------------------


class TestTargets:
    @pytest.fixture
    def panos(self):
        return PanosEmulator("panorama", api_keys=(PANOS_API_KEY,), firewalls=SERIALS)

    @pytest.fixture
    def settings(self):
        return {"PANOS_TARGET_SERIALS": ",".join(SERIALS)}

    @staticmethod
    def name(deployment: Any, serial: str) -> str:
        return f"{deployment.env['PANOS_URL'].split('://', 1)[1]}/{serial}"

    def test_each_target_has_its_own_snapshot_and_canary(self, deployment, panos):
        summary = deployment.invoke(SCHEDULED)
        expected = ours(panos.table(serial=SERIALS[0]))
        assert [t["target"] for t in summary["targets"]] == [self.name(deployment, s) for s in SERIALS]
        for serial in SERIALS:
            assert ours(panos.table(serial=serial)) == expected
            assert canary_on(panos, serial)
            assert SnapshotStore(TABLE).load(self.name(deployment, serial)).confirmed == expected
        assert panos.table() == {}  # Panorama's own table is not a target here

    @pytest.mark.parametrize("mode", ["error", "timeout"])
    def test_unreachable_firewall_fails_alone_and_the_others_end_exact_and_committed(
        self, deployment, pce, panos, summaries, mode
    ):
        deployment.invoke(SCHEDULED)
        expected_before = ours(panos.table(serial=SERIALS[0]))
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        panos.set_unreachable(SERIALS[1], mode, delay=0.05)
        with pytest.raises(RunFailed, match=SERIALS[1]):
            deployment.invoke(SCHEDULED)
        summary = summaries[-1]
        statuses = {t["target"]: t["status"] for t in summary["targets"]}
        assert summary["status"] == "failed"
        assert statuses == {
            self.name(deployment, SERIALS[0]): "ok",
            self.name(deployment, SERIALS[1]): "failed",
            self.name(deployment, SERIALS[2]): "ok",
        }
        expected = ours(panos.table(serial=SERIALS[0]))
        assert "illumio.env.Quarantine" in expected["10.1.0.1"]
        for serial in (SERIALS[0], SERIALS[2]):
            assert ours(panos.table(serial=serial)) == expected
            assert SnapshotStore(TABLE).load(self.name(deployment, serial)).confirmed == expected
        assert ours(panos.table(serial=SERIALS[1])) == expected_before

    def test_firewall_back_online_converges_on_the_next_run(self, deployment, pce, panos):
        pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
        panos.set_unreachable(SERIALS[1], "error")
        with pytest.raises(RunFailed):
            deployment.invoke(SCHEDULED)
        panos.set_unreachable(SERIALS[1], None)
        summary = deployment.invoke(SCHEDULED)
        assert summary["status"] == "ok"
        expected = ours(panos.table(serial=SERIALS[0]))
        assert ours(panos.table(serial=SERIALS[1])) == expected
        assert canary_on(panos, SERIALS[1])
        registered = {t["target"]: t["registered"] for t in summary["targets"]}
        assert registered == {
            self.name(deployment, SERIALS[0]): 0,
            self.name(deployment, SERIALS[1]): 17,
            self.name(deployment, SERIALS[2]): 0,
        }

    def test_steady_state_costs_one_canary_call_per_target_and_no_other_device_call(self, deployment, panos):
        deployment.invoke(SCHEDULED)
        panos.clear_log()
        summary = deployment.invoke(SCHEDULED)
        assert [t["api_calls"] for t in summary["targets"]] == [1, 1, 1]
        assert (panos.ha_queries(), len(panos.non_ha_requests())) == (1, 3)
        for serial in SERIALS:
            assert len(canary_checks(panos, target=serial)) == 1

    def test_reboot_of_one_firewall_reconciles_that_target_only(self, deployment, panos):
        deployment.invoke(SCHEDULED)
        expected = ours(panos.table(serial=SERIALS[0]))
        panos.reboot(serial=SERIALS[2], keep_persistent=False)
        panos.clear_log()
        summary = deployment.invoke(SCHEDULED)
        reconciled = {t["target"]: t.get("reconciled", False) for t in summary["targets"]}
        assert reconciled == {
            self.name(deployment, SERIALS[0]): False,
            self.name(deployment, SERIALS[1]): False,
            self.name(deployment, SERIALS[2]): True,
        }
        assert [len(table_reads(panos, target=s)) for s in SERIALS] == [0, 0, 1]
        assert panos.calls("user-id", target=SERIALS[0]) == panos.calls("user-id", target=SERIALS[1]) == []
        assert ours(panos.table(serial=SERIALS[2])) == expected

    def test_manual_reconcile_reads_every_target(self, deployment, panos):
        deployment.invoke(SCHEDULED)
        panos.clear_log()
        summary = deployment.invoke(RECONCILE)
        assert summary["status"] == "ok"
        assert [len(table_reads(panos, target=s)) for s in SERIALS] == [1, 1, 1]
        assert all(t["reconciled"] and t["drift_repaired"] == 0 for t in summary["targets"])


class TestUnknownSerial:
    @pytest.fixture
    def panos(self):
        return PanosEmulator("panorama", api_keys=(PANOS_API_KEY,), firewalls=SERIALS[:1])

    @pytest.fixture
    def settings(self):
        return {"PANOS_TARGET_SERIALS": f"{SERIALS[0]},009999999999999"}

    def test_unknown_serial_answered_with_an_error_is_reported_by_name(self, deployment, panos, summaries):
        with pytest.raises(RunFailed, match="009999999999999"):
            deployment.invoke(SCHEDULED)
        known, unknown = summaries[-1]["targets"]
        assert (known["status"], unknown["status"]) == ("ok", "failed")
        assert unknown["target"].endswith("/009999999999999")
        assert "009999999999999" in unknown["error"]
        assert len(ours(panos.table(serial=SERIALS[0]))) == 5
