"""SPEC §3, one rule per test."""

import hashlib

from dagsync.mapping import make_tag, map_workloads, normalise_ip
from dagsync.models import Workload

DEFAULT_KEYS = frozenset({"role", "app", "env", "loc"})


def workload(
    href: str = "/orgs/1/workloads/a", labels=(("env", "Prod"),), addresses=("10.0.0.1",)
) -> Workload:
    return Workload(href=href, labels=tuple(labels), addresses=tuple(addresses))


def desired(
    *workloads: Workload, keys=DEFAULT_KEYS, ipv6=True, prefix="illumio."
) -> dict[str, frozenset[str]]:
    return map_workloads(workloads, prefix=prefix, label_keys=keys, include_ipv6=ipv6).desired


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
    assert normalise_ip("not-an-ip", include_ipv6=True) is None
    assert normalise_ip("10.0.0.0/24", include_ipv6=True) is None


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
