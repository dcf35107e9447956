"""The PAN-OS emulator answers the way a real device does when an entry or a request is refused."""

from collections.abc import Iterator

import pytest

from emulators.panos import INVALID_CREDENTIAL, INVALID_IP, PanosEmulator
from tests.support.panos import KEY, SHOW_ALL, Api, failed_messages, parse, serve


@pytest.fixture
def device() -> PanosEmulator:
    return PanosEmulator(api_keys=(KEY,))


@pytest.fixture
def api(device: PanosEmulator) -> Iterator[Api]:
    with serve(device) as served:
        yield served


# -- Invalid IP address ----------------------------------------------------------------------------


def test_an_invalid_ip_fails_alone_and_the_rest_of_the_message_is_applied(
    device: PanosEmulator, api: Api
) -> None:
    root = api.register({"10.0.0.1": ["a"], "10.0.0.300": ["a"], "10.0.0.2": ["a"]})
    assert failed_messages(root) == {"10.0.0.300": INVALID_IP}
    assert set(device.table()) == {"10.0.0.1", "10.0.0.2"}


def test_an_invalid_ip_answer_has_the_per_entry_shape(api: Api) -> None:
    root = api.register({"garbage": ["a"]})
    assert root.get("status") == "error"
    entry = root.find("msg/line/uid-response/payload/register/entry")
    assert entry is not None
    assert entry.attrib == {"ip": "garbage", "message": "Invalid IP address"}
    assert root.findtext("msg/line/uid-response/version") == "2.0"


@pytest.mark.parametrize(
    "text",
    ["2001:db8::1%eth0", " 10.0.0.1", "10.0.0.1 ", "1" * 300, "not an address", "", "10.0.0.0/24"],
    ids=["zoned-ipv6", "leading-space", "trailing-space", "over-long", "garbage", "empty", "network"],
)
def test_text_that_is_not_a_host_address_is_an_invalid_ip(api: Api, text: str) -> None:
    assert failed_messages(api.register({text: ["a"]})) == {text: INVALID_IP}


def test_an_ipv4_mapped_ipv6_address_is_accepted_as_ipv6(device: PanosEmulator, api: Api) -> None:
    assert api.register({"::ffff:10.0.0.1": ["a"]}).get("status") == "success"
    assert list(device.table()) == ["::ffff:10.0.0.1"]


def test_unregistering_an_invalid_ip_is_an_invalid_ip(api: Api) -> None:
    assert failed_messages(api.unregister({"10.0.0.300": ["a"]})) == {"10.0.0.300": INVALID_IP}


def test_a_refused_address_is_an_invalid_ip_though_it_parses(device: PanosEmulator, api: Api) -> None:
    device.refuse_ips(["224.0.0.1"])
    root = api.register({"224.0.0.1": ["a"], "10.0.0.1": ["a"]})
    assert failed_messages(root) == {"224.0.0.1": INVALID_IP}
    assert list(device.table()) == ["10.0.0.1"]


# -- status="unauth" -------------------------------------------------------------------------------


def test_unauth_code_16_is_http_200_with_unauthorized_request(api: Api, device: PanosEmulator) -> None:
    device.unauth_next(code="16")
    response = api.post({"type": "op", "cmd": SHOW_ALL})
    root = parse(response)
    assert (response.status_code, root.get("status"), root.get("code")) == (200, "unauth", "16")
    assert root.findtext("msg/line") == "Unauthorized request"


def test_unauth_code_22_is_http_200_with_session_timed_out(api: Api, device: PanosEmulator) -> None:
    device.unauth_next(code="22")
    response = api.post({"type": "op", "cmd": SHOW_ALL})
    root = parse(response)
    assert (response.status_code, root.get("status"), root.get("code")) == (200, "unauth", "22")
    assert root.findtext("msg/line") == "Session timed out"


def test_a_request_answered_unauth_is_not_applied(api: Api, device: PanosEmulator) -> None:
    device.unauth_next(code="22")
    api.register({"10.0.0.1": ["a"]})
    assert device.table() == {}


def test_unauth_for_one_request_type_leaves_the_others_alone(api: Api, device: PanosEmulator) -> None:
    device.unauth_next(code="16", type="user-id")
    assert parse(api.post({"type": "op", "cmd": SHOW_ALL})).get("status") == "success"
    assert api.register({"10.0.0.1": ["a"]}).get("status") == "unauth"
    assert api.register({"10.0.0.1": ["a"]}).get("status") == "success"


def test_unauth_can_wait_for_requests_to_go_through_first(api: Api, device: PanosEmulator) -> None:
    device.unauth_next(code="22", after=2)
    statuses = [parse(api.post({"type": "op", "cmd": SHOW_ALL})).get("status") for _ in range(3)]
    assert statuses == ["success", "success", "unauth"]


# -- a role without a permission -------------------------------------------------------------------


def test_a_denied_permission_answers_403_for_that_request_type(api: Api, device: PanosEmulator) -> None:
    device.deny_permission("op")
    response = api.post({"type": "op", "cmd": SHOW_ALL})
    assert (response.status_code, response.content) == (403, INVALID_CREDENTIAL)


def test_a_denied_permission_leaves_other_request_types_alone(api: Api, device: PanosEmulator) -> None:
    device.deny_permission("op")
    assert api.register({"10.0.0.1": ["a"]}).get("status") == "success"


def test_a_denied_permission_can_answer_unauth_code_16(api: Api, device: PanosEmulator) -> None:
    device.deny_permission("user-id", answer="unauth")
    root = api.register({"10.0.0.1": ["a"]})
    assert (root.get("status"), root.get("code")) == ("unauth", "16")
    assert device.table() == {}


def test_a_denied_permission_lasts_until_granted(api: Api, device: PanosEmulator) -> None:
    device.deny_permission("op")
    first, second = (api.post({"type": "op", "cmd": SHOW_ALL}).status_code for _ in range(2))
    device.grant_permission("op")
    assert (first, second, api.post({"type": "op", "cmd": SHOW_ALL}).status_code) == (403, 403, 200)


def test_a_bad_key_is_refused_before_permissions_are_looked_at(api: Api, device: PanosEmulator) -> None:
    device.deny_permission("op", answer="unauth")
    response = api.post({"type": "op", "cmd": SHOW_ALL}, key="wrong")
    assert (response.status_code, response.content) == (403, INVALID_CREDENTIAL)


# -- redirects -------------------------------------------------------------------------------------


def test_a_redirect_answers_its_status_and_location(api: Api, device: PanosEmulator) -> None:
    device.redirect_next(status=307, location="https://elsewhere.example/api/")
    response = api.post({"type": "op", "cmd": SHOW_ALL})
    assert (response.status_code, response.headers["Location"]) == (307, "https://elsewhere.example/api/")


def test_a_redirected_request_is_not_applied(api: Api, device: PanosEmulator) -> None:
    device.redirect_next(location="https://elsewhere.example/api/")
    assert api.user_id("register", {"10.0.0.1": ["a"]}).status_code == 302
    assert device.table() == {}


def test_a_redirect_for_one_request_type_leaves_the_others_alone(api: Api, device: PanosEmulator) -> None:
    device.redirect_next(location="https://elsewhere.example/api/", type="keygen")
    assert api.post({"type": "op", "cmd": SHOW_ALL}).status_code == 200


def test_only_redirect_statuses_can_be_injected_as_redirects(device: PanosEmulator) -> None:
    with pytest.raises(ValueError, match="redirect"):
        device.redirect_next(status=200, location="https://elsewhere.example/api/")


# -- HTTP errors -----------------------------------------------------------------------------------


def test_an_injected_http_error_is_a_plain_page_named_by_its_status(api: Api, device: PanosEmulator) -> None:
    device.fail_next(status=502)
    response = api.post({"type": "op", "cmd": SHOW_ALL})
    assert (response.status_code, response.headers["Content-Type"]) == (502, "text/html")
    assert b"502 Bad Gateway" in response.content
