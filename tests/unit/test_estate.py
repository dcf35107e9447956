"""The synthetic estate generator: deterministic, shaped like real PCE data, churn that reports itself."""

import ipaddress
import json
from collections import Counter
from typing import Any

import pytest

from emulators.churn import churn
from emulators.estate import (
    BUILTIN_KEYS,
    DOCKER_BRIDGE,
    Estate,
    Oddities,
    add_nat_and_bridge,
    generate_estate,
)

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


# -- oddities ------------------------------------------------------------------------------------

ODD = Oddities(
    nat_addresses=3,
    nat_sharers=4,
    docker_hosts=12,
    zoned_ipv6=4,
    malformed_addresses=5,
    ipv4_mapped_ipv6=3,
    routable_loopbacks=3,
)


@pytest.fixture(scope="module")
def odd() -> Estate:
    return generate_estate(600, seed=12, oddities=ODD)


def _interfaces_named(estate: Estate, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (workload, iface)
        for workload in estate.workloads
        for iface in workload.get("interfaces") or ()
        if iface["name"] == name
    ]


def _odd_addresses(estate: Estate, kind: str) -> list[str]:
    return [address for _, address in estate.oddities.get(kind, ())]


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def test_oddities_are_off_by_default(estate: Estate) -> None:
    addresses = [address for workload in estate.workloads for address in _addresses(workload)]

    assert estate.oddities == {}
    assert not _interfaces_named(estate, "eth0.public") and not _interfaces_named(estate, "docker0")
    assert all(_is_ip(address) and "%" not in address for address in addresses)


def test_oddities_leave_the_ordinary_estate_as_it_was(odd: Estate) -> None:
    plain = generate_estate(600, seed=12)

    assert [(w["href"], w["labels"]) for w in odd.workloads] == [
        (w["href"], w["labels"]) for w in plain.workloads
    ]
    assert all(
        _addresses(with_odd)[: len(_addresses(without))] == _addresses(without)
        for with_odd, without in zip(odd.workloads, plain.workloads, strict=True)
    )


def test_same_seed_gives_the_same_oddities(odd: Estate) -> None:
    assert _snapshot(generate_estate(600, seed=12, oddities=ODD)) == _snapshot(odd)


def test_each_nat_address_is_a_slash_32_pseudo_interface_of_several_workloads(odd: Estate) -> None:
    sharers = Counter(iface["address"] for _, iface in _interfaces_named(odd, "eth0.public"))

    assert sorted(sharers.values()) == [4, 4, 4]
    assert all(iface["cidr_block"] == 32 for _, iface in _interfaces_named(odd, "eth0.public"))
    assert all(
        iface["network_detection_mode"] == "manual" for _, iface in _interfaces_named(odd, "eth0.public")
    )


def test_workloads_behind_one_nat_address_have_different_labels(odd: Estate) -> None:
    label_sets: dict[str, list[frozenset[str]]] = {}
    for workload, iface in _interfaces_named(odd, "eth0.public"):
        labels = frozenset(f"{label['key']}={label['value']}" for label in workload["labels"])
        label_sets.setdefault(iface["address"], []).append(labels)

    assert all(len(set(sets)) == len(sets) for sets in label_sets.values())


def test_a_nat_address_is_also_the_public_ip_of_each_workload_behind_it(odd: Estate) -> None:
    assert all(
        workload["public_ip"] == iface["address"] for workload, iface in _interfaces_named(odd, "eth0.public")
    )


def test_one_docker_bridge_address_is_shared_by_the_requested_managed_hosts(odd: Estate) -> None:
    bridges = _interfaces_named(odd, "docker0")

    assert len({workload["href"] for workload, _ in bridges}) == 12
    assert {(iface["address"], iface["cidr_block"]) for _, iface in bridges} == {(DOCKER_BRIDGE, 16)}
    assert all(workload["managed"] for workload, _ in bridges)


def test_zoned_ipv6_addresses_carry_a_zone_link_local_and_global(odd: Estate) -> None:
    zoned = [ipaddress.IPv6Address(address) for address in _odd_addresses(odd, "zoned_ipv6")]

    assert len(zoned) == 4
    assert all(address.scope_id for address in zoned)
    assert {address.is_link_local for address in zoned} == {True, False}


def test_malformed_addresses_are_garbage_text_and_an_over_long_string(odd: Estate) -> None:
    malformed = _odd_addresses(odd, "malformed_addresses")

    assert len(malformed) == 5
    assert not any(_is_ip(address) for address in malformed)
    assert max(map(len, malformed)) > 1000


def test_ipv4_mapped_addresses_hide_unused_ipv4_addresses(odd: Estate) -> None:
    mapped = [ipaddress.IPv6Address(address) for address in _odd_addresses(odd, "ipv4_mapped_ipv6")]
    plain = {address for workload in odd.workloads for address in _addresses(workload)}

    assert len(mapped) == 3
    assert all(address.ipv4_mapped is not None for address in mapped)
    assert not {str(address.ipv4_mapped) for address in mapped} & plain


def test_routable_loopbacks_are_flagged_on_unique_10_8_addresses(odd: Estate) -> None:
    flagged = [iface for _, iface in _interfaces_named(odd, "lo") if iface["address"] != "127.0.0.1"]
    owners = Counter(address for workload in odd.workloads for address in _addresses(workload))

    assert len(flagged) == 3
    assert all(iface["loopback"] is True for iface in flagged)
    assert all(
        ipaddress.ip_address(iface["address"]) in ipaddress.ip_network("10.0.0.0/8") for iface in flagged
    )
    assert all(owners[iface["address"]] == 1 for iface in flagged)


def test_every_odd_address_sits_beside_an_ordinary_tagged_address(odd: Estate) -> None:
    for kind in ("zoned_ipv6", "malformed_addresses", "ipv4_mapped_ipv6", "routable_loopbacks"):
        for href, _ in odd.oddities[kind]:
            workload = odd.find(href)
            assert workload is not None and workload["labels"]
            assert any(
                _is_ip(iface["address"]) and not iface["loopback"] and "." in iface["address"]
                for iface in workload["interfaces"]
                if iface["name"] not in {"eth0.public", "docker0", "lo"}
            )


def test_churn_never_moves_a_shared_address(odd: Estate) -> None:
    changed = generate_estate(600, seed=12, oddities=ODD)

    report = churn(changed, 30.0, seed=4)

    shared = [*odd.oddities["docker_hosts"], *odd.oddities["nat_addresses"]]
    assert set(report.moved) & {href for href, _ in shared}
    for href, address in shared:
        workload = changed.find(href)
        assert workload is None or address in _addresses(workload)


def _small_estate() -> list[dict[str, Any]]:
    def workload(name: str, env: str, address: str) -> dict[str, Any]:
        return {
            "href": f"/orgs/1/workloads/{name}",
            "labels": [{"href": f"/orgs/1/labels/{env}", "key": "env", "value": env}],
            "interfaces": [{"name": "eth0", "address": address}],
        }

    return [
        workload("a", "Production", "10.0.0.1"),
        workload("b", "Production", "10.0.0.2"),
        workload("c", "Development", "10.0.0.3"),
        workload("d", "Staging", "10.0.0.4"),
        workload("e", "Test", "10.0.0.5"),
    ]


def test_nat_and_bridge_helper_adds_one_nat_address_to_two_differently_labelled_workloads() -> None:
    workloads = _small_estate()

    behind_nat, _ = add_nat_and_bridge(workloads, nat_address="198.51.100.77")

    assert behind_nat == ["/orgs/1/workloads/a", "/orgs/1/workloads/c"]
    carriers = [w for w in workloads if "198.51.100.77" in _addresses(w)]
    assert [w["href"] for w in carriers] == behind_nat
    assert all(w["public_ip"] == "198.51.100.77" for w in carriers)


def test_nat_and_bridge_helper_adds_one_bridge_to_two_other_differently_labelled_workloads() -> None:
    workloads = _small_estate()

    behind_nat, bridged = add_nat_and_bridge(workloads)

    assert bridged == ["/orgs/1/workloads/b", "/orgs/1/workloads/d"]
    assert not set(bridged) & set(behind_nat)
    assert [w["href"] for w in workloads if DOCKER_BRIDGE in _addresses(w)] == bridged


def test_nat_and_bridge_helper_refuses_an_estate_labelled_all_alike() -> None:
    workloads = _small_estate()
    for workload in workloads:
        workload["labels"] = workloads[0]["labels"]

    with pytest.raises(ValueError, match="differently labelled"):
        add_nat_and_bridge(workloads)
