"""docs/invocation.md: accepted and rejected invocation events."""

import json
from pathlib import Path

import pytest

from dagsync.core.errors import EventError
from dagsync.core.invocation import SyncRequest, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str):
    return json.loads((EVENTS / name).read_text())


def test_scheduled_event_file_is_a_normal_sync():
    assert parse_event(load("scheduled.json")) == SyncRequest(mode="sync", trigger="schedule")


def test_dry_run_event_file_asks_for_a_dry_run():
    assert parse_event(load("manual-dry-run.json")).dry_run


def test_force_event_file_asks_for_force():
    assert parse_event(load("manual-force.json")).force


def test_reconcile_event_file_asks_for_reconcile():
    assert parse_event(load("manual-reconcile.json")).mode == "reconcile"


def test_empty_object_is_a_manual_sync():
    assert parse_event({}) == SyncRequest()


def test_scheduler_payload_is_a_sync():
    assert parse_event({"mode": "sync"}).mode == "sync"


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({"dry_run": "true"}, "dry_run"),
        ({"force": 1}, "force"),
        ({"mode": "full"}, "mode"),
        ({"dryrun": True}, "dryrun"),
        ([], "JSON object"),
    ],
)
def test_bad_manual_events_are_rejected_naming_the_problem(event, fragment):
    with pytest.raises(EventError, match=fragment):
        parse_event(event)


def test_scheduled_event_without_version_is_rejected():
    event = load("scheduled.json")
    del event["version"]
    with pytest.raises(EventError, match="version"):
        parse_event(event)


def test_scheduled_event_detail_can_ask_for_a_reconcile():
    event = {**load("scheduled.json"), "detail": {"mode": "reconcile"}}
    assert parse_event(event) == SyncRequest(mode="reconcile", trigger="schedule")


def test_scheduled_event_detail_with_unknown_keys_is_rejected():
    event = {**load("scheduled.json"), "detail": {"mode": "reconcile", "purge": True}}
    with pytest.raises(EventError, match="purge"):
        parse_event(event)


@pytest.mark.parametrize("force", [True, False])
def test_force_on_a_scheduled_event_is_rejected(force):
    event = {**load("scheduled.json"), "detail": {"force": force}}
    with pytest.raises(EventError, match="force is accepted only on manual events, never on a scheduled one"):
        parse_event(event)


def test_a_scheduled_event_never_asks_for_force():
    assert not parse_event(load("scheduled.json")).force
