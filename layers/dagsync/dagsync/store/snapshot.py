"""The pairs last pushed to each target, and its recent history, kept in DynamoDB.

One target is one partition of the table (see partition.py): a manifest item plus compressed
shards keyed by a hash of the IP, so 500,000 IPs stay far below DynamoDB's item limit and a
small change rewrites only the shards it touches. A lease on the manifest keeps two runs from
pushing to one target at the same time; a checkpoint commits the write-ahead record and keeps
the lease. The target's history (history.py) rides in the manifest. See docs/snapshot.md.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dagsync.core.clocks import Clock
from dagsync.core.errors import SnapshotError
from dagsync.core.history import Removal, RunOutcome, TargetHistory
from dagsync.core.models import TagMap, count_pairs
from dagsync.net.retry import Retrier
from dagsync.store.codec import (
    DEFAULT_LIMITS,
    Interned,
    Parts,
    ShardLimits,
    TagSetTable,
    compact_json,
    layout_digests,
    read_tag_sets,
)
from dagsync.store.lease import DEFAULT_MAX_LEASE_SECONDS, Lease
from dagsync.store.manifest import MANIFEST_KEY, Manifest
from dagsync.store.partition import ExpectedLayout, ShardedPartition
from dagsync.store.table import UNPROCESSED_RETRY, ConditionFailed, Table, number

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "DEFAULT_MAX_LEASE_SECONDS",
    "FORMAT",
    "Lease",
    "Snapshot",
    "SnapshotStore",
]

logger = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    """The pairs last recorded for a target; generation 0 means nothing was ever committed.

    `part` None: the maps are the whole snapshot. Otherwise they hold only the shards `part`
    (docs/snapshot.md#partial-reads), complete for every IP those shards hold.
    """

    target: str
    generation: int
    confirmed: dict[str, frozenset[str]] = field(repr=False)
    uncertain: dict[str, frozenset[str]] = field(repr=False)
    manifest: Manifest = field(default_factory=Manifest, repr=False, compare=False)
    history: TargetHistory = field(default_factory=TargetHistory, compare=False)
    part: frozenset[int] | None = None

    @property
    def recorded_pairs(self) -> int:
        """Confirmed plus uncertain pairs of the whole generation, whether or not all was read."""
        if self.part is None:
            return count_pairs(self.confirmed) + count_pairs(self.uncertain)
        return _count(self.manifest, "confirmed_pairs") + _count(self.manifest, "uncertain_pairs")


class SnapshotStore:
    """Loads, leases and commits per-target snapshots in one DynamoDB table (pk, sk).

    `clock` is wall-clock epoch seconds (leases are compared across processes); `sleep` and
    `deadline` (a value of `clock`) bound the waits for unprocessed batch items.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
        limits: ShardLimits = DEFAULT_LIMITS,
        max_lease_seconds: float = DEFAULT_MAX_LEASE_SECONDS,
    ) -> None:
        retrier = Retrier(UNPROCESSED_RETRY, sleep=sleep, clock=clock, deadline=deadline)
        self.table = Table(table_name, client=client, retrier=retrier)
        self._clock = clock
        codec = _TagMapsCodec()
        self._partition = ShardedPartition(
            self.table,
            codec,
            kind="snapshot",
            format_version=FORMAT,
            width=2,
            limits=limits,
            clock=clock,
            max_lease_seconds=max_lease_seconds,
        )
        self._layouts = _ExpectedLayouts(codec)

    @property
    def client(self) -> DynamoDBClient:
        return self.table.client

    @property
    def read_units(self) -> float:
        return self.table.read_units

    @property
    def write_units(self) -> float:
        return self.table.write_units

    @property
    def requests(self) -> int:
        return self.table.requests

    def load(
        self, target: str, *, ips: Iterable[str] | None = None, expect: TagMap | None = None
    ) -> Snapshot:
        """Read the committed generation: one GetItem, then one BatchGetItem per 100 shards.

        With `ips`, only the shards holding them are read (a targeted update's few addresses),
        and the lease taken on this snapshot commits only those shards. With `expect` (the pairs
        the run is about to plan), a shard whose digest says it holds exactly `expect`'s share as
        confirmed pairs is not read or decoded: an unchanged target costs its manifest alone
        (docs/snapshot.md#expected-content).
        """
        expected = None if expect is None else self._layouts.of(expect)
        loaded = self._partition.load(target, ips, expected=expected)
        if loaded is None:
            return Snapshot(target, 0, {}, {})
        confirmed, uncertain = loaded.parts
        manifest = loaded.manifest
        return Snapshot(
            target,
            manifest.generation,
            confirmed,
            uncertain,
            manifest,
            self._history(target, manifest),
            loaded.part,
        )

    def histories(self, targets: Sequence[str]) -> dict[str, TargetHistory]:
        """Each target's history from its manifest alone (one BatchGetItem per 100 targets, no
        shard read), for ordering targets before any is loaded; a target never committed has an
        empty one."""
        manifests = self.table.get_in_each(list(targets), MANIFEST_KEY)
        return {
            target: TargetHistory()
            if target not in manifests
            else self._history(target, Manifest(item=manifests[target]))
            for target in targets
        }

    def now(self) -> float:
        """The store's wall clock, on which the target history keeps time."""
        return self._clock()

    def acquire(self, snapshot: Snapshot, run_id: str, lease_seconds: float) -> Lease:
        """Take the lease for the generation `snapshot` was read at, or raise SnapshotConflict
        (LeaseHeld, saying for how long, when another run's live lease was honoured).

        A lease seen at load that has expired, or that ends further ahead than
        `max_lease_seconds`, is taken over, and its holder recorded as abandoned so the next
        commit deletes whatever shard items it wrote.
        """
        return self._partition.acquire(
            snapshot.target, snapshot.manifest, snapshot.generation, run_id, lease_seconds, part=snapshot.part
        )

    def checkpoint(self, lease: Lease, confirmed: TagMap, uncertain: TagMap) -> Lease:
        """Commit the maps as the next generation and keep the lease: the returned lease commits
        the generation after it. A run records what it is about to send this way, so that a crash
        or a kill part-way through sending leaves a snapshot that accounts for every pair sent."""
        history = self._history(lease.target, lease.base)
        manifest = self._swap(lease, confirmed, uncertain, history, hold=True)
        return self._partition.advanced(lease, manifest)

    def commit(
        self, lease: Lease, confirmed: TagMap, uncertain: TagMap, *, outcome: RunOutcome | None = None
    ) -> int:
        """Record the new maps as the next generation, release the lease and return the generation.

        Only shards whose content changed are written; the manifest swap is the commit point.
        `outcome` (the target's status, and what this run removed) is added to the target's
        history in the same write. Losing the lease or the generation deletes this commit's
        shard items and raises SnapshotConflict.
        """
        history = self._history(lease.target, lease.base)
        if outcome is not None:
            history = history.after(outcome, self._clock())
        try:
            self._swap(lease, confirmed, uncertain, history, hold=False)
        finally:
            self._partition.forget(lease.target)
        return lease.generation + 1

    def release(self, lease: Lease) -> None:
        """Give the lease back after an aborted run; best effort, never raises.

        The holder is recorded as abandoned in case a failed commit left shard items behind.
        """
        self._partition.release(lease)
        self._partition.forget(lease.target)

    def record_outcome(self, snapshot: Snapshot, status: str) -> bool:
        """Record how a run that committed nothing ended, when it says something new.

        Written (one conditional UpdateItem of the history alone) for any status but `ok`, and
        for an `ok` after a status that was not; a quiet `ok` after an `ok` writes nothing, which
        keeps an unchanged estate free of writes (the history's `last_ok_at` explains why
        freshness stays right). Skipped when another run committed since `snapshot` was read:
        that run's record is newer. Returns whether the record was written.
        """
        if not snapshot.history.worth_recording(status):
            return False
        history = snapshot.history.after(RunOutcome(status), self._clock())
        condition = "#generation = :generation"
        if snapshot.generation == 0:
            condition = f"attribute_not_exists(#generation) OR {condition}"
        try:
            self.table.update(
                snapshot.target,
                MANIFEST_KEY,
                update=(
                    "SET #format = if_not_exists(#format, :format), "
                    "#generation = if_not_exists(#generation, :generation), #history = :history"
                ),
                condition=condition,
                values={
                    ":format": number(FORMAT),
                    ":generation": number(snapshot.generation),
                    ":history": _history_attribute(history),
                },
            )
        except ConditionFailed:
            logger.info(
                "history of %s not recorded: another run committed since this run read it", snapshot.target
            )
            return False
        return True

    def _swap(
        self, lease: Lease, confirmed: TagMap, uncertain: TagMap, history: TargetHistory, *, hold: bool
    ) -> Manifest:
        counts = _Counts.of(confirmed, uncertain)
        if lease.part is not None:
            # Only some shards are rewritten: the totals move by what changed in them.
            counts = _Counts.recorded(lease.base) - _Counts.of(*self._partition.part_content(lease)) + counts
        attributes: dict[str, AttributeValueTypeDef] = {
            "ips": number(counts.ips),
            "confirmed_pairs": number(counts.confirmed_pairs),
            "uncertain_pairs": number(counts.uncertain_pairs),
        }
        if history != TargetHistory():
            attributes["history"] = _history_attribute(history)
        swapped = self._partition.swap(lease, (confirmed, uncertain), attributes, hold=hold)
        return self._partition.collect(lease.target, swapped)

    def _history(self, target: str, manifest: Manifest) -> TargetHistory:
        if "history" not in manifest.item:
            return TargetHistory()
        try:
            return _parse_history(manifest.item["history"])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise SnapshotError(
                f"manifest of {target!r} in table {self.table.name!r} is malformed: history {error!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class _Counts:
    """The totals a snapshot manifest records."""

    ips: int
    confirmed_pairs: int
    uncertain_pairs: int

    @classmethod
    def of(cls, confirmed: TagMap, uncertain: TagMap) -> _Counts:
        return cls(len(confirmed.keys() | uncertain.keys()), count_pairs(confirmed), count_pairs(uncertain))

    @classmethod
    def recorded(cls, manifest: Manifest) -> _Counts:
        return cls(
            _count(manifest, "ips"), _count(manifest, "confirmed_pairs"), _count(manifest, "uncertain_pairs")
        )

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.ips + other.ips,
            self.confirmed_pairs + other.confirmed_pairs,
            self.uncertain_pairs + other.uncertain_pairs,
        )

    def __sub__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.ips - other.ips,
            self.confirmed_pairs - other.confirmed_pairs,
            self.uncertain_pairs - other.uncertain_pairs,
        )


class _ExpectedLayouts:
    """The shards a map of desired pairs would be committed as, per shard count.

    Every target of a run plans against the same desired map, so its layout is encoded once per
    run and shard count, not once per target. Kept for the last map asked about (by identity:
    desired maps are never changed once built); the lock makes one thread encode it while the
    others wait for the result.
    """

    def __init__(self, codec: _TagMapsCodec) -> None:
        self._codec = codec
        self._lock = threading.Lock()
        self._pairs: TagMap | None = None
        self._by_count: dict[int, list[tuple[str, Parts[frozenset[str]]]]] = {}

    def of(self, pairs: TagMap) -> ExpectedLayout[frozenset[str]]:
        def layout(count: int) -> list[tuple[str, Parts[frozenset[str]]]]:
            with self._lock:
                if self._pairs is not pairs:
                    self._pairs, self._by_count = pairs, {}
                if count not in self._by_count:
                    self._by_count[count] = layout_digests((pairs, {}), self._codec, count)
                return self._by_count[count]

        return layout


def _count(manifest: Manifest, name: str) -> int:
    value = manifest.item.get(name)
    return 0 if value is None else int(value["N"])


class _TagMapsCodec:
    """The snapshot's shard payload: the confirmed and the uncertain tags of each IP.

    Compact JSON: each IP points at a shard-local table of distinct tag sets, and each set lists
    indices into the sorted tags, so equal content gives equal bytes.
    """

    def encode(self, parts: Parts[frozenset[str]]) -> bytes:
        confirmed, uncertain = parts
        table = TagSetTable.of([*confirmed.values(), *uncertain.values()])
        return compact_json(
            {
                "tags": table.tags,
                "sets": table.sets,
                "confirmed": {ip: table.index[confirmed[ip]] for ip in sorted(confirmed)},
                "uncertain": {ip: table.index[uncertain[ip]] for ip in sorted(uncertain)},
            }
        )

    def decode(self, raw: bytes, interned: Interned) -> Parts[frozenset[str]]:
        payload = json.loads(raw)
        sets = read_tag_sets(payload["tags"], payload["sets"], interned)
        confirmed = {ip: sets[index] for ip, index in payload["confirmed"].items()}
        uncertain = {ip: sets[index] for ip, index in payload["uncertain"].items()}
        return confirmed, uncertain


def _history_attribute(history: TargetHistory) -> AttributeValueTypeDef:
    fields: dict[str, AttributeValueTypeDef] = {
        "removals": {"L": [{"L": [number(r.at), number(r.pairs), number(r.held)]} for r in history.removals]},
        "unfinished_runs": number(history.unfinished_runs),
    }
    if history.last_ok_at is not None:
        fields["last_ok_at"] = number(history.last_ok_at)
    if history.last_status is not None:
        fields["last_status"] = {"S": history.last_status}
    return {"M": fields}


def _parse_history(value: AttributeValueTypeDef) -> TargetHistory:
    fields = value["M"]
    removals = tuple(
        Removal(float(at["N"]), int(pairs["N"]), int(held["N"]))
        for at, pairs, held in (entry["L"] for entry in fields["removals"]["L"])
    )
    return TargetHistory(
        removals=removals,
        last_ok_at=float(fields["last_ok_at"]["N"]) if "last_ok_at" in fields else None,
        last_status=fields["last_status"]["S"] if "last_status" in fields else None,
        unfinished_runs=int(fields["unfinished_runs"]["N"]),
    )
