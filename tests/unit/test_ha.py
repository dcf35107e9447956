"""HA pairs (docs/high-availability.md): the PANOS_URL pair, the snapshot keys, reading a member's
state, choosing the member to write to, and a full table told apart from bad data."""

import defusedxml.ElementTree as SafeET
import pytest

from dagsync.core.errors import ConfigError, PanosError
from dagsync.core.ha import HA_DISABLED, UNREADABLE, MemberState, active_member, no_active_member
from dagsync.core.settings import load_settings
from dagsync.panos.ha import build_ha_state_query, parse_ha_state
from dagsync.panos.responses import ParsedResponse, is_table_full
from dagsync.sync.members import Members
from tests.support.settings import REQUIRED_ENVIRONMENT

PAIR = "https://pano-a.example.com,https://pano-b.example.com:8443"


def settings(**overrides: str):
    return load_settings({**REQUIRED_ENVIRONMENT, **overrides})


def answer(result: str) -> ParsedResponse:
    root = SafeET.fromstring(f'<response status="success"><result>{result}</result></response>')
    return ParsedResponse(status="success", root=root)


# -- configuration and keys ----------------------------------------------------------------------


def test_panos_url_takes_the_two_addresses_of_a_pair_in_order() -> None:
    assert settings(PANOS_URL=PAIR).panos_urls == (
        "https://pano-a.example.com",
        "https://pano-b.example.com:8443",
    )


def test_panos_url_takes_at_most_two_addresses() -> None:
    with pytest.raises(ConfigError, match="PANOS_URL names at most two addresses"):
        settings(PANOS_URL=f"{PAIR},https://pano-c.example.com")


def test_panos_url_refuses_one_address_twice() -> None:
    with pytest.raises(ConfigError, match="same address twice"):
        settings(PANOS_URL="https://pano-a.example.com,https://PANO-A.example.com")


def test_each_address_of_a_pair_is_checked_like_one() -> None:
    with pytest.raises(ConfigError, match="PANOS_URL must be scheme, host and port only"):
        settings(PANOS_URL="https://pano-a.example.com,https://pano-b.example.com/api")


def test_a_single_address_keeps_its_snapshot_keys() -> None:
    targets = settings(PANOS_URL="https://pano-a.example.com", PANOS_TARGET_SERIALS="0001,0002").targets
    assert [target.name for target in targets] == ["pano-a.example.com/0001", "pano-a.example.com/0002"]


def test_a_panorama_pair_keys_its_targets_by_serial() -> None:
    targets = settings(PANOS_URL=PAIR, PANOS_TARGET_SERIALS="0001", PANOS_VSYS="vsys2").targets
    assert [target.name for target in targets] == ["0001/vsys2"]


def test_a_firewall_pair_keys_its_target_by_the_pair() -> None:
    assert [target.name for target in settings(PANOS_URL=PAIR).targets] == [
        "pano-a.example.com,pano-b.example.com:8443"
    ]


def test_plain_http_on_both_members_is_reported_once() -> None:
    notes = settings(PANOS_URL="http://a.example.com,http://b.example.com").insecure_settings()
    assert notes.count("PANOS_URL uses plain http://; traffic and credentials are not encrypted") == 1


# -- reading a member's state --------------------------------------------------------------------


def test_the_ha_query_is_the_documented_op_command() -> None:
    query = SafeET.fromstring(build_ha_state_query())
    assert (query.tag, query.find("high-availability/state") is not None) == ("show", True)


def test_panorama_puts_the_local_state_under_local_info() -> None:
    assert (
        parse_ha_state(answer("<enabled>yes</enabled><local-info><state>passive</state></local-info>"))
        == "passive"
    )


def test_a_firewall_puts_the_local_state_under_group() -> None:
    result = "<enabled>yes</enabled><group><local-info><state>Active</state></local-info></group>"
    assert parse_ha_state(answer(result)) == "active"


def test_ha_not_enabled_is_read_as_disabled() -> None:
    assert parse_ha_state(answer("<enabled>no</enabled>")) == HA_DISABLED


def test_an_answer_without_a_state_is_an_error() -> None:
    with pytest.raises(PanosError, match="names no local state"):
        parse_ha_state(answer("<enabled>yes</enabled>"))


# -- choosing the member -------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["active", "primary-active", "secondary-active", HA_DISABLED])
def test_these_states_may_be_written_to(state: str) -> None:
    assert MemberState("a:443", state).active


@pytest.mark.parametrize(
    "state", ["passive", "primary-passive", "suspended", "non-functional", "initial", "tentative", UNREADABLE]
)
def test_these_states_are_never_written_to(state: str) -> None:
    assert not MemberState("a:443", state).active


def test_the_first_active_member_in_order_is_chosen() -> None:
    members = [MemberState("a:443", "passive"), MemberState("b:443", "active")]
    assert active_member(members) == members[1]


def test_no_active_member_names_each_address_and_its_state() -> None:
    members = [MemberState("a:443", "suspended"), MemberState("b:443", UNREADABLE, error="HTTP 403")]
    message = no_active_member(members)
    assert "a:443 suspended" in message and "b:443 state unreadable (HTTP 403)" in message
    assert active_member(members) is None


class Probe:
    def __init__(self, state: str | Exception) -> None:
        self.state, self.asked = state, 0

    def ha_state(self) -> str:
        self.asked += 1
        if isinstance(self.state, Exception):
            raise self.state
        return self.state


def test_each_member_is_asked_once_and_an_error_reads_as_unreadable() -> None:
    first, second = Probe(PanosError("PAN-OS response is not XML")), Probe("active")
    states = Members([("a:443", first), ("b:443", second)]).ask()
    assert [(s.address, s.state) for s in states] == [("a:443", UNREADABLE), ("b:443", "active")]
    assert (first.asked, second.asked) == (1, 1)
    assert states[0].error == "PAN-OS response is not XML"


# -- a full table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "Failed to register 10.0.0.1: max registered-ip for the platform reached (500000)",
        "max registered-ip reached",
        "registered-ip table is full",
    ],
)
def test_a_refusal_naming_the_tables_maximum_is_a_full_table(message: str) -> None:
    assert is_table_full(message)


@pytest.mark.parametrize("message", ["Invalid IP address", "Failed to register 10.0.0.1: more than 32 tags"])
def test_other_refusals_are_not_a_full_table(message: str) -> None:
    assert not is_table_full(message)
