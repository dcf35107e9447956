"""Fast paths (mapping, diff, request sizing) give exactly what the plain definitions give."""

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from dagsync.core.diff import subtract, with_prefix
from dagsync.core.mapping import AddressReader, OddAddress
from dagsync.panos.messages import _serialized_entry_bytes, estimate_entry_bytes

ODD = "odd"
EXCLUDE = (ipaddress.ip_network("172.17.0.0/16"), ipaddress.ip_network("fd00::/8"))
WIDE_EXCLUDE = (ipaddress.ip_network("64.0.0.0/2"), ipaddress.ip_network("2000::/3"))


def reference_read(address: str, *, include_ipv6: bool, exclude=()) -> str | None:
    """docs/mapping.md#addresses spelled out with ipaddress alone: the IP, None (dropped
    quietly) or ODD (dropped with a warning)."""
    text = address.strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return ODD
    if len(text) > 45 or "%" in text or (ip.version == 6 and ip.ipv4_mapped is not None):
        return ODD
    quiet = ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast
    if quiet or (ip.version == 6 and not include_ipv6):
        return None
    if any(ip in network for network in exclude if network.version == ip.version):
        return None
    return ip.compressed


def read(address: str, *, include_ipv6: bool, exclude=()) -> str | None:
    result = AddressReader(include_ipv6=include_ipv6, exclude=exclude).read(address)
    return ODD if isinstance(result, OddAddress) else result


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
        "2001:db8::1%x",
        "10.0.0.1%eth0",
        "::ffff:0:10.0.0.1",
        "::10.0.0.1",
        "64:ff9b::10.0.0.1",
        "172.17.0.1",
        "172.16.255.255",
        "172.18.0.0",
        "fd00::1",
        "fcff::1",
        "1" * 46,
        "2001:db8:0:1:1:1:1:1",
        "1:0:0:1:0:0:0:1",
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
near_exclusions = st.one_of(
    st.ip_addresses(network="172.16.0.0/12").map(str), st.ip_addresses(network="fc00::/7").map(str)
)
addresses = st.tuples(
    padding, st.one_of(dotted, ipv4, ipv6, near_exclusions, special, st.text(max_size=12)), padding
).map("".join)


@given(addresses, st.booleans(), st.sampled_from([(), EXCLUDE, WIDE_EXCLUDE]))
def test_address_reader_matches_the_ipaddress_definition(address: str, include_ipv6: bool, exclude) -> None:
    expected = reference_read(address, include_ipv6=include_ipv6, exclude=exclude)
    assert read(address, include_ipv6=include_ipv6, exclude=exclude) == expected


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
