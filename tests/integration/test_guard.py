"""The removal guard over one run and a rolling 24 hours, and the notification of a blocked target
(docs/sync.md#removal-guard, docs/dag-awareness.md#blocked-notification)."""

import json
from pathlib import Path

import pytest

from emulators.local import REGION
from emulators.panos import PanosEmulator
from tests.integration.conftest import large_estate
from tests.support.clock import FakeClock

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEDULED = json.loads((EVENTS / "scheduled.json").read_text())
FORCED = json.loads((EVENTS / "manual-force.json").read_text())
SERIALS = ("007951000000101", "007951000000102")
TOPIC = f"arn:aws:sns:{REGION}:123456789012:dagsync-alarms"
DAY = 24 * 3600.0


@pytest.fixture
def pce(pce):
    pce.set_workloads(large_estate(50))  # 100 pairs: an app and an env tag each
    return pce


@pytest.fixture
def wall_clock(fast_retries) -> FakeClock:
    """The wall clock the snapshot store keeps the target history on."""
    clock = FakeClock()
    fast_retries.configure(wall_clock=clock)
    return clock


def walk_down(deployment, pce, counts):
    """One scheduled run per workload count, after a first run with all fifty; their summaries."""
    deployment.invoke(SCHEDULED)
    summaries = []
    for count in counts:
        pce.set_workloads(large_estate(count))
        summaries.append(deployment.invoke(SCHEDULED))
    return summaries


def test_removing_a_fifth_per_run_is_blocked_by_the_second_removal(deployment, pce):
    summaries = walk_down(deployment, pce, [40, 32])
    assert [summary["status"] for summary in summaries] == ["ok", "blocked"]


def test_the_blocked_message_names_the_24_hour_rule_and_its_tally(deployment, pce):
    *_, blocked = walk_down(deployment, pce, [40, 32])
    error = blocked["targets"][0]["error"]
    assert "24 hours rule" in error
    assert "36 pairs would be unregistered within 24 hours (16 by this run)" in error
    assert "of at most 100 pairs held" in error


def test_one_mass_removal_names_the_one_run_rule(deployment, pce):
    (blocked,) = walk_down(deployment, pce, [20])
    assert "one run rule" in blocked["targets"][0]["error"]
    assert "60 of 100 pairs" in blocked["targets"][0]["error"]


def test_a_blocked_walk_down_sends_nothing(deployment, pce, panos):
    walk_down(deployment, pce, [40])
    panos.clear_log()
    pce.set_workloads(large_estate(32))
    deployment.invoke(SCHEDULED)
    assert panos.calls("user-id") == []


def test_force_lets_the_walk_down_through(deployment, pce):
    walk_down(deployment, pce, [40, 32])
    summary = deployment.invoke(FORCED)
    assert (summary["status"], summary["targets"][0]["unregistered"]) == ("ok", 16)


def test_removals_older_than_24_hours_no_longer_count(deployment, pce, wall_clock):
    walk_down(deployment, pce, [40])
    wall_clock.advance(DAY + 1)
    pce.set_workloads(large_estate(32))
    assert deployment.invoke(SCHEDULED)["status"] == "ok"


def test_a_blocked_run_commits_nothing_but_its_status(deployment, pce):
    *_, blocked = walk_down(deployment, pce, [40, 32])
    # The snapshot still holds 40 workloads: the next run plans the same removal and is blocked again.
    again = deployment.invoke(SCHEDULED)
    assert again["targets"][0]["error"] == blocked["targets"][0]["error"]


class TestBlockedNotification:
    @pytest.fixture
    def panos(self):
        return PanosEmulator("panorama", api_keys=("test-api-key",), firewalls=SERIALS)

    @pytest.fixture
    def settings(self):
        return {"PANOS_TARGET_SERIALS": ",".join(SERIALS), "ALARM_TOPIC_ARN": TOPIC}

    @pytest.fixture
    def messages(self, deployment):
        """Reads what reached the alarm topic, through an SQS queue subscribed to it."""
        sns, sqs = deployment.client("sns"), deployment.client("sqs")
        assert sns.create_topic(Name="dagsync-alarms")["TopicArn"] == TOPIC
        queue = sqs.create_queue(QueueName="alarms")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=queue_arn["QueueArn"])

        def received():
            answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
            return [json.loads(message["Body"]) for message in answer.get("Messages", [])]

        return received

    def test_a_blocked_run_sends_one_message_per_blocked_target(self, deployment, pce, messages):
        deployment.invoke(SCHEDULED)
        pce.set_workloads(large_estate(20))
        assert deployment.invoke(SCHEDULED)["status"] == "blocked"
        subjects = sorted(message["Subject"] for message in messages())
        assert len(subjects) == 2
        assert [serial in subject for serial, subject in zip(SERIALS, subjects, strict=True)] == [True, True]

    def test_the_message_says_which_rule_held_and_how_to_force(self, deployment, pce, messages):
        deployment.invoke(SCHEDULED)
        pce.set_workloads(large_estate(20))
        deployment.invoke(SCHEDULED)
        text = messages()[0]["Message"]
        assert "Rule that held: one run" in text
        assert '{"force": true}' in text
        assert "10.2." not in text  # no pair list

    def test_a_blocked_dry_run_sends_no_message(self, deployment, pce, messages):
        deployment.invoke(SCHEDULED)
        pce.set_workloads(large_estate(20))
        assert deployment.invoke({"dry_run": True})["status"] == "blocked"
        assert messages() == []
