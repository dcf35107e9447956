"""Events that change state or label groups (docs/change-feed.md#state-events), as the emulator
writes them, parsed and classified; and the settings that turn them on."""

import pytest

from dagsync.core.change_events import EventTypes, FeedDecision, classify
from dagsync.core.errors import ConfigError
from dagsync.core.settings import load_settings
from dagsync.pce.parse import parse_events
from emulators.pce import PceEmulator
from tests.support.pce import workload
from tests.support.settings import REQUIRED_ENVIRONMENT

STATE_ON = EventTypes.under(state_tags=True, label_group_tags=False)
GROUPS_ON = EventTypes.under(state_tags=False, label_group_tags=True)
BOTH_OFF = EventTypes.under(state_tags=False, label_group_tags=False)


@pytest.fixture
def pce() -> PceEmulator:
    emulator = PceEmulator()
    ven = {"href": "/orgs/1/vens/v1", "hostname": "w1"}
    agent = {"href": "/orgs/1/agents/1", "type": "Host"}
    emulator.set_workloads([workload(emulator, "w1", "10.0.0.1", ven=ven, agent=agent)])
    emulator.set_workloads(emulator.workloads)  # no change, no event
    return emulator


def decide(pce: PceEmulator, types: EventTypes, since: int) -> FeedDecision:
    events = parse_events(pce.events[since:])
    return classify(events, applied=(), max_results=1000, max_targeted=50, types=types)


def test_an_offline_check_fetches_the_workloads_it_names(pce: PceEmulator) -> None:
    start = len(pce.events)
    pce.go_offline("/orgs/1/workloads/w1")
    decision = decide(pce, STATE_ON, start)
    assert (decision.action, decision.workload_hrefs) == ("targeted", ("/orgs/1/workloads/w1",))


def test_workload_online_names_its_workload_in_the_notification_and_fetches_it(pce: PceEmulator) -> None:
    pce.go_offline("/orgs/1/workloads/w1")
    start = len(pce.events)
    pce.come_online("/orgs/1/workloads/w1")
    decision = decide(pce, STATE_ON, start)
    assert (decision.action, decision.workload_hrefs) == ("targeted", ("/orgs/1/workloads/w1",))


@pytest.mark.parametrize("kind", ["suspend", "goodbye", "deactivate"])
def test_an_agent_event_fetches_its_workload(pce: PceEmulator, kind: str) -> None:
    start = len(pce.events)
    pce.agent_event("/orgs/1/workloads/w1", kind)  # type: ignore[arg-type]
    decision = decide(pce, STATE_ON, start)
    assert (decision.action, decision.workload_hrefs) == ("targeted", ("/orgs/1/workloads/w1",))


def test_without_state_tags_state_events_change_nothing(pce: PceEmulator) -> None:
    start = len(pce.events)
    pce.go_offline("/orgs/1/workloads/w1")
    pce.come_online("/orgs/1/workloads/w1")
    assert decide(pce, BOTH_OFF, start).action == "nothing"


def test_a_state_event_naming_no_workload_calls_for_a_full_export(pce: PceEmulator) -> None:
    start = len(pce.events)
    pce.go_offline()
    assert decide(pce, STATE_ON, start).action == "full"


def test_a_label_group_update_calls_for_a_full_export(pce: PceEmulator) -> None:
    pce.set_label_group("Critical")
    start = len(pce.events)
    pce.set_label_group("Critical", labels=["/orgs/1/labels/1"])
    assert decide(pce, GROUPS_ON, start).action == "full"


def test_provisioning_calls_for_a_full_export_with_label_group_tags(pce: PceEmulator) -> None:
    start = len(pce.events)
    pce.provision()
    assert decide(pce, GROUPS_ON, start).action == "full"


def test_without_label_group_tags_label_group_events_change_nothing(pce: PceEmulator) -> None:
    start = len(pce.events)
    pce.set_label_group("Critical")
    pce.provision()
    assert decide(pce, BOTH_OFF, start).action == "nothing"


def test_state_tags_lists_any_of_enforcement_managed_and_online() -> None:
    settings = load_settings({**REQUIRED_ENVIRONMENT, "STATE_TAGS": "enforcement, online"})
    assert settings.state_tags == frozenset({"enforcement", "online"})


def test_state_tags_is_empty_by_default() -> None:
    assert load_settings(REQUIRED_ENVIRONMENT).state_tags == frozenset()


def test_an_unknown_state_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^STATE_TAGS .*'enforced'"):
        load_settings({**REQUIRED_ENVIRONMENT, "STATE_TAGS": "enforced"})


def test_label_group_tags_turns_on_with_true() -> None:
    assert load_settings({**REQUIRED_ENVIRONMENT, "LABEL_GROUP_TAGS": "true"}).label_group_tags is True


def test_label_group_tags_other_than_true_or_false_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"^LABEL_GROUP_TAGS"):
        load_settings({**REQUIRED_ENVIRONMENT, "LABEL_GROUP_TAGS": "maybe"})
