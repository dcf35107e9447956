"""The manifest: the one item naming the shard items of a structure's committed generation.

Beside the shard list it keeps what the next commit builds on: superseded shard keys not yet
deleted (garbage), lease holders that may have left shard items behind (abandoned), and the
lease itself. Everything else a structure records (the snapshot's counts and target history)
rides along in the same item. See docs/snapshot.md#manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.table import Item

MANIFEST_KEY = "manifest"
SHARD_KEY_PREFIX = "shard#"


@dataclass(frozen=True, slots=True)
class ShardRef:
    """One shard item the manifest points at, with the digest of its decoded content."""

    key: str
    digest: str


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The lease as the manifest holds it."""

    holder: str
    run_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest as read or written; `item` keeps every attribute, a structure's own included."""

    generation: int = 0
    shard_count: int = 0
    shards: tuple[ShardRef, ...] = ()
    garbage: frozenset[str] = frozenset()  # shard keys superseded but not yet deleted
    abandoned: frozenset[str] = frozenset()  # lease holders that may have left shard items behind
    lease: LeaseRecord | None = None  # as read; a takeover records its holder as abandoned
    item: Mapping[str, AttributeValueTypeDef] = field(default_factory=dict, repr=False, compare=False)

    @property
    def lease_holder(self) -> str | None:
        return None if self.lease is None else self.lease.holder


def shard_key(holder: str, commit_id: str, index: int) -> str:
    """Shard items are keyed by the lease holder that wrote them, so its leftovers can be found."""
    return f"{holder_prefix(holder)}{commit_id}#{index:05d}"


def holder_prefix(holder: str) -> str:
    return f"{SHARD_KEY_PREFIX}{holder}#"


def parse_manifest(item: Item, *, format_version: int) -> Manifest:
    """The manifest in `item`; raises KeyError, TypeError or ValueError on anything unexpected."""
    version = int(item["format"]["N"])
    if version != format_version:
        raise ValueError(f"format {version} is not supported (this version reads format {format_version})")
    shards = tuple(
        ShardRef(entry["M"]["key"]["S"], entry["M"]["digest"]["S"])
        for entry in item.get("shards", {"L": []})["L"]
    )
    shard_count = int(item["shard_count"]["N"]) if "shard_count" in item else 0
    if len(shards) != shard_count or (shard_count & (shard_count - 1)):
        raise ValueError(f"shard_count {shard_count} is not a power of two equal to the {len(shards)} shards")
    return Manifest(
        generation=int(item["generation"]["N"]),
        shard_count=shard_count,
        shards=shards,
        garbage=_string_set(item, "garbage"),
        abandoned=_string_set(item, "abandoned"),
        lease=_lease(item),
        item=item,
    )


def shard_list(refs: tuple[ShardRef, ...]) -> AttributeValueTypeDef:
    return {"L": [{"M": {"key": {"S": ref.key}, "digest": {"S": ref.digest}}} for ref in refs]}


def _string_set(item: Item, name: str) -> frozenset[str]:
    return frozenset(item[name]["SS"]) if name in item else frozenset()


def _lease(item: Item) -> LeaseRecord | None:
    if "lease_holder" not in item:
        return None
    return LeaseRecord(
        holder=item["lease_holder"]["S"],
        run_id=item.get("lease_run_id", {}).get("S", "?"),
        expires_at=float(item.get("lease_expires_at", {}).get("N", "0")),
    )
