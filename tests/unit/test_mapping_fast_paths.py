"""Fast paths (mapping, diff, request sizing) give exactly what the plain definitions give."""

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from dagsync.diff import subtract, with_prefix
from dagsync.mapping import normalise_ip
from dagsync.panos_xml import _serialized_entry_bytes, estimate_entry_bytes


def reference_normalise_ip(address: str, *, include_ipv6: bool) -> str | None:
    """SPEC §3 spelled out with ipaddress alone."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return None
    if ip.version == 6 and not include_ipv6:
        return None
    return ip.compressed


octet = st.one_of(
    st.integers(0, 255).map(str), st.sampled_from(["00", "01", "010", "256", "999", "-1", "1a", ""])
)
dotted = st.lists(octet, min_size=3, max_size=5).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.one_of(
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded.upper()),
)
special = st.sampled_from(
    [
        "127.0.0.1",
        "127.255.255.254",
        "169.254.0.1",
        "169.253.255.255",
        "169.255.0.1",
        "0.0.0.0",
        "0.0.0.1",
        "224.0.0.1",
        "239.255.255.255",
        "240.0.0.1",
        "223.255.255.255",
        "255.255.255.255",
        "fe80::1",
        "FE80::1",
        "febf:ffff::1",
        "fec0::1",
        "fe80::1%eth0",
        "::1",
        "::",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.1.1",
        "fe80::10.1.2.3",
        "2001:db8::1",
        "2001:0db8:0000:0000:0000:0000:0000:0001",
        "10.0.0.0/24",
        "1.2.3.4:80",
        "1.2.3",
        "1.2.3.4.5",
        "0x7f.0.0.1",
        "1.2.3.4\x00",
        "\uff11.\uff12.\uff13.\uff14",
        "",
        " ",
        "not-an-ip",
    ]
)
padding = st.sampled_from(["", " ", "\t", "\n", "\u00a0", " \r\n"])
addresses = st.tuples(padding, st.one_of(dotted, ipv4, ipv6, special, st.text(max_size=12)), padding).map(
    "".join
)


@given(addresses, st.booleans())
def test_normalise_ip_matches_the_ipaddress_definition(address: str, include_ipv6: bool) -> None:
    expected = reference_normalise_ip(address, include_ipv6=include_ipv6)
    assert normalise_ip(address, include_ipv6=include_ipv6) == expected


tags = st.frozensets(st.sampled_from(["illumio.a", "illumio.b", "illumio.c", "other.x", "other.y"]))
tag_maps = st.dictionaries(st.sampled_from([f"10.0.0.{n}" for n in range(8)]), tags)


@given(tag_maps, tag_maps)
def test_subtract_matches_its_definition(
    left: dict[str, frozenset[str]], right: dict[str, frozenset[str]]
) -> None:
    expected = {ip: tags - right.get(ip, frozenset()) for ip, tags in left.items()}
    assert subtract(left, right) == {ip: tags for ip, tags in expected.items() if tags}


@given(tag_maps)
def test_with_prefix_matches_its_definition(tag_map: dict[str, frozenset[str]]) -> None:
    expected = {
        ip: frozenset(tag for tag in tags if tag.startswith("illumio.")) for ip, tags in tag_map.items()
    }
    assert with_prefix(tag_map, "illumio.") == {ip: tags for ip, tags in expected.items() if tags}


tag_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("illumio.env.app role-_~ &<>\"'%+=/:#?\t\r\n"),
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=20,
)
entry_ips = st.one_of(
    ipv4, ipv6, st.sampled_from(["10.0.0.0/24", "10.0.0.1-10.0.0.9", "fe80::1%eth0", "a&b"])
)


@given(entry_ips, st.frozensets(tag_text, min_size=1, max_size=5))
def test_entry_size_estimate_matches_the_serialised_entry(ip: str, tags: frozenset[str]) -> None:
    try:
        expected: int | str = _serialized_entry_bytes(ip, tags)
    except ValueError as exc:
        expected = str(exc)
    try:
        actual: int | str = estimate_entry_bytes(ip, tags)
    except ValueError as exc:
        actual = str(exc)
    assert actual == expected
