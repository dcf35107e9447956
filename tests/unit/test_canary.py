"""The drift canary (docs/sync.md#canary): address, tag, check, arming and exclusion."""

import pytest

from dagsync.core.canary import CANARY_IP, RESERVED_IPS, Canary, excluding_canary
from dagsync.core.mapping import map_workloads
from dagsync.core.models import Workload


def test_canary_address_is_a_documentation_address_the_mapping_never_tags():
    assert CANARY_IP == "192.0.2.1"
    mapping = map_workloads(
        [Workload("/orgs/1/workloads/a", (("env", "P"),), (CANARY_IP, "10.0.0.1"))],
        prefix="illumio.",
        label_keys=None,
        include_ipv6=True,
        reserved_ips=RESERVED_IPS,
    )
    assert set(mapping.desired) == {"10.0.0.1"}


def test_canary_tag_without_a_deployment_id_is_prefix_and_canary():
    assert Canary("illumio.").tag == "illumio.canary"


def test_canary_tag_carries_the_deployment_id():
    assert Canary("illumio.", "dag-sync-prod").tag == "illumio.canary.dag-sync-prod"


def test_canary_tag_is_sanitised_and_cut_like_any_tag():
    tag = Canary("illumio.", "it's " + "x" * 200).tag
    assert len(tag) == 127
    assert "'" not in tag


def test_a_deployment_id_that_sanitises_to_nothing_is_refused():
    with pytest.raises(ValueError, match="deployment id"):
        _ = Canary("illumio.", "   ").tag


def test_arming_registers_our_tag_on_the_canary_address():
    assert Canary("illumio.", "a").arming() == {CANARY_IP: frozenset({"illumio.canary.a"})}


def test_canary_is_armed_when_our_tag_is_on_the_canary_address():
    check = Canary("illumio.", "a").check({CANARY_IP: frozenset({"illumio.canary.a", "soc.test-net"})})
    assert check.armed
    assert check.shared_prefix is None


def test_canary_is_missing_when_the_device_holds_nothing_on_its_address():
    assert not Canary("illumio.", "a").check({}).armed


def test_canary_tag_on_another_address_does_not_arm_it():
    assert not Canary("illumio.").check({"10.0.0.1": frozenset({"illumio.canary"})}).armed


def test_another_deployments_canary_under_our_prefix_is_reported():
    check = Canary("illumio.", "a").check({CANARY_IP: frozenset({"illumio.canary.a", "illumio.canary.b"})})
    assert check.armed
    assert check.other_deployments == frozenset({"illumio.canary.b"})
    assert check.shared_prefix is not None
    assert "illumio.canary.b" in check.shared_prefix
    assert "'illumio.'" in check.shared_prefix


def test_a_deployment_without_id_sees_an_identified_canary_as_another_deployment():
    check = Canary("illumio.").check({CANARY_IP: frozenset({"illumio.canary", "illumio.canary.b"})})
    assert check.armed
    assert check.other_deployments == frozenset({"illumio.canary.b"})


def test_the_bare_canary_left_from_before_an_upgrade_is_not_another_deployment():
    check = Canary("illumio.", "a").check({CANARY_IP: frozenset({"illumio.canary"})})
    assert not check.armed
    assert check.other_deployments == frozenset()


def test_canaries_under_other_prefixes_are_not_ours_to_judge():
    check = Canary("illumio.", "a").check({CANARY_IP: frozenset({"corp.canary", "corp.canary.x"})})
    assert check.other_deployments == frozenset()


def test_a_tag_that_merely_starts_like_a_canary_is_not_one():
    check = Canary("illumio.", "a").check({CANARY_IP: frozenset({"illumio.canaryfarm"})})
    assert check.other_deployments == frozenset()


def test_excluding_canary_leaves_out_only_the_canary_address():
    table = {CANARY_IP: frozenset({"illumio.canary"}), "10.0.0.1": frozenset({"illumio.env.P"})}
    assert excluding_canary(table) == {"10.0.0.1": frozenset({"illumio.env.P"})}
