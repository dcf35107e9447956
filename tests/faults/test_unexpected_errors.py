"""docs/results.md#summary: an error nobody expected still ends in a summary and metrics."""

import json

import pytest

from app import RunFailed


def test_an_unexpected_error_while_reading_the_inventory_ends_in_a_failed_summary_and_metrics(
    deployment, seams, log_lines, capsys
):
    seams.crash_after(0, "exception", among="pce")
    with pytest.raises(RunFailed, match="unexpected InjectedFault") as failure:
        deployment.invoke({})
    (summary,) = [line["summary"] for line in log_lines() if line.get("message") == "run summary"]
    assert (summary["status"], summary["error"]) == ("failed", str(failure.value))
    run_metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert run_metrics[-1]["Failed"] == [1.0]
    assert any(line.get("message") == "run failed unexpectedly" for line in log_lines())
