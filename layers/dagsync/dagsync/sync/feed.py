"""Where a run's desired state comes from (docs/change-feed.md#decision), and what it records after.

One job: decide between a full export, a targeted update and nothing, produce the desired pairs
(or the delta on a few IPs), and once every target has committed, record the projection and the
watermark (docs/change-feed.md#watermark). The engine sends; this module only reads and records.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger

from dagsync import SERVICE
from dagsync.core.change_events import EventTypes, FeedDecision, classify
from dagsync.core.clocks import Clock
from dagsync.core.errors import PceError, SnapshotError
from dagsync.core.invocation import SyncRequest
from dagsync.core.mapping import Claim, Mapper, MappingResult, MappingRules, hostnames_by_ip
from dagsync.core.models import PceEvent, TagMap, Workload, count_pairs
from dagsync.core.recompute import ProjectionUpdate, addresses, recompute
from dagsync.core.records import Projection, ProjectionEntry, Watermark
from dagsync.core.result import Source, TargetResult
from dagsync.core.settings import Settings
from dagsync.sync.ports import Inventory, Projections

logger = Logger(service=SERVICE, child=True)


@dataclass(frozen=True)
class FeedPolicy:
    """How the change feed reads the PCE's events (docs/change-feed.md#decision).

    `read_back`: the PCE indexes events with some delay (docs/protocols.md#pce-events), so each
    events request reaches this far behind the newest event applied. `export_overlap`: an event
    older than the last complete export's start is reflected in it and not applied again, unless
    it is within this margin, which allows for the PCE's clock and ours to differ (by how much
    is not documented: unverified; applying an event twice is harmless). `trusted_history`: a
    watermark older than this may point at events the PCE has pruned; the PCE's retention is
    configurable and not documented per version (unverified), so the default stays well inside
    the smallest retention seen, and a full export is the answer past it. `max_results`: one
    page; a full one means a full export.
    """

    read_back: timedelta = timedelta(minutes=5)
    export_overlap: timedelta = timedelta(minutes=1)
    trusted_history: timedelta = timedelta(hours=6)
    max_results: int = 1000


DEFAULT_FEED_POLICY = FeedPolicy()


@dataclass
class Reading:
    """What a run sends and how it was read.

    `only_ips` None: `desired` is the whole estate. An empty set: nothing changed, each target
    checks its canary only. Otherwise `desired` holds the pairs of exactly those IPs.
    `hostnames` (ip -> the hostnames of the workloads on it, where known) name the members of a
    dry run's membership plan: every workload's on a full export, the fetched workloads' on a
    targeted update; other runs leave it empty rather than spend time and memory on it.
    """

    source: Source | None
    desired: TagMap
    workloads: int
    pairs: int  # of the whole estate, even when `desired` holds only a few IPs' pairs
    warnings: list[str]
    shared_ip_conflicts: int = 0
    only_ips: frozenset[str] | None = None
    events_seen: int | None = None
    workloads_fetched: int | None = None
    hostnames: dict[str, str] = field(default_factory=dict)
    # What `finish` records; None when the feed is off.
    watermark: Watermark | None = None
    next_watermark: Watermark | None = None
    projection_generation: int = 0
    full_projection: dict[str, Claim] | None = None
    update: ProjectionUpdate | None = None
    oldest_event_at: datetime | None = None


class Feed:
    """Reads the run's inventory the cheapest safe way and records where the feed stands.

    `wall_clock` is epoch seconds, the clock event timestamps are written in.
    """

    def __init__(
        self,
        settings: Settings,
        rules: MappingRules,
        *,
        inventory: Inventory,
        projections: Projections | None,
        run_id: str,
        lease_seconds: float,
        wall_clock: Clock = time.time,
        policy: FeedPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._rules = rules
        self._inventory = inventory
        self._projections = projections if settings.change_feed == "events" else None
        self._run_id = run_id
        self._lease_seconds = lease_seconds
        self._wall_clock = wall_clock
        self._policy = policy or DEFAULT_FEED_POLICY

    def read(self, request: SyncRequest) -> Reading:
        """The desired state, or the delta; raises PceError when the inventory cannot be read."""
        store = self._projections
        names = request.dry_run or self._settings.dry_run  # a membership plan names the workloads
        if store is None:
            return self._export(None, (), hostnames=names)
        watermark = store.load_watermark()
        reason = self._export_due(request, watermark, self._now())
        last_event_at = watermark.last_event_at
        if reason is not None or last_event_at is None:
            logger.info("full export", extra={"reason": reason})
            return self._export(watermark, (), hostnames=names)
        try:
            events = self._inventory.fetch_events(
                last_event_at - self._policy.read_back, max_results=self._policy.max_results
            )
        except PceError as exc:
            logger.warning("events unreadable; full export", extra={"error": str(exc)})
            return self._export(watermark, (), hostnames=names)
        decision = classify(
            events,
            applied=watermark.applied | self._covered_by_export(watermark, events),
            max_results=self._policy.max_results,
            max_targeted=self._settings.max_targeted_workloads,
            types=EventTypes.under(
                state_tags=bool(self._settings.state_tags), label_group_tags=self._settings.label_group_tags
            ),
        )
        if decision.action == "full":
            logger.info("full export", extra={"reason": decision.reason})
            return self._export(watermark, events, hostnames=names)
        newest = max((event.timestamp for event in events), default=last_event_at)
        moved = self._moved(watermark, events, max(newest, last_event_at))
        if decision.action == "nothing":
            return self._nothing(watermark, moved, len(events))
        return self._targeted(store, watermark, moved, events, decision, hostnames=names)

    def finish(self, reading: Reading, targets: Sequence[TargetResult], dry_run: bool) -> float | None:
        """After every target: record the projection and the watermark (only when every target
        ended `ok`); returns the seconds from the oldest applied event to now, for a targeted update.

        A target that did not end `ok` leaves the watermark where it was, with no export time,
        so the next run exports in full: it repeats what this run did not apply, whatever that was.
        """
        store, watermark, moved = self._projections, reading.watermark, reading.next_watermark
        if store is None or watermark is None or moved is None or dry_run:
            return None
        if any(target.status != "ok" for target in targets):
            if watermark.exported_at is not None:
                store.advance_watermark(replace(watermark, exported_at=None))
            return None
        if reading.full_projection is not None:
            entries = {href: _entry(claim) for href, claim in reading.full_projection.items()}
            store.replace(
                reading.projection_generation,
                entries,
                moved,
                run_id=self._run_id,
                lease_seconds=self._lease_seconds,
            )
        elif reading.update is not None and reading.update.changed:
            changed = {
                href: None if claim is None else _entry(claim)
                for href, claim in reading.update.changed.items()
            }
            store.commit(
                reading.projection_generation,
                changed,
                moved,
                run_id=self._run_id,
                lease_seconds=self._lease_seconds,
            )
        elif moved != watermark:
            store.advance_watermark(moved)
        if reading.source != "events" or reading.oldest_event_at is None:
            return None
        return max(0.0, self._now().timestamp() - reading.oldest_event_at.timestamp())

    def _export_due(self, request: SyncRequest, watermark: Watermark, now: datetime) -> str | None:
        if request.trigger != "schedule" or request.mode == "reconcile":
            return f"a {request.mode} run ({request.trigger}) always reads the whole inventory"
        if watermark.last_event_at is None or watermark.exported_at is None:
            return "no complete export recorded yet"
        if watermark.rules != self._rules_fingerprint():
            return "the mapping rules changed since the projection was recorded"
        if now - watermark.exported_at >= timedelta(minutes=self._settings.full_export_minutes):
            return f"FULL_EXPORT_MINUTES={self._settings.full_export_minutes} since the last export"
        if now - watermark.last_event_at > self._policy.trusted_history:
            return "the watermark is older than the events history the feed trusts"
        return None

    def _export(self, watermark: Watermark | None, events: Sequence[PceEvent], *, hostnames: bool) -> Reading:
        started = self._now()
        workloads = self._inventory.fetch_workloads()
        mapping = Mapper(self._rules).map(workloads)
        reading = _from_mapping(mapping, "export" if watermark is not None else None)
        reading.warnings = [*self._inventory.warnings(), *reading.warnings]
        if hostnames:
            reading.hostnames = hostnames_by_ip(workloads, mapping.projection)
        if watermark is None or self._projections is None:
            return reading
        reading.events_seen = len(events) if events else None
        reading.watermark = watermark
        reading.projection_generation = self._projections.current_generation()
        reading.full_projection = mapping.projection
        newest = max((event.timestamp for event in events), default=started)
        moved = self._moved(watermark, events, max(newest, started), exported_at=started)
        reading.next_watermark = replace(moved, workloads=reading.workloads, pairs=reading.pairs)
        return reading

    @staticmethod
    def _nothing(watermark: Watermark, moved: Watermark, events_seen: int) -> Reading:
        return Reading(
            source="none",
            desired={},
            workloads=watermark.workloads,
            pairs=watermark.pairs,
            warnings=[],
            only_ips=frozenset(),
            events_seen=events_seen,
            workloads_fetched=0,
            watermark=watermark,
            next_watermark=moved,
        )

    def _targeted(
        self,
        store: Projections,
        watermark: Watermark,
        moved: Watermark,
        events: Sequence[PceEvent],
        decision: FeedDecision,
        *,
        hostnames: bool,
    ) -> Reading:
        fetched = {href: self._inventory.fetch_workload(href) for href in decision.workload_hrefs}
        try:
            stored = store.load_around(fetched.keys(), addresses(fetched, self._rules))
        except SnapshotError as exc:
            logger.info("full export", extra={"reason": f"the projection changed while read: {exc}"})
            return self._export(watermark, events, hostnames=hostnames)
        if stored is None or not watermark.describes(stored):
            logger.info("full export", extra={"reason": "the watermark does not describe the projection"})
            return self._export(watermark, events, hostnames=hostnames)
        update = recompute(_claims(stored), fetched, self._rules)
        workloads = watermark.workloads + _workloads_added(stored, update)
        pairs = watermark.pairs - count_pairs(update.before) + count_pairs(update.after)
        return Reading(
            source="events",
            desired=update.after,
            workloads=workloads,
            pairs=pairs,
            warnings=[*self._inventory.warnings(), *update.warnings],
            shared_ip_conflicts=update.conflicts_after,
            only_ips=update.ips,
            events_seen=len(events),
            workloads_fetched=len(fetched),
            hostnames=_fetched_hostnames(fetched, stored, update) if hostnames else {},
            watermark=watermark,
            next_watermark=replace(moved, workloads=workloads, pairs=pairs),
            projection_generation=stored.generation,
            update=update,
            oldest_event_at=min(event.timestamp for event in decision.relevant),
        )

    def _moved(
        self,
        watermark: Watermark,
        events: Sequence[PceEvent],
        last_event_at: datetime,
        *,
        exported_at: datetime | None = None,
    ) -> Watermark:
        """The watermark once this run's events are applied: the hrefs still inside the next
        read-back window, and the rules the projection is recorded under."""
        window_start = last_event_at - self._policy.read_back
        return replace(
            watermark,
            last_event_at=last_event_at,
            applied=frozenset(event.href for event in events if event.timestamp >= window_start),
            exported_at=exported_at if exported_at is not None else watermark.exported_at,
            rules=self._rules_fingerprint(),
        )

    def _covered_by_export(self, watermark: Watermark, events: Sequence[PceEvent]) -> frozenset[str]:
        """Events the last complete export already reflects: older than its start, by a margin."""
        if watermark.exported_at is None:
            return frozenset()
        cutoff = watermark.exported_at - self._policy.export_overlap
        return frozenset(event.href for event in events if event.timestamp < cutoff)

    def _rules_fingerprint(self) -> str:
        """What decides the targets' desired pairs beyond the events: the mapping rules, and
        whether they are cut to tags in use (turning the cut off needs the whole estate)."""
        cut = "+tags-in-use" if self._settings.tags_in_use_only else ""
        return self._rules.fingerprint() + cut

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), UTC)


def _from_mapping(mapping: MappingResult, source: Source | None) -> Reading:
    return Reading(
        source=source,
        desired=mapping.desired,
        workloads=mapping.workloads,
        pairs=count_pairs(mapping.desired),
        warnings=mapping.warnings,
        shared_ip_conflicts=mapping.shared_ip_conflicts,
    )


def _fetched_hostnames(
    fetched: Mapping[str, Workload | None], stored: Projection, update: ProjectionUpdate
) -> dict[str, str]:
    """The fetched workloads' hostnames on every IP they had or now have."""
    present = [workload for workload in fetched.values() if workload is not None]
    had = {href: Claim(href, *stored.entries[href]) for href in fetched if href in stored.entries}
    has = {href: claim for href, claim in update.changed.items() if claim is not None}
    return hostnames_by_ip(present, had) | hostnames_by_ip(present, has)


def _claims(projection: Projection) -> dict[str, Claim]:
    return {href: Claim(href, ips, tags) for href, (ips, tags) in projection.entries.items()}


def _workloads_added(stored: Projection, update: ProjectionUpdate) -> int:
    """How many workloads the update adds to the count (negative: removes). A workload that
    gains or loses its last usable address counts as added or removed: the projection does not
    keep workloads without one, so the count is exact again at the next full export."""
    gone = sum(1 for href in update.changed if href in stored.entries)
    return sum(1 for claim in update.changed.values() if claim is not None) - gone


def _entry(claim: Claim) -> ProjectionEntry:
    return (claim.ips, claim.tags)
