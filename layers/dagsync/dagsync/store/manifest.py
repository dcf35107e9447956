"""The manifest: the one item naming the shard items of a structure's committed generation.

Beside the shard list it keeps what the next commit builds on: superseded shard keys not yet
deleted (garbage), lease holders that may have left shard items behind (abandoned), and the
lease itself. Everything else a structure records (the snapshot's counts and target history)
rides along in the same item. See docs/snapshot.md#manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagsync.store.codec import ShardLimits

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from dagsync.store.table import Item

MANIFEST_KEY = "manifest"
SHARD_KEY_PREFIX = "shard#"
_LIST_ENTRY_BYTES = 3  # DynamoDB's overhead per list or map entry


@dataclass(frozen=True, slots=True)
class ShardRef:
    """One shard item the manifest points at, with the digest of its decoded content."""

    key: str
    digest: str


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The lease as the manifest holds it; `acquired_at` is absent on leases older than it."""

    holder: str
    run_id: str
    expires_at: float
    acquired_at: float | None


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


def parse_manifest(item: Item, *, format_version: int, limits: ShardLimits) -> Manifest:
    """The manifest in `item`; raises KeyError, TypeError or ValueError on anything unexpected."""
    size = item_size(item)
    if size > limits.max_manifest_bytes:
        raise ValueError(f"it is {size} bytes, more than the limit of {limits.max_manifest_bytes}")
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
    if shard_count > limits.max_shards:
        raise ValueError(f"{shard_count} shards is more than the limit of {limits.max_shards}")
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


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's measure of an item, near enough: names plus values, with list and map overhead."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    (kind, content), *_ = value.items()
    if kind == "L":
        return _LIST_ENTRY_BYTES + sum(_LIST_ENTRY_BYTES + _value_size(entry) for entry in content)
    if kind == "M":
        return _LIST_ENTRY_BYTES + sum(
            _LIST_ENTRY_BYTES + len(name.encode()) + _value_size(entry) for name, entry in content.items()
        )
    if kind in ("SS", "NS", "BS"):
        return sum(_scalar_size(member) for member in content)
    return _scalar_size(content)


def _scalar_size(content: object) -> int:
    return len(content) if isinstance(content, bytes) else len(str(content).encode())


def _string_set(item: Item, name: str) -> frozenset[str]:
    return frozenset(item[name]["SS"]) if name in item else frozenset()


def _lease(item: Item) -> LeaseRecord | None:
    if "lease_holder" not in item:
        return None
    return LeaseRecord(
        holder=item["lease_holder"]["S"],
        run_id=item.get("lease_run_id", {}).get("S", "?"),
        expires_at=float(item.get("lease_expires_at", {}).get("N", "0")),
        acquired_at=float(item["lease_acquired_at"]["N"]) if "lease_acquired_at" in item else None,
    )
