"""The shard codec alone: layout, encoding and the checks made when a shard is read back."""

import json
import zlib

import pytest

from dagsync.store.codec import (
    DEFAULT_LIMITS,
    Parts,
    ShardLimits,
    ShardOverflow,
    TagSetTable,
    UnreadableShard,
    compact_json,
    decode_shard,
    encode_shard,
    encode_shards,
    key_hash,
    layout_digests,
    merge,
    read_tag_sets,
    shard_count,
)

SMALL = ShardLimits(target_per_shard=20, min_per_shard=5, max_per_shard=40)


class WordsCodec:
    """A minimal payload: in each map, each key maps to one string."""

    def encode(self, parts: Parts[str]) -> bytes:
        return compact_json([{key: words[key] for key in sorted(words)} for words in parts])

    def decode(self, raw: bytes, interned: object) -> Parts[str]:
        return tuple(json.loads(raw))


CODEC = WordsCodec()


def words(count: int, *, value: str = "w") -> dict[str, str]:
    return {f"key-{n}": f"{value}{n}" for n in range(count)}


def test_each_key_lands_in_the_shard_its_hash_names() -> None:
    shards = encode_shards([words(200)], CODEC, SMALL, current=0)

    assert len(shards) == 16
    for index, shard in enumerate(shards):
        assert all(key_hash(key) & 15 == index for key in shard.parts[0])


def test_a_layouts_digests_are_those_its_committed_shards_carry() -> None:
    shards = encode_shards([words(200)], CODEC, SMALL, current=0)

    layout = layout_digests([words(200)], CODEC, len(shards))

    assert [(digest, parts) for digest, parts in layout] == [(s.digest, s.parts) for s in shards]


def test_equal_content_gives_equal_bytes_and_digest() -> None:
    first = encode_shard((words(50),), CODEC)
    second = encode_shard((dict(reversed(list(words(50).items()))),), CODEC)

    assert (first.data, first.digest) == (second.data, second.digest)


def test_a_shard_decodes_to_what_was_encoded() -> None:
    shard = encode_shard((words(50),), CODEC)

    assert decode_shard(shard.data, shard.digest, CODEC, {}, DEFAULT_LIMITS) == (words(50),)


def test_unchanged_shards_are_kept_without_encoding_and_only_changed_ones_carry_data() -> None:
    before = encode_shards([words(200)], CODEC, SMALL, current=0)
    changed = {**words(200), "key-7": "changed"}

    after = encode_shards(
        [changed], CODEC, SMALL, current=len(before), known=[(s.digest, s.parts) for s in before]
    )

    rewritten = [a for a, b in zip(after, before, strict=True) if a.digest != b.digest]
    assert len(rewritten) == 1 and "key-7" in rewritten[0].parts[0]
    assert all(a.data == b"" for a, b in zip(after, before, strict=True) if a.digest == b.digest)


def test_shard_count_is_kept_within_bounds_and_otherwise_follows_the_target() -> None:
    assert shard_count(600, 32, SMALL) == 32
    assert shard_count(660, 32, SMALL) == 32
    assert shard_count(1_500, 32, SMALL) == 128
    assert shard_count(30, 32, SMALL) == 2
    assert shard_count(0, 0, SMALL) == 1


def test_shards_double_until_each_fits_its_compressed_limit() -> None:
    limits = ShardLimits(max_shard_bytes=300)

    shards = encode_shards(
        [words(100, value="some text that compresses less well ")], CODEC, limits, current=0
    )

    assert len(shards) > 1
    assert all(len(shard.data) <= 300 for shard in shards)


def test_shards_double_until_each_fits_its_inflated_limit() -> None:
    limits = ShardLimits(max_inflated_bytes=2_000)

    shards = encode_shards([words(500)], CODEC, limits, current=0)

    assert all(len(zlib.decompress(shard.data)) <= 2_000 for shard in shards)


def test_a_structure_that_needs_too_many_shards_overflows() -> None:
    with pytest.raises(ShardOverflow, match="500 keys need more than 4 shards"):
        encode_shards([words(500)], CODEC, ShardLimits(max_shard_bytes=100, max_shards=4), current=0)


def test_a_shard_that_is_not_zlib_is_unreadable() -> None:
    with pytest.raises(UnreadableShard, match="not zlib"):
        decode_shard(b"plain bytes", "0" * 32, CODEC, {}, DEFAULT_LIMITS)


def test_a_truncated_shard_is_unreadable() -> None:
    shard = encode_shard((words(500),), CODEC)

    with pytest.raises(UnreadableShard, match="truncated"):
        decode_shard(shard.data[: len(shard.data) // 2], shard.digest, CODEC, {}, DEFAULT_LIMITS)


def test_a_shard_whose_content_does_not_match_its_digest_is_unreadable() -> None:
    shard = encode_shard((words(5),), CODEC)

    with pytest.raises(UnreadableShard, match="digest does not match"):
        decode_shard(shard.data, "0" * 32, CODEC, {}, DEFAULT_LIMITS)


def test_a_shard_that_would_inflate_past_the_limit_is_refused_before_inflating_it() -> None:
    bomb = zlib.compress(b"0" * 50_000_000, 9)  # about 50 KB that inflate to 50 MB

    with pytest.raises(UnreadableShard, match="inflates past the limit of 1048576 bytes"):
        decode_shard(bomb, "0" * 32, CODEC, {}, ShardLimits(max_inflated_bytes=1024 * 1024))


def test_merge_joins_the_shares_of_every_shard() -> None:
    shards = encode_shards([words(100), {"key-1": "other"}], CODEC, SMALL, current=0)

    assert merge((shard.parts for shard in shards), 2) == (words(100), {"key-1": "other"})


def test_a_tag_set_table_round_trips_and_interns_equal_sets() -> None:
    sets = [frozenset({"b", "a"}), frozenset({"c"}), frozenset({"a", "b"})]
    table = TagSetTable.of(sets)
    interned: dict[frozenset[str], frozenset[str]] = {}

    first = read_tag_sets(table.tags, table.sets, interned)
    second = read_tag_sets(table.tags, table.sets, interned)

    assert table.tags == ["a", "b", "c"]
    assert set(first) == {frozenset({"a", "b"}), frozenset({"c"})}
    assert all(a is b for a, b in zip(first, second, strict=True))
