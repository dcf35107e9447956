"""The change feed's stored state: the projection of the last inventory, and the watermark.

Both live in the snapshot table under their own partition key, `feed#projection`. The
projection maps each workload href to its addresses and tags; it is a sharded structure like a
target's snapshot (partition.py) and follows the same crash rules: a commit writes changed shards
under new keys, swaps the manifest with one conditional write, and leaves garbage for the next
commit to delete. Each commit takes a short lease first, so the shard items of a commit killed
part-way are found and deleted by the next one.

The watermark is one small item of its own, so a run with nothing relevant in the events reads
and writes only it. It names the projection generation it was written with: a watermark that
names another generation than the projection's (a run killed between the two writes, or
another run in between) means the feed cannot answer safely, and the next run exports in full.
See docs/snapshot.md#projection and docs/change-feed.md#watermark.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from dagsync.errors import SnapshotConflict, SnapshotError
from dagsync.lease import DEFAULT_MAX_LEASE_SECONDS, Lease
from dagsync.manifest import Manifest
from dagsync.partition import ShardedPartition
from dagsync.shard_codec import (
    DEFAULT_LIMITS,
    Interned,
    Parts,
    ShardLimits,
    TagSetTable,
    compact_json,
    read_tag_sets,
)
from dagsync.table import ConditionFailed, Table, number

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.table import Item

PROJECTION_PK = "feed#projection"
WATERMARK_KEY = "watermark"
FORMAT = 1

# One workload as the projection keeps it: its addresses (as mapped) and its tags.
type ProjectionEntry = tuple[tuple[str, ...], frozenset[str]]


@dataclass(frozen=True)
class Projection:
    """The projection as committed; generation 0 means none was ever committed."""

    generation: int
    entries: dict[str, ProjectionEntry] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Watermark:
    """Where the change feed stands.

    `last_event_at` is the timestamp of the newest event applied; `applied` the hrefs of the
    events applied inside the read-back window, so an event read again is recognised;
    `exported_at` when the last complete export was taken. `projection_generation` is the
    projection this watermark goes with, and `revision` counts writes of the watermark, for
    optimistic concurrency: a write names the revision it read.
    """

    last_event_at: datetime | None = None
    applied: frozenset[str] = frozenset()
    exported_at: datetime | None = None
    projection_generation: int = 0
    revision: int = 0

    def describes(self, projection: Projection) -> bool:
        """Whether this watermark was written with `projection` (else: export in full)."""
        return self.revision > 0 and self.projection_generation == projection.generation


class ProjectionStore:
    """Loads and commits the projection and the watermark, sharing the snapshot store's table.

    `clock` is wall-clock epoch seconds, as for the snapshot store's leases.
    """

    def __init__(
        self,
        table: Table,
        *,
        clock: Callable[[], float] = time.time,
        limits: ShardLimits = DEFAULT_LIMITS,
        max_lease_seconds: float = DEFAULT_MAX_LEASE_SECONDS,
    ) -> None:
        self._table = table
        self._partition = ShardedPartition(
            table,
            _ProjectionCodec(),
            kind="change-feed projection",
            format_version=FORMAT,
            width=1,
            limits=limits,
            clock=clock,
            max_lease_seconds=max_lease_seconds,
        )
        self._seen: Manifest | None = None  # the manifest as last read or written (empty: none yet)

    def load_watermark(self) -> Watermark:
        """The watermark (one small GetItem); an empty one if none was ever written."""
        item = self._table.get(PROJECTION_PK, WATERMARK_KEY)
        if item is None:
            return Watermark()
        try:
            return _parse_watermark(item)
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotError(
                f"watermark in table {self._table.name!r} is malformed: {error!r}; delete the item "
                f"(pk {PROJECTION_PK!r}, sk {WATERMARK_KEY!r}) and the next run exports in full"
            ) from None

    def load(self) -> Projection:
        """The committed projection: one GetItem, then one BatchGetItem per 100 shards."""
        loaded = self._partition.load(PROJECTION_PK)
        if loaded is None:
            self._seen = Manifest()
            return Projection(0, {})
        self._seen = loaded.manifest
        (entries,) = loaded.parts
        return Projection(loaded.manifest.generation, entries)

    def current_generation(self) -> int:
        """The committed generation alone (one GetItem of the manifest), for a run that replaces
        the projection without loading it; `replace` then reads nothing more."""
        self._seen = self._partition.manifest(PROJECTION_PK) or Manifest()
        return self._seen.generation

    def replace(
        self,
        projection_generation: int,
        entries: Mapping[str, ProjectionEntry],
        watermark: Watermark,
        *,
        run_id: str,
        lease_seconds: float,
    ) -> Watermark:
        """After a complete export: `entries` becomes the projection, writing only the shards
        whose content changed, and `watermark` is written with it. Returns the watermark as
        written. Needs no load of the entries: `current_generation` is enough."""
        lease = self._acquire(projection_generation, run_id, lease_seconds)
        return self._swap(lease, entries, watermark)

    def commit(
        self,
        projection_generation: int,
        changed: Mapping[str, ProjectionEntry | None],
        watermark: Watermark,
        *,
        run_id: str,
        lease_seconds: float,
    ) -> Watermark:
        """After a targeted update: apply `changed` (None: the workload is gone) to the projection
        at `projection_generation`, and write `watermark` with it. Returns the watermark as
        written. Shards this store loaded are not read again; only changed shards are written.

        Raises SnapshotConflict when another run committed or holds the projection.
        """
        lease = self._acquire(projection_generation, run_id, lease_seconds)
        try:
            (current,) = self._partition.content(PROJECTION_PK, lease.base)
        except Exception:
            self._partition.release(lease)
            raise
        entries = dict(current)
        for href, entry in changed.items():
            if entry is None:
                entries.pop(href, None)
            else:
                entries[href] = entry
        return self._swap(lease, entries, watermark)

    def advance_watermark(self, watermark: Watermark) -> Watermark:
        """Write `watermark` alone (one small conditional PutItem), for a run that changed no
        projection entry: pass the watermark as read with its marks moved on
        (`dataclasses.replace`), so it keeps naming the projection it describes. Raises
        SnapshotConflict when another run wrote it since it was read."""
        return self._write_watermark(watermark, watermark.projection_generation)

    def _acquire(self, generation: int, run_id: str, lease_seconds: float) -> Lease:
        seen = self._seen
        if seen is None or seen.generation != generation:
            seen = self._partition.manifest(PROJECTION_PK)
        return self._partition.acquire(PROJECTION_PK, seen, generation, run_id, lease_seconds)

    def _swap(self, lease: Lease, entries: Mapping[str, ProjectionEntry], watermark: Watermark) -> Watermark:
        """The manifest swap, then the watermark, then garbage: a run killed between the swap and
        the watermark leaves a watermark that does not describe the projection (export in full)."""
        try:
            swapped = self._partition.swap(lease, (entries,), {"workloads": number(len(entries))}, hold=False)
        except Exception:
            self._partition.release(lease)
            raise
        self._seen = swapped
        written = self._write_watermark(watermark, swapped.generation)
        self._seen = self._partition.collect(PROJECTION_PK, swapped)
        return written

    def _write_watermark(self, watermark: Watermark, projection_generation: int) -> Watermark:
        written = Watermark(
            last_event_at=watermark.last_event_at,
            applied=watermark.applied,
            exported_at=watermark.exported_at,
            projection_generation=projection_generation,
            revision=watermark.revision + 1,
        )
        condition = "#revision = :revision"
        if watermark.revision == 0:
            condition = "attribute_not_exists(#revision)"
        try:
            self._table.put(
                _watermark_item(written),
                condition=condition,
                values={":revision": number(watermark.revision)} if watermark.revision else {},
            )
        except ConditionFailed:
            raise SnapshotConflict(
                f"another run wrote the change feed's watermark since this run read revision "
                f"{watermark.revision}; the next run exports in full"
            ) from None
        return written


class _ProjectionCodec:
    """The projection's shard payload: each workload href with its addresses and a tag set,
    the tag sets in a shard-local table (see TagSetTable)."""

    def encode(self, parts: Parts[ProjectionEntry]) -> bytes:
        (entries,) = parts
        table = TagSetTable.of(tags for _, tags in entries.values())
        return compact_json(
            {
                "tags": table.tags,
                "sets": table.sets,
                "workloads": {
                    href: [list(entries[href][0]), table.index[entries[href][1]]] for href in sorted(entries)
                },
            }
        )

    def decode(self, raw: bytes, interned: Interned) -> Parts[ProjectionEntry]:
        payload = json.loads(raw)
        sets = read_tag_sets(payload["tags"], payload["sets"], interned)
        return (
            {
                href: (tuple(addresses), sets[index])
                for href, (addresses, index) in payload["workloads"].items()
            },
        )


def _watermark_item(watermark: Watermark) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": {"S": PROJECTION_PK},
        "sk": {"S": WATERMARK_KEY},
        "format": number(FORMAT),
        "projection_generation": number(watermark.projection_generation),
        "revision": number(watermark.revision),
    }
    if watermark.last_event_at is not None:
        item["last_event_at"] = {"S": watermark.last_event_at.isoformat()}
    if watermark.exported_at is not None:
        item["exported_at"] = {"S": watermark.exported_at.isoformat()}
    if watermark.applied:
        item["applied"] = {"SS": sorted(watermark.applied)}
    return item


def _parse_watermark(item: Item) -> Watermark:
    version = int(item["format"]["N"])
    if version != FORMAT:
        raise ValueError(f"format {version} is not supported (this version reads format {FORMAT})")
    return Watermark(
        last_event_at=_time(item, "last_event_at"),
        applied=frozenset(item["applied"]["SS"]) if "applied" in item else frozenset(),
        exported_at=_time(item, "exported_at"),
        projection_generation=int(item["projection_generation"]["N"]),
        revision=int(item["revision"]["N"]),
    )


def _time(item: Item, name: str) -> datetime | None:
    if name not in item:
        return None
    moment = datetime.fromisoformat(item[name]["S"])
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return moment
