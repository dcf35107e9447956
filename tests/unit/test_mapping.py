"""docs/mapping.md, one rule per test."""

import hashlib
import ipaddress

from dagsync.core.mapping import (
    AddressReader,
    MappingResult,
    MappingRules,
    OddAddress,
    hostnames_by_ip,
    make_tag,
    map_workloads,
)
from dagsync.core.models import Workload

DEFAULT_KEYS = frozenset({"role", "app", "env", "loc"})


def workload(
    href: str = "/orgs/1/workloads/a", labels=(("env", "Prod"),), addresses=("10.0.0.1",), hostname=""
) -> Workload:
    return Workload(href=href, labels=tuple(labels), addresses=tuple(addresses), hostname=hostname)


def mapped(*workloads: Workload, keys=DEFAULT_KEYS, ipv6=True, **rules) -> MappingResult:
    return map_workloads(workloads, prefix="illumio.", label_keys=keys, include_ipv6=ipv6, **rules)


def desired(*workloads: Workload, keys=DEFAULT_KEYS, ipv6=True, **rules) -> dict[str, frozenset[str]]:
    return mapped(*workloads, keys=keys, ipv6=ipv6, **rules).desired


def networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


def test_tag_is_prefix_key_dot_value():
    assert make_tag("illumio.", "env", "Production") == "illumio.env.Production"


def test_quotes_become_underscores():
    assert make_tag("illumio.", "app", 'O\'Brien "HR"') == "illumio.app.O_Brien _HR_"


def test_whitespace_runs_collapse_and_ends_are_trimmed():
    assert make_tag("illumio.", "app", "  Web \t\n  Tier  ") == "illumio.app.Web Tier"


def test_tag_of_127_characters_is_kept_whole():
    value = "v" * (127 - len("illumio.app."))
    assert make_tag("illumio.", "app", value) == f"illumio.app.{value}"


def test_long_tag_is_cut_to_118_with_hash_suffix():
    value = "x" * 500
    full = f"illumio.app.{value}"
    tag = make_tag("illumio.", "app", value)
    assert tag == full[:118] + "~" + hashlib.sha256(full.encode()).hexdigest()[:8]
    assert tag is not None and len(tag) == 127


def test_long_tags_that_share_a_start_stay_distinct():
    assert make_tag("illumio.", "app", "a" * 200 + "1") != make_tag("illumio.", "app", "a" * 200 + "2")


def test_empty_value_after_sanitising_yields_no_tag():
    assert make_tag("illumio.", "app", "   ") is None


def test_unselected_label_keys_are_ignored():
    w = workload(labels=(("env", "Prod"), ("os", "Linux")))
    assert desired(w) == {"10.0.0.1": frozenset({"illumio.env.Prod"})}


def test_star_selects_custom_label_keys():
    w = workload(labels=(("env", "Prod"), ("Quarantine", "Yes")))
    assert desired(w, keys=None) == {"10.0.0.1": frozenset({"illumio.env.Prod", "illumio.Quarantine.Yes"})}


def test_custom_key_listed_explicitly_is_selected_case_sensitively():
    w = workload(labels=(("Net", "DMZ"), ("net", "x")))
    assert desired(w, keys=frozenset({"Net"})) == {"10.0.0.1": frozenset({"illumio.Net.DMZ"})}


def test_shared_ip_carries_union_of_tags():
    a = workload("/w/a", labels=(("app", "Web"),), addresses=("10.0.0.9",))
    b = workload("/w/b", labels=(("app", "Db"),), addresses=("10.0.0.9",))
    assert desired(a, b) == {"10.0.0.9": frozenset({"illumio.app.Web", "illumio.app.Db"})}


def test_ipv6_is_compressed():
    w = workload(addresses=("2001:0DB8:0000:0000:0000:0000:0000:0010",))
    assert desired(w) == {"2001:db8::10": frozenset({"illumio.env.Prod"})}


def test_ipv6_dropped_when_disabled():
    w = workload(addresses=("2001:db8::10", "10.0.0.1"))
    assert set(desired(w, ipv6=False)) == {"10.0.0.1"}


def test_link_local_loopback_unspecified_and_multicast_are_dropped():
    dropped = ("fe80::1", "169.254.10.1", "127.0.0.1", "::1", "0.0.0.0", "::", "224.0.0.5", "ff02::1")
    assert desired(workload(addresses=dropped)) == {}


def test_invalid_addresses_are_dropped():
    reader = AddressReader(include_ipv6=True)
    assert isinstance(reader.read("not-an-ip"), OddAddress)
    assert isinstance(reader.read("10.0.0.0/24"), OddAddress)


def test_duplicate_address_within_a_workload_counts_once():
    w = workload(addresses=("10.0.0.1", " 10.0.0.1 "))
    assert desired(w) == {"10.0.0.1": frozenset({"illumio.env.Prod"})}


def test_workload_without_selected_labels_yields_nothing():
    assert desired(workload(labels=())) == {}


def test_workload_without_usable_ip_yields_nothing():
    assert desired(workload(addresses=("fe80::1",))) == {}


def test_labels_that_sanitise_to_one_tag_are_reported():
    a = workload("/w/a", labels=(("app", "Web'Tier"),), addresses=("10.0.0.1",))
    b = workload("/w/b", labels=(("app", 'Web"Tier'),), addresses=("10.0.0.2",))
    result = map_workloads([a, b], prefix="illumio.", label_keys=DEFAULT_KEYS, include_ipv6=True)
    assert result.desired["10.0.0.1"] == result.desired["10.0.0.2"] == frozenset({"illumio.app.Web_Tier"})
    assert any("both map to tag 'illumio.app.Web_Tier'" in w for w in result.warnings)


def test_more_than_32_tags_are_cut_in_sorted_order_with_a_warning():
    labels = tuple((f"k{i:02d}", "v") for i in range(40))
    result = map_workloads([workload(labels=labels)], prefix="illumio.", label_keys=None, include_ipv6=True)
    assert result.desired["10.0.0.1"] == frozenset(f"illumio.k{i:02d}.v" for i in range(32))
    assert any("10.0.0.1" in w and "32" in w for w in result.warnings)


def test_reserved_address_is_never_tagged():
    result = map_workloads(
        [workload(addresses=("192.0.2.1", "10.0.0.1"))],
        prefix="illumio.",
        label_keys=DEFAULT_KEYS,
        include_ipv6=True,
        reserved_ips=frozenset({"192.0.2.1"}),
    )
    assert set(result.desired) == {"10.0.0.1"}
    assert any("192.0.2.1" in w for w in result.warnings)


def test_counts_workloads_and_pairs():
    result = map_workloads(
        [workload("/w/a", labels=(("env", "P"), ("app", "A"))), workload("/w/b", labels=())],
        prefix="illumio.",
        label_keys=DEFAULT_KEYS,
        include_ipv6=True,
    )
    assert (result.workloads, result.pairs) == (2, 2)


def test_warnings_are_capped():
    workloads = [
        workload(f"/w/{i}", labels=(("app", f"x'{i}"),), addresses=(f"10.1.{i // 250}.{i % 250}",))
        for i in range(100)
    ] + [
        workload(f"/w/b{i}", labels=(("app", f'x"{i}'),), addresses=(f"10.2.{i // 250}.{i % 250}",))
        for i in range(100)
    ]
    result = map_workloads(workloads, prefix="illumio.", label_keys=DEFAULT_KEYS, include_ipv6=True)
    assert len(result.warnings) == 51
    assert result.warnings[-1] == "... and 50 more warnings"


# -- odd addresses: dropped with a warning naming the workload, never failing the run --------


def test_zoned_ipv6_is_dropped_with_a_warning_naming_the_workload():
    result = mapped(workload("/w/zoned", addresses=("2001:db8::1%x", "10.0.0.1"), hostname="web01"))
    assert result.desired == {"10.0.0.1": frozenset({"illumio.env.Prod"})}
    assert result.warnings == [
        "workload /w/zoned (web01) has address '2001:db8::1%x', an IPv6 address with a zone; it is not tagged"
    ]


def test_zoned_link_local_ipv6_is_dropped_with_a_warning():
    result = mapped(workload("/w/zoned", addresses=("fe80::1%eth0",)))
    assert result.desired == {}
    assert ["/w/zoned" in w and "zone" in w for w in result.warnings] == [True]


def test_over_long_address_is_dropped_with_a_short_warning():
    result = mapped(workload("/w/long", addresses=("1" * 100_000, "10.0.0.1")))
    assert set(result.desired) == {"10.0.0.1"}
    [warning] = result.warnings
    assert "/w/long" in warning and "100000 characters" in warning
    assert len(warning) < 250


def test_garbage_address_is_dropped_with_a_warning():
    result = mapped(workload("/w/junk", addresses=("10.7.0.8<evil/>", "' or 1=1", "10.0.0.1")))
    assert set(result.desired) == {"10.0.0.1"}
    assert len(result.warnings) == 2
    assert all("/w/junk" in w and "not an IP address" in w for w in result.warnings)


def test_control_characters_in_an_address_are_escaped_in_the_warning():
    result = mapped(workload("/w/nul", addresses=("10.0.0.1\x00\n",)))
    assert result.desired == {}
    assert "\\x00" in result.warnings[0]
    assert "\n" not in result.warnings[0]


def test_ipv4_mapped_ipv6_is_not_taken_for_its_ipv4_address():
    """The firewall sees the IPv4 packet; the mapped form is no identity to assume."""
    other = workload("/w/v4", labels=(("env", "Dev"),), addresses=("10.0.0.1",))
    mapped_form = workload("/w/mapped", labels=(("env", "Prod"),), addresses=("::ffff:10.0.0.1",))
    result = mapped(other, mapped_form)
    assert result.desired == {"10.0.0.1": frozenset({"illumio.env.Dev"})}
    assert result.shared_ip_conflicts == 0
    assert ["/w/mapped" in w and "IPv4-mapped" in w for w in result.warnings] == [True]


def test_odd_addresses_are_reported_even_when_ipv6_is_excluded():
    result = mapped(workload(addresses=("2001:db8::1%x", "::ffff:10.0.0.1", "2001:db8::2")), ipv6=False)
    assert result.desired == {}
    assert len(result.warnings) == 2


def test_quietly_dropped_addresses_raise_no_warning():
    quiet = ("fe80::1", "127.0.0.1", "::1", "0.0.0.0", "224.0.0.5", "ff02::1", " 10.0.0.1 ")
    result = mapped(workload(addresses=quiet))
    assert (result.desired, result.warnings) == ({"10.0.0.1": frozenset({"illumio.env.Prod"})}, [])


def test_odd_addresses_of_an_unlabelled_workload_are_reported_too():
    assert mapped(workload(labels=(), addresses=("2001:db8::1%x",))).warnings != []


# -- EXCLUDE_CIDRS ---------------------------------------------------------------------------


def test_excluded_ipv4_networks_are_never_tagged():
    w = workload(addresses=("172.17.0.1", "100.95.216.244", "10.0.0.1"))
    assert desired(w, exclude=networks("172.17.0.0/16", "100.64.0.0/10")) == {
        "10.0.0.1": frozenset({"illumio.env.Prod"})
    }


def test_excluded_ipv6_networks_are_never_tagged():
    w = workload(addresses=("fddf:a159:5429:bd2b::1", "2001:db8::10"))
    assert set(desired(w, exclude=networks("fd00::/8"))) == {"2001:db8::10"}


def test_exclusion_matches_the_address_however_it_is_written():
    w = workload(addresses=("FDDF:A159:0000::0001", " 172.17.0.1"))
    assert desired(w, exclude=networks("fd00::/8", "172.17.0.0/16")) == {}


def test_excluded_addresses_raise_no_warning_and_no_conflict():
    a = workload("/w/a", labels=(("app", "A"),), addresses=("172.17.0.1", "10.0.0.1"))
    b = workload("/w/b", labels=(("app", "B"),), addresses=("172.17.0.1", "10.0.0.2"))
    result = mapped(a, b, exclude=networks("172.17.0.0/16"))
    assert (result.warnings, result.shared_ip_conflicts) == ([], 0)
    assert set(result.desired) == {"10.0.0.1", "10.0.0.2"}


def test_an_ipv4_exclusion_does_not_touch_ipv6_addresses():
    assert set(desired(workload(addresses=("::a00:1",)), exclude=networks("0.0.0.0/0"))) == {"::a00:1"}


# -- SHARED_IP_POLICY ------------------------------------------------------------------------


def nat_pseudo_interface_estate() -> list[Workload]:
    """A NAT address listed as `eth0.public` on each workload behind it (real PCE 21.x shape)."""
    return [
        workload("/w/web", labels=(("app", "Web"),), addresses=("10.0.0.11", "203.0.113.7")),
        workload("/w/db", labels=(("app", "Db"),), addresses=("10.0.0.12", "203.0.113.7")),
    ]


def test_shared_ip_with_differing_tags_carries_the_union_and_is_reported():
    result = mapped(*nat_pseudo_interface_estate())
    assert result.desired["203.0.113.7"] == frozenset({"illumio.app.Web", "illumio.app.Db"})
    assert result.shared_ip_conflicts == 1
    assert result.warnings == [
        "203.0.113.7 is claimed by 2 workloads whose tags differ (/w/web, /w/db); "
        "it carries the union of their tags",
        "1 IPs are claimed by workloads whose tags differ (SHARED_IP_POLICY=union; 1 listed)",
    ]


def test_skip_policy_leaves_a_conflicting_ip_untagged_and_reports_it():
    result = mapped(*nat_pseudo_interface_estate(), shared_ip_policy="skip")
    assert result.desired == {
        "10.0.0.11": frozenset({"illumio.app.Web"}),
        "10.0.0.12": frozenset({"illumio.app.Db"}),
    }
    assert result.shared_ip_conflicts == 1
    assert "it carries none of their tags" in result.warnings[0]


def test_ha_pair_labelled_alike_is_not_a_conflict():
    labels = (("role", "LoadBalancer"), ("env", "NetworkDevice"))
    a = workload("/w/apv1", labels=labels, addresses=("192.168.30.153", "192.168.30.52"))
    b = workload("/w/apv2", labels=tuple(reversed(labels)), addresses=("192.168.30.153", "192.168.30.51"))
    for policy in ("union", "skip"):
        result = mapped(a, b, shared_ip_policy=policy)
        assert result.desired["192.168.30.153"] == frozenset(
            {"illumio.role.LoadBalancer", "illumio.env.NetworkDevice"}
        )
        assert (result.shared_ip_conflicts, result.warnings) == (0, [])


def test_an_unlabelled_workload_on_a_shared_ip_is_a_conflict():
    """Its traffic would match the labelled workload's DAGs just the same."""
    labelled = workload("/w/batch", labels=(("app", "Batch"),), addresses=("172.17.0.1",))
    unlabelled = workload("/w/podman", labels=(), addresses=("172.17.0.1",))
    assert mapped(labelled, unlabelled).shared_ip_conflicts == 1
    assert desired(labelled, unlabelled, shared_ip_policy="skip") == {}


def test_container_bridge_on_every_host_is_one_conflict():
    hosts = [
        workload(f"/w/h{i}", labels=(("app", f"App{i}"),), addresses=(f"10.0.1.{i}", "172.17.0.1"))
        for i in range(40)
    ]
    result = mapped(*hosts)
    assert result.shared_ip_conflicts == 1
    [conflict] = [w for w in result.warnings if "is claimed by" in w]
    assert "claimed by 40 workloads" in conflict and "and 37 more" in conflict
    assert len(result.desired["172.17.0.1"]) == 32


def test_conflicts_listed_are_capped_at_20_with_the_total():
    estate = [
        workload(f"/w/{side}{i}", labels=(("app", side),), addresses=(f"10.9.0.{i}",))
        for i in range(30)
        for side in ("a", "b")
    ]
    result = mapped(*estate)
    assert result.shared_ip_conflicts == 30
    listed = [w for w in result.warnings if "is claimed by" in w]
    assert len(listed) == 20
    assert (
        result.warnings[-1]
        == "30 IPs are claimed by workloads whose tags differ (SHARED_IP_POLICY=union; 20 listed)"
    )


def test_many_odd_addresses_do_not_crowd_out_the_conflicts():
    odd = [workload(f"/w/odd{i}", addresses=(f"junk{i}",)) for i in range(80)]
    result = mapped(*odd, *nat_pseudo_interface_estate())
    assert result.shared_ip_conflicts == 1
    assert any("203.0.113.7 is claimed by 2 workloads" in w for w in result.warnings)


def test_one_workload_listing_an_address_twice_is_one_claim():
    w = workload(addresses=("10.0.0.1", "10.0.0.1"))
    other = workload("/w/b", labels=(("env", "Dev"),), addresses=("10.0.0.1",))
    assert mapped(w).projection["/orgs/1/workloads/a"].ips == ("10.0.0.1",)
    assert "claimed by 2 workloads" in mapped(w, other).warnings[0]


# -- real PCE shapes (the PCE 25 sample's patterns, built here) --------------------------------


def test_public_ip_equal_to_the_own_address_is_no_sign_of_nat():
    """On flat networks the PCE reports the workload's own address as public_ip; the mapping
    never looks at public_ip, so such a workload is tagged like any other."""
    k8s = workload(
        "/orgs/1/workloads/03daf1e6",
        labels=(("role", "Worker"), ("env", "Kubernetes"), ("os", "Ubuntu")),
        addresses=("172.16.15.122", "fe80::250:56ff:feaf:39a", "10.85.58.192", "fe80::644a:b5ff:fe30:6fa9"),
        hostname="k8s-node02",
    )
    result = mapped(k8s)
    assert result.desired == {
        "172.16.15.122": frozenset({"illumio.role.Worker", "illumio.env.Kubernetes"}),
        "10.85.58.192": frozenset({"illumio.role.Worker", "illumio.env.Kubernetes"}),
    }
    assert result.warnings == []


def test_unmanaged_workload_with_many_interfaces_and_custom_keys():
    dhcp = workload(
        "/orgs/1/workloads/8e351432",
        labels=(("app", "Endpoint"), ("role", "DHCP-client"), ("Net", "LAN-192.168.20")),
        addresses=tuple(f"192.168.20.{n}" for n in range(100, 151)),
    )
    result = mapped(dhcp, keys=None)
    assert len(result.desired) == 51
    assert result.desired["192.168.20.150"] == frozenset(
        {"illumio.app.Endpoint", "illumio.role.DHCP-client", "illumio.Net.LAN-192.168.20"}
    )


def test_macos_endpoint_keeps_only_its_routable_addresses():
    mac = workload(
        "/orgs/1/workloads/4716377d",
        labels=(("role", "MAC"),),
        addresses=(
            "fe80::c43:b752:711:b5de",
            "100.95.216.244",
            "fe80::5043:1ff:fe55:a8cb",
            "fe80::5043:1ff:fe55:a8cb",
            "fddf:a159:5429:bd2b:eda9:3280:ba2d:3d0e",
            "172.16.9.26",
        ),
    )
    assert set(desired(mac)) == {"100.95.216.244", "fddf:a159:5429:bd2b:eda9:3280:ba2d:3d0e", "172.16.9.26"}
    assert set(desired(mac, ipv6=False, exclude=networks("100.64.0.0/10"))) == {"172.16.9.26"}


def test_workloads_without_interfaces_or_labels_yield_nothing_and_no_warning():
    result = mapped(workload("/w/none", labels=(), addresses=()), workload("/w/nolabels", labels=()))
    assert (result.desired, result.warnings, result.workloads) == ({}, [], 2)


def test_projection_holds_each_workload_with_a_usable_ip():
    a = workload("/w/a", addresses=("10.0.0.1", "fe80::1"))
    b = workload("/w/b", addresses=("fe80::2",))
    assert mapped(a, b).projection == {"/w/a": ("/w/a", ("10.0.0.1",), frozenset({"illumio.env.Prod"}))}


def test_hostnames_by_ip_name_every_workload_behind_an_ip():
    estate = [
        workload("/w/a", addresses=("10.0.0.1", "10.0.0.9"), hostname="apv1"),
        workload("/w/b", addresses=("10.0.0.9",), hostname="apv2"),
        workload("/w/c", addresses=("10.0.0.3",)),
    ]
    assert hostnames_by_ip(estate, mapped(*estate).projection) == {
        "10.0.0.1": "apv1",
        "10.0.0.9": "apv1, apv2",
    }


def test_rules_fingerprint_changes_with_any_rule_and_not_with_order():
    rules = MappingRules(
        prefix="illumio.", label_keys=frozenset({"env", "app"}), exclude=networks("10.0.0.0/8", "fd00::/8")
    )
    same = MappingRules(
        prefix="illumio.", label_keys=frozenset({"app", "env"}), exclude=networks("fd00::/8", "10.0.0.0/8")
    )
    assert rules.fingerprint() == same.fingerprint()
    others = [
        MappingRules(prefix="corp.", label_keys=frozenset({"env", "app"})),
        MappingRules(prefix="illumio.", label_keys=None),
        MappingRules(prefix="illumio.", label_keys=frozenset({"env", "app"}), include_ipv6=False),
        MappingRules(prefix="illumio.", label_keys=frozenset({"env", "app"}), shared_ip_policy="skip"),
        MappingRules(
            prefix="illumio.", label_keys=frozenset({"env", "app"}), reserved_ips=frozenset({"192.0.2.1"})
        ),
    ]
    fingerprints = {rules.fingerprint(), *(other.fingerprint() for other in others)}
    assert len(fingerprints) == 6
