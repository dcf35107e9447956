"""The PCE emulator's events API and single-workload reads, and the events its estate changes write.

Plain `requests` against the loopback server, time from a fake clock (docs/protocols.md#pce-events).
"""

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators.estate import generate_estate
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer
from tests.support.clock import FakeClock
from tests.support.pce import ORG, interface, workload

EVENTS = f"/orgs/{ORG}/events"
W1 = f"/orgs/{ORG}/workloads/w1"
W2 = f"/orgs/{ORG}/workloads/w2"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def clock(pce: PceEmulator) -> FakeClock:
    clock = FakeClock(start=1_780_000_000.0)  # 2026-05-28T20:26:40Z
    pce.clock = clock
    return clock


@pytest.fixture
def http(pce: PceEmulator) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        session.auth = (pce.auth_username, pce.secret)
        session.headers["Accept"] = "application/json"
        yield session


@pytest.fixture
def get(server: LoopbackServer, http: requests.Session, clock: FakeClock) -> Any:
    def get(path: str, **params: Any) -> requests.Response:
        return http.get(f"{server.url}/api/v2{path}", params=params, timeout=10)

    return get


def _managed(pce: PceEmulator, uid: str, *addresses: str, **labels: str) -> dict[str, Any]:
    """A VEN-managed workload, with the ven and agent references a real one carries."""
    return workload(
        pce,
        uid,
        *addresses,
        labels=labels,
        ven={"href": f"/orgs/{ORG}/vens/{uid}", "hostname": f"{uid}.example.internal"},
        agent={"href": f"/orgs/{ORG}/agents/{uid}"},
    )


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [event["event_type"] for event in events]


def _named_workloads(event: dict[str, Any]) -> list[str]:
    return [change["resource"]["workload"]["href"] for change in event["resource_changes"]]


def _page(get: Any, **params: Any) -> list[dict[str, Any]]:
    response = get(EVENTS, **params)
    assert response.status_code == 200
    page: list[dict[str, Any]] = response.json()
    return page


# -- the events API ------------------------------------------------------------------------------


def test_events_are_served_newest_first(pce: PceEmulator, get: Any, clock: FakeClock) -> None:
    for name in ("first.event", "second.event", "third.event"):
        pce.emit_event(name)
        clock.advance(1)

    assert _types(_page(get)) == ["third.event", "second.event", "first.event"]


def test_events_written_in_the_same_millisecond_are_served_latest_first(pce: PceEmulator, get: Any) -> None:
    pce.emit_event("first.event")
    pce.emit_event("second.event")

    assert _types(_page(get)) == ["second.event", "first.event"]


def test_an_event_has_the_shape_of_a_captured_one(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([_managed(pce, "w1", "10.0.0.1", env="Production")])
    pce.set_addresses(W1, ["10.0.0.2"])

    event = _page(get, event_type="workload_interfaces.update")[0]

    assert list(event) == [
        "href",
        "timestamp",
        "pce_fqdn",
        "created_by",
        "event_type",
        "status",
        "severity",
        "action",
        "resource_changes",
        "notifications",
    ]
    assert event["href"].startswith(f"/orgs/{ORG}/events/")
    assert TIMESTAMP.match(event["timestamp"])
    assert (event["status"], event["severity"], event["notifications"]) == ("success", "info", [])
    assert set(event["action"]) == {"uuid", "api_endpoint", "api_method", "http_status_code", "src_ip"}
    change = event["resource_changes"][0]
    assert set(change) == {"uuid", "resource", "changes", "change_type"}
    assert change["resource"]["workload"]["labels"] == [
        {"href": f"/orgs/{ORG}/labels/1", "key": "env", "value": "Production"}
    ]


def test_event_timestamps_come_from_the_clock(pce: PceEmulator, get: Any, clock: FakeClock) -> None:
    clock.advance(0.4567)

    pce.emit_event("some.event")

    assert _page(get)[0]["timestamp"] == "2026-05-28T20:26:40.456Z"


def test_timestamp_gte_keeps_events_at_or_after_it(pce: PceEmulator, get: Any, clock: FakeClock) -> None:
    pce.emit_event("before.event")
    clock.advance(10)
    pce.emit_event("at.event")
    clock.advance(10)
    pce.emit_event("after.event")

    page = _page(get, **{"timestamp[gte]": "2026-05-28T20:26:50.000Z"})

    assert _types(page) == ["after.event", "at.event"]


def test_timestamp_lte_keeps_events_at_or_before_it(pce: PceEmulator, get: Any, clock: FakeClock) -> None:
    pce.emit_event("before.event")
    clock.advance(10)
    pce.emit_event("at.event")
    clock.advance(10)
    pce.emit_event("after.event")

    page = _page(get, **{"timestamp[lte]": "2026-05-28T22:26:50+02:00"})

    assert _types(page) == ["at.event", "before.event"]


def test_timestamp_without_a_utc_offset_is_refused(get: Any) -> None:
    response = get(EVENTS, **{"timestamp[gte]": "2026-05-28T20:26:50"})

    assert response.status_code == 406
    assert response.json()[0]["token"] == "not_acceptable_error"


def test_event_type_filter_keeps_that_type_only(pce: PceEmulator, get: Any) -> None:
    pce.emit_event("label.update")
    pce.emit_event("workload.update")

    assert _types(_page(get, event_type="label.update")) == ["label.update"]


def test_status_filter_nil_selects_events_without_a_status(pce: PceEmulator, get: Any) -> None:
    pce.emit_event("no.status", status=None)
    pce.emit_event("failed.one", status="failure")
    pce.emit_event("fine.one")

    assert _types(_page(get, status="nil")) == ["no.status"]
    assert _types(_page(get, status="failure")) == ["failed.one"]


def test_severity_filter_keeps_that_severity_only(pce: PceEmulator, get: Any) -> None:
    pce.emit_event("loud.one", severity="err")
    pce.emit_event("quiet.one")

    assert _types(_page(get, severity="err")) == ["loud.one"]


def test_max_results_defaults_to_100(pce: PceEmulator, get: Any) -> None:
    for _ in range(120):
        pce.emit_event("some.event")

    assert len(_page(get)) == 100


def test_max_results_keeps_the_newest(pce: PceEmulator, get: Any, clock: FakeClock) -> None:
    for n in range(5):
        pce.emit_event(f"event.{n}")
        clock.advance(1)

    assert _types(_page(get, max_results=2)) == ["event.4", "event.3"]


def test_max_results_above_10000_is_cut_to_10000_without_a_word(pce: PceEmulator, get: Any) -> None:
    for _ in range(10_001):
        pce.emit_event("some.event")

    assert len(_page(get, max_results=20_000)) == 10_000


def test_max_results_that_is_not_a_number_is_refused(get: Any) -> None:
    response = get(EVENTS, max_results="many")

    assert response.status_code == 406


def test_events_api_is_read_only(server: LoopbackServer, http: requests.Session) -> None:
    response = http.post(f"{server.url}/api/v2{EVENTS}", json=[], timeout=10)

    assert response.status_code == 405
    assert response.json()[0]["token"] == "method_not_allowed_error"


def test_reading_events_and_workloads_writes_no_event(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    written = len(pce.events)

    get(EVENTS)
    get(W1)
    get(f"/orgs/{ORG}/workloads")

    assert len(pce.events) == written


def test_events_api_answers_a_server_error_when_faulted(pce: PceEmulator, get: Any) -> None:
    pce.fault_path = "/events"
    pce.fail_next = 1

    statuses = [get(EVENTS).status_code, get(f"/orgs/{ORG}/workloads").status_code, get(EVENTS).status_code]

    assert statuses == [503, 200, 200]


def test_events_api_answers_429_when_rate_limited(pce: PceEmulator, get: Any) -> None:
    pce.fault_path = "/events"
    pce.rate_limit_next = 1

    response = get(EVENTS)

    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_events_requests_count_toward_the_per_minute_limit(pce: PceEmulator, get: Any) -> None:
    pce.requests_per_minute = 2
    get(EVENTS)
    get(W1)

    assert get(EVENTS).status_code == 429


# -- time: indexing delay and retention ----------------------------------------------------------


def test_an_event_indexed_late_shows_only_after_the_delay(
    pce: PceEmulator, get: Any, clock: FakeClock
) -> None:
    pce.event_index_delay = 30
    pce.emit_event("late.event")
    clock.advance(29)

    hidden = _page(get)
    clock.advance(1)

    assert hidden == []
    assert _types(_page(get)) == ["late.event"]


def test_a_late_event_shows_at_its_own_time_behind_newer_ones(
    pce: PceEmulator, get: Any, clock: FakeClock
) -> None:
    pce.event_index_delay = 30
    pce.emit_event("late.event")
    pce.event_index_delay = 0
    clock.advance(10)
    pce.emit_event("prompt.event")
    clock.advance(25)

    assert _types(_page(get, **{"timestamp[gte]": "2026-05-28T20:26:45Z"})) == ["prompt.event"]
    assert _types(_page(get)) == ["prompt.event", "late.event"]


def test_events_older_than_the_retention_are_dropped_for_good(
    pce: PceEmulator, get: Any, clock: FakeClock
) -> None:
    pce.emit_event("old.event")
    clock.advance(3600)
    pce.emit_event("recent.event")
    pce.event_retention = 1800

    pruned = _types(_page(get))
    pce.event_retention = None

    assert pruned == ["recent.event"]
    assert _types(_page(get)) == ["recent.event"]


# -- one workload --------------------------------------------------------------------------------


def test_one_workload_is_served_by_its_id(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1"), workload(pce, "w2", "10.0.0.2")])

    response = get(W2)

    assert response.status_code == 200
    assert response.json() == pce.workload(W2)


def test_an_unknown_workload_answers_404(get: Any) -> None:
    response = get(f"/orgs/{ORG}/workloads/nobody")

    assert response.status_code == 404
    assert response.json()[0]["token"] == "not_found_error"


def test_a_deleted_workload_answers_404(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.delete_workload(W1)

    assert get(W1).status_code == 404


def test_a_soft_deleted_workload_answers_with_deleted_true(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.delete_workload(W1, soft=True)

    response = get(W1)

    assert response.status_code == 200
    assert response.json()["deleted"] is True


def test_one_workload_carries_label_hrefs_only_in_href_label_mode(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})])
    pce.set_label_mode("href")

    assert get(W1).json()["labels"] == [{"href": f"/orgs/{ORG}/labels/1"}]


# -- estate changes write their events -----------------------------------------------------------


def test_relabel_writes_workload_update_with_the_labels_it_swapped(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production", "role": "Web"})])
    production = pce.add_label("env", "Production")["href"]
    quarantine = pce.add_label("env", "Quarantine")["href"]

    pce.relabel(W1, "env", "Quarantine")

    event = _page(get)[0]
    assert event["event_type"] == "workload.update"
    assert event["created_by"] == {"user": {"href": "/users/1", "username": "admin@example.com"}}
    assert _named_workloads(event) == [W1]
    assert event["resource_changes"][0]["changes"] == {
        "labels": {"created": [{"href": quarantine}], "deleted": [{"href": production}]}
    }


def test_relabel_to_a_label_that_does_not_exist_yet_creates_it_first(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})])

    pce.relabel(W1, "env", "Quarantine")

    assert _types(_page(get, max_results=2)) == ["workload.update", "label.create"]


def test_relabel_to_the_label_it_has_writes_no_event(pce: PceEmulator) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})])
    written = len(pce.events)

    pce.relabel(W1, "env", "Production")

    assert len(pce.events) == written


def test_ip_move_of_a_managed_workload_is_reported_by_its_ven(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([_managed(pce, "w1", "10.0.0.1", env="Production")])

    pce.set_addresses(W1, ["10.0.0.9"])

    event = _page(get)[0]
    assert event["event_type"] == "workload_interfaces.update"
    assert event["created_by"]["ven"]["href"] == f"/orgs/{ORG}/vens/w1"
    assert _named_workloads(event) == [W1]
    updated = event["resource_changes"][0]["changes"]["workload_interfaces"]["updated"]
    assert [entry["changes"]["address"] for entry in updated] == [{"before": "10.0.0.1", "after": "10.0.0.9"}]
    assert updated[0]["resource"]["href"] == f"{W1}/interfaces/eth0"


def test_ip_move_of_an_unmanaged_workload_is_a_workload_update_by_a_user(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", managed=False)])

    pce.set_addresses(W1, ["10.0.0.9", "10.0.0.10"])

    event = _page(get)[0]
    assert (event["event_type"], list(event["created_by"])) == ("workload.update", ["user"])
    interfaces = event["resource_changes"][0]["changes"]["interfaces"]
    assert [entry["address"] for entry in interfaces["created"]] == ["10.0.0.10"]
    assert interfaces["updated"][0]["changes"]["address"] == {"before": "10.0.0.1", "after": "10.0.0.9"}


def test_a_new_workload_writes_workload_create(pce: PceEmulator, get: Any) -> None:
    pce.upsert_workload(workload(pce, "w1", "10.0.0.1"))

    event = _page(get, event_type="workload.create")[0]

    assert _named_workloads(event) == [W1]
    assert event["resource_changes"][0]["change_type"] == "create"


def test_replacing_a_workload_writes_workload_update_with_what_changed(pce: PceEmulator, get: Any) -> None:
    pce.upsert_workload(workload(pce, "w1", "10.0.0.1"))

    pce.upsert_workload(workload(pce, "w1", "10.0.0.1", hostname="renamed"))

    event = _page(get)[0]
    assert event["event_type"] == "workload.update"
    assert event["resource_changes"][0]["changes"] == {
        "hostname": {"before": "w1.example.internal", "after": "renamed"}
    }


def test_a_deleted_workload_writes_workload_delete(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])

    pce.delete_workload(W1)

    event = _page(get)[0]
    assert event["event_type"] == "workload.delete"
    assert _named_workloads(event) == [W1]
    assert event["resource_changes"][0]["change_type"] == "delete"


def test_a_soft_delete_writes_workload_soft_delete(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])

    pce.delete_workload(W1, soft=True)

    assert _types(_page(get, max_results=1)) == ["workload.soft_delete"]


def test_a_deleted_workload_added_again_writes_workload_undelete(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.delete_workload(W1, soft=True)

    pce.upsert_workload(workload(pce, "w1", "10.0.0.1"))

    assert _types(_page(get, max_results=1)) == ["workload.undelete"]
    assert get(W1).json()["deleted"] is False
    assert [item["href"] for item in get(f"/orgs/{ORG}/workloads", include_deleted="true").json()] == [W1]


def test_label_rename_writes_label_update_naming_no_workload(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Prod"})])
    href = pce.add_label("env", "Prod")["href"]

    pce.rename_label(href, "Production")

    event = _page(get)[0]
    assert event["event_type"] == "label.update"
    assert event["resource_changes"][0]["resource"] == {
        "label": {"href": href, "key": "env", "value": "Production"}
    }
    assert event["resource_changes"][0]["changes"] == {"value": {"before": "Prod", "after": "Production"}}
    assert pce.workload(W1)["labels"] == [{"href": href, "key": "env", "value": "Production"}]


def test_label_dimension_change_writes_label_dimension_update(pce: PceEmulator, get: Any) -> None:
    pce.update_label_dimension("env", "Stage")

    event = _page(get)[0]

    assert event["event_type"] == "label_dimension.update"
    resource = event["resource_changes"][0]["resource"]["label_dimension"]
    assert (resource["key"], resource["display_name"]) == ("env", "Stage")
    assert resource["href"].startswith(f"/orgs/{ORG}/label_dimensions/")


def test_bulk_relabel_writes_one_event_naming_every_workload(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, f"w{n}", f"10.0.0.{n}", labels={"env": "Production"}) for n in range(5)])
    hrefs = [f"/orgs/{ORG}/workloads/w{n}" for n in range(5)]

    pce.bulk_relabel(hrefs, "env", "Quarantine")

    events = _page(get, event_type="workloads.bulk_update")
    assert len(events) == 1
    assert _named_workloads(events[0]) == hrefs
    assert {label["value"] for href in hrefs for label in pce.workload(href)["labels"]} == {"Quarantine"}


def test_bulk_relabel_can_write_an_event_that_names_no_workload(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})])

    pce.bulk_relabel([W1], "env", "Quarantine", itemised=False)

    assert _page(get, event_type="workloads.bulk_update")[0]["resource_changes"] == []


def test_set_workloads_writes_an_event_per_workload_that_differs(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1"), workload(pce, "w2", "10.0.0.2")])
    kept = len(pce.events)

    pce.set_workloads([workload(pce, "w2", "10.0.0.2"), workload(pce, "w3", "10.0.0.3")])

    assert Counter(_types(pce.events[kept:])) == {"workload.create": 1, "workload.delete": 1}


def test_the_constructor_and_load_estate_write_no_events() -> None:
    pce = PceEmulator(workloads=[{"href": W1, "interfaces": [interface("10.0.0.1")]}])

    pce.load_estate(generate_estate(50, seed=1))

    assert pce.events == []


def test_estate_churn_writes_an_event_per_change(pce: PceEmulator) -> None:
    pce.load_estate(generate_estate(300, seed=2))

    report = pce.churn(2.0, seed=3)

    named = Counter(
        (event["event_type"], href)
        for event in pce.events
        for href in _named_workloads(event)
        if event["resource_changes"]
    )
    assert {href for (kind, href) in named if kind == "workload.delete"} == set(report.deleted)
    assert {href for (kind, href) in named if kind == "workload.create"} == set(report.added)
    changed = {href for (kind, href) in named if kind in ("workload.update", "workload_interfaces.update")}
    assert changed == {*report.relabeled, *report.moved}


def test_changing_workloads_directly_writes_no_event(pce: PceEmulator) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    written = len(pce.events)

    pce.workload(W1)["interfaces"] = [interface("10.0.0.2")]

    assert len(pce.events) == written


# -- noise and the unexpected ---------------------------------------------------------------------


def test_a_user_session_writes_sign_in_login_logout_and_session_end(pce: PceEmulator, get: Any) -> None:
    pce.emit_user_session()

    events = _page(get)

    assert sorted(_types(events)) == [
        "user.login",
        "user.logout",
        "user.pce_session_terminated",
        "user.sign_in",
    ]
    assert {event["event_type"]: event["status"] for event in events}["user.pce_session_terminated"] is None


def test_some_events_have_hrefs_outside_the_org(pce: PceEmulator, get: Any) -> None:
    pce.emit_user_session()

    hrefs = {event["event_type"]: event["href"] for event in _page(get)}

    assert hrefs["user.logout"].startswith("/system_events/")
    assert hrefs["user.login"].startswith(f"/orgs/{ORG}/events/")


def test_link_local_churn_changes_only_a_link_local_address(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([_managed(pce, "w1", "10.0.0.1", "fe80::1", env="Production")])

    pce.emit_link_local_churn(W1)

    event = _page(get)[0]
    assert event["event_type"] == "workload_interfaces.update"
    updated = event["resource_changes"][0]["changes"]["workload_interfaces"]
    assert list(updated) == ["updated"]
    assert [list(entry["changes"]) for entry in updated["updated"]] == [["address"]]
    change = updated["updated"][0]["changes"]["address"]
    assert change["before"] == "fe80::1" and change["after"].startswith("fe80::")
    assert [item["address"] for item in pce.workload(W1)["interfaces"]] == ["10.0.0.1", change["after"]]


def test_link_local_churn_adds_a_link_local_address_to_a_workload_without_one(
    pce: PceEmulator, get: Any
) -> None:
    pce.set_workloads([_managed(pce, "w1", "10.0.0.1")])

    pce.emit_link_local_churn(W1)

    created = _page(get)[0]["resource_changes"][0]["changes"]["workload_interfaces"]["created"]
    assert [entry["address"].startswith("fe80::") for entry in created] == [True]


def test_an_event_of_an_unknown_type_can_name_a_workload(pce: PceEmulator, get: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])

    pce.emit_event("workload.teleport", workload_href=W1)

    event = _page(get)[0]
    assert (event["event_type"], _named_workloads(event)) == ("workload.teleport", [W1])


def test_an_event_of_an_unknown_type_can_name_nothing_and_live_outside_the_org(
    pce: PceEmulator, get: Any
) -> None:
    pce.emit_event("quantum.flux", system_href=True)

    event = _page(get)[0]
    assert (event["resource_changes"], event["created_by"]) == ([], {"system": {}})
    assert event["href"].startswith("/system_events/")
