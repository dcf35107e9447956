"""The blocked-run notification (docs/dag-awareness.md#blocked-notification), read back from moto SNS."""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dagsync.edges.notify import MAX_SUBJECT_CHARS, BlockedNotifier

TARGET = "panorama.example.com/007051000123456/vsys1"
FUNCTION = "dagsync-prod-DagSyncFunction-AbC123"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
ENVIRON = {
    "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
    "AWS_REGION": "eu-west-1",
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_SESSION_TOKEN": SESSION_TOKEN,
}
SNS_MAX_MESSAGE_BYTES = 256 * 1024


@dataclass
class Topic:
    """A moto SNS topic with an SQS queue subscribed to it in raw delivery."""

    sns: Any
    arn: str
    sqs: Any
    queue_url: str

    def messages(self) -> list[dict[str, Any]]:
        """Every notification delivered so far, with its subject, as SNS hands it to subscribers."""
        found: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            found += [json.loads(message["Body"]) for message in batch]
            for message in batch:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def topic(moto_credentials: None) -> Iterator[Topic]:
    with mock_aws():
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        arn = sns.create_topic(Name="dagsync-alarms")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alarm-reader")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # Not raw: the SNS envelope carries the subject as well as the message.
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        yield Topic(sns, arn, sqs, queue_url)


def estate(ips: int, tags_of: Callable[[int], set[str]]) -> dict[str, frozenset[str]]:
    return {f"10.1.{i // 250}.{i % 250 + 1}": frozenset(tags_of(i)) for i in range(ips)}


def notify(topic: Topic, target: str = TARGET, **overrides: Any) -> BlockedNotifier:
    notifier = BlockedNotifier(topic.sns, topic.arn, environ=ENVIRON)
    send(notifier, target, **overrides)
    return notifier


def send(notifier: BlockedNotifier, target: str = TARGET, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "rule": "one run",
        "unregister": estate(30, lambda i: {"illumio.env.Production", f"illumio.app.A{i % 3}"}),
        "previous_pairs": 120,
        "tally": "60 of 120 pairs would be unregistered, more than MAX_REMOVAL_RATIO=0.25",
        "deployment": "dagsync-prod",
    }
    notifier.blocked(target, **{**arguments, **overrides})


def only_message(topic: Topic) -> dict[str, Any]:
    messages = topic.messages()
    assert len(messages) == 1
    return messages[0]


def test_a_blocked_target_publishes_one_message_to_the_topic(topic):
    notify(topic)
    assert only_message(topic)["TopicArn"] == topic.arn


def test_the_subject_names_the_deployment_and_the_target(topic):
    notify(topic)
    assert only_message(topic)["Subject"] == f"DAG Sync dagsync-prod: {TARGET} blocked by the removal guard"


def test_a_second_call_for_the_same_target_in_a_run_sends_nothing(topic):
    notifier = notify(topic)
    send(notifier)
    assert len(topic.messages()) == 1


def test_each_blocked_target_of_a_run_gets_its_own_message(topic):
    notifier = notify(topic, "panorama.example.com/007051000000001")
    send(notifier, "panorama.example.com/007051000000002")
    subjects = sorted(message["Subject"] for message in topic.messages())
    assert [subject.split(": ")[1].split()[0] for subject in subjects] == [
        "panorama.example.com/007051000000001",
        "panorama.example.com/007051000000002",
    ]


def test_the_message_gives_the_counts(topic):
    notify(topic)
    text = only_message(topic)["Message"]
    assert "Would unregister: 60 pairs on 30 IPs" in text
    assert "Pairs recorded before this run: 120" in text
    assert "Tally: 60 of 120 pairs would be unregistered, more than MAX_REMOVAL_RATIO=0.25" in text


@pytest.mark.parametrize("rule", ["one run", "24 hours"])
def test_the_message_names_the_rule_that_held(topic, rule):
    notify(topic, rule=rule)
    assert f"Rule that held: {rule} (" in only_message(topic)["Message"]


def test_the_message_lists_the_ten_tags_that_would_lose_the_most_members_with_counts(topic):
    # Tag number n is on n IPs: tags 12 down to 3 lose the most.
    unregister = estate(12, lambda i: {f"illumio.app.T{n:02}" for n in range(i + 1, 13)})
    notify(topic, unregister=unregister)
    text = only_message(topic)["Message"]
    assert "top 10 of 12" in text
    listed = [line.strip() for line in text.splitlines() if line.startswith("  illumio.app.T")]
    assert listed == [f"illumio.app.T{n:02}: {n} members" for n in range(12, 2, -1)]


def test_the_message_gives_the_force_event_and_the_invoke_line(topic):
    notify(topic)
    lines = [line.strip() for line in only_message(topic)["Message"].splitlines()]
    assert '{"force": true}' in lines
    assert (
        f"aws lambda invoke --function-name {FUNCTION} --region eu-west-1 --cli-binary-format raw-in-base64-out "
        "--payload '{\"force\": true}' response.json"
    ) in lines


def test_outside_lambda_the_invoke_line_has_a_placeholder_for_the_function(topic):
    BlockedNotifier(topic.sns, topic.arn, environ={}).blocked(
        TARGET, rule="one run", unregister={}, previous_pairs=40, tally="", deployment=""
    )
    message = only_message(topic)
    assert "--function-name <function name> --cli-binary-format" in message["Message"]
    assert message["Subject"].startswith("DAG Sync: ")


def test_the_message_carries_no_pair_list(topic):
    unregister = estate(200, lambda i: {"illumio.env.Production"})
    notify(topic, unregister=unregister)
    text = only_message(topic)["Message"]
    assert not [ip for ip in unregister if ip in text]
    assert "10.1." not in text


def test_the_message_carries_no_secret_from_the_environment(topic):
    notify(topic)
    message = json.dumps(only_message(topic))
    assert SECRET_KEY not in message
    assert SESSION_TOKEN not in message


def test_a_long_target_name_still_fits_the_sns_subject_limit(topic):
    target = "fw-" + "a" * 150 + ".example.com/007051000123456/vsys1"
    notify(topic, target)
    subject = only_message(topic)["Subject"]
    assert len(subject) <= MAX_SUBJECT_CHARS
    assert subject.endswith("...")


def test_a_huge_tally_keeps_the_message_under_the_sns_limit_and_the_force_line_in(topic):
    notify(topic, tally="x" * 1_000_000, deployment="d" * 128)
    text = only_message(topic)["Message"]
    assert len(text.encode()) < SNS_MAX_MESSAGE_BYTES
    assert text.rstrip().endswith("not only this one.")


def test_without_a_topic_nothing_is_sent(topic):
    BlockedNotifier(topic.sns, None, environ=ENVIRON).blocked(
        TARGET, rule="one run", unregister={}, previous_pairs=40, tally="", deployment="dagsync-prod"
    )
    assert topic.messages() == []


def test_a_failed_publish_logs_a_warning_and_does_not_raise(topic, log_lines):
    missing = topic.arn.replace("dagsync-alarms", "deleted-topic")
    notifier = BlockedNotifier(topic.sns, missing, environ=ENVIRON)
    send(notifier)
    warnings = [line for line in log_lines() if line["level"] == "WARNING"]
    assert [line["message"] for line in warnings] == [
        "blocked notification not sent; the Blocked alarm still reports the target"
    ]
    assert warnings[0]["target"] == TARGET
