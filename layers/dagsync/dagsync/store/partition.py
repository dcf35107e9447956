"""One sharded structure in one partition of the table: how it is read, leased and committed.

The partition holds a manifest item and shard items. A commit writes the shards whose content
changed under new keys, then swaps the manifest with one conditional write, so a crash at any
point leaves the old or the new generation fully readable; superseded shards are listed as
garbage and deleted after the swap. The snapshot of each target and the change feed's projection
are both such structures, differing only in their payload codec and the attributes they add to
the manifest. See docs/snapshot.md#items and docs/sync.md#crash-rules.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from dagsync.core.clocks import Clock
from dagsync.core.errors import SnapshotError
from dagsync.store import garbage
from dagsync.store import lease as leases
from dagsync.store.codec import (
    EncodedShard,
    Interned,
    Parts,
    PayloadCodec,
    ShardLimits,
    ShardOverflow,
    UnreadableShard,
    decode_shard,
    encode_part,
    encode_shards,
    key_hash,
    merge,
    shards_of,
)
from dagsync.store.lease import Lease
from dagsync.store.manifest import (
    MANIFEST_KEY,
    LeaseRecord,
    Manifest,
    ShardRef,
    parse_manifest,
    shard_key,
    shard_list,
)
from dagsync.store.table import ConditionFailed, Table, number

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.store.table import Item

logger = logging.getLogger(__name__)

# What a run expects a structure to hold: for a shard count, each shard's digest and content in
# that layout (shard_codec.layout_digests). A load takes matching shards from it unread.
type ExpectedLayout[V] = Callable[[int], Sequence[tuple[str, Parts[V]]]]

# A load that finds a shard gone (a commit swapped the manifest and deleted it meanwhile) reads again.
_LOAD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Loaded[V]:
    """A committed generation: its manifest and its content, or the content of the shards `part`
    (None: every shard)."""

    manifest: Manifest
    parts: Parts[V]
    part: frozenset[int] | None = None


class ShardedPartition[V]:
    """Load, lease and commit one kind of sharded structure, one partition per instance of it.

    Shard content this object last read or wrote is remembered by digest, per partition, so a
    commit re-encodes only the shards whose content changed.
    """

    def __init__(
        self,
        table: Table,
        codec: PayloadCodec[V],
        *,
        kind: str,
        format_version: int,
        width: int,
        limits: ShardLimits,
        clock: Clock,
        max_lease_seconds: float,
    ) -> None:
        self._table = table
        self._codec = codec
        self._kind = kind
        self._format = format_version
        self._width = width
        self._limits = limits
        self._clock = clock
        self._max_lease_seconds = max_lease_seconds
        self._known: dict[str, dict[str, Parts[V]]] = {}

    def manifest(self, pk: str) -> Manifest | None:
        """The committed manifest alone (one GetItem), or None."""
        item = self._table.get(pk, MANIFEST_KEY)
        return None if item is None else self.parse(pk, item)

    def load(
        self, pk: str, keys: Iterable[str] | None = None, *, expected: ExpectedLayout[V] | None = None
    ) -> Loaded[V] | None:
        """The committed generation (one GetItem, one BatchGetItem per 100 shards), or None.

        With `keys`, only the shards that hold them are read (docs/snapshot.md#partial-reads):
        the content is theirs alone, complete for those keys. With `expected`, a shard whose
        digest is the one `expected` gives for its place in the manifest's layout is not read:
        its content is known (docs/snapshot.md#expected-content).
        """
        wanted = None if keys is None else list(keys)
        missing: list[str] = []
        for _ in range(_LOAD_ATTEMPTS):
            manifest = self.manifest(pk)
            if manifest is None:
                return None
            part = None if wanted is None else shards_of(wanted, manifest.shard_count)
            refs = _refs(manifest, part)
            known = _matching(manifest, part, expected)
            unread = [ref for ref in refs if ref.digest not in known]
            found = self._table.get_many(pk, [ref.key for ref in unread])
            missing = [ref.key for ref in unread if ref.key not in found]
            if not missing:
                decoded = {**known, **self._decode(pk, unread, found)}
                self._known[pk] = decoded
                return Loaded(manifest, merge((decoded[ref.digest] for ref in refs), self._width), part)
            logger.info(
                "%s of %s changed while loading (shard %s is gone); reading it again",
                self._kind,
                pk,
                missing[0],
            )
        raise SnapshotError(
            f"{self._kind} of {pk!r} in table {self._table.name!r} is incomplete: shard item "
            f"{missing[0]!r} named by the manifest is missing after {_LOAD_ATTEMPTS} reads"
        )

    def read_more(self, pk: str, loaded: Loaded[V], keys: Iterable[str]) -> Loaded[V]:
        """`loaded` with the shards that hold `keys` read too, from the same generation; raises
        SnapshotError when one of them is gone (another run committed meanwhile)."""
        manifest, part = loaded.manifest, loaded.part
        if part is None:
            return loaded
        more = shards_of(keys, manifest.shard_count) - part
        if not more:
            return loaded
        refs = _refs(manifest, more)
        decoded = self._read(pk, refs)
        self._known[pk] = {**self._known.get(pk, {}), **decoded}
        parts = merge((loaded.parts, *(decoded[ref.digest] for ref in refs)), self._width)
        return Loaded(manifest, parts, part | more)

    def part_content(self, lease: Lease) -> Parts[V]:
        """The content of the shards `lease.part` as `lease.base` names them (read at load)."""
        if lease.part is None:
            return self.content(lease.target, lease.base)
        known = self._known.get(lease.target, {})
        return merge((known[ref.digest] for ref in _refs(lease.base, lease.part)), self._width)

    def content(self, pk: str, manifest: Manifest) -> Parts[V]:
        """The content `manifest` names: remembered shards as they are, the others read."""
        known = self._known.get(pk, {})
        decoded = {**known, **self._read(pk, [ref for ref in manifest.shards if ref.digest not in known])}
        self._known[pk] = decoded
        return merge((decoded[ref.digest] for ref in manifest.shards), self._width)

    def _read(self, pk: str, refs: Sequence[ShardRef]) -> dict[str, Parts[V]]:
        """The content of `refs` by digest, from the generation this run already read; raises
        SnapshotError when one is gone (another run committed meanwhile)."""
        found = self._table.get_many(pk, [ref.key for ref in refs])
        gone = [ref.key for ref in refs if ref.key not in found]
        if gone:
            raise SnapshotError(
                f"{self._kind} of {pk!r} in table {self._table.name!r} changed while this run read it: "
                f"shard item {gone[0]!r} is gone"
            )
        return self._decode(pk, refs, found)

    def acquire(
        self,
        pk: str,
        seen: Manifest | None,
        generation: int,
        run_id: str,
        lease_seconds: float,
        *,
        part: frozenset[int] | None = None,
    ) -> Lease:
        """Take the lease for `generation`; a lease `seen` at load may be taken over if dead.
        `part`: the shards read, when not all were (the lease's swaps rewrite only those)."""
        lease = leases.take(
            self._table,
            pk,
            generation=generation,
            seen_holder=None if seen is None else seen.lease_holder,
            run_id=run_id,
            lease_seconds=lease_seconds,
            max_lease_seconds=self._max_lease_seconds,
            now=self._clock(),
            format_version=self._format,
            kind=self._kind,
            parse=partial(self.parse, pk),
        )
        return lease if part is None else replace(lease, part=part)

    def swap(
        self,
        lease: Lease,
        maps: Sequence[Mapping[str, V]],
        attributes: Mapping[str, AttributeValueTypeDef],
        *,
        hold: bool,
    ) -> Manifest:
        """Write the changed shards, then swap the manifest; returns the manifest as written.

        Losing the lease or the generation deletes this swap's shard items and raises
        SnapshotConflict. With `hold`, the new manifest keeps the lease. What it supersedes is
        listed as garbage, for `collect`.
        """
        pk, base = lease.target, lease.base
        shards = self._encode(pk, maps, lease)
        commit_id = secrets.token_hex(4)
        same_layout = len(shards) == base.shard_count
        refs: list[ShardRef] = []
        written: dict[str, Item] = {}
        for index, shard in enumerate(shards):
            if shard is None or (same_layout and base.shards[index].digest == shard.digest):
                refs.append(base.shards[index])  # kept: a partial commit's unread shard, or unchanged
                continue
            key = shard_key(lease.holder, commit_id, index)
            refs.append(ShardRef(key, shard.digest))
            written[key] = {"data": {"B": shard.data}}
        referenced = {ref.key for ref in refs}
        superseded = (base.garbage | {ref.key for ref in base.shards}) - referenced
        self._table.put_many(pk, written)
        item: dict[str, AttributeValueTypeDef] = {
            **self._table.key(pk, MANIFEST_KEY),
            **attributes,
            "format": number(self._format),
            "generation": number(lease.generation + 1),
            "shard_count": number(len(refs)),
            "shards": shard_list(tuple(refs)),
            "updated_at": {"S": datetime.fromtimestamp(self._clock(), UTC).isoformat()},
            "updated_by": {"S": lease.run_id},
            "commit_id": {"S": f"{lease.holder}#{commit_id}"},
        }
        if hold:
            item |= leases.lease_attributes(lease)
        if superseded:
            item["garbage"] = {"SS": sorted(superseded)}
        if base.abandoned:
            item["abandoned"] = {"SS": sorted(base.abandoned)}
        self._put_manifest(lease, item, written)
        self._known[pk] = {shard.digest: shard.parts for shard in shards if shard is not None}
        held = LeaseRecord(lease.holder, lease.run_id, lease.expires_at, lease.acquired_at) if hold else None
        return Manifest(lease.generation + 1, len(refs), tuple(refs), superseded, base.abandoned, held, item)

    def advanced(self, lease: Lease, manifest: Manifest) -> Lease:
        """The lease after a swap that kept it: it commits the generation after `manifest`, and
        stays partial only while some shard of it was never read."""
        known = self._known.get(lease.target, {})
        whole = all(ref.digest in known for ref in manifest.shards)
        part = None if whole or lease.part is None else lease.part
        return replace(lease, generation=lease.generation + 1, base=manifest, part=part)

    def collect(self, pk: str, manifest: Manifest) -> Manifest:
        """Delete the garbage and the abandoned holders' items `manifest` lists; best effort.
        Returns the manifest with what is left to delete."""
        left, still_abandoned = garbage.collect(
            self._table, pk, manifest.garbage, manifest.abandoned, {ref.key for ref in manifest.shards}
        )
        return replace(manifest, garbage=left, abandoned=still_abandoned)

    def release(self, lease: Lease) -> None:
        """Give the lease back after an aborted run; best effort, never raises."""
        leases.release(self._table, lease.target, lease.holder, lease.run_id)

    def forget(self, pk: str) -> None:
        """Drop what is remembered of `pk`'s shards, once no commit of it is expected."""
        self._known.pop(pk, None)

    def parse(self, pk: str, item: Item) -> Manifest:
        try:
            return parse_manifest(item, format_version=self._format, limits=self._limits)
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotError(
                f"manifest of {pk!r} in table {self._table.name!r} is malformed: {error!r}"
            ) from None

    def _encode(self, pk: str, maps: Sequence[Mapping[str, V]], lease: Lease) -> list[EncodedShard[V] | None]:
        """Every shard of the new generation; None for a shard a partial commit keeps unread."""
        base, part = lease.base, lease.part
        if part is not None:
            kept = {index: found for index, found in enumerate(self._current(pk, base)) if found is not None}
            encoded = encode_part(
                maps, self._codec, self._limits, count=base.shard_count, part=part, known=kept
            )
            if encoded is not None:
                return [encoded.get(index) for index in range(base.shard_count)]
            # The part no longer fits its shards: read the rest and commit the whole structure.
            maps = self._whole(pk, maps, base, part)
        current = self._current(pk, base)
        try:
            return list(
                encode_shards(maps, self._codec, self._limits, current=base.shard_count, known=current)
            )
        except ShardOverflow as overflow:
            raise SnapshotError(f"{self._kind} of {pk!r} is too large: {overflow}") from None

    def _current(self, pk: str, base: Manifest) -> list[tuple[str, Parts[V]] | None]:
        """Each shard of `base` with its content where this object knows it."""
        known = self._known.get(pk, {})
        return [(ref.digest, known[ref.digest]) if ref.digest in known else None for ref in base.shards]

    def _whole(
        self, pk: str, maps: Sequence[Mapping[str, V]], base: Manifest, part: frozenset[int]
    ) -> Parts[V]:
        """The whole structure: every shard outside `part` as committed, `maps` for the rest."""
        committed = self.content(pk, base)
        mask = base.shard_count - 1
        return tuple(
            {key: value for key, value in old.items() if key_hash(key) & mask not in part} | dict(new)
            for old, new in zip(committed, maps, strict=True)
        )

    def _put_manifest(
        self, lease: Lease, item: dict[str, AttributeValueTypeDef], written: Mapping[str, Item]
    ) -> None:
        try:
            self._table.put(
                item,
                condition="#generation = :generation AND #lease_holder = :holder",
                values={":generation": number(lease.generation), ":holder": {"S": lease.holder}},
            )
        except ConditionFailed as failed:
            # A resent write whose first answer was lost finds its own manifest: it committed, and
            # the shard items that manifest names must stay.
            if failed.item is None or failed.item.get("commit_id") != item["commit_id"]:
                garbage.delete_quietly(self._table, lease.target, written)
                raise leases.conflict(
                    self._kind,
                    lease.target,
                    generation=lease.generation,
                    item=failed.item,
                    now=self._clock(),
                    max_lease_seconds=self._max_lease_seconds,
                ) from None

    def _decode(self, pk: str, refs: Sequence[ShardRef], found: Mapping[str, Item]) -> dict[str, Parts[V]]:
        """Each shard's content by digest; equal tag sets share one object across shards."""
        interned: Interned = {}
        decoded: dict[str, Parts[V]] = {}
        for ref in refs:
            data = found[ref.key].get("data", {}).get("B", b"")
            try:
                decoded[ref.digest] = decode_shard(data, ref.digest, self._codec, interned, self._limits)
            except UnreadableShard as error:
                raise SnapshotError(
                    f"{self._kind} of {pk!r} in table {self._table.name!r} is corrupt: shard item "
                    f"{ref.key!r} cannot be decoded ({error})"
                ) from None
        return decoded


def _matching[V](
    manifest: Manifest, part: frozenset[int] | None, expected: ExpectedLayout[V] | None
) -> dict[str, Parts[V]]:
    """The content of the shards `part` (None: all) whose digest `expected` gives too, by digest."""
    indices = range(manifest.shard_count) if part is None else part
    if expected is None or not indices:
        return {}
    layout = expected(manifest.shard_count)
    return {
        layout[index][0]: layout[index][1]
        for index in indices
        if layout[index][0] == manifest.shards[index].digest
    }


def _refs(manifest: Manifest, part: frozenset[int] | None) -> tuple[ShardRef, ...]:
    """The shards of `manifest` that `part` names (all of them for None), in index order."""
    if part is None:
        return manifest.shards
    return tuple(manifest.shards[index] for index in sorted(part))
