"""HA pairs and the device's capacity, end to end (docs/high-availability.md): the run asks each
member its state, writes only to the active one, follows a failover, and tells a full table apart.

Each test asserts what each member received: a member that is not active gets the HA state query
and nothing else.
"""

import json
from pathlib import Path

import pytest

from app import RunFailed
from dagsync.core.canary import CANARY_IP
from dagsync.store.snapshot import SnapshotStore
from emulators.local import PANOS_SECRET, TABLE, LocalDeployment
from emulators.panos import HaPair, PanosEmulator

SCHEDULED = json.loads((Path(__file__).resolve().parents[2] / "events" / "scheduled.json").read_text())
SERIAL = "007951000000301"
PANORAMA_SERIALS = ("007951000000901", "007951000000902")
HA_QUERY = "<show><high-availability><state /></high-availability></show>"


def member(kind: str, serial: str, **options) -> PanosEmulator:
    emulator = PanosEmulator(kind, serial=serial, api_keys=("test-api-key",), **options)
    if kind == "panorama":
        emulator.add_firewall(SERIAL)
    return emulator


@pytest.fixture
def members() -> tuple[PanosEmulator, PanosEmulator]:
    return member("panorama", PANORAMA_SERIALS[0]), member("panorama", PANORAMA_SERIALS[1])


@pytest.fixture
def pair_settings() -> dict[str, str]:
    return {"PANOS_TARGET_SERIALS": SERIAL}


def deploy(pce, first, second, settings, **extra) -> LocalDeployment:
    return LocalDeployment(pce=pce, panos=first, peer=second, settings={**settings, **extra})


def desired_on(panos: PanosEmulator, serial: str | None = SERIAL) -> dict[str, frozenset[str]]:
    return {ip: tags for ip, tags in panos.table(serial=serial).items() if ip != CANARY_IP}


def received_only_the_ha_query(panos: PanosEmulator) -> bool:
    return panos.ha_queries() >= 1 and panos.non_ha_requests() == []


def test_a_pair_with_the_first_member_active_is_written_through_the_first(pce, members, pair_settings):
    first, second = members
    HaPair(first, second)
    with deploy(pce, first, second, pair_settings) as local:
        summary = local.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    assert summary["device_address"] == local.env["PANOS_URL"].split(",")[0].split("//")[1]
    assert [m["state"] for m in summary["members"]] == ["active", "passive"]
    assert first.calls("user-id", target=SERIAL) and received_only_the_ha_query(second)
    assert (first.ha_queries(), second.ha_queries()) == (1, 1)


def test_a_pair_with_the_second_member_active_is_written_through_the_second(pce, members, pair_settings):
    first, second = members
    HaPair(first, second, first_active=False)
    with deploy(pce, first, second, pair_settings) as local:
        summary = local.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    assert summary["device_address"] == local.env["PANOS_URL"].split(",")[1].split("//")[1]
    assert received_only_the_ha_query(first)
    assert desired_on(second)  # the firewall behind the Panorama pair holds the pairs


def test_a_panorama_failover_keeps_the_targets_and_the_firewalls_pairs(pce, members, pair_settings):
    first, second = members
    pair = HaPair(first, second)
    with deploy(pce, first, second, pair_settings) as local:
        target = local.invoke(SCHEDULED)["targets"][0]["target"]
        generation = SnapshotStore(TABLE).load(target).generation
        pair.fail_over(synced=True)
        first.clear_log()
        second.clear_log()
        summary = local.invoke(SCHEDULED)
        assert SnapshotStore(TABLE).load(target).generation == generation  # nothing to write again
    assert target == SERIAL  # a Panorama pair's target is keyed by serial, not by the address used
    (result,) = summary["targets"]
    assert (result["target"], result["status"], result["registered"], "reconciled" in result) == (
        SERIAL,
        "ok",
        0,
        False,
    )
    assert received_only_the_ha_query(first)
    assert [call.type for call in second.non_ha_requests()] == ["op"]  # the canary check alone


def firewall_pair_after_failover(pce, *, synced: bool) -> tuple[PanosEmulator, list[dict], dict]:
    """A firewall pair synced once through the first member, then failed over: the runs after it."""
    first, second = member("firewall", "007951000000401"), member("firewall", "007951000000402")
    pair = HaPair(first, second, active="primary-active", passive="secondary-passive")
    with deploy(pce, first, second, {}) as local:
        before = local.invoke(SCHEDULED)
        expected = desired_on(first, None)
        pair.fail_over(synced=synced)
        first.clear_log()
        second.clear_log()
        runs = []
        for _ in range(2):
            try:
                runs.append(local.invoke(SCHEDULED))
            except RunFailed as failure:
                runs.append({"status": "failed", "error": str(failure)})
    assert received_only_the_ha_query(first)
    assert desired_on(second, None) == expected
    assert {run["targets"][0]["target"] for run in runs} == {
        before["targets"][0]["target"]
    }  # keyed by the pair
    return second, runs, expected


def test_a_failover_to_a_synced_member_is_followed_with_nothing_to_send(pce):
    _, runs, _ = firewall_pair_after_failover(pce, synced=True)
    assert [(run["status"], run["targets"][0]["registered"]) for run in runs] == [("ok", 0), ("ok", 0)]


def test_a_failover_to_an_empty_member_is_found_by_the_canary_and_filled_again(pce):
    _, runs, expected = firewall_pair_after_failover(pce, synced=False)
    assert runs[0]["status"] == "incomplete"  # the canary is gone: the next run reconciles
    assert runs[1]["status"] == "ok" and runs[1]["targets"][0]["reconciled"] is True
    assert runs[1]["targets"][0]["registered"] == sum(len(tags) for tags in expected.values())


def test_no_active_member_fails_every_target_names_each_state_and_sends_nothing(pce, members, pair_settings):
    first, second = members
    HaPair(first, second, active="suspended", passive="passive")
    with deploy(pce, first, second, pair_settings) as local:
        with pytest.raises(RunFailed) as failure:
            local.invoke(SCHEDULED)
        hosts = [url.split("//")[1] for url in local.env["PANOS_URL"].split(",")]
        items = local.client("dynamodb").scan(TableName=TABLE)["Items"]
    message = str(failure.value)
    assert f"{hosts[0]} suspended" in message and f"{hosts[1]} passive" in message
    assert received_only_the_ha_query(first) and received_only_the_ha_query(second)
    assert not [item for item in items if item["pk"]["S"] == SERIAL]  # nothing committed for the target


def test_one_configured_address_that_is_passive_fails_and_is_never_ok(pce):
    passive = member("firewall", "007951000000501", ha_state="passive")
    with LocalDeployment(pce=pce, panos=passive) as local, pytest.raises(RunFailed, match="passive"):
        local.invoke(SCHEDULED)
    assert received_only_the_ha_query(passive) and passive.table() == {}


def test_a_single_address_without_ha_keeps_its_snapshot_key(deployment, panos):
    summary = deployment.invoke(SCHEDULED)
    host = deployment.env["PANOS_URL"].split("//")[1]
    assert summary["targets"][0]["target"] == host  # as before HA: no resync after an upgrade
    assert summary["members"] == [{"address": host, "state": "disabled"}]


@pytest.mark.parametrize("answer", ["403", "garbage", "timeout"])
def test_a_member_whose_state_cannot_be_read_is_never_written_to(
    pce, members, pair_settings, fast_retries, answer
):
    first, second = members
    HaPair(first, second, first_active=False)
    first.ha_unreadable = answer
    first.unreachable_delay = 0.3
    fast_retries.configure(timeout=0.1)
    with deploy(pce, first, second, pair_settings) as local:
        summary = local.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    assert [m["state"] for m in summary["members"]] == ["unreadable", "active"]
    assert received_only_the_ha_query(first)
    assert desired_on(second)


def test_each_member_generates_its_own_key(pce, members, pair_settings):
    first, second = members
    for emulator in members:
        emulator.add_user("dagsync", "pair-pass-7c1")
    HaPair(first, second)
    with deploy(pce, first, second, pair_settings) as local:
        local.put_secret(PANOS_SECRET, json.dumps({"username": "dagsync", "password": "pair-pass-7c1"}))
        assert local.invoke(SCHEDULED)["status"] == "ok"
    assert (first.keygen_count, second.keygen_count) == (1, 1)
    assert first.issued_keys() != second.issued_keys()
    assert [call.type for call in second.requests] == ["keygen", "op"]  # its key, then the HA query


def per_target_metrics(capsys) -> dict[str, dict]:
    """The last run's metrics per target, from the EMF blobs the function printed."""
    found = {}
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if "Target" in record and "_aws" in record:
            found[record["Target"]] = {k: v[0] if isinstance(v, list) else v for k, v in record.items()}
    return found


def test_a_full_table_is_partial_with_one_warning_and_nothing_removed(pce, panos, capsys, log_lines):
    panos.set_capacity(3)
    with (
        LocalDeployment(pce=pce, panos=panos) as local,
        pytest.raises(RunFailed, match=r"partial: \d+ pairs were refused"),
    ):
        local.invoke(SCHEDULED)
    (summary,) = [line["summary"] for line in log_lines() if line["message"] == "run summary"]
    (target,) = summary["targets"]
    assert target["status"] == "partial" and target["table_full"] > 0
    assert [text for text in summary["warnings"] if "table is full" in text] == [
        f"{target['target']}: the device's registered-IP table is full: {target['table_full']} entries "
        "refused; nothing registered was removed to make room (README: when the device's table is full)"
    ]
    assert per_target_metrics(capsys)[target["target"]]["DeviceTableFull"] == 1
    assert panos.calls("user-id", verb="unregister") == []


def test_a_full_table_once_freed_takes_the_refused_entries(pce, panos, capsys):
    panos.set_capacity(3)
    with LocalDeployment(pce=pce, panos=panos) as local:
        with pytest.raises(RunFailed, match=r"partial: \d+ pairs were refused"):
            local.invoke(SCHEDULED)
        held = panos.table()
        panos.set_capacity(None)
        summary = local.invoke(SCHEDULED)
    assert len(held) == 3  # what was registered stayed
    assert summary["status"] == "ok" and summary["targets"][0]["registered"] > 0
    assert per_target_metrics(capsys)[summary["targets"][0]["target"]]["DeviceTableFull"] == 0
