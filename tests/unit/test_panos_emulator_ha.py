"""The PAN-OS emulator's HA (docs/protocols.md#pan-os-high-availability): both answer forms, HA
not enabled, a passive member's silent drop, unreadable answers, and a pair's failover."""

import pytest

from emulators.panos import HaPair, PanosEmulator
from tests.support.panos import KEY, Api, parse, serve

HA_QUERY = "<show><high-availability><state/></high-availability></show>"


def ha_state(api: Api):
    return api.post({"type": "op", "cmd": HA_QUERY})


def test_panorama_answers_its_state_under_local_info() -> None:
    with serve(PanosEmulator("panorama", api_keys=(KEY,), ha_state="active")) as api:
        root = parse(ha_state(api))
    assert root.findtext("result/local-info/state") == "active"
    assert root.find("result/group") is None


def test_a_firewall_answers_its_state_under_group() -> None:
    device = PanosEmulator("firewall", api_keys=(KEY,))
    device.set_ha_state("secondary-passive", peer="primary-active")
    with serve(device) as api:
        root = parse(ha_state(api))
    assert root.findtext("result/group/local-info/state") == "secondary-passive"
    assert root.findtext("result/group/peer-info/state") == "primary-active"


def test_without_ha_the_answer_says_it_is_not_enabled() -> None:
    with serve(PanosEmulator(api_keys=(KEY,))) as api:
        assert parse(ha_state(api)).findtext("result/enabled") == "no"


def test_a_passive_member_answers_success_and_applies_nothing() -> None:
    device = PanosEmulator(api_keys=(KEY,), ha_state="passive")
    with serve(device) as api:
        root = api.register({"10.0.0.1": ["illumio.app.A"]})
    assert root.get("status") == "success"
    assert device.table() == {}
    assert device.calls("user-id", verb="register")  # it was received all the same


@pytest.mark.parametrize(("answer", "status"), [("403", 403), ("garbage", 200), ("timeout", 504)])
def test_an_unreadable_state_answers_as_asked(answer: str, status: int) -> None:
    device = PanosEmulator(api_keys=(KEY,), ha_state="active", unreachable_delay=0.0)
    device.ha_unreadable = answer  # type: ignore[assignment]
    with serve(device) as api:
        response = ha_state(api)
    assert response.status_code == status
    assert device.ha_queries() == 1 and device.non_ha_requests() == []


def test_a_failover_swaps_the_states() -> None:
    first, second = PanosEmulator(serial="1"), PanosEmulator(serial="2")
    pair = HaPair(first, second)
    pair.fail_over(synced=False)
    assert (first.ha_state, second.ha_state, pair.active) == ("passive", "active", second)


def test_a_synced_failover_gives_the_new_active_member_the_old_table() -> None:
    first, second = PanosEmulator(serial="1"), PanosEmulator(serial="2")
    pair = HaPair(first, second)
    first.register_foreign("10.0.0.1", ["illumio.app.A"])
    pair.fail_over(synced=True)
    assert second.table() == {"10.0.0.1": frozenset({"illumio.app.A"})}


def test_an_unsynced_failover_leaves_the_new_active_member_empty() -> None:
    first, second = PanosEmulator(serial="1"), PanosEmulator(serial="2")
    pair = HaPair(first, second)
    first.register_foreign("10.0.0.1", ["illumio.app.A"])
    pair.fail_over(synced=False)
    assert second.table() == {}


def test_a_panorama_pair_manages_one_set_of_firewalls() -> None:
    first, second = PanosEmulator("panorama", serial="1"), PanosEmulator("panorama", serial="2")
    first.add_firewall("007951000000011")
    HaPair(first, second)
    first.register_foreign("10.0.0.1", ["illumio.app.A"], serial="007951000000011")
    assert second.table(serial="007951000000011") == {"10.0.0.1": frozenset({"illumio.app.A"})}


def test_a_full_table_names_the_platform_maximum() -> None:
    device = PanosEmulator(api_keys=(KEY,), capacity=1)
    with serve(device) as api:
        root = api.register({"10.0.0.1": ["illumio.app.A"], "10.0.0.2": ["illumio.app.A"]})
    (message,) = [entry.get("message") for entry in root.iter("entry") if entry.get("message")]
    assert "max registered-ip for the platform reached (1)" in message
