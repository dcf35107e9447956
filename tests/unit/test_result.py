"""docs/results.md#summary and docs/results.md#statuses: what a run reports, and when it raises."""

import pytest

from dagsync.core.result import DagChange, RunResult, TargetResult

DOCUMENTED_RUN_KEYS = {
    "status",
    "mode",
    "dry_run",
    "unfinished",
    "workloads",
    "pairs",
    "targets",
    "warnings",
    "duration_ms",
}
DOCUMENTED_TARGET_KEYS = {"target", "status", "registered", "unregistered", "api_calls", "drift_repaired"}
WORST_FIRST = ["failed", "partial", "blocked", "incomplete", "conflict", "ok"]


def run_with(*targets: TargetResult, **fields) -> RunResult:
    return RunResult(mode="sync", dry_run=False, targets=list(targets), **fields)


@pytest.mark.parametrize(
    ("worse", "better"),
    [
        (WORST_FIRST[i], WORST_FIRST[j])
        for i in range(len(WORST_FIRST))
        for j in range(i + 1, len(WORST_FIRST))
    ],
)
def test_the_run_takes_the_worst_status_of_its_targets(worse, better):
    result = run_with(TargetResult("a", status=better), TargetResult("b", status=worse))
    assert result.status == worse


def test_a_run_without_targets_is_ok():
    assert run_with().status == "ok"


def test_a_run_error_makes_the_run_failed_and_raise():
    result = run_with(error="PCE job failed")
    assert (result.status, result.failures) == ("failed", ["PCE job failed"])


@pytest.mark.parametrize("status", ["failed", "partial"])
def test_failed_and_partial_targets_make_the_run_raise(status):
    result = run_with(TargetResult("fw1", status=status, error="boom"), TargetResult("fw2"))
    assert result.should_raise
    assert result.failures == [f"fw1: {status}: boom"]


@pytest.mark.parametrize("status", ["ok", "blocked", "incomplete", "conflict"])
def test_other_statuses_do_not_raise(status):
    assert not run_with(
        TargetResult("fw1", status=status, conflict_seconds=10.0), stuck_after_seconds=1800.0
    ).should_raise


def test_a_conflict_held_longer_than_the_stuck_limit_raises_naming_the_target():
    target = TargetResult("fw1", status="conflict", conflict_seconds=1801.0)
    result = run_with(target, stuck_after_seconds=1800.0)
    assert result.stuck_targets == [target]
    (failure,) = result.failures
    assert failure.startswith("fw1: another run's lease has been held for 1801 s, more than 1800 s")


def test_a_conflict_is_never_stuck_without_a_limit_or_a_duration():
    assert not run_with(TargetResult("fw1", status="conflict", conflict_seconds=10**6)).should_raise
    assert not run_with(TargetResult("fw1", status="conflict"), stuck_after_seconds=1.0).should_raise


def test_an_ordinary_summary_has_only_the_documented_keys():
    summary = run_with(TargetResult("fw1", registered=3)).to_dict()
    assert set(summary) == DOCUMENTED_RUN_KEYS
    assert set(summary["targets"][0]) == DOCUMENTED_TARGET_KEYS


def test_the_run_reports_its_source_and_what_the_feed_read():
    summary = run_with(
        source="events", events_seen=4, workloads_fetched=1, event_to_device_seconds=2.5
    ).to_dict()
    assert (summary["source"], summary["events_seen"], summary["workloads_fetched"]) == ("events", 4, 1)
    assert summary["event_to_device_seconds"] == 2.5


def test_a_forced_run_says_so_and_an_ordinary_one_is_silent():
    assert run_with(forced=True).to_dict()["forced"] is True
    assert "forced" not in run_with(forced=False).to_dict()


def test_shared_ip_conflicts_appear_only_when_there_are_some():
    assert run_with(shared_ip_conflicts=3).to_dict()["shared_ip_conflicts"] == 3
    assert "shared_ip_conflicts" not in run_with().to_dict()


def test_an_incomplete_target_reports_what_remains():
    target = TargetResult("fw1", status="incomplete", registered=500, remaining=1200).to_dict()
    assert (target["status"], target["remaining"]) == ("incomplete", 1200)


def test_a_target_that_is_not_ok_reports_how_long_since_it_last_was():
    assert (
        TargetResult("fw1", status="failed", last_sync_age_seconds=600.0).to_dict()["last_sync_age_seconds"]
        == 600.0
    )
    assert "last_sync_age_seconds" not in TargetResult("fw1", last_sync_age_seconds=0.0).to_dict()


def test_a_conflict_reports_how_long_the_lease_has_been_held():
    assert TargetResult("fw1", status="conflict", conflict_seconds=42.0).to_dict()["conflict_seconds"] == 42.0


def test_dag_changes_are_reported_in_the_documented_shape():
    change = DagChange(dag="quarantine", filter="'illumio.env.Quarantine'", joins=["10.10.1.11"])
    target = TargetResult("fw1", dag_changes=[change]).to_dict()
    assert target["dag_changes"] == [
        {
            "dag": "quarantine",
            "filter": "'illumio.env.Quarantine'",
            "joins": ["10.10.1.11"],
            "leaves": [],
            "evaluable": True,
        }
    ]


def test_a_dag_change_names_hosts_where_known_and_says_when_it_cannot_evaluate():
    known = DagChange(
        dag="web", filter="'illumio.role.Web'", leaves=["10.0.0.1"], hostnames={"10.0.0.1": "web1"}
    )
    unknown = DagChange(dag="odd", filter="'a' and (", evaluable=False)
    assert known.to_dict()["hostnames"] == {"10.0.0.1": "web1"}
    assert unknown.to_dict()["evaluable"] is False
    assert "hostnames" not in unknown.to_dict()
