"""template.yaml, translated offline by the SAM translator, with its conditions evaluated both ways."""

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.infra.deployment import Deployment, as_list
from tests.infra.translate import ROOT, TEMPLATE

SPEC_VARIABLES = {
    "PCE_URL": "PceUrl",
    "PCE_ORG_ID": "PceOrgId",
    "PANOS_URL": "PanosUrl",
    "PANOS_VSYS": "PanosVsys",
    "PANOS_TARGET_SERIALS": "PanosTargetSerials",
    "TAG_PREFIX": "TagPrefix",
    "LABEL_KEYS": "LabelKeys",
    "INCLUDE_IPV6": "IncludeIpv6",
    "MAX_REMOVAL_RATIO": "MaxRemovalRatio",
    "BATCH_SIZE": "BatchSize",
    "DRY_RUN": "DryRun",
    "PCE_VERIFY_TLS": "PceVerifyTls",
    "PANOS_VERIFY_TLS": "PanosVerifyTls",
    "EXCLUDE_CIDRS": "ExcludeCidrs",
    "SHARED_IP_POLICY": "SharedIpPolicy",
    "PCE_MAX_REQUESTS_PER_MINUTE": "PceMaxRequestsPerMinute",
    "CHANGE_FEED": "ChangeFeed",
    "FULL_EXPORT_MINUTES": "FullExportMinutes",
    "MAX_TARGETED_WORKLOADS": "MaxTargetedWorkloads",
    "PANOS_MAX_CONCURRENCY": "PanosMaxConcurrency",
    "TAGS_IN_USE_ONLY": "TagsInUseOnly",
    "STATE_TAGS": "StateTags",
    "LABEL_GROUP_TAGS": "LabelGroupTags",
}
# Defaults and allowed values of the configuration table (docs/configuration.md#variables).
SPEC_DEFAULTS = {
    "ExcludeCidrs": "",
    "SharedIpPolicy": "union",
    "PceMaxRequestsPerMinute": 100,
    "ChangeFeed": "events",
    "FullExportMinutes": 60,
    "MaxTargetedWorkloads": 50,
    "PanosMaxConcurrency": 5,
    "TagsInUseOnly": "false",
    "StateTags": "",
    "LabelGroupTags": "false",
}
SPEC_CHOICES = {
    "SharedIpPolicy": ["union", "skip"],
    "ChangeFeed": ["events", "off"],
    "TagsInUseOnly": ["true", "false"],
    "LabelGroupTags": ["true", "false"],
}
SNAPSHOT_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:Query",
}
PCE_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dagsync/pce-AbCdEf"
PANOS_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dagsync/panos-GhIjKl"


def test_function_runs_python313(default: Deployment) -> None:
    assert default.function["Runtime"] == "python3.13"


def test_function_runs_on_arm64(default: Deployment) -> None:
    assert default.function["Architectures"] == ["arm64"]


def test_function_handler_is_app_lambda_handler_in_functions_dag_sync(source: dict[str, Any]) -> None:
    properties = source["Resources"]["DagSyncFunction"]["Properties"]
    assert (properties["CodeUri"], properties["Handler"]) == ("functions/dag_sync/", "app.lambda_handler")


def test_function_has_explicit_memory_and_timeout_from_parameters(default: Deployment) -> None:
    assert (default.function["MemorySize"], default.function["Timeout"]) == (
        {"Ref": "MemorySize"},
        {"Ref": "Timeout"},
    )


def test_layer_is_attached_to_function(default: Deployment) -> None:
    layer_id, _ = default.one("AWS::Lambda::LayerVersion")
    assert default.function["Layers"] == [{"Ref": layer_id}]


def test_layer_builds_dagsync_for_python313_arm64(source: dict[str, Any]) -> None:
    layer = source["Resources"]["DagSyncLayer"]
    assert (
        layer["Metadata"],
        layer["Properties"]["ContentUri"],
        layer["Properties"]["CompatibleRuntimes"],
        layer["Properties"]["CompatibleArchitectures"],
    ) == (
        {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"},
        "layers/dagsync/",
        ["python3.13"],
        ["arm64"],
    )


@pytest.mark.parametrize(("variable", "parameter"), sorted(SPEC_VARIABLES.items()))
def test_spec_variable_is_set_from_its_parameter(default: Deployment, variable: str, parameter: str) -> None:
    assert default.function["Environment"]["Variables"][variable] == {"Ref": parameter}


@pytest.mark.parametrize(("parameter", "default_value"), sorted(SPEC_DEFAULTS.items()))
def test_parameter_default_is_the_variables_default(
    source: dict[str, Any], parameter: str, default_value: object
) -> None:
    assert source["Parameters"][parameter]["Default"] == default_value


@pytest.mark.parametrize(("parameter", "choices"), sorted(SPEC_CHOICES.items()))
def test_parameter_allows_exactly_the_variables_values(
    source: dict[str, Any], parameter: str, choices: list[str]
) -> None:
    assert sorted(source["Parameters"][parameter]["AllowedValues"]) == sorted(choices)


@pytest.mark.parametrize(
    ("parameter", "bounds"),
    [
        ("PceMaxRequestsPerMinute", (1, 500)),
        ("FullExportMinutes", (1, 1440)),
        ("MaxTargetedWorkloads", (1, 500)),
        ("PanosMaxConcurrency", (1, 5)),
    ],
)
def test_numeric_parameter_is_bounded(
    source: dict[str, Any], parameter: str, bounds: tuple[int, int]
) -> None:
    spec = source["Parameters"][parameter]
    assert (spec["MinValue"], spec["MaxValue"]) == bounds


def test_deployment_id_is_the_stack_name(default: Deployment) -> None:
    assert default.function["Environment"]["Variables"]["DEPLOYMENT_ID"] == {"Ref": "AWS::StackName"}


def test_function_timeout_variable_is_the_functions_timeout(default: Deployment) -> None:
    variables = default.function["Environment"]["Variables"]
    assert variables["FUNCTION_TIMEOUT_SECONDS"] == default.function["Timeout"] == {"Ref": "Timeout"}


def test_aws_endpoint_is_left_to_boto3_in_lambda(default: Deployment) -> None:
    assert default.function["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == ""


def test_environment_holds_spec_and_powertools_variables_only(default: Deployment) -> None:
    expected = set(SPEC_VARIABLES) | {
        "PCE_SECRET_ID",
        "PANOS_SECRET_ID",
        "SNAPSHOT_TABLE",
        "DEPLOYMENT_ID",
        "FUNCTION_TIMEOUT_SECONDS",
        "ALARM_TOPIC_ARN",
        "AWS_ENDPOINT_URL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }
    assert set(default.function["Environment"]["Variables"]) == expected


def test_snapshot_table_variable_names_the_table(default: Deployment) -> None:
    assert default.function["Environment"]["Variables"]["SNAPSHOT_TABLE"] == {"Ref": "SnapshotTable"}


def test_powertools_variables_name_service_and_namespace(default: Deployment) -> None:
    variables = default.function["Environment"]["Variables"]
    assert (
        variables["POWERTOOLS_SERVICE_NAME"],
        variables["POWERTOOLS_METRICS_NAMESPACE"],
        variables["POWERTOOLS_LOG_LEVEL"],
    ) == ("dagsync", "DagSync", {"Ref": "LogLevel"})


def test_secret_variables_point_at_created_secrets_by_default(default: Deployment) -> None:
    variables = default.function["Environment"]["Variables"]
    assert (variables["PCE_SECRET_ID"], variables["PANOS_SECRET_ID"]) == (
        {"Ref": "PceSecret"},
        {"Ref": "PanosSecret"},
    )


def test_secret_variables_point_at_given_arns() -> None:
    deployment = Deployment(PceSecretArn=PCE_ARN, PanosSecretArn=PANOS_ARN)
    variables = deployment.function["Environment"]["Variables"]
    assert (variables["PCE_SECRET_ID"], variables["PANOS_SECRET_ID"]) == (
        {"Ref": "PceSecretArn"},
        {"Ref": "PanosSecretArn"},
    )


def test_placeholder_secrets_are_created_empty_without_generated_values(default: Deployment) -> None:
    secrets = {
        key: value["Properties"] for key, value in default.of_type("AWS::SecretsManager::Secret").items()
    }
    assert {key: json.loads(value["SecretString"]) for key, value in secrets.items()} == {
        "PceSecret": {"auth_username": "", "secret": ""},
        "PanosSecret": {"api_key": ""},
    }
    assert not any("GenerateSecretString" in value for value in secrets.values())


def test_no_secret_is_created_when_arns_are_given() -> None:
    deployment = Deployment(PceSecretArn=PCE_ARN, PanosSecretArn=PANOS_ARN)
    assert deployment.of_type("AWS::SecretsManager::Secret") == {}


def test_reserved_concurrency_comes_from_parameter(default: Deployment) -> None:
    assert default.function["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}


def test_reserved_concurrency_defaults_to_one(source: dict[str, Any]) -> None:
    assert source["Parameters"]["ReservedConcurrency"]["Default"] == 1


def test_reserved_concurrency_zero_leaves_function_unreserved() -> None:
    assert "ReservedConcurrentExecutions" not in Deployment(ReservedConcurrency="0").function


def test_function_writes_to_its_log_group(default: Deployment) -> None:
    assert default.function["LoggingConfig"] == {"LogGroup": {"Ref": "DagSyncLogGroup"}}


def test_log_group_retention_comes_from_parameter(default: Deployment) -> None:
    assert default.properties("DagSyncLogGroup")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def schedule_named(deployment: Deployment, suffix: str) -> dict[str, Any]:
    """The Scheduler schedule whose name is the stack name plus `suffix`."""
    (schedule,) = [
        resource
        for resource in deployment.of_type("AWS::Scheduler::Schedule").values()
        if resource["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-" + suffix}
    ]
    return schedule


def rendered_input(schedule: dict[str, Any]) -> Any:
    template = schedule["Properties"]["Target"]["Input"]["Fn::Sub"]
    return json.loads(
        template.replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::Region}", "eu-west-1")
        .replace("<aws.scheduler.scheduled-time>", "2026-11-26T12:00:00Z")
    )


def test_schedules_are_scheduler_schedules_named_after_the_stack(default: Deployment) -> None:
    names = {r["Properties"]["Name"]["Fn::Sub"] for r in default.of_type("AWS::Scheduler::Schedule").values()}
    assert names == {"${AWS::StackName}-sync", "${AWS::StackName}-reconcile"}


@pytest.mark.parametrize(
    ("parameter", "rate"), [("ScheduleRate", "rate(1 minute)"), ("ReconcileRate", "rate(1 day)")]
)
def test_schedule_runs_every_minute_and_reconciles_daily_by_default(
    source: dict[str, Any], parameter: str, rate: str
) -> None:
    assert source["Parameters"][parameter]["Default"] == rate


@pytest.mark.parametrize(("suffix", "parameter"), [("sync", "ScheduleRate"), ("reconcile", "ReconcileRate")])
def test_schedule_expression_comes_from_parameter(default: Deployment, suffix: str, parameter: str) -> None:
    assert schedule_named(default, suffix)["Properties"]["ScheduleExpression"] == {"Ref": parameter}


@pytest.mark.parametrize(("suffix", "mode"), [("sync", "sync"), ("reconcile", "reconcile")])
def test_schedule_sends_a_scheduled_event_the_handler_accepts(
    default: Deployment, suffix: str, mode: str
) -> None:
    from dagsync.core.invocation import SyncRequest, parse_event

    schedule = schedule_named(default, suffix)
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["DagSyncFunction", "Arn"]}
    assert parse_event(rendered_input(schedule)) == SyncRequest(mode=mode, trigger="schedule")


@pytest.mark.parametrize("suffix", ["sync", "reconcile"])
def test_schedule_does_not_retry_because_the_next_run_does(default: Deployment, suffix: str) -> None:
    assert schedule_named(default, suffix)["Properties"]["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0


@pytest.mark.parametrize("suffix", ["sync", "reconcile"])
def test_undeliverable_schedule_events_go_to_failure_queue(default: Deployment, suffix: str) -> None:
    assert schedule_named(default, suffix)["Properties"]["Target"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["FailureQueue", "Arn"]}
    }


@pytest.mark.parametrize(("enabled", "state"), [("true", "ENABLED"), ("false", "DISABLED")])
def test_schedule_state_follows_schedule_enabled(enabled: str, state: str) -> None:
    assert schedule_named(Deployment(ScheduleEnabled=enabled), "sync")["Properties"]["State"] == state


@pytest.mark.parametrize(
    ("schedule_enabled", "reconcile_enabled", "state"),
    [("true", "true", "ENABLED"), ("true", "false", "DISABLED"), ("false", "true", "DISABLED")],
)
def test_reconcile_runs_only_while_both_schedules_are_enabled(
    schedule_enabled: str, reconcile_enabled: str, state: str
) -> None:
    deployment = Deployment(ScheduleEnabled=schedule_enabled, ReconcileEnabled=reconcile_enabled)
    assert schedule_named(deployment, "reconcile")["Properties"]["State"] == state


def test_snapshot_table_keys_are_pk_hash_and_sk_range(default: Deployment) -> None:
    table = default.properties("SnapshotTable")
    assert (table["KeySchema"], table["AttributeDefinitions"]) == (
        [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    )


def test_snapshot_table_is_pay_per_request(default: Deployment) -> None:
    assert default.properties("SnapshotTable")["BillingMode"] == "PAY_PER_REQUEST"


def test_snapshot_table_has_point_in_time_recovery(default: Deployment) -> None:
    pitr = default.properties("SnapshotTable")["PointInTimeRecoverySpecification"]
    assert pitr["PointInTimeRecoveryEnabled"] is True


def test_snapshot_table_is_encrypted(default: Deployment) -> None:
    assert default.properties("SnapshotTable")["SSESpecification"]["SSEEnabled"] is True


def test_snapshot_table_has_no_ttl_that_could_delete_live_items(default: Deployment) -> None:
    assert "TimeToLiveSpecification" not in default.properties("SnapshotTable")


def test_snapshot_table_is_retained_on_delete_and_replace(default: Deployment) -> None:
    table = default.resources["SnapshotTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_function_uses_the_stack_role(default: Deployment) -> None:
    assert default.function["Role"] == {"Fn::GetAtt": ["DagSyncRole", "Arn"]}


def test_function_role_is_assumable_by_lambda_only(default: Deployment) -> None:
    statements = default.properties("DagSyncRole")["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Principal"], s["Action"]) for s in statements] == [
        ({"Service": "lambda.amazonaws.com"}, "sts:AssumeRole")
    ]


def test_function_role_dynamodb_access_is_the_listed_actions_on_the_table(default: Deployment) -> None:
    statements = [
        s
        for s in default.role_statements("DagSyncRole")
        if any(action.startswith("dynamodb:") for action in as_list(s["Action"]))
    ]
    assert [(set(s["Action"]), s["Resource"]) for s in statements] == [
        (SNAPSHOT_ACTIONS, {"Fn::GetAtt": ["SnapshotTable", "Arn"]})
    ]


def test_function_role_reads_the_two_created_secrets_only(default: Deployment) -> None:
    statements = default.statements_with("DagSyncRole", "secretsmanager:GetSecretValue")
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("secretsmanager:GetSecretValue", [{"Ref": "PceSecret"}, {"Ref": "PanosSecret"}])
    ]


def test_function_role_reads_the_two_given_secrets_only() -> None:
    deployment = Deployment(PceSecretArn=PCE_ARN, PanosSecretArn=PANOS_ARN)
    statements = deployment.statements_with("DagSyncRole", "secretsmanager:GetSecretValue")
    assert [s["Resource"] for s in statements] == [[{"Ref": "PceSecretArn"}, {"Ref": "PanosSecretArn"}]]


@pytest.mark.parametrize(
    "overrides", [{}, {"PceSecretArn": PCE_ARN}, {"PceSecretArn": PCE_ARN, "PanosSecretArn": PANOS_ARN}]
)
def test_function_may_read_exactly_the_secrets_it_is_configured_with(overrides: dict[str, str]) -> None:
    deployment = Deployment(**overrides)
    variables = deployment.function["Environment"]["Variables"]
    (statement,) = deployment.statements_with("DagSyncRole", "secretsmanager:GetSecretValue")
    assert statement["Resource"] == [variables["PCE_SECRET_ID"], variables["PANOS_SECRET_ID"]]


def test_function_role_decrypts_nothing_without_a_secrets_key(default: Deployment) -> None:
    assert default.statements_with("DagSyncRole", "kms:Decrypt") == []


def test_function_role_decrypts_with_the_secrets_key_through_secrets_manager_only() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    (statement,) = Deployment(SecretsKmsKeyArn=key).statements_with("DagSyncRole", "kms:Decrypt")
    assert (statement["Resource"], statement["Condition"]) == (
        {"Ref": "SecretsKmsKeyArn"},
        {"StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}}},
    )


def test_function_role_writes_logs_to_its_log_group_only(default: Deployment) -> None:
    (statement,) = default.statements_with("DagSyncRole", "logs:PutLogEvents")
    assert (set(statement["Action"]), statement["Resource"]) == (
        {"logs:CreateLogStream", "logs:PutLogEvents"},
        {"Fn::GetAtt": ["DagSyncLogGroup", "Arn"]},
    )


def test_function_role_sends_failures_to_the_failure_queue_only(default: Deployment) -> None:
    (statement,) = default.statements_with("DagSyncRole", "sqs:SendMessage")
    assert statement["Resource"] == {"Fn::GetAtt": ["FailureQueue", "Arn"]}


def test_function_role_has_no_managed_policy_outside_a_vpc(default: Deployment) -> None:
    assert "ManagedPolicyArns" not in default.properties("DagSyncRole")


def test_no_statement_uses_a_wildcard_resource(default: Deployment) -> None:
    wildcard = [
        s
        for role_id in default.of_type("AWS::IAM::Role")
        for s in default.role_statements(role_id)
        if "*" in as_list(s["Resource"])
    ]
    assert wildcard == []


def test_no_statement_allows_a_wildcard_action(default: Deployment) -> None:
    actions = [
        action
        for role_id in default.of_type("AWS::IAM::Role")
        for s in default.role_statements(role_id)
        for action in as_list(s["Action"])
    ]
    assert not [action for action in actions if "*" in action]


def test_function_tracing_is_off_as_nothing_emits_segments(default: Deployment) -> None:
    assert "TracingConfig" not in default.function


def test_no_role_may_write_traces(default: Deployment) -> None:
    actions = [
        action
        for role_id in default.of_type("AWS::IAM::Role")
        for s in default.role_statements(role_id)
        for action in as_list(s["Action"])
    ]
    assert [action for action in actions if action.startswith("xray:")] == []


def test_function_is_outside_a_vpc_by_default(default: Deployment) -> None:
    assert "VpcConfig" not in default.function


def test_function_runs_in_the_given_vpc() -> None:
    deployment = Deployment(SubnetIds="subnet-1,subnet-2", SecurityGroupIds="sg-1")
    assert deployment.function["VpcConfig"] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }


def test_function_role_gets_vpc_access_policy_in_a_vpc() -> None:
    deployment = Deployment(SubnetIds="subnet-1", SecurityGroupIds="sg-1")
    assert deployment.properties("DagSyncRole")["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}
    ]


@pytest.mark.parametrize(
    ("fan_out", "roles"),
    [
        ("Schedule", {"DagSyncRole", "SchedulerRole"}),
        ("StepFunctions", {"DagSyncRole", "SchedulerRole", "FanOutRole"}),
    ],
)
def test_permissions_boundary_applies_to_every_role(fan_out: str, roles: set[str]) -> None:
    boundary = "arn:aws:iam::123456789012:policy/boundary"
    deployment = Deployment(PermissionsBoundaryArn=boundary, FanOut=fan_out)
    boundaries = {
        role_id: role["Properties"].get("PermissionsBoundary")
        for role_id, role in deployment.of_type("AWS::IAM::Role").items()
    }
    assert boundaries == {role_id: {"Ref": "PermissionsBoundaryArn"} for role_id in roles}


def test_failed_async_invocations_go_to_the_failure_queue(default: Deployment) -> None:
    _, config = default.one("AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["FailureQueue", "Arn"]}}
    }


def test_failed_async_invocations_are_retried_once(default: Deployment) -> None:
    _, config = default.one("AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["MaximumRetryAttempts"] == 1


def test_failure_queue_is_encrypted(default: Deployment) -> None:
    assert default.properties("FailureQueue")["SqsManagedSseEnabled"] is True


def test_failure_queue_refuses_insecure_transport(default: Deployment) -> None:
    (statement,) = default.properties("FailureQueuePolicy")["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_errors_alarm_watches_the_function(default: Deployment) -> None:
    alarm = default.alarm_on("Errors")
    assert (alarm["Namespace"], alarm["Dimensions"]) == (
        "AWS/Lambda",
        [{"Name": "FunctionName", "Value": {"Ref": "DagSyncFunction"}}],
    )


@pytest.mark.parametrize("metric", ["Failed", "Blocked"])
def test_target_alarm_watches_the_run_level_metric(default: Deployment, metric: str) -> None:
    alarm = default.alarm_on(metric)
    assert (alarm["Namespace"], alarm["Dimensions"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "DagSync",
        [{"Name": "service", "Value": "dagsync"}],
        "GreaterThanOrEqualToThreshold",
        1,
    )


def test_missed_runs_alarm_fires_when_no_run_succeeds(default: Deployment) -> None:
    alarm = default.alarm_on("SuccessfulRuns")
    assert (alarm["Namespace"], alarm["ComparisonOperator"], alarm["TreatMissingData"], alarm["Period"]) == (
        "DagSync",
        "LessThanThreshold",
        "breaching",
        {"Ref": "MissedRunAlarmSeconds"},
    )


def test_missed_runs_alarm_is_absent_while_the_schedule_is_disabled() -> None:
    alarms = Deployment(ScheduleEnabled="false").of_type("AWS::CloudWatch::Alarm").values()
    assert "SuccessfulRuns" not in {alarm["Properties"].get("MetricName") for alarm in alarms}


def test_a_full_device_table_raises_its_own_alarm(default: Deployment) -> None:
    alarm = default.alarm_on("DeviceTableFull")
    assert (alarm["Statistic"], alarm["Threshold"], alarm["TreatMissingData"]) == (
        "Maximum",
        1,
        "notBreaching",
    )


def test_failure_queue_alarm_watches_visible_messages(default: Deployment) -> None:
    alarm = default.alarm_on("ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FailureQueue", "QueueName"]}}
    ]


@pytest.mark.parametrize("fan_out", ["Schedule", "StepFunctions"])
def test_every_alarm_notifies_the_stacks_topic_by_default(fan_out: str) -> None:
    deployment = Deployment(FanOut=fan_out)
    topic_id, _ = deployment.one("AWS::SNS::Topic")
    alarms = deployment.of_type("AWS::CloudWatch::Alarm").values()
    assert {json.dumps(alarm["Properties"]["AlarmActions"]) for alarm in alarms} == {
        json.dumps([{"Ref": topic_id}])
    }


def test_the_topic_has_no_subscriber_without_an_alarm_email(default: Deployment) -> None:
    assert default.of_type("AWS::SNS::Subscription") == {}


def test_alarm_email_subscribes_to_the_stacks_topic() -> None:
    deployment = Deployment(AlarmEmail="ops@example.com")
    _, subscription = deployment.one("AWS::SNS::Subscription")
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


def test_alarm_topic_arn_is_notified_instead_of_a_new_topic() -> None:
    topic_arn = "arn:aws:sns:us-east-1:123456789012:ops"
    deployment = Deployment(AlarmTopicArn=topic_arn, AlarmEmail="ops@example.com")
    alarms = deployment.of_type("AWS::CloudWatch::Alarm").values()
    assert (deployment.of_type("AWS::SNS::Topic"), deployment.of_type("AWS::SNS::Subscription")) == ({}, {})
    assert {json.dumps(alarm["Properties"]["AlarmActions"]) for alarm in alarms} == {
        json.dumps([{"Ref": "AlarmTopicArn"}])
    }


@pytest.mark.parametrize(
    "metric",
    [
        "PairsRegistered",
        "PairsUnregistered",
        "ApiCalls",
        "DriftRepaired",
        "Blocked",
        "Failed",
        "Conflict",
        "Incomplete",
        "LastSyncAgeSeconds",
        "Workloads",
        "Pairs",
        "SharedIpConflicts",
        "EventToDeviceSeconds",
        "Duration",
    ],
)
def test_dashboard_shows_metric(default: Deployment, metric: str) -> None:
    _, dashboard = default.one("AWS::CloudWatch::Dashboard")
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert re.search(rf'"{metric}"|MetricName=\\"{metric}\\"', body)


def _dashboard_body(deployment: Deployment) -> dict[str, Any]:
    _, dashboard = deployment.one("AWS::CloudWatch::Dashboard")
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"].replace("${StaleTargetAlarmSeconds}", "1800")
    body: dict[str, Any] = json.loads(text)
    return body


def test_dashboard_body_is_json(default: Deployment) -> None:
    assert len(_dashboard_body(default)["widgets"]) >= 8


@pytest.mark.parametrize(
    "metric",
    [
        "PairsRegistered",
        "PairsUnregistered",
        "ApiCalls",
        "DriftRepaired",
        "Blocked",
        "Failed",
        "Conflict",
        "Incomplete",
        "LastSyncAgeSeconds",
    ],
)
def test_dashboard_shows_per_target_metric_through_a_search_over_the_target_dimension(
    default: Deployment, metric: str
) -> None:
    expressions = [
        entry["expression"]
        for widget in _dashboard_body(default)["widgets"]
        for line in widget["properties"].get("metrics", [])
        for entry in line
        if isinstance(entry, dict) and "expression" in entry
    ]
    assert f"SEARCH('{{DagSync,Target,service}} MetricName=\"{metric}\"'" in "\n".join(expressions)


def test_dashboard_marks_the_freshness_alarm_threshold(default: Deployment) -> None:
    (widget,) = [
        w for w in _dashboard_body(default)["widgets"] if "Freshness" in w["properties"].get("title", "")
    ]
    assert widget["properties"]["annotations"]["horizontal"][0]["value"] == 1800


@pytest.mark.parametrize(
    "output", ["FunctionName", "FunctionArn", "SnapshotTableName", "DashboardUrl", "FailureQueueUrl"]
)
def test_output_exists(default: Deployment, output: str) -> None:
    assert default.outputs[output]["Value"]


def test_every_parameter_is_used(source: dict[str, Any]) -> None:
    text = TEMPLATE.read_text(encoding="utf-8").split("\nConditions:", 1)[1]
    unused = [name for name in source["Parameters"] if not re.search(rf"\b{name}\b", text)]
    assert unused == []


def test_samconfig_deploys_a_dry_run_first() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = dict(
        item.split("=", 1) for item in config["default"]["deploy"]["parameters"]["parameter_overrides"]
    )
    assert overrides["DryRun"] == "true"


def test_samconfig_overrides_only_template_parameters(source: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = dict(
        item.split("=", 1) for item in config["default"]["deploy"]["parameters"]["parameter_overrides"]
    )
    assert set(overrides) <= set(source["Parameters"])


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("PceUrl", "https://pce.example.com:8443", True),
        ("PceUrl", "http://127.0.0.1:8443", True),
        ("PceUrl", "https://pce.example.com:8443/api/v2", False),
        ("PanosUrl", "ftp://panorama.example.com", False),
        ("PanosUrl", "https://pano-a.example.com,https://pano-b.example.com:8443", True),
        ("PanosUrl", "https://a.example.com,https://b.example.com,https://c.example.com", False),
        ("PanosVsys", "", True),
        ("PanosVsys", "vsys2", True),
        ("PanosVsys", "shared", False),
        ("PanosTargetSerials", "007051000123456,007051000123457", True),
        ("PanosTargetSerials", "0070 51", False),
        ("TagPrefix", "illumio.", True),
        ("TagPrefix", "it's.", False),
        ("TagPrefix", " illumio.", False),
        ("LabelKeys", "*", True),
        ("LabelKeys", "role,app,env,loc", True),
        ("LabelKeys", "role,,app", False),
        ("ScheduleRate", "rate(5 minutes)", True),
        ("ScheduleRate", "rate(1 minute)", True),
        ("ExcludeCidrs", "", True),
        ("ExcludeCidrs", "172.17.0.0/16,100.64.0.0/10", True),
        ("ExcludeCidrs", "172.17.0.0/16, 2001:db8::/32", True),
        ("ExcludeCidrs", "172.17.0.0", False),
        ("OwnerTag", "network-security", True),
        ("OwnerTag", "Network Security", True),
        ("OwnerTag", "", False),
        ("OwnerTag", " padded", False),
        ("ScheduleRate", "cron(0/10 * * * ? *)", True),
        ("ScheduleRate", "every 5 minutes", False),
        ("PceSecretArn", "", True),
        ("PceSecretArn", PCE_ARN, True),
        ("PceSecretArn", "dagsync/pce", False),
    ],
)
def test_parameter_pattern(source: dict[str, Any], parameter: str, value: str, accepted: bool) -> None:
    pattern = source["Parameters"][parameter]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_template_passes_cfn_lint_with_serverless_rules() -> None:
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    matches = lint_file(Path(TEMPLATE), ManualArgs(append_rules=["cfn_lint_serverless.rules"]))
    assert [str(match) for match in matches] == []
