"""The cached tags in use per target: what a read found, kept unless a later read is stored."""

from typing import Any

import pytest

from dagsync.core.errors import SnapshotError
from dagsync.core.records import CachedTags
from dagsync.store.table import Table
from dagsync.store.tags_cache import TAGS_IN_USE_KEY, TagsInUseCache
from emulators.local import TABLE

TARGET = "panorama.example.com/007051000123456/vsys1"
READ_AT = 1_800_000_000.0
TAGS = frozenset({"illumio.env.Quarantine", "illumio.app.Web Shop"})


def cache_of(client: Any) -> TagsInUseCache:
    return TagsInUseCache(Table(TABLE, client=client))


def test_nothing_saved_loads_as_none(dynamodb: Any) -> None:
    assert cache_of(dynamodb).load_tags_in_use(TARGET) is None


def test_saved_tags_load_back_with_their_digest_and_read_time(dynamodb: Any) -> None:
    assert cache_of(dynamodb).save_tags_in_use(TARGET, TAGS, "digest-1", READ_AT) is True

    assert cache_of(dynamodb).load_tags_in_use(TARGET) == CachedTags(TAGS, "digest-1", READ_AT)


def test_an_empty_set_of_tags_is_kept(dynamodb: Any) -> None:
    cache_of(dynamodb).save_tags_in_use(TARGET, frozenset(), "digest-0", READ_AT)

    assert cache_of(dynamodb).load_tags_in_use(TARGET) == CachedTags(frozenset(), "digest-0", READ_AT)


def test_changed_definitions_are_written_at_once(dynamodb: Any) -> None:
    cache = cache_of(dynamodb)
    cache.save_tags_in_use(TARGET, TAGS, "digest-1", READ_AT)

    assert cache.save_tags_in_use(TARGET, TAGS | {"illumio.env.Dev"}, "digest-2", READ_AT + 10) is True

    assert cache_of(dynamodb).load_tags_in_use(TARGET) == CachedTags(
        TAGS | {"illumio.env.Dev"}, "digest-2", READ_AT + 10
    )


def test_a_later_read_of_the_same_definitions_records_its_time(dynamodb: Any) -> None:
    cache = cache_of(dynamodb)
    cache.save_tags_in_use(TARGET, TAGS, "digest-1", READ_AT)

    assert cache.save_tags_in_use(TARGET, TAGS, "digest-1", READ_AT + 300) is True

    assert cache_of(dynamodb).load_tags_in_use(TARGET).read_at == READ_AT + 300


def test_a_read_older_than_the_stored_one_never_replaces_it(dynamodb: Any) -> None:
    cache_of(dynamodb).save_tags_in_use(TARGET, TAGS, "digest-2", READ_AT + 60)

    assert cache_of(dynamodb).save_tags_in_use(TARGET, frozenset(), "digest-1", READ_AT) is False

    assert cache_of(dynamodb).load_tags_in_use(TARGET) == CachedTags(TAGS, "digest-2", READ_AT + 60)


def test_the_cache_sits_beside_the_targets_snapshot(dynamodb: Any) -> None:
    cache_of(dynamodb).save_tags_in_use(TARGET, TAGS, "digest-1", READ_AT)

    (item,) = dynamodb.scan(TableName=TABLE)["Items"]
    assert (item["pk"], item["sk"]) == ({"S": TARGET}, {"S": TAGS_IN_USE_KEY})


def test_a_malformed_item_fails_naming_the_target(dynamodb: Any) -> None:
    dynamodb.put_item(
        TableName=TABLE, Item={"pk": {"S": TARGET}, "sk": {"S": TAGS_IN_USE_KEY}, "format": {"N": "9"}}
    )

    with pytest.raises(SnapshotError, match=r"tags in use of .* are malformed: .*format 9"):
        cache_of(dynamodb).load_tags_in_use(TARGET)
