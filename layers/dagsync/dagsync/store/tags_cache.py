"""The tags some DAG on a target names, cached in the snapshot table between reads of the device.

One small item per target (`sk` "tags-in-use", beside the target's snapshot) holds the tags, a
digest of the DAG definitions they were read from, and when they were read. The definitions are
read again at most every `REFRESH_SECONDS` (and on every reconcile), and the cache is written:

- when the digest differs from the one stored: the DAGs changed;
- when the digest is the same but the stored read is `REFRESH_SECONDS` old or more: the refresh
  is recorded, so the next runs do not read the definitions again at once.

A save with the same digest inside the interval writes nothing. So a target costs at most one
small write per refresh interval, and none between. See docs/dag-awareness.md#tags-in-use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagsync.core.errors import SnapshotError
from dagsync.store.table import ConditionFailed, Table, number

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.store.table import Item

logger = logging.getLogger(__name__)

TAGS_IN_USE_KEY = "tags-in-use"
REFRESH_SECONDS = 300.0
FORMAT = 1


@dataclass(frozen=True, slots=True)
class TagsInUse:
    """The tags DAG filters on a target name, as read at `read_at` (wall-clock epoch seconds)."""

    tags: frozenset[str]
    digest: str
    read_at: float

    def due(self, now: float) -> bool:
        """Whether the definitions should be read again."""
        return now - self.read_at >= REFRESH_SECONDS


class TagsInUseCache:
    """Loads and saves each target's tags in use; remembers what it last read or wrote."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self._stored: dict[str, TagsInUse] = {}

    def load_tags_in_use(self, target: str) -> TagsInUse | None:
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
        self._stored[target] = cached
        return cached

    def save_tags_in_use(self, target: str, tags: frozenset[str], digest: str, read_at: float) -> bool:
        """Record a read of `target`'s DAG definitions when it says something new (see the module
        docstring); returns whether it wrote. A save older than the stored read writes nothing."""
        stored = self._stored.get(target)
        if stored is not None and stored.digest == digest and not stored.due(read_at):
            return False
        cached = TagsInUse(frozenset(tags), digest, read_at)
        try:
            self._table.put(
                _item(target, cached),
                condition="attribute_not_exists(#read_at) OR #read_at < :read_at",
                values={":read_at": number(read_at)},
            )
        except ConditionFailed:
            logger.info("tags in use of %s not saved: another run saved a later read", target)
            return False
        self._stored[target] = cached
        return True


def _item(target: str, cached: TagsInUse) -> dict[str, AttributeValueTypeDef]:
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


def _parse(item: Item) -> TagsInUse:
    version = int(item["format"]["N"])
    if version != FORMAT:
        raise ValueError(f"format {version} is not supported (this version reads format {FORMAT})")
    tags = frozenset(item["tags"]["SS"]) if "tags" in item else frozenset()
    return TagsInUse(tags, item["digest"]["S"], float(item["read_at"]["N"]))
