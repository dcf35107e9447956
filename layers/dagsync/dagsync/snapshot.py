"""The pairs last pushed to each target, kept in DynamoDB.

One target is one partition: a manifest item plus zlib-compressed shards keyed by a hash of the
IP, so 500,000 IPs stay far below DynamoDB's 400 KB item limit and a small change rewrites only
the shards it touches. A commit writes changed shards under new keys and then swaps the manifest
with one conditional write, so a crash at any point leaves the old or the new generation fully
readable. A lease on the manifest keeps two runs from pushing to one target at the same time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dagsync.errors import SnapshotConflict, SnapshotError
from dagsync.models import TagMap, count_pairs

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesUnionTypeDef,
        QueryInputTypeDef,
        WriteRequestUnionTypeDef,
    )

logger = logging.getLogger(__name__)

MANIFEST_KEY = "manifest"
SHARD_KEY_PREFIX = "shard#"
FORMAT = 1
TARGET_IPS_PER_SHARD = 4_000
# The shard count is kept while shards average within these bounds, so an estate whose size
# hovers around a power-of-two boundary does not rewrite every shard on every run.
MIN_IPS_PER_SHARD = 1_000
MAX_IPS_PER_SHARD = 8_000
# Compressed bytes per shard item; the count doubles until every shard fits. Half the item limit
# leaves room for the keys, and 100 such items stay under BatchGetItem's 16 MB response cap.
MAX_SHARD_BYTES = 160_000
# Keeps the manifest (about 90 bytes per shard, plus pending garbage) far below 400 KB.
MAX_SHARDS = 1_024

_BATCH_GET_KEYS = 100
_BATCH_WRITE_ITEMS = 25
_BATCH_ATTEMPTS = 8
_LOAD_ATTEMPTS = 3
_BACKOFF_BASE = 0.05
_BACKOFF_MAX = 2.0
_DIGEST_CHARS = 32
_RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
_READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query"})


@dataclass(frozen=True, slots=True)
class ShardRef:
    """One shard item the manifest points at, with the digest of its decoded content."""

    key: str
    digest: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parts of a manifest that the next acquire and commit build on."""

    shard_count: int = 0
    shards: tuple[ShardRef, ...] = ()
    garbage: frozenset[str] = frozenset()  # shard keys superseded but not yet deleted
    abandoned: frozenset[str] = frozenset()  # lease holders that may have left shard items behind
    lease_holder: str | None = None  # as read; a takeover records it as abandoned


@dataclass(frozen=True)
class Snapshot:
    """The pairs last recorded for a target; generation 0 means nothing was ever committed."""

    target: str
    generation: int
    confirmed: dict[str, frozenset[str]] = field(repr=False)
    uncertain: dict[str, frozenset[str]] = field(repr=False)
    manifest: Manifest = field(default_factory=Manifest, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to commit the generation after `generation`, held until `expires_at` (clock time).

    `holder` is the run id plus a random suffix, unique per acquire even when a Lambda retry
    reuses the request id; shard items are keyed by it so leftovers can be found and deleted.
    """

    target: str
    run_id: str
    holder: str
    generation: int
    expires_at: float
    base: Manifest = field(repr=False)


# One shard's decoded content: its part of the confirmed map and of the uncertain map.
_ShardContent = tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]


@dataclass(frozen=True, slots=True)
class _EncodedShard:
    data: bytes
    digest: str
    content: _ShardContent


class _ConditionFailed(Exception):
    """A conditional write lost; carries the item as it was, when DynamoDB returned it."""

    def __init__(self, item: Mapping[str, AttributeValueTypeDef] | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


class SnapshotStore:
    """Loads, leases and commits per-target snapshots in one DynamoDB table (pk, sk)."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self.read_units = 0.0
        self.write_units = 0.0
        self.requests = 0
        # Shard digest -> decoded content, for the shards this store last read or wrote: a commit
        # compares each new shard with it and re-encodes only the shards whose content changed.
        self._known: dict[str, _ShardContent] = {}

    @property
    def client(self) -> DynamoDBClient:
        """Created on first use so that building a store costs nothing when no target syncs."""
        if self._client is None:
            self._client = boto3.client("dynamodb", config=_RETRY_CONFIG)
        return self._client

    def load(self, target: str) -> Snapshot:
        """Read the committed generation: one GetItem, then one BatchGetItem per 100 shards."""
        missing: list[str] = []
        for _ in range(_LOAD_ATTEMPTS):
            found = self._read_manifest(target)
            if found is None:
                return Snapshot(target, 0, {}, {})
            generation, manifest = found
            blobs = self._read_shards(target, [ref.key for ref in manifest.shards])
            missing = [ref.key for ref in manifest.shards if ref.key not in blobs]
            if not missing:
                confirmed, uncertain = self._decode(target, manifest, blobs)
                return Snapshot(target, generation, confirmed, uncertain, manifest)
            logger.info(
                "snapshot of %s changed while loading (shard %s is gone); reading it again",
                target,
                missing[0],
            )
        raise SnapshotError(
            f"snapshot of {target!r} in table {self.table_name!r} is incomplete: shard item "
            f"{missing[0]!r} named by the manifest is missing after {_LOAD_ATTEMPTS} reads"
        )

    def acquire(self, snapshot: Snapshot, run_id: str, lease_seconds: float) -> Lease:
        """Take the lease for the generation `snapshot` was read at, or raise SnapshotConflict.

        An expired lease seen at load is taken over, and its holder recorded as abandoned so
        the next commit deletes whatever shard items it wrote.
        """
        if not run_id or "#" in run_id:
            raise ValueError(f"run id must be non-empty and free of '#': {run_id!r}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive: {lease_seconds!r}")
        target = snapshot.target
        now = self._clock()
        holder = f"{run_id}.{secrets.token_hex(4)}"
        expires_at = now + lease_seconds
        previous = snapshot.manifest.lease_holder
        generation_check = "#generation = :generation"
        if snapshot.generation == 0:
            generation_check = f"(attribute_not_exists(#generation) OR {generation_check})"
        lease_check = "attribute_not_exists(#lease_holder)"
        update = (
            "SET #format = :format, #generation = :generation, #lease_holder = :holder, "
            "#lease_run_id = :run_id, #lease_expires_at = :expires_at"
        )
        values: dict[str, AttributeValueTypeDef] = {
            ":format": _number(FORMAT),
            ":generation": _number(snapshot.generation),
            ":holder": {"S": holder},
            ":run_id": {"S": run_id},
            ":expires_at": _number(expires_at),
        }
        names = ["format", "generation", "lease_holder", "lease_run_id", "lease_expires_at"]
        if previous is not None:
            lease_check = f"({lease_check} OR (#lease_holder = :previous AND #lease_expires_at <= :now))"
            update += " ADD #abandoned :abandoned"
            values |= {":previous": {"S": previous}, ":now": _number(now), ":abandoned": {"SS": [previous]}}
            names.append("abandoned")
        try:
            response = self._call(
                "UpdateItem",
                target,
                partial(
                    self.client.update_item,
                    TableName=self.table_name,
                    Key=self._key(target, MANIFEST_KEY),
                    UpdateExpression=update,
                    ConditionExpression=f"{generation_check} AND {lease_check}",
                    ExpressionAttributeNames=_names(*names),
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnConsumedCapacity="TOTAL",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            item = failed.item
            if item is None or "lease_holder" not in item or item["lease_holder"].get("S") != holder:
                raise SnapshotConflict(
                    _conflict_message(target, snapshot.generation, failed.item, now)
                ) from None
            # The SDK resent an update whose first answer was lost: that first update took the lease.
            written = item
        except Exception:
            # The update may have been applied with its answer lost: give back the lease it may hold.
            self.release(Lease(target, run_id, holder, snapshot.generation, expires_at, Manifest()))
            raise
        else:
            written = response["Attributes"]
        # The manifest as written, not as loaded: garbage or abandoned holders recorded since
        # the load must survive this run's manifest swap.
        _, base = self._parse(target, written)
        return Lease(target, run_id, holder, snapshot.generation, expires_at, base)

    def commit(self, lease: Lease, confirmed: TagMap, uncertain: TagMap) -> int:
        """Record the new maps as the next generation, release the lease and return the generation.

        Only shards whose content changed are written; the manifest swap is the commit point.
        Losing the lease or the generation deletes this commit's shard items and raises
        SnapshotConflict.
        """
        self._swap(lease, confirmed, uncertain, hold=False)
        return lease.generation + 1

    def checkpoint(self, lease: Lease, confirmed: TagMap, uncertain: TagMap) -> Lease:
        """Commit the maps as the next generation and keep the lease: the returned lease commits
        the generation after it. A run records what it is about to send this way, so that a crash
        or a kill part-way through sending leaves a snapshot that accounts for every pair sent."""
        manifest = self._swap(lease, confirmed, uncertain, hold=True)
        return replace(lease, generation=lease.generation + 1, base=manifest)

    def _swap(self, lease: Lease, confirmed: TagMap, uncertain: TagMap, *, hold: bool) -> Manifest:
        """Write the changed shards, then swap the manifest; returns the manifest as written."""
        target = lease.target
        base = lease.base
        known = [
            (ref.digest, self._known[ref.digest]) if ref.digest in self._known else None
            for ref in base.shards
        ]
        shards = _encode_shards(target, confirmed, uncertain, base.shard_count, known)
        commit_id = secrets.token_hex(4)
        same_layout = len(shards) == base.shard_count
        refs: list[ShardRef] = []
        written: dict[str, bytes] = {}
        for index, shard in enumerate(shards):
            if same_layout and base.shards[index].digest == shard.digest:
                refs.append(base.shards[index])
                continue
            key = f"{SHARD_KEY_PREFIX}{lease.holder}#{commit_id}#{index:05d}"
            refs.append(ShardRef(key, shard.digest))
            written[key] = shard.data
        referenced = {ref.key for ref in refs}
        garbage = (base.garbage | {ref.key for ref in base.shards}) - referenced
        self._write_shards(target, written)
        new_generation = lease.generation + 1
        ips = len(confirmed.keys() | uncertain.keys())
        item: dict[str, AttributeValueTypeDef] = {
            **self._key(target, MANIFEST_KEY),
            "format": _number(FORMAT),
            "generation": _number(new_generation),
            "shard_count": _number(len(refs)),
            "shards": {"L": [{"M": {"key": {"S": r.key}, "digest": {"S": r.digest}}} for r in refs]},
            "ips": _number(ips),
            "confirmed_pairs": _number(count_pairs(confirmed)),
            "uncertain_pairs": _number(count_pairs(uncertain)),
            "updated_at": {"S": datetime.fromtimestamp(self._clock(), UTC).isoformat()},
            "updated_by": {"S": lease.run_id},
            "commit_id": {"S": f"{lease.holder}#{commit_id}"},
        }
        if hold:
            item |= {
                "lease_holder": {"S": lease.holder},
                "lease_run_id": {"S": lease.run_id},
                "lease_expires_at": _number(lease.expires_at),
            }
        if garbage:
            item["garbage"] = {"SS": sorted(garbage)}
        if base.abandoned:
            item["abandoned"] = {"SS": sorted(base.abandoned)}
        try:
            self._call(
                "PutItem",
                target,
                partial(
                    self.client.put_item,
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="#generation = :generation AND #lease_holder = :holder",
                    ExpressionAttributeNames=_names("generation", "lease_holder"),
                    ExpressionAttributeValues={
                        ":generation": _number(lease.generation),
                        ":holder": {"S": lease.holder},
                    },
                    ReturnConsumedCapacity="TOTAL",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            # A resent write whose first answer was lost finds its own manifest: it committed, and
            # the shard items that manifest names must stay.
            if failed.item is None or failed.item.get("commit_id") != item["commit_id"]:
                self._delete_quietly(target, written)
                raise SnapshotConflict(
                    _conflict_message(target, lease.generation, failed.item, self._clock())
                ) from None
        self._known = {shard.digest: shard.content for shard in shards}
        self._collect(target, garbage, base.abandoned, referenced)
        return Manifest(len(refs), tuple(refs), garbage, base.abandoned, lease.holder if hold else None)

    def release(self, lease: Lease) -> None:
        """Give the lease back after an aborted run; best effort, never raises.

        The holder is recorded as abandoned in case a failed commit left shard items behind.
        """
        try:
            self._call(
                "UpdateItem",
                lease.target,
                partial(
                    self.client.update_item,
                    TableName=self.table_name,
                    Key=self._key(lease.target, MANIFEST_KEY),
                    UpdateExpression=(
                        "REMOVE #lease_holder, #lease_run_id, #lease_expires_at ADD #abandoned :abandoned"
                    ),
                    ConditionExpression="#lease_holder = :holder",
                    ExpressionAttributeNames=_names(
                        "lease_holder", "lease_run_id", "lease_expires_at", "abandoned"
                    ),
                    ExpressionAttributeValues={
                        ":holder": {"S": lease.holder},
                        ":abandoned": {"SS": [lease.holder]},
                    },
                    ReturnConsumedCapacity="TOTAL",
                ),
            )
        except _ConditionFailed:
            logger.info("lease on %s was no longer held by run %s", lease.target, lease.run_id)
        except SnapshotError as error:
            logger.warning("could not release the lease on %s: %s", lease.target, error)

    def _read_manifest(self, target: str) -> tuple[int, Manifest] | None:
        response = self._call(
            "GetItem",
            target,
            partial(
                self.client.get_item,
                TableName=self.table_name,
                Key=self._key(target, MANIFEST_KEY),
                ConsistentRead=True,
                ReturnConsumedCapacity="TOTAL",
            ),
        )
        item = response.get("Item")
        return None if item is None else self._parse(target, item)

    def _parse(self, target: str, item: Mapping[str, AttributeValueTypeDef]) -> tuple[int, Manifest]:
        try:
            return _parse_manifest(item)
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotError(
                f"manifest of {target!r} in table {self.table_name!r} is malformed: {error!r}"
            ) from None

    def _read_shards(self, target: str, keys: Sequence[str]) -> dict[str, bytes]:
        blobs: dict[str, bytes] = {}
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            pending: KeysAndAttributesUnionTypeDef | None = {
                "Keys": [self._key(target, key) for key in keys[start : start + _BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }
            attempt = 0
            while pending is not None:
                response = self._call(
                    "BatchGetItem",
                    target,
                    partial(
                        self.client.batch_get_item,
                        RequestItems={self.table_name: pending},
                        ReturnConsumedCapacity="TOTAL",
                    ),
                )
                items = response.get("Responses", {}).get(self.table_name, [])
                for item in items:
                    blobs[item["sk"]["S"]] = item.get("data", {}).get("B", b"")
                pending = response.get("UnprocessedKeys", {}).get(self.table_name)
                if pending is not None:
                    attempt = 1 if items else attempt + 1
                    self._pause("BatchGetItem", target, attempt)
        return blobs

    def _decode(
        self, target: str, manifest: Manifest, blobs: Mapping[str, bytes]
    ) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        confirmed: dict[str, frozenset[str]] = {}
        uncertain: dict[str, frozenset[str]] = {}
        interned: dict[frozenset[str], frozenset[str]] = {}
        self._known = {}
        for ref in manifest.shards:
            try:
                part_confirmed, part_uncertain = _decode_shard(blobs[ref.key], ref.digest, interned)
            except (zlib.error, KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
                raise SnapshotError(
                    f"snapshot of {target!r} in table {self.table_name!r} is corrupt: shard item "
                    f"{ref.key!r} cannot be decoded ({error})"
                ) from None
            confirmed |= part_confirmed
            uncertain |= part_uncertain
            self._known[ref.digest] = (part_confirmed, part_uncertain)
        return confirmed, uncertain

    def _write_shards(self, target: str, shards: Mapping[str, bytes]) -> None:
        requests: list[WriteRequestUnionTypeDef] = [
            {"PutRequest": {"Item": {**self._key(target, key), "data": {"B": data}}}}
            for key, data in shards.items()
        ]
        for start in range(0, len(requests), _BATCH_WRITE_ITEMS):
            self._batch_write(target, requests[start : start + _BATCH_WRITE_ITEMS])

    def _delete(self, target: str, keys: Iterable[str], deleted: set[str]) -> None:
        """Delete items 25 per call, adding each finished call's keys to `deleted`, so that a
        failure part-way still tells the caller what is gone."""
        ordered = sorted(keys)
        for start in range(0, len(ordered), _BATCH_WRITE_ITEMS):
            chunk = ordered[start : start + _BATCH_WRITE_ITEMS]
            self._batch_write(target, [{"DeleteRequest": {"Key": self._key(target, key)}} for key in chunk])
            deleted.update(chunk)

    def _delete_quietly(self, target: str, keys: Iterable[str]) -> None:
        try:
            self._delete(target, keys, set())
        except SnapshotError as error:
            logger.warning("could not delete the shard items of a lost commit on %s: %s", target, error)

    def _batch_write(self, target: str, requests: list[WriteRequestUnionTypeDef]) -> None:
        pending = requests
        attempt = 0
        while pending:
            response = self._call(
                "BatchWriteItem",
                target,
                partial(
                    self.client.batch_write_item,
                    RequestItems={self.table_name: pending},
                    ReturnConsumedCapacity="TOTAL",
                ),
            )
            unprocessed: list[WriteRequestUnionTypeDef] = list(
                response.get("UnprocessedItems", {}).get(self.table_name, [])
            )
            if unprocessed:
                attempt = 1 if len(unprocessed) < len(pending) else attempt + 1
                self._pause("BatchWriteItem", target, attempt)
            pending = unprocessed

    def _collect(
        self, target: str, garbage: frozenset[str], abandoned: frozenset[str], referenced: set[str]
    ) -> None:
        """Delete superseded and abandoned shard items after a swap; best effort.

        Whatever is not deleted stays listed in the manifest for the next commit. An item the
        new manifest references is never deleted.
        """
        leftovers: dict[str, set[str]] = {}
        for holder in sorted(abandoned):
            try:
                leftovers[holder] = self._keys_written_by(target, holder) - referenced
            except SnapshotError as error:
                logger.warning("could not list the shard items of %s on %s: %s", holder, target, error)
        deleted: set[str] = set()
        try:
            self._delete(target, (garbage - referenced).union(*leftovers.values()), deleted)
        except SnapshotError as error:
            logger.warning("could not delete superseded shard items of %s: %s", target, error)
        cleared_holders = {holder for holder, keys in leftovers.items() if keys <= deleted}
        self._forget(target, garbage & deleted, cleared_holders)

    def _keys_written_by(self, target: str, holder: str) -> set[str]:
        keys: set[str] = set()
        request: QueryInputTypeDef = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": _names("pk", "sk"),
            "ExpressionAttributeValues": {
                ":pk": {"S": target},
                ":prefix": {"S": f"{SHARD_KEY_PREFIX}{holder}#"},
            },
            "ProjectionExpression": "#sk",
            "ConsistentRead": True,
            "ReturnConsumedCapacity": "TOTAL",
        }
        while True:
            response = self._call("Query", target, partial(self.client.query, **request))
            keys.update(item["sk"]["S"] for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                return keys
            request["ExclusiveStartKey"] = last

    def _forget(self, target: str, garbage: Collection[str], holders: Collection[str]) -> None:
        """Drop deleted keys and cleaned-up holders from the manifest; set deletes commute with
        any commit that happened meanwhile, so this needs no generation check."""
        actions: list[str] = []
        names = ["generation"]
        values: dict[str, AttributeValueTypeDef] = {}
        for name, members in (("garbage", garbage), ("abandoned", holders)):
            if members:
                actions.append(f"#{name} :{name}")
                names.append(name)
                values[f":{name}"] = {"SS": sorted(members)}
        if not actions:
            return
        try:
            self._call(
                "UpdateItem",
                target,
                partial(
                    self.client.update_item,
                    TableName=self.table_name,
                    Key=self._key(target, MANIFEST_KEY),
                    UpdateExpression="DELETE " + ", ".join(actions),
                    ConditionExpression="attribute_exists(#generation)",
                    ExpressionAttributeNames=_names(*names),
                    ExpressionAttributeValues=values,
                    ReturnConsumedCapacity="TOTAL",
                ),
            )
        except (_ConditionFailed, SnapshotError) as error:
            logger.warning("could not update the garbage list of %s: %r", target, error)

    def _call[R: Mapping[str, Any]](self, operation: str, target: str, request: Callable[[], R]) -> R:
        """Run one DynamoDB request, counting it and its capacity, and translate its errors."""
        self.requests += 1
        try:
            response = request()
        except ClientError as error:
            details = error.response.get("Error", {})
            code = details.get("Code", "Unknown")
            if code == "ConditionalCheckFailedException":
                raw: Mapping[str, Any] = error.response
                raise _ConditionFailed(raw.get("Item")) from error
            raise SnapshotError(
                f"DynamoDB {operation} on table {self.table_name!r} for target {target!r} failed: "
                f"{code}: {details.get('Message', '')}"
            ) from error
        except BotoCoreError as error:
            raise SnapshotError(
                f"DynamoDB {operation} on table {self.table_name!r} for target {target!r} failed: {error}"
            ) from error
        consumed = response.get("ConsumedCapacity") or []
        units = sum(part.get("CapacityUnits", 0.0) for part in _as_list(consumed))
        if operation in _READ_OPERATIONS:
            self.read_units += units
        else:
            self.write_units += units
        return response

    def _pause(self, operation: str, target: str, attempt: int) -> None:
        """Back off before resending unprocessed items; callers restart `attempt` after progress."""
        if attempt > _BATCH_ATTEMPTS:
            raise SnapshotError(
                f"DynamoDB {operation} on table {self.table_name!r} for target {target!r} left items "
                f"unprocessed {_BATCH_ATTEMPTS} times in a row"
            )
        ceiling = min(_BACKOFF_MAX, _BACKOFF_BASE * 2 ** (attempt - 1))
        self._sleep(ceiling * (0.5 + 0.5 * random.random()))

    @staticmethod
    def _key(target: str, sort_key: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": target}, "sk": {"S": sort_key}}


def _names(*attributes: str) -> dict[str, str]:
    """Placeholders for every attribute named in an expression; some are reserved words."""
    return {f"#{name}": name for name in attributes}


def _number(value: float) -> AttributeValueTypeDef:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _parse_manifest(item: Mapping[str, AttributeValueTypeDef]) -> tuple[int, Manifest]:
    version = int(item["format"]["N"])
    if version != FORMAT:
        raise ValueError(f"format {version} is not supported (this version reads format {FORMAT})")
    generation = int(item["generation"]["N"])
    shards = tuple(
        ShardRef(entry["M"]["key"]["S"], entry["M"]["digest"]["S"])
        for entry in item.get("shards", {"L": []})["L"]
    )
    shard_count = int(item["shard_count"]["N"]) if "shard_count" in item else 0
    if len(shards) != shard_count or (shard_count & (shard_count - 1)):
        raise ValueError(f"shard_count {shard_count} is not a power of two equal to the {len(shards)} shards")
    lease_holder = item["lease_holder"]["S"] if "lease_holder" in item else None
    return generation, Manifest(
        shard_count,
        shards,
        frozenset(item["garbage"]["SS"]) if "garbage" in item else frozenset(),
        frozenset(item["abandoned"]["SS"]) if "abandoned" in item else frozenset(),
        lease_holder,
    )


def _conflict_message(
    target: str, generation: int, item: Mapping[str, AttributeValueTypeDef] | None, now: float
) -> str:
    if item is None or "generation" not in item:
        return f"another run changed the snapshot of {target!r}"
    current = int(item["generation"]["N"])
    if current != generation:
        return (
            f"another run committed generation {current} of {target!r} "
            f"after this run read generation {generation}"
        )
    if "lease_holder" not in item:
        return f"another run may have taken the lease on {target!r}: this run no longer holds it"
    run_id = item.get("lease_run_id", {}).get("S", "?")
    expires_at = float(item.get("lease_expires_at", {}).get("N", "0"))
    if expires_at > now:
        until = datetime.fromtimestamp(expires_at, UTC).isoformat()
        return f"another run ({run_id}) holds the lease on {target!r} until {until}"
    return f"another run ({run_id}) holds an expired lease on {target!r} taken after this run loaded"


def _ip_hash(ip: str) -> int:
    return int.from_bytes(hashlib.sha256(ip.encode()).digest()[:4], "big")


def _shard_count(ips: int, current: int) -> int:
    if (
        current
        and ips <= current * MAX_IPS_PER_SHARD
        and (current == 1 or ips >= current * MIN_IPS_PER_SHARD)
    ):
        return current
    wanted = max(1, -(-ips // TARGET_IPS_PER_SHARD))
    return 1 << (wanted - 1).bit_length()


def _encode_shards(
    target: str,
    confirmed: TagMap,
    uncertain: TagMap,
    current: int,
    known: Sequence[tuple[str, _ShardContent] | None] = (),
) -> list[_EncodedShard]:
    """Split the maps by IP hash into a power-of-two number of shards that each fit an item.

    `known` holds the digest and content of each current shard, where known: a shard whose
    content is unchanged keeps its digest (and so its item) without being encoded again.
    """
    hashes = {ip: _ip_hash(ip) for ip in confirmed.keys() | uncertain.keys()}
    count = _shard_count(len(hashes), current)
    while count <= MAX_SHARDS:
        mask = count - 1
        parts: list[tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]] = [
            ({}, {}) for _ in range(count)
        ]
        for ip, tags in confirmed.items():
            parts[hashes[ip] & mask][0][ip] = tags
        for ip, tags in uncertain.items():
            parts[hashes[ip] & mask][1][ip] = tags
        same_layout = count == current == len(known)
        reused = [
            _unchanged_shard(part, known[index]) if same_layout else None for index, part in enumerate(parts)
        ]
        shards = [shard or _encode_shard(*part) for shard, part in zip(reused, parts, strict=True)]
        if all(len(shard.data) <= MAX_SHARD_BYTES for shard in shards):
            return shards
        count *= 2
    raise SnapshotError(
        f"snapshot of {target!r} is too large: {len(hashes)} IPs need more than {MAX_SHARDS} shards"
    )


def _unchanged_shard(content: _ShardContent, known: tuple[str, _ShardContent] | None) -> _EncodedShard | None:
    """The current shard again (its digest; nothing to write) when its content has not changed."""
    if known is None or known[1] != content:
        return None
    return _EncodedShard(b"", known[0], content)


def _encode_shard(
    confirmed: dict[str, frozenset[str]], uncertain: dict[str, frozenset[str]]
) -> _EncodedShard:
    """Deterministic compact JSON: each IP points at a shard-local table of distinct tag sets,
    and each set lists indices into the sorted tags, so equal content gives equal bytes."""
    distinct = set(confirmed.values()) | set(uncertain.values())
    tags = sorted(set[str]().union(*distinct))
    tag_index = {tag: index for index, tag in enumerate(tags)}
    rows = sorted((sorted(map(tag_index.__getitem__, tag_set)), tag_set) for tag_set in distinct)
    set_index = {tag_set: index for index, (_, tag_set) in enumerate(rows)}
    payload = {
        "tags": tags,
        "sets": [row for row, _ in rows],
        "confirmed": {ip: set_index[confirmed[ip]] for ip in sorted(confirmed)},
        "uncertain": {ip: set_index[uncertain[ip]] for ip in sorted(uncertain)},
    }
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return _EncodedShard(zlib.compress(raw), _digest(raw), (confirmed, uncertain))


def _decode_shard(
    data: bytes, digest: str, interned: dict[frozenset[str], frozenset[str]]
) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Inverse of _encode_shard; equal tag sets share one object across shards to save memory."""
    raw = zlib.decompress(data)
    if _digest(raw) != digest:
        raise ValueError("content digest does not match the manifest")
    payload = json.loads(raw)
    tags = payload["tags"]
    sets = [
        interned.setdefault(tag_set, tag_set)
        for tag_set in (frozenset(tags[i] for i in row) for row in payload["sets"])
    ]
    confirmed = {ip: sets[index] for ip, index in payload["confirmed"].items()}
    uncertain = {ip: sets[index] for ip, index in payload["uncertain"].items()}
    return confirmed, uncertain


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:_DIGEST_CHARS]
