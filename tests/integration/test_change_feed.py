"""The change feed end to end (docs/change-feed.md): the handler, moto and both emulators.

Every test starts from a first run (a full export, which records the projection and the
watermark), moves the wall clock on a minute, changes the estate through the PCE emulator (which
writes the events a real PCE would), and runs again on the schedule.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from dagsync.core.mapping import map_workloads
from dagsync.core.models import Workload, count_pairs
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from tests.faults.harness import Seams, install_seams, table_items
from tests.integration.conftest import ClientSetup, small_estate, workload
from tests.integration.test_sync import ours, sent_pairs
from tests.support.clock import FakeClock

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEDULED = json.loads((EVENTS / "scheduled.json").read_text())
LABEL_KEYS = frozenset({"role", "app", "env", "loc"})


@pytest.fixture
def wall() -> FakeClock:
    """The wall clock of the PCE's event timestamps and of the feed's watermark."""
    return FakeClock()


@pytest.fixture
def pce(wall: FakeClock) -> PceEmulator:
    estate = [
        *small_estate(),
        # Two workloads on one address: its tags are the union of both (docs/mapping.md#shared-addresses).
        workload("vip-a", {"role": "Web", "app": "Billing"}, ["10.9.0.1"], managed=False),
        workload("vip-b", {"role": "Web", "app": "Billing"}, ["10.9.0.1"], managed=False),
    ]
    emulator = PceEmulator(workloads=estate, clock=wall)
    emulator.retry_after = 0
    emulator.running_polls = 0
    return emulator


@pytest.fixture(autouse=True)
def feed_clock(fast_retries: ClientSetup, wall: FakeClock) -> None:
    fast_retries.configure(wall_clock=wall)


@pytest.fixture
def primed(deployment: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock) -> Any:
    """A deployment after its first run (a full export), the logs cleared, a minute later."""
    first = deployment.invoke(SCHEDULED)
    assert (first["status"], first["source"]) == ("ok", "export")
    wall.advance(60)
    pce.clear_log()
    panos.clear_log()
    return deployment


def desired_of(pce: PceEmulator, prefix: str = "illumio.") -> dict[str, frozenset[str]]:
    """The pairs the mapping rules ask for, from the emulator's own workload objects."""
    workloads = [
        Workload(
            href=w["href"],
            labels=tuple((label["key"], label["value"]) for label in w.get("labels") or ()),
            addresses=tuple(i["address"] for i in w.get("interfaces") or () if i.get("address")),
        )
        for w in pce.workloads
        if not w.get("deleted")
    ]
    return map_workloads(workloads, prefix=prefix, label_keys=LABEL_KEYS, include_ipv6=True).desired


def href(name: str) -> str:
    return f"/orgs/1/workloads/{name}"


def sent(panos: PanosEmulator) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    return sent_pairs(panos, "register"), sent_pairs(panos, "unregister")


def test_no_relevant_event_costs_one_pce_request_one_canary_call_and_only_the_watermark(
    primed: Any, pce: PceEmulator, panos: PanosEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seams = Seams()
    install_seams(monkeypatch, seams)
    pce.emit_user_session()
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "none")
    assert summary["events_seen"] == 4
    assert [request.path for request in pce.requests] == ["/api/v2/orgs/1/events"]
    assert pce.jobs_created == 1  # the first run's
    assert (panos.ha_queries(), len(panos.non_ha_requests())) == (1, 1)
    dynamodb = [label for label in seams.trace if label.startswith("dynamodb")]
    assert dynamodb in (["dynamodb GetItem"], ["dynamodb GetItem", "dynamodb PutItem"])


def test_a_quiet_run_after_a_quiet_run_writes_nothing(
    primed: Any, pce: PceEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    primed.invoke(SCHEDULED)
    seams = Seams()
    install_seams(monkeypatch, seams)
    summary = primed.invoke(SCHEDULED)
    assert summary["source"] == "none"
    assert [label for label in seams.trace if label.startswith("dynamodb")] == ["dynamodb GetItem"]


def test_a_quiet_run_reports_the_estate_as_the_last_export_counted_it(primed: Any, pce: PceEmulator) -> None:
    summary = primed.invoke(SCHEDULED)
    assert summary["source"] == "none"
    assert summary["workloads"] == len(pce.workloads)
    assert summary["pairs"] == count_pairs(desired_of(pce))


def test_a_targeted_update_reports_the_pairs_of_the_whole_estate(primed: Any, pce: PceEmulator) -> None:
    pce.upsert_workload(workload("new1", {"role": "Web", "app": "Billing"}, ["10.1.9.9"]))
    summary = primed.invoke(SCHEDULED)
    assert summary["source"] == "events"
    assert summary["pairs"] == count_pairs(desired_of(pce))
    assert summary["workloads"] == len(pce.workloads)
    assert primed.invoke(SCHEDULED)["pairs"] == count_pairs(desired_of(pce))


def test_a_relabel_reaches_the_device_through_the_feed_sending_only_its_pairs(
    primed: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.relabel(href("web1"), "env", "Quarantine")
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"], summary["workloads_fetched"]) == ("ok", "events", 1)
    assert summary["event_to_device_seconds"] >= 0
    assert pce.jobs_created == 1
    assert ours(panos.table()) == desired_of(pce)
    assert sent(panos) == (
        {("10.1.0.1", "illumio.env.Quarantine")},
        {("10.1.0.1", "illumio.env.Development")},
    )


def test_an_ip_move_through_the_feed_moves_the_pairs(
    primed: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.set_addresses(href("web2"), ["10.1.0.22"])
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "events")
    assert pce.jobs_created == 1
    assert ours(panos.table()) == desired_of(pce)
    registered, unregistered = sent(panos)
    assert {ip for ip, _ in registered} == {"10.1.0.22"}
    assert {ip for ip, _ in unregistered} == {"10.1.0.2"}


def test_a_new_workload_through_the_feed_registers_its_pairs(
    primed: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.upsert_workload(workload("app9", {"role": "App", "env": "Production"}, ["10.1.0.9"]))
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "events")
    assert pce.jobs_created == 1
    assert ours(panos.table()) == desired_of(pce)
    assert sent(panos) == ({("10.1.0.9", "illumio.role.App"), ("10.1.0.9", "illumio.env.Production")}, set())


def test_a_deleted_workload_through_the_feed_unregisters_its_pairs(
    primed: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.delete_workload(href("lb1"))
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "events")
    assert pce.jobs_created == 1
    assert ours(panos.table()) == desired_of(pce)
    registered, unregistered = sent(panos)
    assert registered == set()
    assert {ip for ip, _ in unregistered} == {"10.1.0.4", "2001:db8::4"}


def test_a_shared_ip_whose_one_workload_is_relabelled_keeps_the_union(
    primed: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.relabel(href("vip-a"), "env", "Quarantine")
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "events")
    assert ours(panos.table())["10.9.0.1"] == frozenset(
        {"illumio.role.Web", "illumio.app.Billing", "illumio.env.Quarantine"}
    )
    assert ours(panos.table()) == desired_of(pce)
    assert sent(panos) == ({("10.9.0.1", "illumio.env.Quarantine")}, set())


@pytest.mark.parametrize("settings", [{"SHARED_IP_POLICY": "skip"}], indirect=True)
def test_a_shared_ip_under_skip_is_withdrawn_when_its_workloads_disagree(
    primed: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.relabel(href("vip-a"), "env", "Quarantine")
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "events")
    assert "10.9.0.1" not in ours(panos.table())
    assert sent(panos)[0] == set()


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return dict(getattr(request, "param", {}))


def test_a_label_rename_makes_a_full_export(primed: Any, pce: PceEmulator, panos: PanosEmulator) -> None:
    ordering = "/orgs/1/labels/app-Ordering"
    pce.labels[ordering] = {"href": ordering, "key": "app", "value": "Ordering"}
    pce.rename_label(ordering, "Orders")
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "export")
    assert pce.jobs_created == 2
    assert ours(panos.table()) == desired_of(pce)


def test_a_label_dimension_change_makes_a_full_export(primed: Any, pce: PceEmulator) -> None:
    pce.update_label_dimension("env", "Environment")
    summary = primed.invoke(SCHEDULED)
    assert summary["source"] == "export"
    assert pce.jobs_created == 2


@pytest.mark.parametrize("settings", [{"MAX_TARGETED_WORKLOADS": "2"}], indirect=True)
def test_a_bulk_relabel_over_the_targeted_limit_makes_a_full_export(
    primed: Any, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.bulk_relabel([href("web1"), href("web2"), href("db1")], "loc", "NYC")
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "export")
    assert ours(panos.table()) == desired_of(pce)


def test_a_full_page_of_events_makes_a_full_export(
    primed: Any, pce: PceEmulator, panos: PanosEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagsync.sync import feed

    monkeypatch.setattr(feed, "DEFAULT_FEED_POLICY", feed.FeedPolicy(max_results=4))
    pce.emit_user_session()
    pce.relabel(href("web1"), "env", "Quarantine")
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "export")
    assert ours(panos.table()) == desired_of(pce)


def test_an_events_api_error_makes_a_full_export(primed: Any, pce: PceEmulator, panos: PanosEmulator) -> None:
    pce.relabel(href("web1"), "env", "Quarantine")
    pce.fault_path, pce.fail_next = "/events", 10
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "export")
    assert ours(panos.table()) == desired_of(pce)


@pytest.mark.parametrize("settings", [{"FULL_EXPORT_MINUTES": "10000"}], indirect=True)
def test_a_watermark_older_than_the_trusted_history_makes_a_full_export(
    primed: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    pce.event_retention = 3600
    wall.advance(7 * 3600)
    pce.relabel(href("web1"), "env", "Quarantine")
    summary = primed.invoke(SCHEDULED)
    assert (summary["status"], summary["source"]) == ("ok", "export")
    assert ours(panos.table()) == desired_of(pce)


def test_an_unknown_event_type_naming_a_workload_fetches_that_workload(primed: Any, pce: PceEmulator) -> None:
    pce.emit_event("workload.teleported", workload_href=href("db1"))
    summary = primed.invoke(SCHEDULED)
    assert (summary["source"], summary["workloads_fetched"]) == ("events", 1)


def test_an_unknown_event_type_naming_no_workload_makes_a_full_export(primed: Any, pce: PceEmulator) -> None:
    pce.emit_event("estate.reshuffled")
    summary = primed.invoke(SCHEDULED)
    assert summary["source"] == "export"


def test_noise_only_sends_nothing(primed: Any, pce: PceEmulator, panos: PanosEmulator) -> None:
    pce.emit_user_session()
    pce.emit_link_local_churn(href("db1"))
    summary = primed.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    assert sent(panos) == (set(), set())
    assert ours(panos.table()) == desired_of(pce)


def test_a_late_indexed_event_inside_the_read_back_window_is_applied(
    primed: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    pce.emit_user_session()
    primed.invoke(SCHEDULED)  # the watermark moves to the session's events
    pce.event_index_delay = 120
    pce.relabel(href("web1"), "env", "Quarantine")
    wall.advance(60)
    assert primed.invoke(SCHEDULED)["source"] == "none"  # not indexed yet
    wall.advance(90)
    summary = primed.invoke(SCHEDULED)
    assert (summary["source"], summary["workloads_fetched"]) == ("events", 1)
    assert ours(panos.table()) == desired_of(pce)


def test_an_event_applied_once_is_not_sent_twice(
    primed: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    pce.relabel(href("web1"), "env", "Quarantine")
    assert primed.invoke(SCHEDULED)["source"] == "events"
    panos.clear_log()
    wall.advance(60)
    summary = primed.invoke(SCHEDULED)
    assert summary["source"] == "none"
    assert sent(panos) == (set(), set())


def test_an_event_older_than_the_last_full_export_is_not_applied_again(
    primed: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    pce.relabel(href("web1"), "env", "Quarantine")
    wall.advance(120)
    assert primed.invoke({})["source"] == "export"
    pce.clear_log()
    wall.advance(60)
    summary = primed.invoke(SCHEDULED)
    assert (summary["source"], summary["workloads_fetched"]) == ("none", 0)
    assert [request.path for request in pce.requests] == ["/api/v2/orgs/1/events"]


def test_an_event_just_before_the_last_full_export_is_applied_again(
    primed: Any, pce: PceEmulator, panos: PanosEmulator, wall: FakeClock
) -> None:
    pce.relabel(href("web1"), "env", "Quarantine")
    wall.advance(30)  # inside the margin for the PCE's clock and ours to differ
    assert primed.invoke({})["source"] == "export"
    panos.clear_log()
    wall.advance(60)
    summary = primed.invoke(SCHEDULED)
    assert (summary["source"], summary["workloads_fetched"]) == ("events", 1)
    assert sent(panos) == (set(), set())


def test_a_manual_run_reads_the_whole_inventory(primed: Any, pce: PceEmulator) -> None:
    assert primed.invoke({})["source"] == "export"


@pytest.mark.parametrize("settings", [{"CHANGE_FEED": "off"}], indirect=True)
def test_with_the_feed_off_every_run_is_a_full_export_and_reads_no_events(
    deployment: Any, pce: PceEmulator, panos: PanosEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.invoke(SCHEDULED)
    pce.relabel(href("web1"), "env", "Quarantine")
    summary = deployment.invoke(SCHEDULED)
    assert summary["status"] == "ok" and "source" not in summary
    assert pce.count("/events") == 0
    assert pce.jobs_created == 2
    assert not [item for item in table_items(deployment) if item["pk"]["S"].startswith("feed#")]
    assert ours(panos.table()) == desired_of(pce)
