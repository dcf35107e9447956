"""The PAN-OS emulator's own behaviour: DAG filters, reboot and time, table rules, request handling."""

import base64
import threading
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from emulators.panos import INVALID_CREDENTIAL, PanosEmulator, compile_filter
from emulators.server import Request, Response

KEY = "test-api-key"


def call(
    emulator: PanosEmulator,
    params: dict[str, str],
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    body: bytes | None = None,
) -> Response:
    """One request straight into handle(); the key goes in X-PAN-KEY unless headers say otherwise."""
    return emulator.handle(
        Request(
            method=method,
            path="/api/",
            query={name: [value] for name, value in (query or {}).items()},
            headers={"x-pan-key": KEY} if headers is None else headers,
            body=urlencode(params).encode() if body is None else body,
        )
    )


def xml(response: Response) -> ET.Element:
    assert isinstance(response.body, bytes)
    return ET.fromstring(response.body)  # noqa: S314  (our emulator's own output)


def uid(
    verb: str, entries: dict[str, list[str]], *, persistent: str | None = "1", timeout: str | None = None
) -> str:
    root = ET.Element("uid-message")
    ET.SubElement(root, "type").text = "update"
    section = ET.SubElement(ET.SubElement(root, "payload"), verb)
    for ip, tags in entries.items():
        entry = ET.SubElement(section, "entry", {"ip": ip})
        if persistent is not None and verb == "register":
            entry.set("persistent", persistent)
        tag = ET.SubElement(entry, "tag")
        for name in tags:
            member = ET.SubElement(tag, "member", {"timeout": timeout} if timeout else {})
            member.text = name
    return ET.tostring(root, encoding="unicode")


def register(emulator: PanosEmulator, entries: dict[str, list[str]], **kwargs: str | None) -> ET.Element:
    return xml(call(emulator, {"type": "user-id", "cmd": uid("register", entries, **kwargs)}))


def show(emulator: PanosEmulator, inner: str) -> ET.Element:
    cmd = f"<show><object><registered-ip>{inner}</registered-ip></object></show>"
    return xml(call(emulator, {"type": "op", "cmd": cmd}))


def listed_ips(root: ET.Element) -> list[str]:
    return [entry.get("ip") or "" for entry in root.iterfind("result/entry")]


def failed_messages(root: ET.Element) -> dict[str, str]:
    return {
        e.get("ip") or "": e.get("message") or "" for e in root.iterfind(".//uid-response/payload/*/entry")
    }


@pytest.fixture
def device() -> PanosEmulator:
    return PanosEmulator(api_keys=(KEY,), users={"admin": "pw"})


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
    call(tagged, {"type": "user-id", "cmd": uid("unregister", {"10.0.0.3": ["illumio.app.Ordering"]})})
    assert tagged.dag_members("'illumio.app.Ordering'") == ["10.0.0.10"]


def test_show_dynamic_address_group_lists_members() -> None:
    emulator = PanosEmulator(api_keys=(KEY,))
    emulator.register_foreign("10.0.0.1", ["illumio.app.Web"])
    emulator.add_dag("web", "'illumio.app.Web'")
    cmd = "<show><object><dynamic-address-group><all/></dynamic-address-group></object></show>"
    root = xml(call(emulator, {"type": "op", "cmd": cmd}))
    entry = root.find("result/dyn-addr-grp/entry")
    assert entry is not None
    assert (entry.findtext("group-name"), entry.findtext("vsys")) == ("web", "vsys1")
    assert [m.get("name") for m in entry.iterfind("member-list/entry")] == ["10.0.0.1"]


# -- reboot and time -------------------------------------------------------------------------------


def test_reboot_drops_non_persistent_entries_and_keeps_persistent_ones(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["illumio.a"]}, persistent="1")
    register(device, {"10.0.0.2": ["illumio.a"]}, persistent="0")
    device.reboot()
    assert device.table() == {"10.0.0.1": frozenset({"illumio.a"})}


def test_reboot_that_loses_the_persistent_store_drops_every_entry(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["illumio.a"]}, persistent="1")
    register(device, {"10.0.0.2": ["illumio.a"]}, persistent="0")
    device.reboot(keep_persistent=False)
    assert device.table() == {}


def test_persistent_defaults_to_one(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["illumio.a"]}, persistent=None)
    device.reboot()
    assert "10.0.0.1" in device.table()


def test_rebooting_a_child_firewall_leaves_panorama_alone() -> None:
    emulator = PanosEmulator("panorama", firewalls=("FW1",))
    emulator.register_foreign("10.0.0.1", ["a"], persistent=False)
    emulator.register_foreign("10.0.0.1", ["a"], serial="FW1", persistent=False)
    emulator.reboot(serial="FW1")
    assert (emulator.table(), emulator.table(serial="FW1")) == ({"10.0.0.1": frozenset({"a"})}, {})


def test_tag_with_a_timeout_expires_on_the_virtual_clock(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["illumio.a"]}, timeout="60")
    device.advance(59)
    assert device.table() == {"10.0.0.1": frozenset({"illumio.a"})}
    device.advance(1)
    assert device.table() == {}


def test_timeout_zero_never_expires(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["illumio.a"]}, timeout="0")
    device.advance(10_000_000)
    assert "10.0.0.1" in device.table()


def test_timeout_above_thirty_days_is_rejected_per_entry(device: PanosEmulator) -> None:
    root = register(device, {"10.0.0.1": ["illumio.a"]}, timeout="2592001")
    assert root.get("status") == "error"
    assert "timeout" in failed_messages(root)["10.0.0.1"]


# -- table rules -----------------------------------------------------------------------------------


def test_success_response_has_an_empty_element_per_verb(device: PanosEmulator) -> None:
    root = register(device, {"10.0.0.1": ["illumio.a"]})
    assert root.get("status") == "success"
    assert root.findtext("result/uid-response/version") == "2.0"
    assert root.find("result/uid-response/payload/register") is not None


def test_a_33rd_tag_is_rejected_and_other_entries_still_apply(device: PanosEmulator) -> None:
    device.register_foreign("10.0.0.1", [f"other.{n}" for n in range(32)])
    root = register(device, {"10.0.0.1": ["illumio.a"], "10.0.0.2": ["illumio.a"]})
    assert list(failed_messages(root)) == ["10.0.0.1"]
    assert "32 tags" in failed_messages(root)["10.0.0.1"]
    assert device.table()["10.0.0.2"] == frozenset({"illumio.a"})


def test_a_tag_over_127_characters_rejects_its_entry(device: PanosEmulator) -> None:
    root = register(device, {"10.0.0.1": ["x" * 128, "illumio.a"]})
    assert "127" in failed_messages(root)["10.0.0.1"]
    assert device.table() == {}


def test_a_127_character_tag_is_accepted(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["x" * 127]})
    assert device.table() == {"10.0.0.1": frozenset({"x" * 127})}


def test_capacity_counts_ips_across_vsys() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), vsys=("vsys1", "vsys2"), capacity=1)
    emulator.register_foreign("10.0.0.1", ["a"], vsys="vsys2")
    root = register(emulator, {"10.0.0.2": ["a"]})
    assert "max registered-ip reached" in failed_messages(root)["10.0.0.2"]


def test_a_full_table_still_accepts_tags_on_known_ips(device: PanosEmulator) -> None:
    device.register_foreign("10.0.0.1", ["a"])
    device.fill_table()
    root = register(device, {"10.0.0.1": ["b"]})
    assert root.get("status") == "success"


def test_invalid_ip_is_rejected_per_entry(device: PanosEmulator) -> None:
    root = register(device, {"10.0.0.300": ["a"], "10.0.0.1": ["a"]})
    assert list(failed_messages(root)) == ["10.0.0.300"]


def test_ranges_need_the_ten_oh_flag(device: PanosEmulator) -> None:
    assert list(failed_messages(register(device, {"10.0.0.0/24": ["a"]}))) == ["10.0.0.0/24"]
    modern = PanosEmulator(api_keys=(KEY,), allow_ranges=True)
    register(modern, {"10.0.0.0/24": ["a"], "10.0.1.1-10.0.1.9": ["a"]})
    assert set(modern.table()) == {"10.0.0.0/24", "10.0.1.1-10.0.1.9"}


def test_duplicate_register_is_an_entry_error_in_error_entry_mode(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["a"]})
    root = register(device, {"10.0.0.1": ["a"]})
    assert failed_messages(root) == {"10.0.0.1": "tag a already exists, ignore"}


def test_duplicate_register_is_success_in_silent_mode() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), duplicate_mode="silent")
    register(emulator, {"10.0.0.1": ["a"]})
    assert register(emulator, {"10.0.0.1": ["a"]}).get("status") == "success"


def test_unregistering_the_last_tag_drops_the_ip(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["a"]})
    call(device, {"type": "user-id", "cmd": uid("unregister", {"10.0.0.1": ["a"]})})
    assert device.table() == {}


def test_unregister_of_a_missing_ip_is_an_entry_error(device: PanosEmulator) -> None:
    root = xml(call(device, {"type": "user-id", "cmd": uid("unregister", {"10.0.0.1": ["a"]})}))
    assert failed_messages(root) == {"10.0.0.1": "ip 10.0.0.1 does not exist, ignore unreg"}


def test_tagless_unregister_removes_every_tag_including_foreign_ones(device: PanosEmulator) -> None:
    device.register_foreign("10.0.0.1", ["other.tool", "illumio.a"])
    call(device, {"type": "user-id", "cmd": uid("unregister", {"10.0.0.1": []})})
    assert device.table() == {}


def test_clear_wipes_the_table_and_is_logged(device: PanosEmulator) -> None:
    device.register_foreign("10.0.0.1", ["other.tool"])
    cmd = (
        "<uid-message><type>update</type><payload><clear><registered-ip><all/></registered-ip>"
        "</clear></payload></uid-message>"
    )
    call(device, {"type": "user-id", "cmd": cmd})
    assert (device.table(), device.clear_sent) == ({}, True)


def test_vsys_tables_are_separate() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), vsys=("vsys1", "vsys2"))
    call(emulator, {"type": "user-id", "vsys": "vsys2", "cmd": uid("register", {"10.0.0.1": ["a"]})})
    assert (emulator.table(vsys="vsys1"), emulator.table(vsys="vsys2")) == (
        {},
        {"10.0.0.1": frozenset({"a"})},
    )


def test_unknown_vsys_is_an_error(device: PanosEmulator) -> None:
    root = xml(
        call(device, {"type": "user-id", "vsys": "vsys9", "cmd": uid("register", {"10.0.0.1": ["a"]})})
    )
    assert (root.get("status"), root.get("code")) == ("error", "400")


def test_malformed_uid_message_is_code_18(device: PanosEmulator) -> None:
    root = xml(call(device, {"type": "user-id", "cmd": "<uid-message><payload>"}))
    assert root.get("code") == "18"


def test_uid_message_without_type_update_is_code_18(device: PanosEmulator) -> None:
    root = xml(call(device, {"type": "user-id", "cmd": "<uid-message><payload/></uid-message>"}))
    assert root.get("code") == "18"


def test_the_log_counts_entries_per_verb(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["a"], "10.0.0.2": ["a"]})
    assert device.calls("user-id", verb="register")[0].uid == {"register": 2}


# -- show registered-ip ----------------------------------------------------------------------------


def test_listing_is_sorted_by_ip_with_ipv4_first(device: PanosEmulator) -> None:
    for ip in ["2001:db8::1", "10.0.0.10", "10.0.0.2", "9.0.0.1"]:
        device.register_foreign(ip, ["a"])
    assert listed_ips(show(device, "<all/>")) == ["9.0.0.1", "10.0.0.2", "10.0.0.10", "2001:db8::1"]


def test_limit_is_capped_at_500(device: PanosEmulator) -> None:
    for n in range(600):
        device.register_foreign(f"10.0.{n // 256}.{n % 256}", ["a"])
    root = show(device, "<limit>1000</limit><all/>")
    assert (len(listed_ips(root)), root.findtext("result/count")) == (500, "500")


def test_start_point_is_one_based(device: PanosEmulator) -> None:
    for n in range(1, 6):
        device.register_foreign(f"10.0.0.{n}", ["a"])
    root = show(device, "<start-point>2</start-point><limit>2</limit>")
    assert listed_ips(root) == ["10.0.0.2", "10.0.0.3"]


def test_entries_carry_flags_then_tags_and_never_timeouts(device: PanosEmulator) -> None:
    register(device, {"10.0.0.1": ["a"]}, timeout="60", persistent="0")
    entry = show(device, "<all/>").find("result/entry")
    assert entry is not None
    assert entry.attrib == {"ip": "10.0.0.1", "from_agent": "0", "persistent": "0"}
    assert [m.attrib for m in entry.iterfind("tag/member")] == [{}]


def test_empty_listing_has_count_zero(device: PanosEmulator) -> None:
    root = show(device, "<all/>")
    assert (listed_ips(root), root.findtext("result/count")) == ([], "0")


def test_tag_filter_lists_only_carriers(device: PanosEmulator) -> None:
    device.register_foreign("10.0.0.1", ["a"])
    device.register_foreign("10.0.0.2", ["b"])
    assert listed_ips(show(device, '<tag><entry name="b"/></tag>')) == ["10.0.0.2"]


def test_ip_filter_matches_the_canonical_address(device: PanosEmulator) -> None:
    device.register_foreign("2001:db8::1", ["a"])
    assert listed_ips(show(device, "<ip>2001:DB8:0::1</ip>")) == ["2001:db8::1"]


def test_legacy_device_answers_with_an_outfile_above_500() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), legacy_outfile=True)
    for n in range(501):
        emulator.register_foreign(f"10.0.{n // 256}.{n % 256}", ["a"])
    assert show(emulator, "<all/>").findtext("result/msg/line/outfile") == "/var/log/clioutput/regipdump"


# -- authentication --------------------------------------------------------------------------------


def test_bad_key_gets_403_with_the_exact_body(device: PanosEmulator) -> None:
    response = call(device, {"type": "op", "cmd": "<show/>"}, headers={"x-pan-key": "wrong"})
    assert (response.status, response.body) == (403, INVALID_CREDENTIAL)


def test_key_in_the_query_string_is_accepted_and_recorded(device: PanosEmulator) -> None:
    register_cmd = uid("register", {"10.0.0.1": ["a"]})
    call(device, {"type": "user-id", "cmd": register_cmd}, query={"key": KEY}, headers={})
    assert device.requests[0].key_carrier == "query"
    assert "10.0.0.1" in device.table()


def test_key_in_the_form_body_is_accepted_and_recorded(device: PanosEmulator) -> None:
    call(device, {"type": "user-id", "key": KEY, "cmd": uid("register", {"10.0.0.1": ["a"]})}, headers={})
    assert (device.requests[0].key_carrier, device.requests[0].status) == ("body", 200)


def test_basic_auth_is_accepted(device: PanosEmulator) -> None:
    token = base64.b64encode(b"admin:pw").decode()
    call(
        device,
        {"type": "user-id", "cmd": uid("register", {"10.0.0.1": ["a"]})},
        headers={"authorization": f"Basic {token}"},
    )
    assert (device.requests[0].key_carrier, "10.0.0.1" in device.table()) == ("basic", True)


def test_keygen_returns_a_working_key(device: PanosEmulator) -> None:
    key = xml(call(device, {"type": "keygen", "user": "admin", "password": "pw"}, headers={})).findtext(
        "result/key"
    )
    assert key is not None
    response = call(
        device, {"type": "user-id", "cmd": uid("register", {"10.0.0.1": ["a"]})}, headers={"x-pan-key": key}
    )
    assert response.status == 200


def test_keygen_with_a_wrong_password_is_403(device: PanosEmulator) -> None:
    response = call(device, {"type": "keygen", "user": "admin", "password": "nope"}, headers={})
    assert (response.status, response.body) == (403, INVALID_CREDENTIAL)


def test_keygen_rotation_revokes_the_previous_key() -> None:
    emulator = PanosEmulator(users={"admin": "pw"}, keygen_rotates=True, api_keys=())
    keygen = {"type": "keygen", "user": "admin", "password": "pw"}
    first = xml(call(emulator, keygen, headers={})).findtext("result/key") or ""
    second = xml(call(emulator, keygen, headers={})).findtext("result/key") or ""
    show_cmd = {"type": "op", "cmd": "<show><object><registered-ip><all/></registered-ip></object></show>"}
    assert call(emulator, show_cmd, headers={"x-pan-key": first}).status == 403
    assert call(emulator, show_cmd, headers={"x-pan-key": second}).status == 200


def test_keys_are_revoked_after_n_calls(device: PanosEmulator) -> None:
    device.revoke_keys_after(2)
    statuses = [
        call(
            device,
            {"type": "op", "cmd": "<show><object><registered-ip><all/></registered-ip></object></show>"},
        ).status
        for _ in range(3)
    ]
    assert statuses == [200, 200, 403]


# -- request handling ------------------------------------------------------------------------------


def test_query_and_body_parameters_are_merged(device: PanosEmulator) -> None:
    call(device, {"cmd": uid("register", {"10.0.0.1": ["a"]})}, query={"type": "user-id"})
    assert "10.0.0.1" in device.table()


def test_multipart_file_upload_is_the_cmd(device: PanosEmulator) -> None:
    boundary = "xYzZY"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="uid.xml"\r\n'
        f"Content-Type: text/xml\r\n\r\n{uid('register', {'10.0.0.1': ['a']})}\r\n--{boundary}--\r\n"
    ).encode()
    device.handle(
        Request(
            method="POST",
            path="/api/",
            query={"type": ["user-id"]},
            headers={"x-pan-key": KEY, "content-type": f"multipart/form-data; boundary={boundary}"},
            body=body,
        )
    )
    assert "10.0.0.1" in device.table()


def test_get_with_query_parameters_works(device: PanosEmulator) -> None:
    query = {"type": "op", "cmd": "<show><object><registered-ip><all/></registered-ip></object></show>"}
    response = call(device, {}, query=query, method="GET", body=b"")
    assert xml(response).get("status") == "success"


def test_requests_above_the_size_limit_get_400() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), max_request_bytes=1_000)
    response = call(
        emulator, {"type": "user-id", "cmd": uid("register", {f"10.0.0.{n}": ["a"] for n in range(50)})}
    )
    assert response.status == 400
    assert emulator.table() == {}


def test_target_on_a_firewall_is_an_error(device: PanosEmulator) -> None:
    root = xml(
        call(device, {"type": "user-id", "target": "FW1", "cmd": uid("register", {"10.0.0.1": ["a"]})})
    )
    assert root.get("status") == "error"


def test_unknown_target_serial_is_code_17_naming_it() -> None:
    emulator = PanosEmulator("panorama", api_keys=(KEY,))
    root = xml(
        call(emulator, {"type": "user-id", "target": "FW9", "cmd": uid("register", {"10.0.0.1": ["a"]})})
    )
    assert (root.get("code"), "FW9" in (root.findtext("msg/line") or "")) == ("17", True)


def test_faults_for_one_type_skip_other_requests(device: PanosEmulator) -> None:
    device.fail_next(1, type="user-id")
    show_cmd = "<show><object><registered-ip><all/></registered-ip></object></show>"
    assert call(device, {"type": "op", "cmd": show_cmd}).status == 200
    assert call(device, {"type": "user-id", "cmd": uid("register", {"10.0.0.1": ["a"]})}).status == 503


def test_reset_fault_answers_with_a_dropped_connection(device: PanosEmulator) -> None:
    device.reset_next(1)
    assert call(device, {"type": "op", "cmd": "<show/>"}).reset is True


def test_reset_after_apply_keeps_the_change(device: PanosEmulator) -> None:
    device.reset_next(1, after_apply=True)
    response = call(device, {"type": "user-id", "cmd": uid("register", {"10.0.0.1": ["a"]})})
    assert (response.reset, "10.0.0.1" in device.table()) == (True, True)


def test_concurrent_requests_are_counted() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), delay=0.2)
    show_cmd = {"type": "op", "cmd": "<show><object><registered-ip><all/></registered-ip></object></show>"}
    threads = [threading.Thread(target=call, args=(emulator, show_cmd)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emulator.max_concurrency == 3


def test_requests_above_the_concurrency_limit_are_rejected() -> None:
    emulator = PanosEmulator(api_keys=(KEY,), delay=0.2, concurrency_limit=1)
    show_cmd = {"type": "op", "cmd": "<show><object><registered-ip><all/></registered-ip></object></show>"}
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(call(emulator, show_cmd).status)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 503]


def test_keys_in_query_and_body_are_both_recorded(device: PanosEmulator) -> None:
    call(device, {"type": "op", "key": KEY, "cmd": "<show/>"}, query={"key": KEY}, headers={})
    assert device.requests[0].key_carriers == ("query", "body")
