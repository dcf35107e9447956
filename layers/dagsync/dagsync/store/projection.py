"""The change feed's stored state: the projection of the last inventory, and the watermark.

Both live in the snapshot table under their own partition key, `feed#projection`. The
projection maps each workload href to its addresses and tags; it is a sharded structure like a
target's snapshot (partition.py) and follows the same crash rules: a commit writes changed shards
under new keys, swaps the manifest with one conditional write, and leaves garbage for the next
commit to delete. Each commit takes a short lease first, so the shard items of a commit killed
part-way are found and deleted by the next one.

Each shard holds, beside the workloads whose href hashes to it, the claimants of the addresses
that hash to it (ip -> the hrefs claiming it), so a targeted update reads only the shards of the
workloads it fetched, of their addresses, and of the other workloads on those addresses
(docs/snapshot.md#partial-reads), and commits only those.

The watermark is one small item of its own, so a run with nothing relevant in the events reads
and writes only it. It names the projection generation it was written with: a watermark that
names another generation than the projection's (a run killed between the two writes, or
another run in between) means the feed cannot answer safely, and the next run exports in full.
See docs/snapshot.md#projection and docs/change-feed.md#watermark.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, cast

from dagsync.core.clocks import Clock
from dagsync.core.errors import SnapshotConflict, SnapshotError
from dagsync.core.records import Claimants, Projection, ProjectionEntry, Watermark
from dagsync.store.codec import (
    DEFAULT_LIMITS,
    Interned,
    Parts,
    ShardLimits,
    TagSetTable,
    compact_json,
    read_tag_sets,
    shards_of,
)
from dagsync.store.lease import DEFAULT_MAX_LEASE_SECONDS, Lease
from dagsync.store.manifest import Manifest
from dagsync.store.partition import ShardedPartition
from dagsync.store.table import ConditionFailed, Table, number

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.store.table import Item

PROJECTION_PK = "feed#projection"
WATERMARK_KEY = "watermark"
FORMAT = 1

# A manifest attribute: the shards hold the claimants index. A projection written without it
# (by an earlier version) cannot be read in part, and the next export rewrites it with one.
_INDEXED = "claimants_indexed"

type _Value = ProjectionEntry | Claimants


class ProjectionStore:
    """Loads and commits the projection and the watermark, sharing the snapshot store's table.

    `clock` is wall-clock epoch seconds, as for the snapshot store's leases.
    """

    def __init__(
        self,
        table: Table,
        *,
        clock: Clock = time.time,
        limits: ShardLimits = DEFAULT_LIMITS,
        max_lease_seconds: float = DEFAULT_MAX_LEASE_SECONDS,
    ) -> None:
        self._table = table
        self._partition: ShardedPartition[_Value] = ShardedPartition(
            table,
            _ProjectionCodec(),
            kind="change-feed projection",
            format_version=FORMAT,
            width=2,
            limits=limits,
            clock=clock,
            max_lease_seconds=max_lease_seconds,
        )
        self._seen: Manifest | None = None  # the manifest as last read or written (empty: none yet)
        self._part: frozenset[int] | None = None  # the shards the last load read, None: all

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
        self._part = None
        if loaded is None:
            self._seen = Manifest()
            return Projection(0, {})
        self._seen = loaded.manifest
        entries, _ = _split(loaded.parts)
        return Projection(loaded.manifest.generation, entries, len(entries))

    def load_around(self, hrefs: Collection[str], addresses: Collection[str]) -> Projection | None:
        """What a targeted update of the workloads `hrefs`, now on `addresses`, needs: their
        entries and those of every workload sharing an address they had or have, read from
        their shards alone (at most three BatchGetItems). A later `commit` writes only those
        shards. None when no projection is stored, or one that cannot be read in part.

        Raises SnapshotError when a shard is gone meanwhile (another run committed).
        """
        loaded = self._partition.load(PROJECTION_PK, [*hrefs, *addresses])
        if loaded is None or _INDEXED not in loaded.manifest.item:
            return None
        entries, _ = _split(loaded.parts)
        had = {ip for href in hrefs if href in entries for ip in entries[href][0]}
        loaded = self._partition.read_more(PROJECTION_PK, loaded, had)
        _, claimants = _split(loaded.parts)
        sharing = {href for ip in had.union(addresses) for href in claimants.get(ip, ())}
        loaded = self._partition.read_more(PROJECTION_PK, loaded, sharing)
        entries, _ = _split(loaded.parts)
        self._seen, self._part = loaded.manifest, loaded.part
        wanted = sharing.union(hrefs)
        return Projection(
            loaded.manifest.generation,
            {href: entry for href, entry in entries.items() if href in wanted},
            _workloads(loaded.manifest),
        )

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
        self._part = None
        lease = self._acquire(projection_generation, run_id, lease_seconds)
        return self._swap(lease, _indexed(entries), watermark)

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
        written. Shards this store loaded are not read again; only changed shards are written,
        and after `load_around` only the shards it read.

        Raises SnapshotConflict when another run committed or holds the projection.
        """
        lease = self._acquire(projection_generation, run_id, lease_seconds)
        try:
            current, indexed = _split(self._partition.part_content(lease))
            if lease.part is not None and not _within(lease, changed, current):
                lease = replace(lease, part=None)  # not all it changes was read: take the whole
                current, indexed = _split(self._partition.part_content(lease))
        except Exception:
            self._partition.release(lease)
            raise
        entries = dict(current)
        if lease.part is None:
            # The whole projection is at hand: its index is rebuilt, whatever wrote it before.
            _apply(changed, entries, None)
            return self._swap(lease, _indexed(entries), watermark)
        claimants = dict(indexed)
        added = _apply(changed, entries, claimants)
        return self._swap(lease, (entries, claimants), watermark, workloads=_workloads(lease.base) + added)

    def advance_watermark(self, watermark: Watermark) -> Watermark:
        """Write `watermark` alone (one small conditional PutItem), for a run that changed no
        projection entry: pass the watermark as read with its marks moved on
        (`dataclasses.replace`), so it keeps naming the projection it describes. Raises
        SnapshotConflict when another run wrote it since it was read."""
        return self._write_watermark(watermark, watermark.projection_generation)

    def _acquire(self, generation: int, run_id: str, lease_seconds: float) -> Lease:
        seen, part = self._seen, self._part
        if seen is None or seen.generation != generation:
            seen, part = self._partition.manifest(PROJECTION_PK), None
        return self._partition.acquire(PROJECTION_PK, seen, generation, run_id, lease_seconds, part=part)

    def _swap(
        self,
        lease: Lease,
        parts: tuple[Mapping[str, ProjectionEntry], Mapping[str, Claimants]],
        watermark: Watermark,
        *,
        workloads: int | None = None,
    ) -> Watermark:
        """The manifest swap, then the watermark, then garbage: a run killed between the swap and
        the watermark leaves a watermark that does not describe the projection (export in full)."""
        count = len(parts[0]) if workloads is None else workloads
        attributes: dict[str, AttributeValueTypeDef] = {"workloads": number(count), _INDEXED: {"BOOL": True}}
        try:
            swapped = self._partition.swap(lease, parts, attributes, hold=False)
        except Exception:
            self._partition.release(lease)
            raise
        self._seen, self._part = swapped, None
        self._partition.forget(PROJECTION_PK)
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
            rules=watermark.rules,
            workloads=watermark.workloads,
            pairs=watermark.pairs,
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
    """The projection's shard payload: each workload href with its addresses and a tag set (the
    tag sets in a shard-local table, see TagSetTable), and each address with its claimants."""

    def encode(self, parts: Parts[_Value]) -> bytes:
        entries, claimants = _split(parts)
        table = TagSetTable.of(tags for _, tags in entries.values())
        return compact_json(
            {
                "tags": table.tags,
                "sets": table.sets,
                "workloads": {
                    href: [list(entries[href][0]), table.index[entries[href][1]]] for href in sorted(entries)
                },
                "claimants": {ip: list(claimants[ip]) for ip in sorted(claimants)},
            }
        )

    def decode(self, raw: bytes, interned: Interned) -> Parts[_Value]:
        payload = json.loads(raw)
        sets = read_tag_sets(payload["tags"], payload["sets"], interned)
        entries: dict[str, _Value] = {
            href: (tuple(addresses), sets[index]) for href, (addresses, index) in payload["workloads"].items()
        }
        claimants: dict[str, _Value] = {
            ip: tuple(hrefs) for ip, hrefs in payload.get("claimants", {}).items()
        }
        return entries, claimants


def _split(parts: Parts[_Value]) -> tuple[dict[str, ProjectionEntry], dict[str, Claimants]]:
    """The two maps of a projection shard (or of the whole), typed: workloads, then claimants."""
    entries, claimants = parts
    return cast("dict[str, ProjectionEntry]", entries), cast("dict[str, Claimants]", claimants)


def _indexed(
    entries: Mapping[str, ProjectionEntry],
) -> tuple[Mapping[str, ProjectionEntry], dict[str, Claimants]]:
    """The entries with their claimants index."""
    claimants: dict[str, list[str]] = {}
    for href in sorted(entries):
        for ip in entries[href][0]:
            claimants.setdefault(ip, []).append(href)
    return entries, {ip: tuple(hrefs) for ip, hrefs in claimants.items()}


def _apply(
    changed: Mapping[str, ProjectionEntry | None],
    entries: dict[str, ProjectionEntry],
    claimants: dict[str, Claimants] | None,
) -> int:
    """Write `changed` into `entries` and, when given, into `claimants`; returns how many
    workloads the projection gained (negative: lost)."""
    added = 0
    for href, entry in changed.items():
        old = entries.pop(href, None)
        added -= old is not None
        if entry is not None:
            entries[href] = entry
            added += 1
        if claimants is None:
            continue
        for ip in () if old is None else old[0]:
            left = tuple(claimant for claimant in claimants.get(ip, ()) if claimant != href)
            if left:
                claimants[ip] = left
            else:
                claimants.pop(ip, None)
        for ip in () if entry is None else entry[0]:
            claimants[ip] = tuple(sorted({*claimants.get(ip, ()), href}))
    return added


def _within(
    lease: Lease, changed: Mapping[str, ProjectionEntry | None], current: Mapping[str, ProjectionEntry]
) -> bool:
    """Whether every key `changed` touches (the hrefs, the addresses they had and have) lies in
    the shards the lease read."""
    touched = set(changed)
    for href, entry in changed.items():
        touched.update(current[href][0] if href in current else ())
        touched.update(() if entry is None else entry[0])
    return lease.part is not None and shards_of(touched, lease.base.shard_count) <= lease.part


def _workloads(manifest: Manifest) -> int:
    value = manifest.item.get("workloads")
    return 0 if value is None else int(value["N"])


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
    if watermark.rules is not None:
        item["mapping_rules"] = {"S": watermark.rules}
    item["workloads"], item["pairs"] = number(watermark.workloads), number(watermark.pairs)
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
        rules=item["mapping_rules"]["S"] if "mapping_rules" in item else None,
        workloads=int(item["workloads"]["N"]) if "workloads" in item else 0,
        pairs=int(item["pairs"]["N"]) if "pairs" in item else 0,
    )


def _time(item: Item, name: str) -> datetime | None:
    if name not in item:
        return None
    moment = datetime.fromisoformat(item[name]["S"])
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return moment
