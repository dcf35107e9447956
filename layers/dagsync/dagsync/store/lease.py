"""The lease on a manifest: one run at a time may write a structure's next generation.

A lease is taken with one conditional UpdateItem on the generation the run read, and ends at
the manifest swap that commits, at a release, or when it expires. A run whose lease has expired
is dead (the lease outlives the invocation), so its lease may be taken over, and its holder is
then recorded as abandoned so that the shard items it may have written get deleted. A lease
whose expiry lies further ahead than any run lasts (`max_lease_seconds`) cannot be a live
run's: it is taken over as well, so a bad clock or a hand-edited item cannot freeze a target.
See docs/snapshot.md#lease.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dagsync.core.errors import LeaseHeld, SnapshotConflict, SnapshotError
from dagsync.store.manifest import MANIFEST_KEY, Manifest
from dagsync.store.table import ConditionFailed, Table, number

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.store.table import Item

logger = logging.getLogger(__name__)

# The longest lease any run of this tool takes: the operator CLI's hour, plus the handler's
# margin. The handler's stores pass the function's timeout plus its margin instead.
DEFAULT_MAX_LEASE_SECONDS = 3_600.0 + 30.0


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to commit the generation after `generation`, held until `expires_at` (clock time).

    `holder` is the run id plus a random suffix, unique per acquire even when a Lambda retry
    reuses the request id; shard items are keyed by it so leftovers can be found and deleted.
    `base` is the manifest as the lease wrote it, which the next swap builds on. `part` names the
    shards the holder read when it read only some (docs/snapshot.md#partial-reads): its swaps
    rewrite only those, and every other shard stays as `base` names it.
    """

    target: str
    run_id: str
    holder: str
    generation: int
    expires_at: float
    acquired_at: float
    base: Manifest = field(repr=False)
    part: frozenset[int] | None = None


def take(
    table: Table,
    pk: str,
    *,
    generation: int,
    seen_holder: str | None,
    run_id: str,
    lease_seconds: float,
    max_lease_seconds: float,
    now: float,
    format_version: int,
    kind: str,
    parse: Callable[[Item], Manifest],
) -> Lease:
    """Take the lease for `generation`; its `base` is the manifest as written, read by `parse`.

    Only the lease seen at load (its holder `seen_holder`) may be taken over, and only when it has expired or is
    stuck; anything else raises SnapshotConflict (LeaseHeld when a live lease was honoured).
    """
    if not run_id or "#" in run_id:
        raise ValueError(f"run id must be non-empty and free of '#': {run_id!r}")
    if not 0 < lease_seconds <= max_lease_seconds:
        raise ValueError(f"lease_seconds must be positive and at most {max_lease_seconds}: {lease_seconds!r}")
    holder = f"{run_id}.{secrets.token_hex(4)}"
    generation_check = "#generation = :generation"
    if generation == 0:
        generation_check = f"(attribute_not_exists(#generation) OR {generation_check})"
    lease_check = "attribute_not_exists(#lease_holder)"
    update = f"SET #format = :format, #generation = :generation, {_SET_LEASE}"
    values: dict[str, AttributeValueTypeDef] = {
        ":format": number(format_version),
        ":generation": number(generation),
        ":holder": {"S": holder},
        ":run_id": {"S": run_id},
        ":expires_at": number(now + lease_seconds),
        ":acquired_at": number(now),
    }
    if seen_holder is not None:
        lease_check = (
            f"({lease_check} OR (#lease_holder = :previous AND "
            "(#lease_expires_at <= :now OR #lease_expires_at > :stuck)))"
        )
        update += " ADD #abandoned :abandoned"
        values |= {
            ":previous": {"S": seen_holder},
            ":now": number(now),
            ":stuck": number(now + max_lease_seconds),
            ":abandoned": {"SS": [seen_holder]},
        }
    try:
        written = table.update(
            pk,
            MANIFEST_KEY,
            update=update,
            condition=f"{generation_check} AND {lease_check}",
            values=values,
            return_new=True,
        )
    except ConditionFailed as failed:
        if failed.item is None or failed.item.get("lease_holder", {}).get("S") != holder:
            raise conflict(
                kind,
                pk,
                generation=generation,
                item=failed.item,
                now=now,
                max_lease_seconds=max_lease_seconds,
            ) from None
        # The SDK resent an update whose first answer was lost: that first update took the lease.
        written = failed.item
    except Exception:
        # The update may have been applied with its answer lost: give back the lease it may hold.
        release(table, pk, holder, run_id)
        raise
    return Lease(pk, run_id, holder, generation, now + lease_seconds, now, parse(written))


def release(table: Table, pk: str, holder: str, run_id: str) -> None:
    """Give the lease back after an aborted run; best effort, never raises.

    The holder is recorded as abandoned in case a failed commit left shard items behind.
    """
    try:
        table.update(
            pk,
            MANIFEST_KEY,
            update=(
                "REMOVE #lease_holder, #lease_run_id, #lease_expires_at, #lease_acquired_at "
                "ADD #abandoned :abandoned"
            ),
            condition="#lease_holder = :holder",
            values={":holder": {"S": holder}, ":abandoned": {"SS": [holder]}},
        )
    except ConditionFailed:
        logger.info("lease on %s was no longer held by run %s", pk, run_id)
    except SnapshotError as error:
        logger.warning("could not release the lease on %s: %s", pk, error)


def lease_attributes(lease: Lease) -> dict[str, AttributeValueTypeDef]:
    """The lease as manifest attributes, for a manifest swap that keeps holding it."""
    return {
        "lease_holder": {"S": lease.holder},
        "lease_run_id": {"S": lease.run_id},
        "lease_expires_at": number(lease.expires_at),
        "lease_acquired_at": number(lease.acquired_at),
    }


def conflict(
    kind: str, pk: str, *, generation: int, item: Item | None, now: float, max_lease_seconds: float
) -> SnapshotConflict:
    """What stopped a write conditioned on `generation`, from the manifest it lost to."""
    if item is None or "generation" not in item:
        return SnapshotConflict(f"another run changed the {kind} of {pk!r}")
    current = int(item["generation"]["N"])
    if current != generation:
        return SnapshotConflict(
            f"another run committed generation {current} of {pk!r} after this run read generation {generation}"
        )
    if "lease_holder" not in item:
        return SnapshotConflict(
            f"another run may have taken the lease on {pk!r}: this run no longer holds it"
        )
    run_id = item.get("lease_run_id", {}).get("S", "?")
    expires_at = float(item.get("lease_expires_at", {}).get("N", "0"))
    if expires_at <= now:
        return SnapshotConflict(
            f"another run ({run_id}) holds an expired lease on {pk!r} taken after this run loaded"
        )
    if expires_at > now + max_lease_seconds:
        return SnapshotConflict(
            f"another run ({run_id}) holds a lease on {pk!r} ending further ahead than any run lasts, "
            "taken after this run loaded; the next run takes it over"
        )
    acquired_at = float(item["lease_acquired_at"]["N"]) if "lease_acquired_at" in item else None
    held_for = None if acquired_at is None else max(0.0, now - acquired_at)
    held = "" if held_for is None else f" (held for {held_for:.0f} s)"
    until = datetime.fromtimestamp(expires_at, UTC).isoformat()
    return LeaseHeld(
        f"another run ({run_id}) holds the lease on {pk!r} until {until}{held}",
        run_id=run_id,
        expires_at=expires_at,
        held_for=held_for,
    )


_SET_LEASE = (
    "#lease_holder = :holder, #lease_run_id = :run_id, #lease_expires_at = :expires_at, "
    "#lease_acquired_at = :acquired_at"
)
