"""docs/results.md#metrics: EMF metrics in namespace DagSync, per target and per run."""

import io
import json
import logging

import pytest

from dagsync.core.invocation import SyncRequest
from dagsync.core.result import RunResult, TargetResult
from dagsync.edges.observability import SERVICE, logger, metrics, publish_metrics, run_log_keys

PER_TARGET = {
    "PairsRegistered",
    "PairsUnregistered",
    "ApiCalls",
    "DriftRepaired",
    "Blocked",
    "Failed",
    "Conflict",
    "Incomplete",
}


def emf_blobs(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def published(capsys, result: RunResult) -> tuple[dict, dict[str, dict]]:
    """The run-level blob and the per-target blobs by target name."""
    publish_metrics(result)
    metrics.flush_metrics()
    blobs = emf_blobs(capsys.readouterr().out)
    run = next(b for b in blobs if "Target" not in b)
    return run, {b["Target"]: b for b in blobs if "Target" in b}


def test_per_target_metrics_carry_the_target_dimension(capsys):
    result = RunResult(mode="sync", dry_run=False, workloads=3, pairs=9)
    result.targets.append(TargetResult(target="pano/0071/vsys1", registered=5, unregistered=2, api_calls=3))
    _, targets = published(capsys, result)
    per_target = targets["pano/0071/vsys1"]
    assert per_target["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DagSync"
    assert (per_target["PairsRegistered"], per_target["PairsUnregistered"], per_target["ApiCalls"]) == (
        [5.0],
        [2.0],
        [3.0],
    )
    assert set(per_target) >= PER_TARGET


def test_run_metrics_count_workloads_pairs_and_failures(capsys):
    result = RunResult(mode="sync", dry_run=False, workloads=3, pairs=9)
    result.targets += [TargetResult(target="a", status="failed"), TargetResult(target="b", status="blocked")]
    run, _ = published(capsys, result)
    assert (run["Workloads"], run["Pairs"], run["Failed"], run["Blocked"], run["SuccessfulRuns"]) == (
        [3.0],
        [9.0],
        [1.0],
        [1.0],
        [0.0],
    )


def test_a_run_that_failed_before_any_target_counts_as_failed(capsys):
    run, _ = published(capsys, RunResult(mode="sync", dry_run=False, error="PCE job failed"))
    assert run["Failed"] == [1.0]


def test_shared_ip_conflicts_are_counted_per_run(capsys):
    run, _ = published(capsys, RunResult(mode="sync", dry_run=False, shared_ip_conflicts=4))
    assert run["SharedIpConflicts"] == [4.0]


def test_an_incomplete_target_is_counted_and_does_not_fail_the_run(capsys):
    result = RunResult(
        mode="sync", dry_run=False, targets=[TargetResult("fw1", status="incomplete", remaining=9)]
    )
    run, targets = published(capsys, result)
    assert (targets["fw1"]["Incomplete"], targets["fw1"]["Failed"]) == ([1.0], [0.0])
    assert (run["Incomplete"], run["SuccessfulRuns"]) == ([1.0], [1.0])


def test_conflict_counts_only_a_stuck_lease(capsys):
    result = RunResult(
        mode="sync",
        dry_run=False,
        targets=[
            TargetResult("busy", status="conflict", conflict_seconds=60.0),
            TargetResult("stuck", status="conflict", conflict_seconds=4000.0),
        ],
        stuck_after_seconds=1800.0,
    )
    run, targets = published(capsys, result)
    assert (targets["busy"]["Conflict"], targets["stuck"]["Conflict"]) == ([0.0], [1.0])
    assert (run["Conflict"], run["SuccessfulRuns"]) == ([1.0], [0.0])


def test_last_sync_age_is_published_per_target_and_the_stalest_per_run(capsys):
    result = RunResult(
        mode="sync",
        dry_run=False,
        targets=[
            TargetResult("fresh", last_sync_age_seconds=0.0),
            TargetResult("stale", status="failed", last_sync_age_seconds=5400.0),
            TargetResult("unknown"),
        ],
    )
    run, targets = published(capsys, result)
    assert (targets["fresh"]["LastSyncAgeSeconds"], targets["stale"]["LastSyncAgeSeconds"]) == (
        [0.0],
        [5400.0],
    )
    assert "LastSyncAgeSeconds" not in targets["unknown"]
    assert run["LastSyncAgeSeconds"] == [5400.0]
    units = {m["Name"]: m["Unit"] for m in targets["stale"]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["LastSyncAgeSeconds"] == "Seconds"


def test_event_to_device_time_is_published_only_for_event_driven_runs(capsys):
    run, _ = published(
        capsys, RunResult(mode="sync", dry_run=False, source="events", event_to_device_seconds=7.5)
    )
    assert run["EventToDeviceSeconds"] == [7.5]
    run, _ = published(capsys, RunResult(mode="sync", dry_run=False, source="export"))
    assert "EventToDeviceSeconds" not in run


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    service_logger = logging.getLogger(SERVICE)
    service_logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    service_logger.removeHandler(handler)


def test_every_log_line_of_a_forced_run_says_so(log_stream):
    with run_log_keys(SyncRequest(force=True)):
        logger.info("one")
        logger.warning("two")
    lines = log_stream()
    assert [line["forced"] for line in lines] == [True, True]
    assert {(line["trigger"], line["mode"]) for line in lines} == {("manual", "sync")}


def test_the_keys_of_a_run_end_with_it(log_stream):
    with run_log_keys(SyncRequest(force=True, mode="reconcile", trigger="manual")):
        pass
    with run_log_keys(SyncRequest(trigger="schedule")):
        logger.info("scheduled")
    logger.info("after")
    scheduled, after = log_stream()
    assert "forced" not in scheduled and scheduled["trigger"] == "schedule"
    assert not {"forced", "trigger", "mode"} & set(after)
