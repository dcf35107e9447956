"""Access to the one DynamoDB table (pk, sk) every stored structure lives in.

Each request is counted with the capacity it consumed, and its errors become SnapshotError (or
ConditionFailed for a conditional write that lost). Batched reads and writes resend what
DynamoDB left unprocessed through `dagsync.retry.Retrier`; each call that makes progress starts
the count again, so only a batch that makes no progress `UNPROCESSED_RETRY.attempts` times in a
row fails. See docs/snapshot.md#items and docs/sync.md#retries.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dagsync.core.errors import SnapshotError
from dagsync.net.retry import Retrier, RetriesExhausted, Retryable, RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesOutputTypeDef,
        KeysAndAttributesUnionTypeDef,
        PutItemInputTypeDef,
        QueryInputTypeDef,
        WriteRequestUnionTypeDef,
    )

type Item = Mapping[str, AttributeValueTypeDef]

# Unprocessed items mean the table is busy: short waits, growing to 2 s.
UNPROCESSED_RETRY = RetryPolicy(attempts=8, base_delay=0.05, max_delay=2.0)
# The SDK's own retries, for throttling and transient errors of single requests.
_SDK_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
_BATCH_GET_KEYS = 100
_BATCH_WRITE_ITEMS = 25
_READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query"})
_PLACEHOLDER = re.compile(r"#\w+")


class ConditionFailed(Exception):
    """A conditional write lost; carries the item as it was, when DynamoDB returned it."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


class _Unprocessed(Exception):
    """A batch call that DynamoDB processed none of."""


class Table:
    """One DynamoDB table: counted requests, mapped errors, batches that finish or fail clearly."""

    def __init__(
        self, name: str, *, client: DynamoDBClient | None = None, retrier: Retrier | None = None
    ) -> None:
        self.name = name
        self._client = client
        self._retrier = retrier or Retrier(UNPROCESSED_RETRY)
        self._lock = threading.Lock()
        self.read_units = 0.0
        self.write_units = 0.0
        self.requests = 0

    @property
    def client(self) -> DynamoDBClient:
        """Created on first use so that building a table costs nothing when nothing is stored."""
        if self._client is None:
            self._client = boto3.client("dynamodb", config=_SDK_CONFIG)
        return self._client

    def call[R: Mapping[str, Any]](self, operation: str, pk: str, request: Callable[[], R]) -> R:
        """Run one DynamoDB request, counting it and its capacity, and translate its errors."""
        with self._lock:
            self.requests += 1
        try:
            response = request()
        except ClientError as error:
            details = error.response.get("Error", {})
            code = details.get("Code", "Unknown")
            if code == "ConditionalCheckFailedException":
                raw: Mapping[str, Any] = error.response
                raise ConditionFailed(raw.get("Item")) from error
            raise SnapshotError(
                f"{self._describe(operation, pk)} failed: {code}: {details.get('Message', '')}"
            ) from error
        except BotoCoreError as error:
            raise SnapshotError(f"{self._describe(operation, pk)} failed: {error}") from error
        consumed = response.get("ConsumedCapacity") or []
        units = sum(part.get("CapacityUnits", 0.0) for part in _as_list(consumed))
        with self._lock:
            if operation in _READ_OPERATIONS:
                self.read_units += units
            else:
                self.write_units += units
        return response

    def key(self, pk: str, sk: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def get(self, pk: str, sk: str) -> Item | None:
        """One item, strongly consistent, or None."""
        response = self.call(
            "GetItem",
            pk,
            partial(
                self.client.get_item,
                TableName=self.name,
                Key=self.key(pk, sk),
                ConsistentRead=True,
                ReturnConsumedCapacity="TOTAL",
            ),
        )
        return response.get("Item")

    def get_many(self, pk: str, sks: Sequence[str]) -> dict[str, Item]:
        """The items of `sks` that exist, by sort key, strongly consistent: one BatchGetItem per
        100 keys."""
        return self._get_keys(pk, [(pk, sk) for sk in sks], by="sk")

    def get_in_each(self, pks: Sequence[str], sk: str) -> dict[str, Item]:
        """The item `sk` of each partition of `pks` that has one, by partition, strongly
        consistent: one BatchGetItem per 100 partitions, where a GetItem each would cost a round
        trip each."""
        label = "".join(pks[:1]) + (f" and {len(pks) - 1} more" if len(pks) > 1 else "")
        return self._get_keys(label, [(pk, sk) for pk in pks], by="pk")

    def _get_keys(self, label: str, keys: Sequence[tuple[str, str]], *, by: str) -> dict[str, Item]:
        """The items of `keys` (pk, sk) that exist, keyed by their attribute `by`; `label` names
        them in errors."""
        found: dict[str, Item] = {}
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: KeysAndAttributesUnionTypeDef | None = {
                "Keys": [self.key(pk, sk) for pk, sk in keys[start : start + _BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }
            while pending is not None:
                pending = self._until_progress(
                    "BatchGetItem", label, partial(self._get_batch, label, pending, found, by=by)
                )
        return found

    def put_many(self, pk: str, items: Mapping[str, Item]) -> None:
        """Write the items (by sort key), 25 per BatchWriteItem."""
        requests: list[WriteRequestUnionTypeDef] = [
            {"PutRequest": {"Item": {**self.key(pk, sk), **attributes}}} for sk, attributes in items.items()
        ]
        for start in range(0, len(requests), _BATCH_WRITE_ITEMS):
            self._write_batch(pk, requests[start : start + _BATCH_WRITE_ITEMS])

    def delete_many(self, pk: str, sks: Iterable[str], deleted: set[str]) -> None:
        """Delete items 25 per call, adding each finished call's keys to `deleted`, so that a
        failure part-way still tells the caller what is gone."""
        ordered = sorted(sks)
        for start in range(0, len(ordered), _BATCH_WRITE_ITEMS):
            chunk = ordered[start : start + _BATCH_WRITE_ITEMS]
            self._write_batch(pk, [{"DeleteRequest": {"Key": self.key(pk, sk)}} for sk in chunk])
            deleted.update(chunk)

    def put(self, item: Item, *, condition: str, values: Mapping[str, AttributeValueTypeDef]) -> None:
        """A conditional PutItem; ConditionFailed carries the item it lost to."""
        request: PutItemInputTypeDef = {
            "TableName": self.name,
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": placeholders(condition),
            "ReturnConsumedCapacity": "TOTAL",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        self.call("PutItem", item["pk"]["S"], partial(self.client.put_item, **request))

    def update(
        self,
        pk: str,
        sk: str,
        *,
        update: str,
        condition: str,
        values: Mapping[str, AttributeValueTypeDef],
        return_new: bool = False,
    ) -> Item:
        """A conditional UpdateItem; returns the item as written when `return_new`."""
        response = self.call(
            "UpdateItem",
            pk,
            partial(
                self.client.update_item,
                TableName=self.name,
                Key=self.key(pk, sk),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=placeholders(update, condition),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW" if return_new else "NONE",
                ReturnConsumedCapacity="TOTAL",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
        )
        return response.get("Attributes", {})

    def keys_with_prefix(self, pk: str, prefix: str) -> set[str]:
        """The sort keys in `pk` that start with `prefix` (keys only, strongly consistent)."""
        keys: set[str] = set()
        request: QueryInputTypeDef = {
            "TableName": self.name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ProjectionExpression": "#sk",
            "ConsistentRead": True,
            "ReturnConsumedCapacity": "TOTAL",
        }
        while True:
            response = self.call("Query", pk, partial(self.client.query, **request))
            keys.update(item["sk"]["S"] for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                return keys
            request["ExclusiveStartKey"] = last

    def _get_batch(
        self, pk: str, pending: KeysAndAttributesUnionTypeDef, found: dict[str, Item], *, by: str
    ) -> tuple[bool, KeysAndAttributesOutputTypeDef | None]:
        """One BatchGetItem; the items found are keyed by their attribute `by` (sk or pk)."""
        response = self.call(
            "BatchGetItem",
            pk,
            partial(
                self.client.batch_get_item,
                RequestItems={self.name: pending},
                ReturnConsumedCapacity="TOTAL",
            ),
        )
        items = response.get("Responses", {}).get(self.name, [])
        for item in items:
            found[item[by]["S"]] = item
        return bool(items), response.get("UnprocessedKeys", {}).get(self.name)

    def _write_batch(self, pk: str, requests: list[WriteRequestUnionTypeDef]) -> None:
        pending: list[WriteRequestUnionTypeDef] | None = requests
        while pending:
            pending = self._until_progress("BatchWriteItem", pk, partial(self._send_writes, pk, pending))

    def _send_writes(
        self, pk: str, requests: list[WriteRequestUnionTypeDef]
    ) -> tuple[bool, list[WriteRequestUnionTypeDef] | None]:
        response = self.call(
            "BatchWriteItem",
            pk,
            partial(
                self.client.batch_write_item,
                RequestItems={self.name: requests},
                ReturnConsumedCapacity="TOTAL",
            ),
        )
        unprocessed: list[WriteRequestUnionTypeDef] = list(
            response.get("UnprocessedItems", {}).get(self.name, [])
        )
        return len(unprocessed) < len(requests), unprocessed or None

    def _until_progress[P](
        self, operation: str, pk: str, send: Callable[[], tuple[bool, P | None]]
    ) -> P | None:
        """Send until a call processes something (or everything); returns what is left."""

        def attempt() -> P | None:
            progressed, left = send()
            if left is not None and not progressed:
                raise Retryable(_Unprocessed(operation))
            return left

        try:
            return self._retrier.call(attempt)
        except RetriesExhausted as exhausted:
            raise SnapshotError(
                f"{self._describe(operation, pk)} left items unprocessed {exhausted.attempts} times "
                f"in a row ({exhausted.summary})"
            ) from None

    def _describe(self, operation: str, pk: str) -> str:
        return f"DynamoDB {operation} on table {self.name!r} for {pk!r}"


def placeholders(*expressions: str) -> dict[str, str]:
    """`#name` for every attribute an expression names (some are reserved words)."""
    return {name: name[1:] for expression in expressions for name in _PLACEHOLDER.findall(expression)}


def number(value: float) -> AttributeValueTypeDef:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
