"""What one target's sync works with, and the result it fills in; shared by its parts."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from dagsync.core.diff import Plan
from dagsync.core.invocation import SyncRequest
from dagsync.core.models import TagMap
from dagsync.core.result import TargetResult
from dagsync.core.settings import Target
from dagsync.sync.deadline import Deadline
from dagsync.sync.ports import Device, SnapshotView
from dagsync.sync.tags_in_use import TagsInUseAnswer


@dataclass
class TargetRun[S: SnapshotView]:
    """One target's sync in one run; `S` is the store's snapshot type."""

    target: Target
    device: Device
    desired: TagMap
    request: SyncRequest
    dry_run: bool
    result: TargetResult
    deadline: Deadline
    hostnames: Mapping[str, str] = field(default_factory=dict)  # of the desired IPs, where known
    snapshot: S | None = None  # once loaded
    committed: bool = False  # whether this run wrote a generation (and with it the history)
    # On a reconcile: what it sends that a snapshot-based sync would not (the drift it repairs).
    repair: Plan | None = None
    # A targeted update (docs/change-feed.md#targeted-update): `desired` holds only these IPs'
    # pairs, and only they are planned; an empty set means nothing changed.
    only_ips: frozenset[str] | None = None
    # With TAGS_IN_USE_ONLY: the set this run planned with, recorded once the target ends `ok`.
    tags_in_use: TagsInUseAnswer | None = None

    @property
    def name(self) -> str:
        return self.target.name
