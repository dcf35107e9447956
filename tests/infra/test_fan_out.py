"""FanOut=StepFunctions: the schedules start a state machine, which alone may invoke the function."""

import json
from typing import Any

import pytest

from tests.infra.deployment import Deployment, as_list

LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


@pytest.fixture(scope="module")
def fan_out() -> Deployment:
    return Deployment(FanOut="StepFunctions")


def definition(deployment: Deployment) -> dict[str, Any]:
    """The state machine's definition with its substitutions filled in."""
    text, variables = deployment.properties("FanOutStateMachine")["DefinitionString"]["Fn::Sub"]
    rendered = text.replace("${AWS::Partition}", "aws").replace("${MaxInvocations}", "16")
    rendered = rendered.replace("${FunctionArn}", "arn:aws:lambda:us-east-1:123456789012:function:dagsync")
    assert variables == {
        "FunctionArn": {"Fn::GetAtt": ["DagSyncFunction", "Arn"]},
        "MaxInvocations": {"Ref": "FanOutMaxInvocations"},
    }
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def test_default_fan_out_is_the_plain_schedule(default: Deployment) -> None:
    assert default.of_type("AWS::StepFunctions::StateMachine") == {}


@pytest.mark.parametrize(
    ("fan_out_value", "target"),
    [
        ("Schedule", {"Fn::GetAtt": ["DagSyncFunction", "Arn"]}),
        ("StepFunctions", {"Ref": "FanOutStateMachine"}),
    ],
)
def test_both_schedules_start_what_fan_out_names(fan_out_value: str, target: dict[str, Any]) -> None:
    deployment = Deployment(FanOut=fan_out_value)
    schedules = deployment.of_type("AWS::Scheduler::Schedule").values()
    assert [schedule["Properties"]["Target"]["Arn"] for schedule in schedules] == [target, target]


@pytest.mark.parametrize(
    ("fan_out_value", "action", "resource"),
    [
        ("Schedule", "lambda:InvokeFunction", {"Fn::GetAtt": ["DagSyncFunction", "Arn"]}),
        ("StepFunctions", "states:StartExecution", {"Ref": "FanOutStateMachine"}),
    ],
)
def test_scheduler_role_may_start_exactly_the_schedules_target(
    fan_out_value: str, action: str, resource: dict[str, Any]
) -> None:
    deployment = Deployment(FanOut=fan_out_value)
    starts = [s for s in deployment.role_statements("SchedulerRole") if s["Action"] != "sqs:SendMessage"]
    assert [(s["Action"], s["Resource"]) for s in starts] == [(action, resource)]


def test_scheduler_role_is_assumable_by_scheduler_of_this_account_only(default: Deployment) -> None:
    (statement,) = default.properties("SchedulerRole")["AssumeRolePolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Condition"]) == (
        {"Service": "scheduler.amazonaws.com"},
        {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    )


def test_state_machine_role_is_assumable_by_step_functions_of_this_account_only(fan_out: Deployment) -> None:
    (statement,) = fan_out.properties("FanOutRole")["AssumeRolePolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Condition"]) == (
        {"Service": "states.amazonaws.com"},
        {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    )


def test_state_machine_role_may_invoke_the_function_only(fan_out: Deployment) -> None:
    invokes = [
        s for s in fan_out.role_statements("FanOutRole") if "lambda:InvokeFunction" in as_list(s["Action"])
    ]
    assert [(s["Action"], s["Resource"]) for s in invokes] == [
        ("lambda:InvokeFunction", {"Fn::GetAtt": ["DagSyncFunction", "Arn"]})
    ]


def test_state_machine_role_may_do_nothing_else_but_deliver_its_logs(fan_out: Deployment) -> None:
    others = [s for s in fan_out.role_statements("FanOutRole") if s["Action"] != "lambda:InvokeFunction"]
    assert [set(as_list(s["Action"])) for s in others] == [LOG_DELIVERY_ACTIONS]


def test_only_log_delivery_uses_a_wildcard_resource_as_its_actions_take_none(fan_out: Deployment) -> None:
    wildcard = [
        s
        for role_id in fan_out.of_type("AWS::IAM::Role")
        for s in fan_out.role_statements(role_id)
        if "*" in as_list(s["Resource"])
    ]
    assert [set(as_list(s["Action"])) for s in wildcard] == [LOG_DELIVERY_ACTIONS]


def test_state_machine_logs_to_its_own_log_group_without_execution_data(fan_out: Deployment) -> None:
    logging = fan_out.properties("FanOutStateMachine")["LoggingConfiguration"]
    assert logging == {
        "Level": "ALL",
        "IncludeExecutionData": False,
        "Destinations": [
            {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["FanOutLogGroup", "Arn"]}}}
        ],
    }
    assert fan_out.properties("FanOutLogGroup")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_failed_executions_alarm(fan_out: Deployment) -> None:
    alarm = fan_out.alarm_on("ExecutionsFailed")
    assert (alarm["Namespace"], alarm["Dimensions"], alarm["Threshold"]) == (
        "AWS/States",
        [{"Name": "StateMachineArn", "Value": {"Ref": "FanOutStateMachine"}}],
        1,
    )


def test_state_machine_is_a_standard_workflow(fan_out: Deployment) -> None:
    assert fan_out.properties("FanOutStateMachine")["StateMachineType"] == "STANDARD"


def test_run_state_invokes_the_function_with_the_schedules_event(fan_out: Deployment) -> None:
    run = definition(fan_out)["States"]["Run"]
    assert (run["Resource"], run["Parameters"]) == (
        "arn:aws:states:::lambda:invoke",
        {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:dagsync", "Payload.$": "$.event"},
    )


def test_a_raised_run_is_not_caught_so_the_execution_fails(fan_out: Deployment) -> None:
    run = definition(fan_out)["States"]["Run"]
    caught = {error for catcher in run["Catch"] for error in catcher["ErrorEquals"]}
    retried = {error for retrier in run["Retry"] for error in retrier["ErrorEquals"]}
    assert caught == {"Lambda.TooManyRequestsException"}
    assert not ({"States.ALL", "States.TaskFailed", "RunFailed"} & (caught | retried))


def test_loop_is_bounded_by_the_parameter(fan_out: Deployment, source: dict[str, Any]) -> None:
    _, loop = definition(fan_out)["States"]["Unfinished"]["Choices"]
    assert loop["Next"] == "Run"
    assert {"Variable": "$.invocations", "NumericLessThan": 16} in loop["And"]
    assert source["Parameters"]["FanOutMaxInvocations"]["Default"] == 16


def test_a_summary_without_unfinished_targets_ends_the_execution(fan_out: Deployment) -> None:
    absent, _ = definition(fan_out)["States"]["Unfinished"]["Choices"]
    assert absent == {"Variable": "$.summary.unfinished", "IsPresent": False, "Next": "Done"}


def test_state_machine_output_is_the_last_run_summary(fan_out: Deployment) -> None:
    assert definition(fan_out)["States"]["Done"] == {"Type": "Succeed", "OutputPath": "$.summary"}


def test_state_machine_arn_is_an_output(fan_out: Deployment) -> None:
    assert fan_out.outputs["FanOutStateMachineArn"]["Value"] == {"Ref": "FanOutStateMachine"}
