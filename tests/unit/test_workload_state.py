"""Workload state as tags (docs/mapping.md#state-tags), on workload objects shaped like a PCE 25 answer."""

from typing import Any

import pytest

from dagsync.core.mapping import MAX_TAGS_PER_IP, MappingRules, map_workloads
from dagsync.core.models import Workload
from dagsync.pce.parse import WorkloadProjector

STATES = frozenset({"enforcement", "managed", "online"})

# Shapes as a PCE 25 answer gives them: a managed workload has a VEN and an agent with hrefs;
# an unmanaged one has `ven: null`, an agent object without href, and placeholder state.
MANAGED: dict[str, Any] = {
    "href": "/orgs/1/workloads/m1",
    "hostname": "m1",
    "managed": True,
    "online": True,
    "enforcement_mode": "selective",
    "agent": {"href": "/orgs/1/agents/1307", "type": "Host", "config": {"mode": "illuminated"}},
    "ven": {"href": "/orgs/1/vens/03daf1e6", "hostname": "m1", "status": "active"},
    "labels": [{"href": "/orgs/1/labels/1", "key": "app", "value": "Payments"}],
    "interfaces": [{"name": "eth0", "address": "10.0.0.1", "loopback": False}],
}
UNMANAGED: dict[str, Any] = {
    "href": "/orgs/1/workloads/u1",
    "hostname": "",
    "name": "APV1",
    "managed": False,
    "online": True,
    "enforcement_mode": "visibility_only",
    "agent": {"config": {"log_traffic": False, "mode": "illuminated", "visibility_level": "flow_summary"}},
    "ven": None,
    "labels": [],
    "interfaces": [{"name": "eth0", "address": "192.168.30.153", "loopback": False, "cidr_block": None}],
}


def read(item: dict[str, Any]) -> Workload:
    projected = WorkloadProjector().project(item, "element 0")
    assert projected is not None
    return projected[0]


def tags_of(item: dict[str, Any], states: frozenset[str] = STATES, **rules: Any) -> frozenset[str]:
    result = map_workloads(
        [read(item)],
        prefix="illumio.",
        label_keys=frozenset({"app"}),
        include_ipv6=True,
        state_tags=states,
        **rules,
    )
    return frozenset().union(*result.desired.values())


def test_a_managed_workload_with_a_ven_is_tagged_with_its_enforcement_managed_and_online_state() -> None:
    assert tags_of(MANAGED) == {
        "illumio.app.Payments",
        "illumio.enforcement.selective",
        "illumio.managed.yes",
        "illumio.online.yes",
    }


def test_a_workload_with_an_agent_only_is_managed() -> None:
    item = {**MANAGED, "ven": None}
    del item["managed"]
    assert "illumio.managed.yes" in tags_of(item)


def test_an_unmanaged_workload_is_tagged_managed_no_and_nothing_of_its_placeholder_state() -> None:
    assert tags_of(UNMANAGED) == {"illumio.managed.no"}


@pytest.mark.parametrize("mode", ["idle", "visibility_only", "selective", "full"])
def test_every_enforcement_mode_becomes_its_tag(mode: str) -> None:
    assert f"illumio.enforcement.{mode}" in tags_of({**MANAGED, "enforcement_mode": mode})


def test_an_offline_workload_is_tagged_online_no() -> None:
    assert "illumio.online.no" in tags_of({**MANAGED, "online": False})


def test_online_absent_gives_no_online_tag() -> None:
    item = dict(MANAGED)
    del item["online"]
    assert not any(tag.startswith("illumio.online.") for tag in tags_of(item))


@pytest.mark.parametrize("mode", ["enforced", None, 3, ""])
def test_an_unknown_enforcement_mode_gives_no_tag(mode: object) -> None:
    assert not any(
        tag.startswith("illumio.enforcement.") for tag in tags_of({**MANAGED, "enforcement_mode": mode})
    )


def test_only_the_states_in_state_tags_are_tagged() -> None:
    assert tags_of(MANAGED, frozenset({"online"})) == {"illumio.app.Payments", "illumio.online.yes"}


def test_without_state_tags_no_state_is_tagged() -> None:
    assert tags_of(MANAGED, frozenset()) == {"illumio.app.Payments"}


def test_a_workload_with_no_selected_label_but_a_state_tag_is_tagged() -> None:
    assert tags_of({**MANAGED, "labels": [], "online": False}, frozenset({"online"})) == {"illumio.online.no"}


def test_the_32_tag_cut_keeps_state_tags_and_cuts_label_groups_first() -> None:
    labels = tuple(("app", f"A{n:02d}") for n in range(30))
    groups = tuple(f"G{n:02d}" for n in range(5))
    workload = Workload(
        "/orgs/1/workloads/wide",
        labels,
        ("10.0.0.9",),
        state=(("enforcement", "full"), ("managed", "yes"), ("online", "no")),
        label_groups=groups,
    )
    result = map_workloads(
        [workload],
        prefix="illumio.",
        label_keys=None,
        include_ipv6=True,
        state_tags=STATES,
        label_group_tags=True,
    )
    tags = result.desired["10.0.0.9"]
    assert len(tags) == MAX_TAGS_PER_IP
    assert {"illumio.enforcement.full", "illumio.managed.yes", "illumio.online.no"} <= tags
    assert {f"illumio.app.A{n:02d}" for n in range(29)} <= tags
    assert not any(tag.startswith("illumio.lg.") for tag in tags)
    assert any("would carry 38 tags" in warning for warning in result.warnings)


def rules(**changes: Any) -> MappingRules:
    return MappingRules(prefix="illumio.", label_keys=frozenset({"app"}), **changes)


def test_turning_state_tags_on_changes_the_mapping_fingerprint() -> None:
    assert rules(state_tags=frozenset({"online"})).fingerprint() != rules().fingerprint()


def test_turning_label_group_tags_on_changes_the_mapping_fingerprint() -> None:
    assert rules(label_group_tags=True).fingerprint() != rules().fingerprint()


def test_with_both_off_the_fingerprint_is_the_one_recorded_before_they_existed() -> None:
    assert rules().fingerprint() == "68e3378c2f2b9b53"
