"""What the run needs of the outside world, as Protocols (docs/architecture.md#layers).

The run imports only the model (`dagsync.core`) and these ports; the PCE client, the PAN-OS
client, the stores and the notifier satisfy them structurally, and only the composition root
(`dagsync.edges.runtime`) puts them together. So the order and crash rules of the run can be
exercised against fakes, and no orchestration module names a transport or a table.
"""

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from dagsync.core.device import DagDefinition, RegisteredIp, UidOutcome
from dagsync.core.guard import GuardRule
from dagsync.core.history import RunOutcome, TargetHistory
from dagsync.core.models import PceEvent, TagMap, Workload
from dagsync.core.records import CachedTags, Projection, ProjectionEntry, Watermark


class HaProbe(Protocol):
    """One management address of PANOS_URL, asked its own HA state (docs/high-availability.md)."""

    def ha_state(self) -> str: ...


class Inventory(Protocol):
    """The PCE: the whole estate, one workload, and a page of events. Each raises PceError
    rather than return anything partial (docs/sync.md#retries)."""

    def fetch_workloads(self) -> list[Workload]: ...

    def fetch_workload(self, href: str) -> Workload | None: ...

    def fetch_events(
        self, since: datetime, *, until: datetime | None = None, max_results: int
    ) -> list[PceEvent]: ...

    def warnings(self) -> list[str]:
        """What the reads so far found worth telling the operator (label group cycles, ...)."""
        ...


class DagReader(Protocol):
    """The device's DAG definitions; a refusal or an unreadable answer raises PanosError."""

    def address_groups(self) -> Sequence[DagDefinition]: ...


class Device(DagReader, Protocol):
    """One target: uid-messages, the registered-IP table and the DAG definitions."""

    api_calls: int

    def register(self, entries: TagMap, *, persistent: bool = True) -> UidOutcome: ...

    def unregister(self, entries: TagMap) -> UidOutcome: ...

    def batches(self, entries: TagMap) -> Iterator[TagMap]: ...

    def registered_ips(
        self, *, ip: str | None = None, tag: str | None = None
    ) -> Mapping[str, RegisteredIp]: ...


class SnapshotView(Protocol):
    """What the run reads of a target's snapshot (docs/snapshot.md#items).

    `part` None: the maps are the whole snapshot; else only those shards were read.
    """

    @property
    def generation(self) -> int: ...

    @property
    def confirmed(self) -> TagMap: ...

    @property
    def uncertain(self) -> TagMap: ...

    @property
    def history(self) -> TargetHistory: ...

    @property
    def part(self) -> frozenset[int] | None: ...

    @property
    def recorded_pairs(self) -> int: ...


class Commits[L](Protocol):
    """What a push needs of the store: its progress checkpoints and the final commit (docs/sync.md#crash-rules)."""

    def checkpoint(self, lease: L, confirmed: TagMap, uncertain: TagMap) -> L: ...

    def commit(
        self, lease: L, confirmed: TagMap, uncertain: TagMap, *, outcome: RunOutcome | None = None
    ) -> int: ...


class Snapshots[S: SnapshotView, L](Commits[L], Protocol):
    """The targets' snapshots, with the lease a push holds (docs/snapshot.md#lease).

    `S` is the store's snapshot and `L` its lease: the run hands back what the store gave it
    and reads a snapshot only through SnapshotView.
    """

    def load(self, target: str, *, ips: Iterable[str] | None = None, expect: TagMap | None = None) -> S: ...

    def acquire(self, snapshot: S, run_id: str, lease_seconds: float) -> L: ...

    def release(self, lease: L) -> None: ...

    def record_outcome(self, snapshot: S, status: str) -> bool: ...

    def now(self) -> float: ...

    def histories(self, targets: Sequence[str]) -> Mapping[str, TargetHistory]: ...


class Projections(Protocol):
    """The change feed's projection and watermark (docs/snapshot.md#projection)."""

    def load_watermark(self) -> Watermark: ...

    def load_around(self, hrefs: Collection[str], addresses: Collection[str]) -> Projection | None: ...

    def current_generation(self) -> int: ...

    def replace(
        self,
        projection_generation: int,
        entries: Mapping[str, ProjectionEntry],
        watermark: Watermark,
        *,
        run_id: str,
        lease_seconds: float,
    ) -> Watermark: ...

    def commit(
        self,
        projection_generation: int,
        changed: Mapping[str, ProjectionEntry | None],
        watermark: Watermark,
        *,
        run_id: str,
        lease_seconds: float,
    ) -> Watermark: ...

    def advance_watermark(self, watermark: Watermark) -> Watermark: ...


class TagsCache(Protocol):
    """The per-target `tags-in-use` item of the snapshot table (docs/snapshot.md#items)."""

    def load_tags_in_use(self, target: str) -> CachedTags | None: ...

    def save_tags_in_use(self, target: str, tags: frozenset[str], digest: str, read_at: float) -> object: ...


class Notifier(Protocol):
    """Tells the alarm topic what the removal guard held back (docs/dag-awareness.md#blocked-notification)."""

    def blocked(
        self,
        target: str,
        *,
        rule: GuardRule,
        unregister: TagMap,
        previous_pairs: int,
        tally: str,
        deployment: str,
    ) -> None: ...
