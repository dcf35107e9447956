"""The PAN-OS emulator's own behaviour: DAG filters, reboot and time, table rules, request handling.

Every request goes over loopback HTTP with plain requests calls, as a client's would.
"""

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import requests

from emulators.panos import INVALID_CREDENTIAL, PanosEmulator, compile_filter
from tests.support.panos import (
    KEY,
    SHOW_ALL,
    Api,
    failed_messages,
    listed_ips,
    parse,
    serve,
    uid_message,
)


@pytest.fixture
def device() -> PanosEmulator:
    return PanosEmulator(api_keys=(KEY,), users={"admin": "pw"})


@pytest.fixture
def api(device: PanosEmulator) -> Iterator[Api]:
    with serve(device) as served:
        yield served


# -- DAG filter evaluator --------------------------------------------------------------------------


@pytest.fixture
def tagged() -> PanosEmulator:
    emulator = PanosEmulator()
    emulator.register_foreign("10.0.0.10", ["illumio.env.Development", "illumio.app.Ordering"])
    emulator.register_foreign("10.0.0.2", ["illumio.env.Development", "illumio.app.Billing"])
    emulator.register_foreign("10.0.0.3", ["illumio.env.Production", "illumio.app.Ordering"])
    emulator.register_foreign("10.0.0.4", ["illumio.loc.New York"])
    return emulator


def test_single_tag_filter_matches_ips_carrying_it(tagged: PanosEmulator) -> None:
    assert tagged.dag_members("'illumio.app.Ordering'") == ["10.0.0.3", "10.0.0.10"]


def test_and_requires_both_tags(tagged: PanosEmulator) -> None:
    assert tagged.dag_members("'illumio.env.Development' and 'illumio.app.Ordering'") == ["10.0.0.10"]


def test_or_accepts_either_tag(tagged: PanosEmulator) -> None:
    assert tagged.dag_members("'illumio.app.Billing' or 'illumio.env.Production'") == ["10.0.0.2", "10.0.0.3"]


def test_parentheses_group_alternatives(tagged: PanosEmulator) -> None:
    members = tagged.dag_members(
        "'illumio.app.Ordering' and ('illumio.env.Development' or 'illumio.env.Production')"
    )
    assert members == ["10.0.0.3", "10.0.0.10"]


def test_and_binds_tighter_than_or() -> None:
    predicate = compile_filter("'a' or 'b' and 'c'")
    assert predicate(frozenset({"a"})) is True
    assert predicate(frozenset({"b"})) is False


def test_quoted_tag_may_contain_spaces(tagged: PanosEmulator) -> None:
    assert tagged.dag_members("'illumio.loc.New York'") == ["10.0.0.4"]


def test_operators_are_case_insensitive(tagged: PanosEmulator) -> None:
    assert tagged.dag_members("'illumio.env.Development' AND 'illumio.app.Billing'") == ["10.0.0.2"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("illumio.app.Ordering", "single quotes"),
        ("not 'a'", "not"),
        ("('a' or 'b'", "unbalanced"),
        ("'a' and", "expected a quoted tag"),
        ("'a' 'b'", "unexpected"),
        ("   ", "empty"),
        ("'" + "a" * 2050 + "'", "2047"),
    ],
    ids=["unquoted", "not", "unbalanced", "dangling-operator", "missing-operator", "empty", "too-long"],
)
def test_invalid_filters_are_rejected(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        compile_filter(text)


def test_dag_membership_follows_unregistration(tagged: PanosEmulator) -> None:
    with serve(tagged) as api:
        api.unregister({"10.0.0.3": ["illumio.app.Ordering"]})
    assert tagged.dag_members("'illumio.app.Ordering'") == ["10.0.0.10"]


# -- reboot and time -------------------------------------------------------------------------------


def test_reboot_drops_non_persistent_entries_and_keeps_persistent_ones(
    device: PanosEmulator, api: Api
) -> None:
    api.register({"10.0.0.1": ["illumio.a"]}, persistent="1")
    api.register({"10.0.0.2": ["illumio.a"]}, persistent="0")
    device.reboot()
    assert device.table() == {"10.0.0.1": frozenset({"illumio.a"})}


def test_reboot_that_loses_the_persistent_store_drops_every_entry(device: PanosEmulator, api: Api) -> None:
    api.register({"10.0.0.1": ["illumio.a"]}, persistent="1")
    api.register({"10.0.0.2": ["illumio.a"]}, persistent="0")
    device.reboot(keep_persistent=False)
    assert device.table() == {}


def test_persistent_defaults_to_one(device: PanosEmulator, api: Api) -> None:
    api.register({"10.0.0.1": ["illumio.a"]}, persistent=None)
    device.reboot()
    assert "10.0.0.1" in device.table()


def test_rebooting_a_child_firewall_leaves_panorama_alone() -> None:
    emulator = PanosEmulator("panorama", firewalls=("FW1",))
    emulator.register_foreign("10.0.0.1", ["a"], persistent=False)
    emulator.register_foreign("10.0.0.1", ["a"], serial="FW1", persistent=False)
    emulator.reboot(serial="FW1")
    assert (emulator.table(), emulator.table(serial="FW1")) == ({"10.0.0.1": frozenset({"a"})}, {})


def test_tag_with_a_timeout_expires_on_the_virtual_clock(device: PanosEmulator, api: Api) -> None:
    api.register({"10.0.0.1": ["illumio.a"]}, timeout="60")
    device.advance(59)
    assert device.table() == {"10.0.0.1": frozenset({"illumio.a"})}
    device.advance(1)
    assert device.table() == {}


def test_timeout_zero_never_expires(device: PanosEmulator, api: Api) -> None:
    api.register({"10.0.0.1": ["illumio.a"]}, timeout="0")
    device.advance(10_000_000)
    assert "10.0.0.1" in device.table()


def test_timeout_above_thirty_days_is_rejected_per_entry(api: Api) -> None:
    root = api.register({"10.0.0.1": ["illumio.a"]}, timeout="2592001")
    assert root.get("status") == "error"
    assert "timeout" in failed_messages(root)["10.0.0.1"]


# -- table rules -----------------------------------------------------------------------------------


def test_success_response_has_an_empty_element_per_verb(api: Api) -> None:
    root = api.register({"10.0.0.1": ["illumio.a"]})
    assert root.get("status") == "success"
    assert root.findtext("result/uid-response/version") == "2.0"
    assert root.find("result/uid-response/payload/register") is not None


def test_a_33rd_tag_is_rejected_and_other_entries_still_apply(device: PanosEmulator, api: Api) -> None:
    device.register_foreign("10.0.0.1", [f"other.{n}" for n in range(32)])
    root = api.register({"10.0.0.1": ["illumio.a"], "10.0.0.2": ["illumio.a"]})
    assert list(failed_messages(root)) == ["10.0.0.1"]
    assert "32 tags" in failed_messages(root)["10.0.0.1"]
    assert device.table()["10.0.0.2"] == frozenset({"illumio.a"})


def test_a_tag_over_127_characters_rejects_its_entry(device: PanosEmulator, api: Api) -> None:
    root = api.register({"10.0.0.1": ["x" * 128, "illumio.a"]})
    assert "127" in failed_messages(root)["10.0.0.1"]
    assert device.table() == {}


def test_a_127_character_tag_is_accepted(device: PanosEmulator, api: Api) -> None:
    api.register({"10.0.0.1": ["x" * 127]})
    assert device.table() == {"10.0.0.1": frozenset({"x" * 127})}


def test_capacity_counts_ips_across_vsys() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), vsys=("vsys1", "vsys2"), capacity=1)
    emulator.register_foreign("10.0.0.1", ["a"], vsys="vsys2")
    with serve(emulator) as api:
        root = api.register({"10.0.0.2": ["a"]})
    assert "max registered-ip for the platform reached" in failed_messages(root)["10.0.0.2"]


def test_a_full_table_still_accepts_tags_on_known_ips(device: PanosEmulator, api: Api) -> None:
    device.register_foreign("10.0.0.1", ["a"])
    device.fill_table()
    assert api.register({"10.0.0.1": ["b"]}).get("status") == "success"


def test_ranges_need_the_ten_oh_flag(api: Api) -> None:
    assert list(failed_messages(api.register({"10.0.0.0/24": ["a"]}))) == ["10.0.0.0/24"]
    modern = PanosEmulator(api_keys=(KEY,), allow_ranges=True)
    with serve(modern) as modern_api:
        modern_api.register({"10.0.0.0/24": ["a"], "10.0.1.1-10.0.1.9": ["a"]})
    assert set(modern.table()) == {"10.0.0.0/24", "10.0.1.1-10.0.1.9"}


def test_duplicate_register_is_an_entry_error_in_error_entry_mode(api: Api) -> None:
    api.register({"10.0.0.1": ["a"]})
    assert failed_messages(api.register({"10.0.0.1": ["a"]})) == {"10.0.0.1": "tag a already exists, ignore"}


def test_duplicate_register_is_success_in_silent_mode() -> None:
    with serve(PanosEmulator(api_keys=(KEY,), duplicate_mode="silent")) as api:
        api.register({"10.0.0.1": ["a"]})
        assert api.register({"10.0.0.1": ["a"]}).get("status") == "success"


def test_unregistering_the_last_tag_drops_the_ip(device: PanosEmulator, api: Api) -> None:
    api.register({"10.0.0.1": ["a"]})
    api.unregister({"10.0.0.1": ["a"]})
    assert device.table() == {}


def test_unregister_of_a_missing_ip_is_an_entry_error(api: Api) -> None:
    root = api.unregister({"10.0.0.1": ["a"]})
    assert failed_messages(root) == {"10.0.0.1": "ip 10.0.0.1 does not exist, ignore unreg"}


def test_tagless_unregister_removes_every_tag_including_foreign_ones(device: PanosEmulator, api: Api) -> None:
    device.register_foreign("10.0.0.1", ["other.tool", "illumio.a"])
    api.unregister({"10.0.0.1": []})
    assert device.table() == {}


def test_clear_wipes_the_table_and_is_logged(device: PanosEmulator, api: Api) -> None:
    device.register_foreign("10.0.0.1", ["other.tool"])
    cmd = (
        "<uid-message><type>update</type><payload><clear><registered-ip><all/></registered-ip>"
        "</clear></payload></uid-message>"
    )
    api.post({"type": "user-id", "cmd": cmd})
    assert (device.table(), device.clear_sent) == ({}, True)


def test_vsys_tables_are_separate() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), vsys=("vsys1", "vsys2"))
    with serve(emulator) as api:
        api.register({"10.0.0.1": ["a"]}, vsys="vsys2")
    assert (emulator.table(vsys="vsys1"), emulator.table(vsys="vsys2")) == (
        {},
        {"10.0.0.1": frozenset({"a"})},
    )


def test_unknown_vsys_is_an_error(api: Api) -> None:
    root = api.register({"10.0.0.1": ["a"]}, vsys="vsys9")
    assert (root.get("status"), root.get("code")) == ("error", "400")


def test_malformed_uid_message_is_code_18(api: Api) -> None:
    assert parse(api.post({"type": "user-id", "cmd": "<uid-message><payload>"})).get("code") == "18"


def test_uid_message_without_type_update_is_code_18(api: Api) -> None:
    root = parse(api.post({"type": "user-id", "cmd": "<uid-message><payload/></uid-message>"}))
    assert root.get("code") == "18"


def test_the_log_counts_entries_per_verb(device: PanosEmulator, api: Api) -> None:
    api.register({"10.0.0.1": ["a"], "10.0.0.2": ["a"]})
    assert device.calls("user-id", verb="register")[0].uid == {"register": 2}


def test_the_log_adds_up_sections_of_the_same_verb(device: PanosEmulator, api: Api) -> None:
    first = ET.fromstring(uid_message("register", {"10.0.0.1": ["a"]}))  # noqa: S314 - built here
    second = ET.fromstring(uid_message("register", {"10.0.0.2": ["b"]}))  # noqa: S314 - built here
    payload, extra = first.find("payload"), second.find("payload/register")
    assert payload is not None and extra is not None
    payload.append(extra)
    api.post({"type": "user-id", "cmd": ET.tostring(first, encoding="unicode")})
    logged = device.calls("user-id")[0]
    assert (logged.uid, logged.uid_ips) == ({"register": 2}, {"register": ("10.0.0.1", "10.0.0.2")})


# -- show registered-ip ----------------------------------------------------------------------------


def test_listing_is_in_device_order_not_sorted(device: PanosEmulator, api: Api) -> None:
    for ip in ["2001:db8::1", "10.0.0.10", "10.0.0.2", "9.0.0.1"]:
        api.register({ip: ["a"]})
    assert listed_ips(api.show("<all/>")) == ["2001:db8::1", "10.0.0.10", "10.0.0.2", "9.0.0.1"]


def test_an_ip_that_lost_its_last_tag_comes_back_at_the_end(api: Api) -> None:
    api.register({"10.0.0.1": ["a"], "10.0.0.2": ["a"]})
    api.unregister({"10.0.0.1": ["a"]})
    api.register({"10.0.0.1": ["a"]})
    assert listed_ips(api.show("<all/>")) == ["10.0.0.2", "10.0.0.1"]


def test_tags_are_listed_in_registration_order(api: Api) -> None:
    api.register({"10.0.0.1": ["z", "a"]})
    api.register({"10.0.0.1": ["m"]})
    entry = api.show("<all/>").find("result/entry")
    assert entry is not None
    assert [member.text for member in entry.iterfind("tag/member")] == ["z", "a", "m"]


def test_pages_in_device_order_cover_the_table_exactly_once(device: PanosEmulator, api: Api) -> None:
    ips = [f"10.0.{n % 7}.{n}" for n in range(1, 251)]
    api.register({ip: ["a"] for ip in reversed(ips)})
    pages = [
        listed_ips(api.show(f"<limit>100</limit><start-point>{start}</start-point>"))
        for start in (1, 101, 201)
    ]
    assert [len(page) for page in pages] == [100, 100, 50]
    assert [ip for page in pages for ip in page] == list(reversed(ips))


def test_limit_is_capped_at_500(device: PanosEmulator, api: Api) -> None:
    for n in range(600):
        device.register_foreign(f"10.0.{n // 256}.{n % 256}", ["a"])
    root = api.show("<limit>1000</limit><all/>")
    assert (len(listed_ips(root)), root.findtext("result/count")) == (500, "500")


def test_start_point_is_one_based(device: PanosEmulator, api: Api) -> None:
    for n in range(1, 6):
        device.register_foreign(f"10.0.0.{n}", ["a"])
    assert listed_ips(api.show("<start-point>2</start-point><limit>2</limit>")) == ["10.0.0.2", "10.0.0.3"]


def test_entries_carry_flags_then_tags_and_never_timeouts(api: Api) -> None:
    api.register({"10.0.0.1": ["a"]}, timeout="60", persistent="0")
    entry = api.show("<all/>").find("result/entry")
    assert entry is not None
    assert entry.attrib == {"ip": "10.0.0.1", "from_agent": "0", "persistent": "0"}
    assert [m.attrib for m in entry.iterfind("tag/member")] == [{}]


def test_empty_listing_has_count_zero(api: Api) -> None:
    root = api.show("<all/>")
    assert (listed_ips(root), root.findtext("result/count")) == ([], "0")


def test_tag_filter_lists_only_carriers(device: PanosEmulator, api: Api) -> None:
    device.register_foreign("10.0.0.1", ["a"])
    device.register_foreign("10.0.0.2", ["b"])
    assert listed_ips(api.show('<tag><entry name="b"/></tag>')) == ["10.0.0.2"]


def test_ip_filter_matches_the_canonical_address(device: PanosEmulator, api: Api) -> None:
    device.register_foreign("2001:db8::1", ["a"])
    assert listed_ips(api.show("<ip>2001:DB8:0::1</ip>")) == ["2001:db8::1"]


def test_legacy_device_answers_with_an_outfile_above_500() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), legacy_outfile=True)
    for n in range(501):
        emulator.register_foreign(f"10.0.{n // 256}.{n % 256}", ["a"])
    with serve(emulator) as api:
        assert api.show("<all/>").findtext("result/msg/line/outfile") == "/var/log/clioutput/regipdump"


# -- authentication --------------------------------------------------------------------------------


def test_bad_key_gets_403_with_the_exact_body(api: Api) -> None:
    response = api.post({"type": "op", "cmd": SHOW_ALL}, key="wrong")
    assert (response.status_code, response.content) == (403, INVALID_CREDENTIAL)


def test_key_in_the_query_string_is_accepted_and_recorded(device: PanosEmulator, api: Api) -> None:
    cmd = uid_message("register", {"10.0.0.1": ["a"]})
    api.post({"type": "user-id", "cmd": cmd}, key=None, params={"key": KEY})
    assert device.requests[0].key_carrier == "query"
    assert "10.0.0.1" in device.table()


def test_key_in_the_form_body_is_accepted_and_recorded(device: PanosEmulator, api: Api) -> None:
    api.post({"type": "user-id", "key": KEY, "cmd": uid_message("register", {"10.0.0.1": ["a"]})}, key=None)
    assert (device.requests[0].key_carrier, device.requests[0].status) == ("body", 200)


def test_basic_auth_is_accepted(device: PanosEmulator, api: Api) -> None:
    api.post(
        {"type": "user-id", "cmd": uid_message("register", {"10.0.0.1": ["a"]})},
        key=None,
        auth=("admin", "pw"),
    )
    assert (device.requests[0].key_carrier, "10.0.0.1" in device.table()) == ("basic", True)


def test_keygen_returns_a_working_key(api: Api) -> None:
    key = parse(api.post({"type": "keygen", "user": "admin", "password": "pw"}, key=None)).findtext(
        "result/key"
    )
    assert key is not None
    assert api.post({"type": "user-id", "cmd": uid_message("register", {"10.0.0.1": ["a"]})}, key=key).ok


def test_keygen_with_a_wrong_password_is_403(api: Api) -> None:
    response = api.post({"type": "keygen", "user": "admin", "password": "nope"}, key=None)
    assert (response.status_code, response.content) == (403, INVALID_CREDENTIAL)


def test_keygen_rotation_revokes_the_previous_key() -> None:
    emulator = PanosEmulator(users={"admin": "pw"}, keygen_rotates=True, api_keys=())
    keygen = {"type": "keygen", "user": "admin", "password": "pw"}
    with serve(emulator) as api:
        first = parse(api.post(keygen, key=None)).findtext("result/key") or ""
        second = parse(api.post(keygen, key=None)).findtext("result/key") or ""
        assert api.post({"type": "op", "cmd": SHOW_ALL}, key=first).status_code == 403
        assert api.post({"type": "op", "cmd": SHOW_ALL}, key=second).status_code == 200


def test_keys_are_revoked_after_n_calls(device: PanosEmulator, api: Api) -> None:
    device.revoke_keys_after(2)
    statuses = [api.post({"type": "op", "cmd": SHOW_ALL}).status_code for _ in range(3)]
    assert statuses == [200, 200, 403]


# -- request handling ------------------------------------------------------------------------------


def test_query_and_body_parameters_are_merged(device: PanosEmulator, api: Api) -> None:
    api.post({"cmd": uid_message("register", {"10.0.0.1": ["a"]})}, params={"type": "user-id"})
    assert "10.0.0.1" in device.table()


def test_multipart_file_upload_is_the_cmd(device: PanosEmulator, api: Api) -> None:
    upload = {"file": ("uid.xml", uid_message("register", {"10.0.0.1": ["a"]}), "text/xml")}
    api.post(params={"type": "user-id"}, files=upload)
    assert "10.0.0.1" in device.table()


def test_get_with_query_parameters_works(api: Api) -> None:
    response = api.session.get(
        api.url, params={"type": "op", "cmd": SHOW_ALL}, headers={"X-PAN-KEY": KEY}, timeout=10
    )
    assert parse(response).get("status") == "success"


def test_requests_above_the_size_limit_get_400() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), max_request_bytes=1_000)
    with serve(emulator) as api:
        response = api.user_id("register", {f"10.0.0.{n}": ["a"] for n in range(50)})
    assert response.status_code == 400
    assert emulator.table() == {}


def test_target_on_a_firewall_is_an_error(api: Api) -> None:
    assert api.register({"10.0.0.1": ["a"]}, target="FW1").get("status") == "error"


def test_unknown_target_serial_is_code_17_naming_it() -> None:
    with serve(PanosEmulator("panorama", api_keys=(KEY,))) as api:
        root = api.register({"10.0.0.1": ["a"]}, target="FW9")
    assert (root.get("code"), "FW9" in (root.findtext("msg/line") or "")) == ("17", True)


def test_faults_for_one_type_skip_other_requests(device: PanosEmulator, api: Api) -> None:
    device.fail_next(1, type="user-id")
    assert api.post({"type": "op", "cmd": SHOW_ALL}).status_code == 200
    assert api.user_id("register", {"10.0.0.1": ["a"]}).status_code == 503


def test_reset_fault_answers_with_a_dropped_connection(device: PanosEmulator, api: Api) -> None:
    device.reset_next(1)
    with pytest.raises(requests.ConnectionError):
        api.post({"type": "op", "cmd": SHOW_ALL})


def test_reset_after_apply_keeps_the_change(device: PanosEmulator, api: Api) -> None:
    device.reset_next(1, after_apply=True)
    with pytest.raises(requests.ConnectionError):
        api.user_id("register", {"10.0.0.1": ["a"]})
    assert "10.0.0.1" in device.table()


def test_keys_in_query_and_body_are_both_recorded(device: PanosEmulator, api: Api) -> None:
    api.post({"type": "op", "key": KEY, "cmd": SHOW_ALL}, key=None, params={"key": KEY})
    assert device.requests[0].key_carriers == ("query", "body")
