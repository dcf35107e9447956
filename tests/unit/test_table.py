"""Table access against moto: batches that DynamoDB answers only in part, counted and bounded."""

from typing import Any

import pytest

from dagsync.core.errors import SnapshotError
from dagsync.net.retry import Retrier
from dagsync.store.table import UNPROCESSED_RETRY, ConditionFailed, Table
from emulators.local import TABLE
from tests.support.clock import FakeClock

PK = "fw.example.com"


class Forwarding:
    """A real client, with the calls of the operation a subclass overrides counted."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class Stingy(Forwarding):
    """Leaves everything unprocessed for the first `refusals` BatchWriteItem calls, then processes
    one item per call."""

    def __init__(self, client: Any, *, refusals: int) -> None:
        super().__init__(client)
        self.refusals = refusals

    def batch_write_item(self, **kwargs: Any) -> Any:
        self.calls += 1
        requests = kwargs["RequestItems"][TABLE]
        if self.calls <= self.refusals:
            return {"UnprocessedItems": {TABLE: requests}}
        response = self.client.batch_write_item(
            RequestItems={TABLE: requests[:1]}, ReturnConsumedCapacity="TOTAL"
        )
        response["UnprocessedItems"] = {TABLE: requests[1:]} if requests[1:] else {}
        return response


class Waits:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def table(client: Any, clock: FakeClock, waits: Waits, *, deadline: float | None = None) -> Table:
    return Table(
        TABLE, client=client, retrier=Retrier(UNPROCESSED_RETRY, sleep=waits, clock=clock, deadline=deadline)
    )


def items(count: int) -> dict[str, Any]:
    return {f"item#{n}": {"data": {"B": b"x"}} for n in range(count)}


def stored(client: Any) -> int:
    return len(client.scan(TableName=TABLE)["Items"])


def test_unprocessed_items_are_resent_after_the_retry_policys_backoff(dynamodb: Any) -> None:
    clock = FakeClock()
    waits = Waits(clock)

    table(Stingy(dynamodb, refusals=3), clock, waits).put_many(PK, items(3))

    assert stored(dynamodb) == 3
    ceilings = [min(UNPROCESSED_RETRY.max_delay, UNPROCESSED_RETRY.base_delay * 2**n) for n in range(3)]
    assert len(waits.waits) == 3
    assert all(ceiling / 2 <= wait <= ceiling for wait, ceiling in zip(waits.waits, ceilings, strict=True))


def test_a_call_that_makes_progress_starts_the_count_again(dynamodb: Any) -> None:
    clock = FakeClock()
    waits = Waits(clock)

    table(Stingy(dynamodb, refusals=0), clock, waits).put_many(PK, items(20))

    assert stored(dynamodb) == 20
    assert waits.waits == []


def test_a_batch_that_never_makes_progress_fails_after_the_policys_attempts(dynamodb: Any) -> None:
    clock = FakeClock()
    waits = Waits(clock)

    with pytest.raises(SnapshotError, match=r"BatchWriteItem .* left items unprocessed 8 times in a row"):
        table(Stingy(dynamodb, refusals=100), clock, waits).put_many(PK, items(2))

    assert len(waits.waits) == UNPROCESSED_RETRY.attempts - 1


def test_waiting_for_unprocessed_items_stops_before_the_deadline(dynamodb: Any) -> None:
    clock = FakeClock()
    waits = Waits(clock)

    with pytest.raises(SnapshotError, match="the run's time is nearly out"):
        table(Stingy(dynamodb, refusals=100), clock, waits, deadline=clock.now + 0.3).put_many(PK, items(2))

    assert sum(waits.waits) <= 0.3


def test_requests_and_consumed_capacity_are_counted(dynamodb: Any) -> None:
    clock = FakeClock()
    counted = table(dynamodb, clock, Waits(clock))

    counted.put_many(PK, items(30))
    counted.get_many(PK, sorted(items(30)))

    assert counted.requests == 3
    assert counted.read_units > 0
    assert counted.write_units > 0


class StingyReads(Forwarding):
    """Answers one key per BatchGetItem call, the rest unprocessed."""

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.calls += 1
        wanted = kwargs["RequestItems"][TABLE]
        first, rest = wanted["Keys"][:1], wanted["Keys"][1:]
        response = self.client.batch_get_item(
            RequestItems={TABLE: {**wanted, "Keys": first}}, ReturnConsumedCapacity="TOTAL"
        )
        response["UnprocessedKeys"] = {TABLE: {**wanted, "Keys": rest}} if rest else {}
        return response


def manifests(client: Any, pks: list[str]) -> None:
    for pk in pks:
        client.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "sk": {"S": "manifest"}})


def test_one_item_of_many_partitions_is_read_in_one_request_per_hundred(dynamodb: Any) -> None:
    clock = FakeClock()
    counted = table(dynamodb, clock, Waits(clock))
    pks = [f"fw-{n}" for n in range(150)]
    manifests(dynamodb, pks[:140])

    found = counted.get_in_each(pks, "manifest")

    assert sorted(found) == sorted(pks[:140])
    assert all(item["pk"]["S"] == pk for pk, item in found.items())
    assert counted.requests == 2


def test_partitions_left_unprocessed_are_asked_for_again(dynamodb: Any) -> None:
    clock = FakeClock()
    stingy = StingyReads(dynamodb)
    pks = ["fw-a", "fw-b", "fw-c"]
    manifests(dynamodb, pks)

    found = table(stingy, clock, Waits(clock)).get_in_each(pks, "manifest")

    assert sorted(found) == pks
    assert stingy.calls == 3


def test_a_conditional_write_that_loses_carries_the_item_it_lost_to(dynamodb: Any) -> None:
    clock = FakeClock()
    counted = table(dynamodb, clock, Waits(clock))
    counted.put_many(PK, {"manifest": {"generation": {"N": "2"}}})

    with pytest.raises(ConditionFailed) as lost:
        counted.update(
            PK,
            "manifest",
            update="SET #generation = :next",
            condition="#generation = :read",
            values={":next": {"N": "2"}, ":read": {"N": "1"}},
        )

    assert lost.value.item is not None and lost.value.item["generation"] == {"N": "2"}


def test_keys_with_a_prefix_are_listed_across_pages(dynamodb: Any) -> None:
    clock = FakeClock()
    counted = table(dynamodb, clock, Waits(clock))
    counted.put_many(PK, {**items(5), "other#1": {"data": {"B": b"y"}}})

    assert counted.keys_with_prefix(PK, "item#") == set(items(5))
