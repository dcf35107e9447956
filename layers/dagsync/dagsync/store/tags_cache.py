"""The tags some DAG on a target names, cached in the snapshot table between reads of the device.

One small item per target (`sk` "tags-in-use", beside the target's snapshot) holds the tags, a
digest of the DAG definitions they were read from, and when they were read. When to read the
definitions again and when a read is worth recording is the run's decision
(`dagsync.sync.tags_in_use`); this store writes what it is given, unless a later read is
already stored. See docs/dag-awareness.md#tags-in-use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dagsync.core.errors import SnapshotError
from dagsync.core.records import CachedTags
from dagsync.store.table import ConditionFailed, Table, number

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.store.table import Item

logger = logging.getLogger(__name__)

TAGS_IN_USE_KEY = "tags-in-use"
FORMAT = 1


class TagsInUseCache:
    """Loads and saves each target's tags in use."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def load_tags_in_use(self, target: str) -> CachedTags | None:
        """The cached tags of `target` (one small GetItem), or None if none were ever saved."""
        item = self._table.get(target, TAGS_IN_USE_KEY)
        if item is None:
            return None
        try:
            cached = _parse(item)
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotError(
                f"tags in use of {target!r} in table {self._table.name!r} are malformed: {error!r}"
            ) from None
        return cached

    def save_tags_in_use(self, target: str, tags: frozenset[str], digest: str, read_at: float) -> bool:
        """Record a read of `target`'s DAG definitions; returns whether it wrote. A save older
        than the stored read writes nothing."""
        cached = CachedTags(frozenset(tags), digest, read_at)
        try:
            self._table.put(
                _item(target, cached),
                condition="attribute_not_exists(#read_at) OR #read_at < :read_at",
                values={":read_at": number(read_at)},
            )
        except ConditionFailed:
            logger.info("tags in use of %s not saved: another run saved a later read", target)
            return False
        return True


def _item(target: str, cached: CachedTags) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": {"S": target},
        "sk": {"S": TAGS_IN_USE_KEY},
        "format": number(FORMAT),
        "digest": {"S": cached.digest},
        "read_at": number(cached.read_at),
    }
    if cached.tags:
        item["tags"] = {"SS": sorted(cached.tags)}
    return item


def _parse(item: Item) -> CachedTags:
    version = int(item["format"]["N"])
    if version != FORMAT:
        raise ValueError(f"format {version} is not supported (this version reads format {FORMAT})")
    tags = frozenset(item["tags"]["SS"]) if "tags" in item else frozenset()
    return CachedTags(tags, item["digest"]["S"], float(item["read_at"]["N"]))
