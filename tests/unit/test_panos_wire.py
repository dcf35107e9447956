"""Building uid-messages and show commands, and classifying every PAN-OS response shape."""

import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from dagsync.core.device import DagDefinition, RegisteredIp
from dagsync.core.errors import PanosAuthError, PanosError
from dagsync.panos.messages import (
    build_show_registered_ip,
    build_uid_message,
    chunk_entries,
    split_sendable,
    vsys_address_groups,
)
from dagsync.panos.responses import (
    classify_entry,
    entry_messages_by_ip,
    normalise_ip,
    parse_address_groups,
    parse_keygen,
    parse_registered_ips,
    parse_response,
)
from emulators.panos import BILLION_LAUGHS

INVALID_CREDENTIAL = (
    b"<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>"
)


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314  (trusted: our own output)


def tags_of(entry: ET.Element) -> list[str]:
    return [member.text or "" for member in entry.iterfind("tag/member")]


# -- build_uid_message ----------------------------------------------------------------------------


def test_register_message_has_the_documented_shape() -> None:
    root = parse(build_uid_message("register", {"10.0.0.1": frozenset({"illumio.app.Web"})}))
    assert root.tag == "uid-message"
    assert root.findtext("version") == "2.0"
    assert root.findtext("type") == "update"
    entry = root.find("payload/register/entry")
    assert entry is not None
    assert entry.attrib == {"ip": "10.0.0.1", "persistent": "1"}
    assert tags_of(entry) == ["illumio.app.Web"]


def test_register_message_carries_a_single_verb() -> None:
    root = parse(build_uid_message("register", {"10.0.0.1": frozenset({"a"}), "10.0.0.2": frozenset({"b"})}))
    payload = root.find("payload")
    assert payload is not None
    assert [child.tag for child in payload] == ["register"]


def test_unregister_message_lists_tags_without_persistent_attribute() -> None:
    root = parse(build_uid_message("unregister", {"10.0.0.1": frozenset({"b", "a"})}))
    payload = root.find("payload")
    assert payload is not None
    assert [child.tag for child in payload] == ["unregister"]
    entry = root.find("payload/unregister/entry")
    assert entry is not None
    assert entry.attrib == {"ip": "10.0.0.1"}
    assert tags_of(entry) == ["a", "b"]


def test_register_can_be_non_persistent() -> None:
    root = parse(build_uid_message("register", {"::1": frozenset({"canary"})}, persistent=False))
    entry = root.find("payload/register/entry")
    assert entry is not None
    assert entry.get("persistent") == "0"


def test_entries_and_tags_are_sorted_so_equal_input_gives_equal_bytes() -> None:
    first = build_uid_message("register", {"10.0.0.2": frozenset({"z", "a"}), "10.0.0.1": frozenset({"m"})})
    second = build_uid_message("register", {"10.0.0.1": frozenset({"m"}), "10.0.0.2": frozenset({"a", "z"})})
    assert first == second
    entries = parse(first).findall("payload/register/entry")
    assert [entry.get("ip") for entry in entries] == ["10.0.0.1", "10.0.0.2"]
    assert tags_of(entries[1]) == ["a", "z"]


def test_markup_characters_in_tags_are_escaped_and_round_trip() -> None:
    tag = "illumio.app.R&D <core> \"x\" 'y'"
    text = build_uid_message("register", {"10.0.0.1": frozenset({tag})})
    assert "&amp;" in text
    assert "&lt;core&gt;" in text
    entry = parse(text).find("payload/register/entry")
    assert entry is not None
    assert tags_of(entry) == [tag]


def test_unicode_tags_stay_well_formed() -> None:
    tag = "illumio.loc.Zürich-東京-🚀"
    text = build_uid_message("register", {"2001:db8::1": frozenset({tag})})
    entry = parse(text).find("payload/register/entry")
    assert entry is not None
    assert entry.get("ip") == "2001:db8::1"
    assert tags_of(entry) == [tag]


def test_characters_xml_cannot_carry_are_refused() -> None:
    with pytest.raises(ValueError, match="XML cannot carry"):
        build_uid_message("register", {"10.0.0.1": frozenset({"bad\x00tag"})})


def test_entry_without_tags_is_refused() -> None:
    with pytest.raises(ValueError, match="no tags"):
        build_uid_message("unregister", {"10.0.0.1": frozenset()})


def test_empty_message_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        build_uid_message("register", {})


def test_unknown_verb_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        build_uid_message("clear", {"10.0.0.1": frozenset({"a"})})  # type: ignore[arg-type]


# -- chunk_entries --------------------------------------------------------------------------------


def many(count: int, tags: frozenset[str] = frozenset({"illumio.env.Prod"})) -> dict[str, frozenset[str]]:
    return {f"10.{n // 65536}.{n // 256 % 256}.{n % 256}": tags for n in range(count)}


def test_chunks_hold_at_most_max_entries() -> None:
    batches = list(chunk_entries(many(1201), 500))
    assert [len(batch) for batch in batches] == [500, 500, 201]


def test_chunks_cover_every_entry_once_in_sorted_order() -> None:
    entries = many(1201)
    batches = list(chunk_entries(entries, 500))
    flattened = [ip for batch in batches for ip in batch]
    assert flattened == sorted(entries)


def test_chunks_respect_the_byte_cap_on_the_encoded_form_body() -> None:
    heavy = frozenset(f"illumio.app.{'&' * 100}{n}" for n in range(32))
    max_bytes = 50_000
    batches = list(chunk_entries(many(40, heavy), 1000, max_bytes=max_bytes))
    assert len(batches) > 1
    for batch in batches:
        body = urlencode({"type": "user-id", "cmd": build_uid_message("register", batch)})
        assert len(body.encode()) <= max_bytes


def test_chunking_is_deterministic() -> None:
    entries = many(700)
    assert list(chunk_entries(entries, 300)) == list(chunk_entries(dict(reversed(entries.items())), 300))


def test_chunking_skips_entries_without_tags() -> None:
    batches = list(chunk_entries({"10.0.0.1": frozenset(), "10.0.0.2": frozenset({"a"})}, 10))
    assert batches == [{"10.0.0.2": frozenset({"a"})}]


def test_chunking_nothing_yields_no_batch() -> None:
    assert list(chunk_entries({}, 10)) == []


def test_an_entry_larger_than_the_byte_cap_is_refused() -> None:
    heavy = frozenset(f"illumio.{'x' * 110}{n}" for n in range(32))
    with pytest.raises(ValueError, match="exceeds"):
        list(chunk_entries({"10.0.0.1": heavy}, 10, max_bytes=2_000))


def test_byte_cap_must_stay_under_the_device_request_limit() -> None:
    with pytest.raises(ValueError, match="request limit"):
        list(chunk_entries(many(1), 10, max_bytes=6_000_000))


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(chunk_entries(many(1), 0))


# -- build_show_registered_ip ---------------------------------------------------------------------


def test_show_all_with_paging() -> None:
    root = parse(build_show_registered_ip(start=501, limit=500))
    query = root.find("object/registered-ip")
    assert root.tag == "show"
    assert query is not None
    assert query.find("all") is not None
    assert query.findtext("limit") == "500"
    assert query.findtext("start-point") == "501"


def test_show_by_ip_has_no_all_element() -> None:
    query = parse(build_show_registered_ip(ip="10.0.0.1")).find("object/registered-ip")
    assert query is not None
    assert query.findtext("ip") == "10.0.0.1"
    assert query.find("all") is None


def test_show_by_tag_escapes_the_tag_name() -> None:
    query = parse(build_show_registered_ip(tag="illumio.app.R&D")).find("object/registered-ip")
    assert query is not None
    entry = query.find("tag/entry")
    assert entry is not None
    assert entry.get("name") == "illumio.app.R&D"


def test_show_refuses_zero_start_point() -> None:
    with pytest.raises(ValueError, match="1-based"):
        build_show_registered_ip(start=0)


def test_show_refuses_a_limit_above_500() -> None:
    with pytest.raises(ValueError, match="limit"):
        build_show_registered_ip(limit=501)


# -- classify_entry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "tag illumio.app.Web already exists, ignore",
        "ip 10.0.0.9 does not exist, ignore unreg",
        "tag illumio.env.Prod does not exist, ignore unreg",
    ],
)
def test_duplicate_and_missing_entry_messages_are_done(message: str) -> None:
    assert classify_entry(message) == "done"


@pytest.mark.parametrize(
    "message",
    ["Failed to register 10.0.0.1: max registered-ip reached (1000)", "", "Delete mapping failed"],
)
def test_other_entry_messages_are_failures(message: str) -> None:
    assert classify_entry(message) == "failed"


# -- parse_response -------------------------------------------------------------------------------

UID_SUCCESS = (
    b'<response status="success"><result><uid-response><version>2.0</version>'
    b"<payload><register/></payload></uid-response></result></response>"
)


def uid_error(*entries: tuple[str, str], verb: str = "register") -> bytes:
    inner = "".join(f'<entry ip="{ip}" message="{message}"/>' for ip, message in entries)
    return (
        f'<response status="error"><msg><line><uid-response><version>2.0</version>'
        f"<payload><{verb}>{inner}</{verb}></payload></uid-response></line></msg></response>"
    ).encode()


def test_uid_success_has_no_entries() -> None:
    parsed = parse_response(UID_SUCCESS, 200)
    assert parsed.status == "success"
    assert parsed.entries == ()


def test_per_entry_failures_are_returned_not_raised() -> None:
    body = uid_error(
        ("10.0.0.1", "tag t already exists, ignore"),
        ("10.0.0.2", "Failed to register 10.0.0.2: max registered-ip reached (2)"),
    )
    parsed = parse_response(body, 200)
    assert [(e.verb, e.ip, e.outcome) for e in parsed.entries] == [
        ("register", "10.0.0.1", "done"),
        ("register", "10.0.0.2", "failed"),
    ]


def test_unregister_entries_carry_their_verb() -> None:
    parsed = parse_response(
        uid_error(("10.0.0.1", "ip 10.0.0.1 does not exist, ignore unreg"), verb="unregister"), 200
    )
    assert [(e.verb, e.outcome) for e in parsed.entries] == [("unregister", "done")]


def test_failed_entries_are_keyed_by_the_ip_as_sent() -> None:
    parsed = parse_response(
        uid_error(("2001:DB8:0::1", "bad"), ("10.0.0.1", "tag a already exists, ignore")), 200
    )
    sent = {"2001:db8::1": frozenset({"a"}), "10.0.0.1": frozenset({"a"})}
    assert entry_messages_by_ip(parsed.entries, sent) == {"2001:db8::1": "bad"}


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'<response status="error" code="17"><msg><line>bad target</line></msg></response>', "bad target"),
        (b'<response status="error" code="17"><msg>plain text</msg></response>', "plain text"),
        (b'<response status="error" code="17"><result><msg>in result</msg></result></response>', "in result"),
        (
            b'<response status="error" code="17"><msg><line><line>nested</line></line></msg></response>',
            "nested",
        ),
    ],
    ids=["msg-line", "msg-text", "result-msg", "nested-line"],
)
def test_generic_error_text_is_read_from_every_shape(body: bytes, text: str) -> None:
    with pytest.raises(PanosError, match=text) as caught:
        parse_response(body, 200)
    assert caught.value.code == "17"


def test_code_22_is_retryable() -> None:
    body = b'<response status="error" code="22"><msg><line>Session timed out</line></msg></response>'
    with pytest.raises(PanosError) as caught:
        parse_response(body, 200)
    assert caught.value.retryable is True


@pytest.mark.parametrize("code", ["400", "1", "6", "7", "12", "14", "15", "17", "18"])
def test_request_error_codes_are_not_retryable(code: str) -> None:
    body = f'<response status="error" code="{code}"><msg><line>no</line></msg></response>'.encode()
    with pytest.raises(PanosError) as caught:
        parse_response(body, 200)
    assert not isinstance(caught.value, PanosAuthError)
    assert (caught.value.code, caught.value.retryable) == (code, False)


@pytest.mark.parametrize("status", ["unauth", "error"])
def test_code_16_is_a_permission_error_that_no_new_key_cures(status: str) -> None:
    body = f'<response status="{status}" code="16"><msg><line>Unauthorized request</line></msg></response>'
    with pytest.raises(PanosAuthError, match="Unauthorized request") as caught:
        parse_response(body.encode(), 200)
    assert (caught.value.code, caught.value.key_expired, caught.value.retryable) == ("16", False, False)


def test_unauth_code_22_is_an_expired_key_and_not_retried_as_it_stands() -> None:
    body = b'<response status="unauth" code="22"><msg><line>Session timed out</line></msg></response>'
    with pytest.raises(PanosAuthError, match=r'status "unauth", code 22.*Session timed out') as caught:
        parse_response(body, 200)
    assert (caught.value.code, caught.value.key_expired, caught.value.retryable) == ("22", True, False)


def test_unauth_without_a_code_is_an_expired_key() -> None:
    with pytest.raises(PanosAuthError) as caught:
        parse_response(b'<response status="unauth"><msg>no</msg></response>', 200)
    assert caught.value.key_expired is True


def test_http_403_is_an_auth_error() -> None:
    with pytest.raises(PanosAuthError, match="Invalid Credential") as caught:
        parse_response(INVALID_CREDENTIAL, 403)
    assert caught.value.retryable is False


def test_code_403_in_a_200_is_an_auth_error() -> None:
    with pytest.raises(PanosAuthError):
        parse_response(INVALID_CREDENTIAL, 200)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_http_5xx_is_retryable_whatever_the_body(status: int) -> None:
    with pytest.raises(PanosError, match=str(status)) as caught:
        parse_response(b"<html><body>Bad Gateway</html>", status)
    assert caught.value.retryable is True


@pytest.mark.parametrize("status", ["failed", "unauth", ""])
def test_any_status_but_success_is_a_failure(status: str) -> None:
    body = f'<response status="{status}"><msg>no</msg></response>'.encode()
    with pytest.raises(PanosError):
        parse_response(body, 200)


def test_http_400_with_an_xml_error_is_not_retryable() -> None:
    body = b'<response status="error" code="400"><msg><line>Request too large</line></msg></response>'
    with pytest.raises(PanosError, match="Request too large") as caught:
        parse_response(body, 400)
    assert caught.value.retryable is False


def test_not_xml_is_a_non_retryable_error_naming_the_url_setting() -> None:
    with pytest.raises(PanosError, match=r"not XML.*PANOS_URL") as caught:
        parse_response(b"Service temporarily unavailable", 200)
    assert caught.value.retryable is False


def test_unexpected_root_element_is_an_error() -> None:
    with pytest.raises(PanosError, match="unexpected <html>"):
        parse_response(b"<html><body>login</body></html>", 200)


EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response status="success"><result><key>&xxe;</key></result></response>"""


def test_billion_laughs_is_refused_without_expansion() -> None:
    started = time.monotonic()
    with pytest.raises(PanosError, match="entities") as caught:
        parse_response(BILLION_LAUGHS, 200)
    assert caught.value.retryable is False
    assert time.monotonic() - started < 1.0


def test_external_entity_is_refused() -> None:
    with pytest.raises(PanosError, match="entities") as caught:
        parse_response(EXTERNAL_ENTITY, 200)
    assert caught.value.retryable is False


def test_entity_bomb_inside_a_5xx_is_still_never_expanded() -> None:
    with pytest.raises(PanosError) as caught:
        parse_response(BILLION_LAUGHS, 503)
    assert caught.value.retryable is True


# -- entries the client cannot send -----------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    ["2001:db8::1%x", "fe80::1%eth0", "10.0.0.1" * 40, "not-an-ip", "10.0.0.256", "10.0.0.1-2001:db8::1", ""],
    ids=["zoned", "zoned-link-local", "over-long", "garbage", "out-of-range", "mixed-range", "empty"],
)
def test_an_address_the_device_cannot_take_is_refused_with_a_reason(ip: str) -> None:
    sendable, refused = split_sendable({ip: frozenset({"illumio.a"}), "10.0.0.1": frozenset({"illumio.a"})})
    assert list(sendable) == ["10.0.0.1"]
    assert "not an address PAN-OS can register" in refused[ip]


@pytest.mark.parametrize(
    "ip", ["10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1", "10.0.0.0/24", "10.0.0.1-10.0.0.9"]
)
def test_addresses_networks_and_ranges_are_sendable(ip: str) -> None:
    assert split_sendable({ip: frozenset({"illumio.a"})}) == ({ip: frozenset({"illumio.a"})}, {})


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        (frozenset(), "no tags"),
        (frozenset(f"illumio.t{n}" for n in range(33)), "33 tags, more than the 32"),
        (frozenset({"illumio." + "x" * 120}), "128 characters, more than the 127"),
        (frozenset({"illumio.a\x01"}), "character XML cannot carry"),
        (frozenset({"  "}), "an empty tag"),
    ],
    ids=["no-tags", "too-many-tags", "long-tag", "control-character", "blank-tag"],
)
def test_an_entry_with_tags_the_device_cannot_take_is_refused_with_a_reason(
    tags: frozenset[str], reason: str
) -> None:
    sendable, refused = split_sendable({"10.0.0.1": tags})
    assert sendable == {}
    assert reason in refused["10.0.0.1"]


def test_a_refusal_never_quotes_the_entry() -> None:
    garbage = "<script>" + "y" * 500
    _, refused = split_sendable({garbage: frozenset({"illumio.a"})})
    assert "script" not in refused[garbage] and "yyy" not in refused[garbage]


def test_chunking_passes_unbuildable_entries_through_without_raising() -> None:
    entries = {"10.0.0.1": frozenset({"illumio.a\x01"}), "10.0.0.2": frozenset({"illumio.a"})}
    assert [list(batch) for batch in chunk_entries(entries, 10)] == [["10.0.0.1", "10.0.0.2"]]


# -- keygen and registered-ip pages ----------------------------------------------------------------


def test_keygen_key_is_read_whatever_the_attribute_quoting() -> None:
    key = "LUFRPT14MW5xOEo1R09KVlBZNnpnemh0VHRBOWl6TGM9"
    body = f"<response status = 'success'><result><key>{key}</key></result></response>".encode()
    assert parse_keygen(parse_response(body, 200)) == key


def test_keygen_success_without_a_key_is_an_error() -> None:
    with pytest.raises(PanosError, match="without a key"):
        parse_keygen(parse_response(b'<response status="success"><result/></response>', 200))


def test_registered_ip_page_reads_tags_and_flags() -> None:
    body = b"""<response status="success"><result>
      <entry ip="10.0.0.1" from_agent="0" persistent="1">
        <tag><member>a</member><member>b</member></tag></entry>
      <entry ip="10.0.0.2" from_agent="1" persistent="0"><tag><member>c</member></tag></entry>
      <count>2</count></result></response>"""
    page = parse_registered_ips(parse_response(body, 200))
    assert page.entries == {
        "10.0.0.1": RegisteredIp(tags=frozenset({"a", "b"}), persistent=True, from_agent=False),
        "10.0.0.2": RegisteredIp(tags=frozenset({"c"}), persistent=False, from_agent=True),
    }
    assert page.raw_count == 2


def test_registered_ip_page_tolerates_a_missing_count() -> None:
    body = b"""<response status="success"><result>
      <entry ip="10.0.0.1"><tag><member>a</member></tag></entry></result></response>"""
    page = parse_registered_ips(parse_response(body, 200))
    assert page.entries == {"10.0.0.1": RegisteredIp(tags=frozenset({"a"}))}


def test_registered_ip_page_tolerates_a_missing_result() -> None:
    page = parse_registered_ips(parse_response(b'<response status="success"/>', 200))
    assert (page.entries, page.raw_count) == ({}, 0)


def test_registered_ip_page_merges_an_ip_listed_twice() -> None:
    body = b"""<response status="success"><result>
      <entry ip="10.0.0.1"><tag><member>a</member></tag></entry>
      <entry ip="10.0.0.1"><tag><member>b</member></tag></entry></result></response>"""
    page = parse_registered_ips(parse_response(body, 200))
    assert page.entries == {"10.0.0.1": RegisteredIp(tags=frozenset({"a", "b"}))}
    assert page.raw_count == 2


def test_registered_ip_page_normalises_host_prefixes_and_ipv6() -> None:
    body = b"""<response status="success"><result>
      <entry ip="10.0.0.1/32"><tag><member>a</member></tag></entry>
      <entry ip="2001:DB8:0:0::1"><tag><member>b</member></tag></entry></result></response>"""
    assert set(parse_registered_ips(parse_response(body, 200)).entries) == {"10.0.0.1", "2001:db8::1"}


def test_pre_8_0_outfile_answer_is_a_clear_error() -> None:
    body = (
        b'<response status="success"><result><msg><line><outfile>/var/log/clioutput/regipdump'
        b"</outfile></line></msg></result></response>"
    )
    with pytest.raises(PanosError, match=r"outfile.*8\.0"):
        parse_registered_ips(parse_response(body, 200))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("2001:db8:0::1/128", "2001:db8::1"),
        ("x", "x"),
    ],
)
def test_normalise_ip(text: str, expected: str) -> None:
    assert normalise_ip(text) == expected


# -- address groups ---------------------------------------------------------------------------------


def groups_answer(*groups: str, wrapper: str = "address-group") -> bytes:
    inner = "".join(f"<{wrapper}>{group}</{wrapper}>" for group in groups)
    return (
        f'<response status="success"><result total-count="1" count="1">{inner}</result></response>'.encode()
    )


def test_dynamic_groups_are_read_with_their_filter_and_location() -> None:
    body = groups_answer(
        "<entry name='quarantine'><dynamic><filter>'illumio.env.Quarantine'</filter></dynamic>"
        "<description>isolated</description><tag><member>ops</member></tag></entry>"
        "<entry name='web-prod'><dynamic><filter>'illumio.app.Web' and 'illumio.env.Prod'</filter></dynamic></entry>"
    )
    assert parse_address_groups(parse_response(body, 200), "shared") == [
        DagDefinition("quarantine", "'illumio.env.Quarantine'", "shared"),
        DagDefinition("web-prod", "'illumio.app.Web' and 'illumio.env.Prod'", "shared"),
    ]


def test_static_groups_are_skipped() -> None:
    body = groups_answer("<entry name='servers'><static><member>srv1</member></static></entry>")
    assert parse_address_groups(parse_response(body, 200), "shared") == []


def test_an_empty_result_means_no_groups() -> None:
    body = b'<response status="success"><result/></response>'
    assert parse_address_groups(parse_response(body, 200), "vsys:vsys1") == []


def test_groups_of_several_device_groups_carry_each_ones_name_where_given() -> None:
    body = groups_answer(
        "<entry name='a' loc='dg-east'><dynamic><filter>'illumio.x'</filter></dynamic></entry>",
        "<entry name='b'><dynamic><filter>'illumio.y'</filter></dynamic></entry>",
    )
    assert parse_address_groups(parse_response(body, 200), "device-group") == [
        DagDefinition("a", "'illumio.x'", "device-group:dg-east"),
        DagDefinition("b", "'illumio.y'", "device-group"),
    ]


def test_entries_directly_under_the_result_are_read_too() -> None:
    body = (
        b'<response status="success"><result>'
        b"<entry name='a'><dynamic><filter>'illumio.x' or 'illumio.y'</filter></dynamic></entry>"
        b"</result></response>"
    )
    assert parse_address_groups(parse_response(body, 200), "shared") == [
        DagDefinition("a", "'illumio.x' or 'illumio.y'", "shared")
    ]


def test_a_filter_with_markup_characters_is_read_unescaped() -> None:
    body = groups_answer(
        "<entry name='a'><dynamic><filter>'illumio.app.R&amp;D' and ('x' or 'y')</filter></dynamic></entry>"
    )
    assert parse_address_groups(parse_response(body, 200), "shared")[0].filter == (
        "'illumio.app.R&D' and ('x' or 'y')"
    )


def test_vsys_xpath_names_the_vsys() -> None:
    assert vsys_address_groups("vsys2") == (
        "/config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='vsys2']/address-group"
    )


def test_a_vsys_name_that_could_break_the_xpath_is_refused() -> None:
    with pytest.raises(ValueError, match="xpath"):
        vsys_address_groups("vsys1']/../../entry[@name='x")
