"""Shards: how a sharded structure is split into items, encoded, and checked when read back.

Pure, no I/O. A structure is a tuple of maps sharing one key space (the snapshot: confirmed and
uncertain tags per IP; the change feed's projection: addresses and tags per workload href). Keys
go to a power-of-two number of shards by a hash of the key, so a small change touches few shards
and each shard is decided by its own keys alone. A shard is deterministic JSON, zlib-compressed
and named by a digest of its content; limits are checked when a shard is written and again,
before inflating, when it is read. See docs/snapshot.md#shards.
"""

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

_DIGEST_CHARS = 32

# A tag set seen in several shards is kept once: decoding maps each set to the first equal one.
Interned = dict[frozenset[str], frozenset[str]]
# One shard's share (or a whole structure): one map per part of the structure, same key space.
type Parts[V] = tuple[dict[str, V], ...]


@dataclass(frozen=True, slots=True)
class ShardLimits:
    """Sizes that keep every item under DynamoDB's 400 KB and every read bounded.

    The shard count is kept while shards average within `min_per_shard`..`max_per_shard` keys, so
    an estate whose size hovers around a power-of-two boundary does not rewrite every shard on
    every run. It doubles until each shard fits `max_shard_bytes` compressed (half the item limit
    leaves room for the keys, and 100 such items stay under BatchGetItem's 16 MB answer) and
    `max_inflated_bytes` inflated. A manifest lists at most `max_shards` and, as read, is refused
    above `max_manifest_bytes`.
    """

    target_per_shard: int = 4_000
    min_per_shard: int = 1_000
    max_per_shard: int = 8_000
    max_shard_bytes: int = 160_000
    max_inflated_bytes: int = 8 * 1024 * 1024
    max_shards: int = 1_024
    max_manifest_bytes: int = 400 * 1024


DEFAULT_LIMITS = ShardLimits()


class PayloadCodec[V](Protocol):
    """One structure's shard content as bytes; `encode` must give equal bytes for equal content."""

    def encode(self, parts: Parts[V]) -> bytes: ...

    def decode(self, raw: bytes, interned: Interned) -> Parts[V]: ...


@dataclass(frozen=True, slots=True)
class EncodedShard[V]:
    """A shard ready to write; `data` is empty for a shard kept as it is (nothing to write)."""

    data: bytes
    digest: str
    inflated_size: int
    parts: Parts[V]


class ShardOverflow(ValueError):
    """The structure does not fit in `max_shards` shards within the size limits."""

    def __init__(self, keys: int, max_shards: int) -> None:
        super().__init__(f"{keys} keys need more than {max_shards} shards")
        self.keys = keys
        self.max_shards = max_shards


class UnreadableShard(ValueError):
    """A shard item that cannot be turned back into content; the message says why."""


def key_hash(key: str) -> int:
    """The key's place in every layout: shard index = key_hash(key) & (shard count - 1)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")


def shards_of(keys: Iterable[str], count: int) -> frozenset[int]:
    """The indices of the shards that hold `keys` in a layout of `count` shards (none of none)."""
    if not count:
        return frozenset()
    mask = count - 1
    return frozenset(key_hash(key) & mask for key in keys)


def shard_count(keys: int, current: int, limits: ShardLimits) -> int:
    """The current count while shards stay within bounds, else the power of two nearest the target."""
    if (
        current
        and keys <= current * limits.max_per_shard
        and (current == 1 or keys >= current * limits.min_per_shard)
    ):
        return current
    wanted = max(1, -(-keys // limits.target_per_shard))
    return 1 << (wanted - 1).bit_length()


def encode_shards[V](
    maps: Sequence[Mapping[str, V]],
    codec: PayloadCodec[V],
    limits: ShardLimits,
    *,
    current: int,
    known: Sequence[tuple[str, Parts[V]] | None] = (),
) -> list[EncodedShard[V]]:
    """Split `maps` by key hash into a power-of-two number of shards that each fit an item.

    `known` holds the digest and content of each current shard, where known: a shard whose
    content is unchanged keeps its digest (and so its item) without being encoded again.
    """
    hashes = {key: key_hash(key) for key in set[str]().union(*maps)}
    count = shard_count(len(hashes), current, limits)
    while count <= limits.max_shards:
        shares = share_out(maps, count, hashes)
        same_layout = count == current == len(known)
        shards = [
            (_unchanged(parts, known[number]) if same_layout else None) or encode_shard(parts, codec)
            for number, parts in enumerate(shares)
        ]
        if all(_fits(shard, limits) for shard in shards):
            return shards
        count *= 2
    raise ShardOverflow(len(hashes), limits.max_shards)


def share_out[V](
    maps: Sequence[Mapping[str, V]], count: int, hashes: Mapping[str, int] | None = None
) -> list[Parts[V]]:
    """`maps` split into the `count` shards of that layout, in shard order."""
    mask = count - 1
    shares: list[Parts[V]] = [tuple({} for _ in maps) for _ in range(count)]
    for index, values in enumerate(maps):
        for key, value in values.items():
            place = key_hash(key) if hashes is None else hashes[key]
            shares[place & mask][index][key] = value
    return shares


def layout_digests[V](
    maps: Sequence[Mapping[str, V]], codec: PayloadCodec[V], count: int
) -> list[tuple[str, Parts[V]]]:
    """Each shard of `maps` in a layout of `count` shards: the digest a committed shard of that
    content carries, and the content. Nothing is compressed: this names content, it writes nothing."""
    return [(digest(codec.encode(parts)), parts) for parts in share_out(maps, count)]


def encode_part[V](
    maps: Sequence[Mapping[str, V]],
    codec: PayloadCodec[V],
    limits: ShardLimits,
    *,
    count: int,
    part: frozenset[int],
    known: Mapping[int, tuple[str, Parts[V]]],
) -> dict[int, EncodedShard[V]] | None:
    """The shards `part` of a layout of `count` shards, from `maps` holding exactly their keys.

    The layout is kept as it is: a partial commit cannot move keys between shards. None when a
    key of `maps` belongs to another shard or a shard no longer fits an item; the caller then
    commits the whole structure, which may choose another layout.
    """
    mask = count - 1
    shares: dict[int, Parts[V]] = {index: tuple({} for _ in maps) for index in part}
    for position, values in enumerate(maps):
        for key, value in values.items():
            share = shares.get(key_hash(key) & mask)
            if share is None:
                return None
            share[position][key] = value
    shards = {
        index: _unchanged(parts, known.get(index)) or encode_shard(parts, codec)
        for index, parts in shares.items()
    }
    return shards if all(_fits(shard, limits) for shard in shards.values()) else None


def encode_shard[V](parts: Parts[V], codec: PayloadCodec[V]) -> EncodedShard[V]:
    raw = codec.encode(parts)
    return EncodedShard(zlib.compress(raw), digest(raw), len(raw), parts)


def decode_shard[V](
    data: bytes, expected_digest: str, codec: PayloadCodec[V], interned: Interned, limits: ShardLimits
) -> Parts[V]:
    """Inverse of encode_shard; the inflated size is checked before it is reached, not after."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data, limits.max_inflated_bytes + 1)
    except zlib.error as error:
        raise UnreadableShard(f"not zlib data: {error}") from None
    if len(raw) > limits.max_inflated_bytes or inflater.unconsumed_tail:
        raise UnreadableShard(f"it inflates past the limit of {limits.max_inflated_bytes} bytes")
    if not inflater.eof:
        raise UnreadableShard("the compressed data is truncated")
    if digest(raw) != expected_digest:
        raise UnreadableShard("content digest does not match the manifest")
    try:
        return codec.decode(raw, interned)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as error:
        raise UnreadableShard(f"unexpected content: {error!r}") from None


def merge[V](shares: Iterable[Parts[V]], width: int) -> Parts[V]:
    """One structure from its shards' shares."""
    whole: Parts[V] = tuple({} for _ in range(width))
    for parts in shares:
        for index, values in enumerate(parts):
            whole[index].update(values)
    return whole


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:_DIGEST_CHARS]


def compact_json(payload: object) -> bytes:
    """The one JSON form shards use: equal payloads give equal bytes."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class TagSetTable:
    """A shard-local table of distinct tag sets: each set lists indices into the sorted tags.

    A real estate repeats a few hundred label combinations across many keys, so each key stores
    one small integer instead of its tags.
    """

    tags: list[str]
    sets: list[list[int]]
    index: dict[frozenset[str], int]

    @classmethod
    def of(cls, tag_sets: Iterable[frozenset[str]]) -> "TagSetTable":
        distinct = set(tag_sets)
        tags = sorted(set[str]().union(*distinct))
        tag_index = {tag: number for number, tag in enumerate(tags)}
        rows = sorted((sorted(map(tag_index.__getitem__, tag_set)), tag_set) for tag_set in distinct)
        return cls(
            tags, [row for row, _ in rows], {tag_set: number for number, (_, tag_set) in enumerate(rows)}
        )


def read_tag_sets(
    tags: Sequence[str], sets: Iterable[Iterable[int]], interned: Interned
) -> list[frozenset[str]]:
    """The tag sets of a TagSetTable as written, each interned."""
    return [
        interned.setdefault(tag_set, tag_set)
        for tag_set in (frozenset(tags[number] for number in row) for row in sets)
    ]


def _unchanged[V](parts: Parts[V], known: tuple[str, Parts[V]] | None) -> EncodedShard[V] | None:
    """The current shard again (its digest; nothing to write) when its content has not changed."""
    if known is None or known[1] != parts:
        return None
    return EncodedShard(b"", known[0], 0, parts)


def _fits[V](shard: EncodedShard[V], limits: ShardLimits) -> bool:
    return len(shard.data) <= limits.max_shard_bytes and shard.inflated_size <= limits.max_inflated_bytes
