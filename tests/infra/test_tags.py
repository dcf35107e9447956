"""Stack-wide tags: every resource that takes tags carries Owner and CostCenter from the parameters."""

from typing import Any

import pytest

from tests.infra.deployment import Deployment

STACK_TAGS = {"Owner": {"Ref": "OwnerTag"}, "CostCenter": {"Ref": "CostCenterTag"}}
# Resource types CloudFormation can tag; the schedules, the dashboard, queue policy, role policy,
# subscription and layer version cannot be tagged.
TAGGABLE = {
    "AWS::CloudWatch::Alarm",
    "AWS::DynamoDB::Table",
    "AWS::IAM::Role",
    "AWS::Lambda::Function",
    "AWS::Logs::LogGroup",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::SecretsManager::Secret",
    "AWS::StepFunctions::StateMachine",
}


def _tags(resource: dict[str, Any]) -> dict[str, Any]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Properties", {}).get("Tags", [])}


@pytest.mark.parametrize("fan_out", ["Schedule", "StepFunctions"])
def test_every_taggable_resource_carries_the_stack_tags(fan_out: str) -> None:
    deployment = Deployment(FanOut=fan_out)
    untagged = [
        logical_id
        for logical_id, resource in deployment.resources.items()
        if resource["Type"] in TAGGABLE and not STACK_TAGS.items() <= _tags(resource).items()
    ]
    assert untagged == []


def test_every_resource_type_of_the_stack_is_known_as_taggable_or_not() -> None:
    untaggable = {
        "AWS::Scheduler::Schedule",
        "AWS::CloudWatch::Dashboard",
        "AWS::SQS::QueuePolicy",
        "AWS::IAM::Policy",
        "AWS::SNS::Subscription",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::EventInvokeConfig",
    }
    deployment = Deployment(
        FanOut="StepFunctions",
        AlarmEmail="ops@example.com",
        SecretsKmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    assert {resource["Type"] for resource in deployment.resources.values()} <= TAGGABLE | untaggable


@pytest.mark.parametrize("parameter", ["OwnerTag", "CostCenterTag"])
def test_tag_parameter_has_a_non_empty_default(source: dict[str, Any], parameter: str) -> None:
    assert source["Parameters"][parameter]["Default"]
