"""SPEC §6 telemetry: EMF metrics in namespace DagSync, per target and per run."""

import json

from dagsync.observability import metrics, publish_metrics
from dagsync.result import RunResult, TargetResult


def emf_blobs(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_per_target_metrics_carry_the_target_dimension(capsys):
    result = RunResult(mode="sync", dry_run=False, workloads=3, pairs=9)
    result.targets.append(TargetResult(target="pano/0071/vsys1", registered=5, unregistered=2, api_calls=3))
    publish_metrics(result)
    metrics.flush_metrics()
    blobs = emf_blobs(capsys.readouterr().out)
    per_target = next(b for b in blobs if "Target" in b)
    assert per_target["Target"] == "pano/0071/vsys1"
    assert per_target["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DagSync"
    assert (per_target["PairsRegistered"], per_target["PairsUnregistered"], per_target["ApiCalls"]) == (
        [5.0],
        [2.0],
        [3.0],
    )
    assert {"DriftRepaired", "Blocked", "Failed"} <= set(per_target)


def test_run_metrics_count_workloads_pairs_and_failures(capsys):
    result = RunResult(mode="sync", dry_run=False, workloads=3, pairs=9)
    result.targets += [TargetResult(target="a", status="failed"), TargetResult(target="b", status="blocked")]
    publish_metrics(result)
    metrics.flush_metrics()
    run = next(b for b in emf_blobs(capsys.readouterr().out) if "Target" not in b)
    assert (run["Workloads"], run["Pairs"], run["Failed"], run["Blocked"], run["SuccessfulRuns"]) == (
        [3.0],
        [9.0],
        [1.0],
        [1.0],
        [0.0],
    )


def test_a_run_that_failed_before_any_target_counts_as_failed(capsys):
    publish_metrics(RunResult(mode="sync", dry_run=False, error="PCE job failed"))
    metrics.flush_metrics()
    run = emf_blobs(capsys.readouterr().out)[-1]
    assert run["Failed"] == [1.0]
