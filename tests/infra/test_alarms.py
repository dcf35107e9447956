"""The alarms on a stuck lease, a target left incomplete, a stale target, and the blocked-run topic."""

from typing import Any

import pytest

from tests.infra.deployment import Deployment

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ops"


def _query(alarm: dict[str, Any]) -> dict[str, Any]:
    (query,) = alarm["Metrics"]
    return query  # type: ignore[no-any-return]


@pytest.mark.parametrize("metric", ["Conflict", "Incomplete", "LastSyncAgeSeconds"])
def test_per_target_alarm_evaluates_each_target_on_its_own(default: Deployment, metric: str) -> None:
    query = _query(default.insights_alarm_on(metric))
    assert query["Expression"].endswith("FROM SCHEMA(DagSync, Target, service) GROUP BY Target")
    assert (query["Period"], query["ReturnData"]) == (60, True)


def test_stuck_lease_alarm_fires_on_the_first_conflict_reported(default: Deployment) -> None:
    alarm = default.insights_alarm_on("Conflict")
    assert _query(alarm)["Expression"].startswith("SELECT MAX(Conflict)")
    assert (alarm["EvaluationPeriods"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        1,
        "GreaterThanOrEqualToThreshold",
    )


def test_incomplete_alarm_needs_six_minutes_in_a_row_of_every_run_incomplete(default: Deployment) -> None:
    alarm = default.insights_alarm_on("Incomplete")
    assert _query(alarm)["Expression"].startswith("SELECT MIN(Incomplete)")
    assert (
        alarm["EvaluationPeriods"],
        alarm["DatapointsToAlarm"],
        alarm["Threshold"],
        alarm["ComparisonOperator"],
    ) == (6, 6, 1, "GreaterThanOrEqualToThreshold")


def test_incomplete_alarm_skips_minutes_without_a_run(default: Deployment) -> None:
    assert default.insights_alarm_on("Incomplete")["TreatMissingData"] == "missing"


def test_stale_target_alarm_threshold_comes_from_its_parameter(
    default: Deployment, source: dict[str, Any]
) -> None:
    alarm = default.insights_alarm_on("LastSyncAgeSeconds")
    assert _query(alarm)["Expression"].startswith("SELECT MAX(LastSyncAgeSeconds)")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        {"Ref": "StaleTargetAlarmSeconds"},
        "GreaterThanThreshold",
    )
    assert source["Parameters"]["StaleTargetAlarmSeconds"]["Default"] == 1800


def test_the_stack_creates_an_alarm_topic_by_default(default: Deployment) -> None:
    assert list(default.of_type("AWS::SNS::Topic")) == ["AlarmTopic"]


@pytest.mark.parametrize("overrides", [{}, {"AlarmTopicArn": TOPIC_ARN}])
def test_function_may_publish_to_the_alarm_topic_only(overrides: dict[str, str]) -> None:
    deployment = Deployment(**overrides)
    (statement,) = deployment.statements_with("DagSyncRole", "sns:Publish")
    assert (statement["Action"], statement["Resource"]) == ("sns:Publish", deployment.alarm_topic)


def test_no_other_role_may_publish(default: Deployment) -> None:
    others = [role_id for role_id in default.of_type("AWS::IAM::Role") if role_id != "DagSyncRole"]
    assert [role_id for role_id in others if default.statements_with(role_id, "sns:Publish")] == []


@pytest.mark.parametrize("overrides", [{}, {"AlarmTopicArn": TOPIC_ARN}])
def test_alarm_topic_variable_names_the_topic_the_function_may_publish_to(overrides: dict[str, str]) -> None:
    deployment = Deployment(**overrides)
    (statement,) = deployment.statements_with("DagSyncRole", "sns:Publish")
    assert deployment.function["Environment"]["Variables"]["ALARM_TOPIC_ARN"] == statement["Resource"]


def test_alarm_topic_output_names_the_topic(default: Deployment) -> None:
    assert default.outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
