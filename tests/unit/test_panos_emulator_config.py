"""The PAN-OS emulator's address groups: defined by tests, read through `type=config` at the
xpaths of docs/protocols.md#pan-os-address-groups, and evaluated for the membership view."""

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from emulators.panos import INVALID_CREDENTIAL, DagMembership, PanosEmulator
from tests.support.panos import KEY, Api, parse, serve

FW1 = "007951000000011"
LOCAL = "/config/devices/entry[@name='localhost.localdomain']"
SHARED = "/config/shared/address-group"
EVERY_DEVICE_GROUP = f"{LOCAL}/device-group/entry/address-group"
QUARANTINE = "'illumio.env.Quarantine'"


def device_group(name: str) -> str:
    return f"{LOCAL}/device-group/entry[@name='{name}']/address-group"


def vsys(name: str) -> str:
    return f"{LOCAL}/vsys/entry[@name='{name}']/address-group"


def groups(root: ET.Element) -> dict[str, str | None]:
    """name -> filter of every address group in a config answer (None: a static group)."""
    return {
        entry.get("name") or "": entry.findtext("dynamic/filter")
        for entry in root.iterfind("result/address-group/entry")
    }


@pytest.fixture
def panorama() -> PanosEmulator:
    return PanosEmulator("panorama", api_keys=(KEY,), firewalls=(FW1,))


@pytest.fixture
def api(panorama: PanosEmulator) -> Iterator[Api]:
    with serve(panorama) as served:
        yield served


@pytest.fixture
def firewall() -> PanosEmulator:
    return PanosEmulator("firewall", api_keys=(KEY,), vsys=("vsys1", "vsys2"))


@pytest.fixture
def firewall_api(firewall: PanosEmulator) -> Iterator[Api]:
    with serve(firewall) as served:
        yield served


# -- reading definitions ---------------------------------------------------------------------------


def test_a_shared_dag_answers_as_an_entry_with_a_dynamic_filter(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("quarantine", QUARANTINE, description="Isolated workloads")
    root = parse(api.config(SHARED))
    assert root.get("status") == "success"
    entry = root.find("result/address-group/entry")
    assert entry is not None
    assert entry.attrib == {"name": "quarantine"}
    assert (entry.findtext("dynamic/filter"), entry.findtext("description")) == (
        QUARANTINE,
        "Isolated workloads",
    )


def test_a_dag_without_a_description_has_no_description_element(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("quarantine", QUARANTINE)
    assert parse(api.config(SHARED)).find("result/address-group/entry/description") is None


def test_a_device_group_dag_is_read_at_its_device_group_xpath(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("web", "'illumio.app.Web'", device_group="DG-East")
    panorama.define_dag("quarantine", QUARANTINE)
    assert groups(parse(api.config(device_group("DG-East")))) == {"web": "'illumio.app.Web'"}


def test_every_device_group_is_read_with_one_xpath(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("web", "'illumio.app.Web'", device_group="DG-East")
    panorama.define_dag("db", "'illumio.app.Db'", device_group="DG-West")
    root = parse(api.config(EVERY_DEVICE_GROUP))
    assert len(root.findall("result/address-group")) == 2
    assert groups(root) == {"web": "'illumio.app.Web'", "db": "'illumio.app.Db'"}


def test_device_groups_are_read_with_their_names(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("web", "'illumio.app.Web'", device_group="DG-East")
    root = parse(api.config(f"{LOCAL}/device-group"))
    names = [entry.get("name") for entry in root.iterfind("result/device-group/entry")]
    assert names == ["DG-East"]


def test_a_firewall_vsys_dag_is_read_at_the_vsys_xpath(firewall: PanosEmulator, firewall_api: Api) -> None:
    firewall.define_dag("web", "'illumio.app.Web'", vsys="vsys2")
    firewall.define_dag("quarantine", QUARANTINE)
    assert groups(parse(firewall_api.config(vsys("vsys2")))) == {"web": "'illumio.app.Web'"}
    assert groups(parse(firewall_api.config(SHARED))) == {"quarantine": QUARANTINE}


def test_a_static_group_carries_members_and_no_filter(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_static_group("servers", ["srv-1", "srv-2"])
    panorama.define_dag("quarantine", QUARANTINE)
    root = parse(api.config(SHARED))
    assert groups(root) == {"servers": None, "quarantine": QUARANTINE}
    assert [m.text for m in root.iterfind("result/address-group/entry[@name='servers']/static/member")] == [
        "srv-1",
        "srv-2",
    ]


def test_a_firewall_behind_panorama_is_read_with_target(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("local", "'illumio.app.Local'", vsys="vsys1", serial=FW1)
    assert groups(parse(api.config(vsys("vsys1"), target=FW1))) == {"local": "'illumio.app.Local'"}
    assert groups(parse(api.config(SHARED))) == {}


def test_an_xpath_with_nothing_under_it_answers_an_empty_result(api: Api) -> None:
    root = parse(api.config(SHARED))
    result = root.find("result")
    assert (root.get("status"), result is not None and len(result)) == ("success", 0)


def test_an_xpath_with_nothing_under_it_can_answer_code_7() -> None:
    with serve(PanosEmulator("panorama", api_keys=(KEY,), absent_config="object-not-present")) as api:
        root = parse(api.config(SHARED))
    assert (root.get("status"), root.get("code")) == ("error", "7")


@pytest.mark.parametrize(
    "xpath", ["shared/address-group", "/config/shared/address-group[", "/config/shared/name()"]
)
def test_an_xpath_the_device_cannot_read_is_code_6(api: Api, xpath: str) -> None:
    root = parse(api.config(xpath))
    assert (root.get("status"), root.get("code")) == ("error", "6")


def test_other_config_actions_are_not_emulated(api: Api) -> None:
    assert parse(api.config(SHARED, action="set")).get("status") == "error"


# -- running and candidate -------------------------------------------------------------------------


def test_show_reads_the_running_configuration_and_get_the_candidate(
    panorama: PanosEmulator, api: Api
) -> None:
    panorama.define_dag("quarantine", QUARANTINE, committed=False)
    shown, got = parse(api.config(SHARED)), parse(api.config(SHARED, action="get"))
    assert (groups(shown), groups(got)) == ({}, {"quarantine": QUARANTINE})


def test_a_commit_makes_the_candidate_run(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("quarantine", QUARANTINE, committed=False)
    panorama.commit()
    assert groups(parse(api.config(SHARED))) == {"quarantine": QUARANTINE}


def test_get_answers_code_19_and_counts_what_it_found(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("web", "'illumio.app.Web'", device_group="DG-East")
    panorama.define_dag("db", "'illumio.app.Db'", device_group="DG-West")
    root = parse(api.config(EVERY_DEVICE_GROUP, action="get"))
    result = root.find("result")
    assert result is not None
    assert (root.get("code"), result.get("total-count"), result.get("count")) == ("19", "2", "2")


# -- changing definitions --------------------------------------------------------------------------


def test_redefining_a_dag_replaces_its_filter(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("quarantine", QUARANTINE)
    panorama.define_dag("quarantine", "'illumio.env.Isolated'")
    assert groups(parse(api.config(SHARED))) == {"quarantine": "'illumio.env.Isolated'"}


def test_a_removed_dag_is_gone_from_the_next_read(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("quarantine", QUARANTINE)
    panorama.define_dag("web", "'illumio.app.Web'")
    panorama.remove_dag("quarantine")
    assert groups(parse(api.config(SHARED))) == {"web": "'illumio.app.Web'"}


def test_an_uncommitted_removal_still_runs(panorama: PanosEmulator, api: Api) -> None:
    panorama.define_dag("quarantine", QUARANTINE)
    panorama.remove_dag("quarantine", committed=False)
    shown, got = parse(api.config(SHARED)), parse(api.config(SHARED, action="get"))
    assert (groups(shown), groups(got)) == ({"quarantine": QUARANTINE}, {})


def test_removing_a_dag_that_is_not_there_is_a_key_error(panorama: PanosEmulator) -> None:
    panorama.define_dag("quarantine", QUARANTINE, device_group="DG-East")
    with pytest.raises(KeyError, match="quarantine"):
        panorama.remove_dag("quarantine")


def test_any_filter_up_to_2047_characters_is_accepted_even_one_the_emulator_cannot_evaluate(
    panorama: PanosEmulator, api: Api
) -> None:
    panorama.define_dag("odd", "not 'illumio.a'")
    assert groups(parse(api.config(SHARED))) == {"odd": "not 'illumio.a'"}


def test_a_filter_over_2047_characters_is_refused(panorama: PanosEmulator) -> None:
    with pytest.raises(ValueError, match="2047"):
        panorama.define_dag("long", "'" + "a" * 2047 + "'")


@pytest.mark.parametrize(
    ("kind", "location"),
    [("firewall", {"device_group": "DG"}), ("panorama", {"vsys": "vsys1"}), ("firewall", {"vsys": "vsys9"})],
    ids=["device-group-on-a-firewall", "vsys-on-panorama", "unknown-vsys"],
)
def test_a_location_the_device_does_not_have_is_refused(kind: str, location: dict[str, str]) -> None:
    emulator = PanosEmulator("panorama" if kind == "panorama" else "firewall")
    with pytest.raises(ValueError):
        emulator.define_dag("web", "'illumio.app.Web'", **location)


# -- permission ------------------------------------------------------------------------------------


def test_a_role_without_configuration_read_gets_403_on_the_config_read(
    panorama: PanosEmulator, api: Api
) -> None:
    panorama.define_dag("quarantine", QUARANTINE)
    panorama.deny_permission("config")
    response = api.config(SHARED)
    assert (response.status_code, response.content) == (403, INVALID_CREDENTIAL)


def test_the_config_read_can_answer_unauth_code_16(panorama: PanosEmulator, api: Api) -> None:
    panorama.deny_permission("config", answer="unauth")
    root = parse(api.config(SHARED))
    assert (root.get("status"), root.get("code")) == ("unauth", "16")


def test_a_one_off_unauth_can_hit_the_config_read_only(panorama: PanosEmulator, api: Api) -> None:
    panorama.unauth_next(code="16", type="config")
    assert api.register({"10.0.0.1": ["illumio.a"]}).get("status") == "success"
    assert parse(api.config(SHARED)).get("status") == "unauth"
    assert parse(api.config(SHARED)).get("status") == "success"


# -- membership ------------------------------------------------------------------------------------


def test_the_membership_view_evaluates_each_running_dag(panorama: PanosEmulator) -> None:
    panorama.register_foreign("10.0.0.2", ["illumio.env.Quarantine"])
    panorama.register_foreign("10.0.0.1", ["illumio.env.Quarantine", "illumio.app.Web"])
    panorama.define_dag("quarantine", QUARANTINE, description="Isolated")
    panorama.define_dag("web", "'illumio.app.Web'", device_group="DG-East")
    panorama.define_dag("draft", "'illumio.app.Draft'", committed=False)
    assert panorama.dag_membership() == [
        DagMembership("quarantine", QUARANTINE, None, None, "Isolated", ("10.0.0.1", "10.0.0.2")),
        DagMembership("web", "'illumio.app.Web'", "DG-East", None, None, ("10.0.0.1",)),
    ]


def test_the_membership_view_does_not_guess_a_filter_it_cannot_evaluate(panorama: PanosEmulator) -> None:
    panorama.register_foreign("10.0.0.1", ["illumio.a"])
    panorama.define_dag("odd", "not 'illumio.a'")
    assert [dag.members for dag in panorama.dag_membership()] == [None]


def test_a_vsys_dag_is_evaluated_on_its_own_vsys_table(firewall: PanosEmulator) -> None:
    firewall.register_foreign("10.0.0.1", ["illumio.a"], vsys="vsys1")
    firewall.register_foreign("10.0.0.2", ["illumio.a"], vsys="vsys2")
    firewall.define_dag("a", "'illumio.a'", vsys="vsys2")
    assert [dag.members for dag in firewall.dag_membership()] == [("10.0.0.2",)]


def test_show_dynamic_address_group_lists_the_defined_dags_and_members(
    panorama: PanosEmulator, api: Api
) -> None:
    panorama.register_foreign("10.0.0.1", ["illumio.app.Web"])
    panorama.define_dag("web", "'illumio.app.Web'")
    panorama.define_dag("odd", "not 'illumio.app.Web'")
    cmd = "<show><object><dynamic-address-group><all/></dynamic-address-group></object></show>"
    root = parse(api.post({"type": "op", "cmd": cmd}))
    web, odd = root.findall("result/dyn-addr-grp/entry")
    assert (web.findtext("group-name"), web.findtext("filter")) == ("web", "'illumio.app.Web'")
    assert [m.get("name") for m in web.iterfind("member-list/entry")] == ["10.0.0.1"]
    assert (odd.findtext("group-name"), odd.find("member-list")) == ("odd", None)
