"""What a page of PCE events calls for (docs/change-feed.md#decision), one rule per test."""

from dataclasses import dataclass

from dagsync.core.change_events import HARMLESS_EVENT_TYPES, LABEL_EVENT_TYPES, FeedDecision, classify


@dataclass(frozen=True)
class Event:
    """Shaped like the PCE client's parsed event."""

    href: str
    event_type: str
    timestamp: str = "2026-08-03T06:17:59.499Z"
    status: str | None = "success"
    severity: str = "info"
    workload_hrefs: tuple[str, ...] = ()
    label_hrefs: tuple[str, ...] = ()


def relabel(n: int, *workloads: str) -> Event:
    return Event(f"/orgs/1/events/e{n}", "workloads.set_labels", workload_hrefs=workloads)


def decide(*events: Event, applied=frozenset(), max_results=100, max_targeted=50) -> FeedDecision:
    return classify(list(events), applied=applied, max_results=max_results, max_targeted=max_targeted)


def test_no_events_is_nothing():
    assert decide() == FeedDecision("nothing")


def test_a_relabel_is_a_targeted_update_of_its_workload():
    event = relabel(1, "/orgs/1/workloads/a")
    decision = decide(event)
    assert (decision.action, decision.workload_hrefs) == ("targeted", ("/orgs/1/workloads/a",))
    assert decision.relevant == (event,)


def test_workloads_are_fetched_once_each_in_a_stable_order():
    decision = decide(relabel(1, "/w/b", "/w/a"), relabel(2, "/w/a"))
    assert decision.workload_hrefs == ("/w/a", "/w/b")


def test_events_that_did_not_succeed_are_ignored():
    decision = decide(Event("/e/1", "workload.update", status="failure", workload_hrefs=("/w/a",)))
    assert decision.action == "nothing"


def test_events_without_a_status_are_ignored():
    assert decide(Event("/e/1", "workload.update", status=None, workload_hrefs=("/w/a",))).action == "nothing"


def test_logins_and_rule_set_edits_are_ignored():
    noise = [
        Event("/e/1", "user.login"),
        Event("/e/2", "user.logout"),
        Event("/e/3", "api_key.create"),
        Event("/e/4", "rule_set.update"),
        Event("/e/5", "sec_rule.create"),
        Event("/e/6", "sec_policy.create"),
    ]
    assert decide(*noise).action == "nothing"


def test_an_unknown_event_type_naming_a_workload_is_a_change_of_that_workload():
    decision = decide(Event("/e/1", "workload.brand_new_kind", workload_hrefs=("/w/a",)))
    assert (decision.action, decision.workload_hrefs) == ("targeted", ("/w/a",))


def test_an_unknown_event_type_naming_no_workload_is_a_full_export():
    decision = decide(Event("/e/1", "something.new"))
    assert decision.action == "full"
    assert "something.new names no workload" in decision.reason


def test_a_label_rename_is_a_full_export():
    decision = decide(Event("/e/1", "label.update", label_hrefs=("/orgs/1/labels/53",)))
    assert decision.action == "full"
    assert decision.reason == (
        "label.update on /orgs/1/labels/53 changes the tags of every workload carrying it"
    )


def test_a_label_event_is_a_full_export_even_when_it_names_workloads():
    decision = decide(Event("/e/1", "label.delete", workload_hrefs=("/w/a",), label_hrefs=("/l/1",)))
    assert decision.action == "full"


def test_label_deletes_and_label_dimension_changes_are_full_exports():
    for event_type in ("label.delete", "labels.delete", "label_dimension.update", "label_dimension.delete"):
        assert decide(Event("/e/1", event_type)).action == "full"


def test_a_new_label_or_label_type_is_harmless():
    assert decide(Event("/e/1", "label.create"), Event("/e/2", "label_dimension.create")).action == "nothing"


def test_more_workloads_than_the_limit_is_a_full_export():
    decision = decide(relabel(1, *(f"/w/{i}" for i in range(51))))
    assert decision.action == "full"
    assert "51 workloads changed, more than MAX_TARGETED_WORKLOADS=50" in decision.reason


def test_exactly_the_limit_is_still_targeted():
    assert decide(relabel(1, *(f"/w/{i}" for i in range(50)))).action == "targeted"


def test_a_full_page_is_a_full_export_even_of_noise():
    page = [Event(f"/e/{i}", "user.login") for i in range(100)]
    decision = decide(*page, max_results=100)
    assert decision.action == "full"
    assert "may not be the last" in decision.reason


def test_events_already_applied_are_not_applied_again():
    first = relabel(1, "/w/a")
    decision = decide(first, applied=frozenset({first.href}))
    assert decision.action == "nothing"
    assert decision.unseen == ()


def test_a_late_indexed_event_is_still_applied():
    applied, late = relabel(1, "/w/a"), relabel(2, "/w/b")
    decision = decide(applied, late, applied=frozenset({applied.href}))
    assert (decision.workload_hrefs, decision.unseen) == (("/w/b",), (late.href,))


def test_every_unseen_event_is_reported_for_de_duplication_noise_included():
    decision = decide(Event("/e/1", "user.login"), relabel(2, "/w/a"))
    assert decision.unseen == ("/e/1", "/orgs/1/events/e2")


def test_hrefs_that_are_not_org_relative_are_compared_as_they_are():
    event = Event("/system_events/7", "workload.delete", workload_hrefs=("/orgs/1/workloads/a",))
    assert decide(event, applied=frozenset({"/orgs/1/system_events/7"})).action == "targeted"
    assert decide(event, applied=frozenset({"/system_events/7"})).action == "nothing"


def test_interface_churn_of_a_workload_is_a_targeted_update():
    """fe80:: churn is noise to the firewall, but only the recompute can tell: it sends nothing."""
    churn = Event("/e/1", "workload_interfaces.update", workload_hrefs=("/w/mac",))
    assert decide(churn).workload_hrefs == ("/w/mac",)


def test_no_type_is_both_harmless_and_a_label_change():
    assert not HARMLESS_EVENT_TYPES & LABEL_EVENT_TYPES


def test_no_type_that_can_change_a_tag_is_listed_as_harmless():
    can_change_a_tag = {
        "workload.create", "workload.update", "workload.delete", "workload.undelete", "workload.soft_delete",
        "workloads.update", "workloads.bulk_create", "workloads.bulk_update", "workloads.bulk_delete",
        "workloads.set_labels", "workloads.remove_labels", "workloads.unpair", "agent.activate",
        "agent.deactivate", "agents.unpair", "workload_interface.create", "workload_interface.update",
        "workload_interface.delete", "workload_interfaces.update", "label.update", "label.delete",
        "labels.delete", "label_dimension.update", "label_dimension.delete", "event_settings.update",
        "system_task.vacuum_deactivated_agent_and_deleted_workloads",
    }  # fmt: skip
    assert not HARMLESS_EVENT_TYPES & can_change_a_tag
