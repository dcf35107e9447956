"""The synthetic estate generator: deterministic, shaped like real PCE data, churn that reports itself."""

import ipaddress
import json
from collections import Counter
from typing import Any

import pytest

from emulators.estate import BUILTIN_KEYS, Estate, churn, generate_estate

N = 3000


@pytest.fixture(scope="module")
def estate() -> Estate:
    return generate_estate(N, seed=11)


def _fresh() -> Estate:
    """A private copy of the module's estate (regenerating is cheaper than a deep copy)."""
    return generate_estate(N, seed=11)


def _addresses(workload: dict[str, Any]) -> list[str]:
    return [iface["address"] for iface in workload.get("interfaces") or ()]


def _snapshot(estate: Estate) -> str:
    return json.dumps([estate.workloads, estate.labels], sort_keys=True)


def test_same_seed_gives_the_same_estate() -> None:
    assert _snapshot(generate_estate(500, seed=4)) == _snapshot(generate_estate(500, seed=4))


def test_different_seeds_give_different_estates() -> None:
    assert _snapshot(generate_estate(500, seed=4)) != _snapshot(generate_estate(500, seed=5))


def test_generates_the_requested_number_of_workloads(estate: Estate) -> None:
    assert len(estate.workloads) == N
    assert len({workload["href"] for workload in estate.workloads}) == N


def test_hrefs_are_org_workload_uuids(estate: Estate) -> None:
    prefix = "/orgs/1/workloads/"

    assert all(workload["href"].startswith(prefix) for workload in estate.workloads)
    assert all(len(workload["href"]) == len(prefix) + 36 for workload in estate.workloads)


def test_about_a_third_is_unmanaged(estate: Estate) -> None:
    unmanaged = sum(1 for workload in estate.workloads if not workload["managed"])

    assert 0.28 < unmanaged / N < 0.39


def test_unmanaged_workloads_have_no_ven_an_empty_hostname_and_no_public_ip(estate: Estate) -> None:
    unmanaged = [workload for workload in estate.workloads if not workload["managed"]]

    assert all(workload["ven"] is None for workload in unmanaged)
    assert all(workload["hostname"] == "" and workload["name"] for workload in unmanaged)
    assert all(workload["public_ip"] is None for workload in unmanaged)


def test_ipv4_addresses_are_unique_outside_ha_pairs(estate: Estate) -> None:
    owners = Counter(
        iface["address"]
        for workload in estate.workloads
        for iface in workload.get("interfaces") or ()
        if iface["name"] != "vip0" and not iface["loopback"] and "." in iface["address"]
    )

    assert max(owners.values()) == 1
    assert all(ipaddress.ip_address(address) in ipaddress.ip_network("10.0.0.0/8") for address in owners)


def test_a_few_ha_pairs_share_an_address(estate: Estate) -> None:
    owners = Counter(address for workload in estate.workloads for address in set(_addresses(workload)))
    shared = [address for address, count in owners.items() if count > 1 and address != "127.0.0.1"]

    assert len(shared) == N // 500
    assert all(owners[address] == 2 for address in shared)


def test_link_local_and_routable_ipv6_are_present(estate: Estate) -> None:
    ipv6 = [
        ipaddress.IPv6Address(address)
        for workload in estate.workloads
        for address in _addresses(workload)
        if ":" in address
    ]

    assert any(address.is_link_local for address in ipv6)
    assert any(address in ipaddress.ip_network("fd00::/8") for address in ipv6)
    assert any(address in ipaddress.ip_network("2001:db8::/32") for address in ipv6)


def test_some_interfaces_are_loopback(estate: Estate) -> None:
    loopbacks = [
        iface
        for workload in estate.workloads
        for iface in workload.get("interfaces") or ()
        if iface["loopback"]
    ]

    assert loopbacks
    assert all(iface["address"] == "127.0.0.1" for iface in loopbacks)


def test_some_workloads_have_no_interfaces(estate: Estate) -> None:
    empty = [workload for workload in estate.workloads if not workload.get("interfaces")]
    missing = [workload for workload in estate.workloads if "interfaces" not in workload]

    assert len(empty) > len(missing) > 0


def test_some_workloads_have_no_labels(estate: Estate) -> None:
    assert any(workload["labels"] == [] for workload in estate.workloads)


def test_public_ip_is_never_an_interface_address(estate: Estate) -> None:
    public = [workload for workload in estate.workloads if workload["public_ip"]]

    assert public
    assert all(workload["public_ip"] not in _addresses(workload) for workload in public)


def test_labels_are_inline_objects_from_the_label_table(estate: Estate) -> None:
    labels = [label for workload in estate.workloads for label in workload["labels"]]

    assert all(set(label) == {"href", "key", "value"} for label in labels)
    assert all(estate.labels[label["href"]] == label for label in labels)


def test_custom_label_keys_appear_besides_the_builtin_ones(estate: Estate) -> None:
    keys = {label["key"] for workload in estate.workloads for label in workload["labels"]}

    assert keys >= {*BUILTIN_KEYS, "os", "Quarantine"}


def test_at_most_one_label_per_key_per_workload(estate: Estate) -> None:
    for workload in estate.workloads:
        keys = [label["key"] for label in workload["labels"]]
        assert len(keys) == len(set(keys))


@pytest.mark.parametrize("percent", [1.0, 5.0])
def test_churn_changes_each_kind_at_the_given_percentage(estate: Estate, percent: float) -> None:
    changed = _fresh()

    report = churn(changed, percent, seed=2)

    expected = round(N * percent / 100)
    assert [len(report.relabeled), len(report.moved), len(report.deleted), len(report.added)] == [
        expected
    ] * 4
    assert report.total == 4 * expected


def test_churn_keeps_the_estate_size(estate: Estate) -> None:
    changed = _fresh()

    churn(changed, 2.0, seed=3)

    assert len(changed.workloads) == N


def test_churn_touches_distinct_workloads(estate: Estate) -> None:
    report = churn(_fresh(), 5.0, seed=3)

    touched = [*report.relabeled, *report.moved, *report.deleted]
    assert len(touched) == len(set(touched))


def test_churn_is_deterministic(estate: Estate) -> None:
    first, second = _fresh(), _fresh()

    churn(first, 3.0, seed=8)
    churn(second, 3.0, seed=8)

    assert _snapshot(first) == _snapshot(second)


def test_churn_deletes_and_adds_the_workloads_it_reports(estate: Estate) -> None:
    changed = _fresh()

    report = churn(changed, 2.0, seed=5)

    hrefs = {workload["href"] for workload in changed.workloads}
    assert not hrefs & set(report.deleted)
    assert set(report.added) <= hrefs
    assert not set(report.added) & {workload["href"] for workload in estate.workloads}


def test_churn_relabels_change_a_builtin_label(estate: Estate) -> None:
    changed = _fresh()
    before = {workload["href"]: workload["labels"] for workload in estate.workloads}

    report = churn(changed, 2.0, seed=6)

    for href in report.relabeled:
        after = changed.find(href)
        assert after is not None
        assert sorted(map(json.dumps, after["labels"])) != sorted(map(json.dumps, before[href]))


def test_churn_moves_give_new_unused_addresses(estate: Estate) -> None:
    changed = _fresh()
    used_before = {address for workload in estate.workloads for address in _addresses(workload)}

    report = churn(changed, 2.0, seed=7)

    for href in report.moved:
        after = changed.find(href)
        assert after is not None
        assert set(_addresses(after)) - used_before


def test_churn_of_zero_percent_changes_nothing(estate: Estate) -> None:
    changed = _fresh()

    report = churn(changed, 0.0, seed=1)

    assert report.total == 0
    assert _snapshot(changed) == _snapshot(estate)
