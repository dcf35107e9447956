"""Deleting the shard items no manifest needs any more, after a manifest swap; best effort.

A swap lists what it superseded as garbage, and a takeover or a release lists the lease holder
as abandoned, since it may have written shard items that never got committed. The next swap
deletes both; whatever it cannot delete stays listed for the one after. An item the new
manifest references is never deleted. See docs/snapshot.md#garbage.
"""

import logging
from collections.abc import Collection, Iterable

from dagsync.core.errors import SnapshotError
from dagsync.store.manifest import MANIFEST_KEY, holder_prefix
from dagsync.store.table import ConditionFailed, Table

logger = logging.getLogger(__name__)


def collect(
    table: Table, pk: str, garbage: frozenset[str], abandoned: frozenset[str], referenced: set[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """Delete `garbage` and every shard item of the `abandoned` holders that is not `referenced`;
    returns the garbage and the holders still to be cleaned up."""
    leftovers: dict[str, set[str]] = {}
    for holder in sorted(abandoned):
        try:
            leftovers[holder] = table.keys_with_prefix(pk, holder_prefix(holder)) - referenced
        except SnapshotError as error:
            logger.warning("could not list the shard items of %s on %s: %s", holder, pk, error)
    deleted: set[str] = set()
    try:
        table.delete_many(pk, (garbage - referenced).union(*leftovers.values()), deleted)
    except SnapshotError as error:
        logger.warning("could not delete superseded shard items of %s: %s", pk, error)
    cleared_holders = {holder for holder, keys in leftovers.items() if keys <= deleted}
    _forget(table, pk, garbage & deleted, cleared_holders)
    return garbage - deleted, abandoned - cleared_holders


def delete_quietly(table: Table, pk: str, keys: Iterable[str]) -> None:
    """Delete the shard items of a commit that lost its manifest swap."""
    try:
        table.delete_many(pk, keys, set())
    except SnapshotError as error:
        logger.warning("could not delete the shard items of a lost commit on %s: %s", pk, error)


def _forget(table: Table, pk: str, garbage: Collection[str], holders: Collection[str]) -> None:
    """Drop deleted keys and cleaned-up holders from the manifest; set deletes commute with
    any commit that happened meanwhile, so this needs no generation check."""
    actions = [(name, members) for name, members in (("garbage", garbage), ("abandoned", holders)) if members]
    if not actions:
        return
    try:
        table.update(
            pk,
            MANIFEST_KEY,
            update="DELETE " + ", ".join(f"#{name} :{name}" for name, _ in actions),
            condition="attribute_exists(#generation)",
            values={f":{name}": {"SS": sorted(members)} for name, members in actions},
        )
    except (ConditionFailed, SnapshotError) as error:
        logger.warning("could not update the garbage list of %s: %r", pk, error)
