"""One run (docs/architecture.md#one-run): where the desired state comes from, then every target.

The per-target rules of order and safety live in `target_sync`; this module reads the inventory
once, maps it, and hands the same desired pairs to every target in parallel.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger

from dagsync import SERVICE
from dagsync.core.canary import RESERVED_IPS
from dagsync.core.clocks import Clock, RemainingTime
from dagsync.core.errors import PceError, SnapshotError
from dagsync.core.ha import active_member, no_active_member
from dagsync.core.invocation import SyncRequest
from dagsync.core.mapping import MappingRules
from dagsync.core.result import RunResult, TargetResult
from dagsync.core.settings import Settings, Target
from dagsync.sync.deadline import Deadline, countdown
from dagsync.sync.fanout import run_in_parallel
from dagsync.sync.feed import Feed, Reading
from dagsync.sync.members import Members
from dagsync.sync.memory import collector_paused
from dagsync.sync.ports import Device, Inventory, Notifier, Projections, Snapshots
from dagsync.sync.push import ProgressPolicy
from dagsync.sync.tags_in_use import TagsInUse
from dagsync.sync.target_sync import TargetSync

logger = Logger(service=SERVICE, child=True)
DEFAULT_PROGRESS = ProgressPolicy()


class SyncEngine:
    """One run: the desired state read once, then every target synced against it in parallel."""

    def __init__(
        self,
        settings: Settings,
        *,
        inventory: Inventory,
        store: Snapshots[Any, Any],
        device_for: Callable[[Target, str], Device],
        members: Members,
        run_id: str,
        lease_seconds: float = 900.0,
        clock: Clock = time.monotonic,
        progress: ProgressPolicy = DEFAULT_PROGRESS,
        projections: Projections | None = None,
        wall_clock: Clock = time.time,
        tags_in_use: TagsInUse | None = None,
        notifier: Notifier | None = None,
        remaining_time: RemainingTime | None = None,
    ) -> None:
        """`remaining_time` is the invocation's countdown (docs/fan-out.md#deadlines), read afresh
        whenever a target asks whether another batch may start; None is no deadline."""
        self._settings = settings
        self._members = members
        self._remaining_time = remaining_time
        self._store = store
        self._clock = clock
        self._targets = TargetSync(
            settings,
            store=store,
            device_for=device_for,
            run_id=run_id,
            lease_seconds=lease_seconds,
            clock=clock,
            progress=progress,
            tags_in_use=tags_in_use,
            notifier=notifier,
        )
        rules = MappingRules(
            prefix=settings.tag_prefix,
            label_keys=settings.label_keys,
            include_ipv6=settings.include_ipv6,
            exclude=settings.exclude_cidrs,
            shared_ip_policy=settings.shared_ip_policy,
            reserved_ips=RESERVED_IPS,
            state_tags=settings.state_tags,
            label_group_tags=settings.label_group_tags,
        )
        self._feed = Feed(
            settings,
            rules,
            inventory=inventory,
            projections=projections,
            run_id=run_id,
            lease_seconds=lease_seconds,
            wall_clock=wall_clock,
        )

    @collector_paused()
    def run(self, request: SyncRequest, *, deadline: float | None = None) -> RunResult:
        """One run over every target; `deadline`, a time on the engine's clock, bounds it in place
        of the engine's remaining time (docs/fan-out.md#deadlines)."""
        started = self._clock()
        budget = Deadline(countdown(deadline, self._clock) if deadline is not None else self._remaining_time)
        dry_run = request.dry_run or self._settings.dry_run
        result = RunResult(
            mode=request.mode,
            dry_run=dry_run,
            forced=request.force,
            stuck_after_seconds=self._settings.stuck_conflict_seconds,
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="target-order") as background:
            # The targets' order needs their histories (their manifests, one BatchGetItem per 100
            # targets): read them while the inventory is read, not after it (docs/fan-out.md#deadlines).
            order = background.submit(self._unfinished_streak)
            try:
                reading = self._feed.read(request)
            except PceError as exc:
                reading = None
                logger.error("PCE inventory incomplete; no target was touched", extra={"error": str(exc)})
                result.error = str(exc)
            priority = order.result()
        if reading is not None:
            self._sync_targets(reading, request, result, budget, priority)
        result.duration_ms = int((self._clock() - started) * 1000)
        return result

    def _sync_targets(
        self,
        reading: Reading,
        request: SyncRequest,
        result: RunResult,
        budget: Deadline,
        priority: Callable[[Target], int],
    ) -> None:
        """Every target in parallel against the desired pairs read, then the feed's state."""
        result.workloads, result.pairs, result.warnings = (
            reading.workloads,
            reading.pairs,
            reading.warnings,
        )
        result.shared_ip_conflicts = reading.shared_ip_conflicts
        result.source, result.events_seen = reading.source, reading.events_seen
        result.workloads_fetched = reading.workloads_fetched
        for warning in reading.warnings:
            logger.warning(warning)
        # Asked once the inventory is complete: a run the PCE stops sends the device nothing at all.
        result.members = self._members.ask()
        active = active_member(result.members)
        address = result.device_address = None if active is None else active.address
        if address is None:
            # Nothing but the HA query reaches a member that is not active (docs/high-availability.md).
            error = no_active_member(result.members)
            logger.error(error)
            result.targets = [
                TargetResult(target.name, status="failed", error=error) for target in self._settings.targets
            ]
            result.event_to_device_seconds = self._finish_feed(reading, result)
            return
        result.targets = run_in_parallel(
            self._settings.targets,
            lambda target: self._targets.sync(
                target,
                reading.desired,
                request,
                result.dry_run,
                budget,
                hostnames=reading.hostnames,
                only_ips=reading.only_ips,
                address=address,
            ),
            workers=self._settings.panos_max_concurrency,
            priority=priority,
        )
        for target_result in result.targets:
            result.warnings.extend(f"{target_result.target}: {text}" for text in target_result.warnings)
        result.event_to_device_seconds = self._finish_feed(reading, result)

    def _finish_feed(self, reading: Reading, result: RunResult) -> float | None:
        """Record the feed's projection and watermark. Losing that write to another run is safe:
        the old watermark stands, and the next run reads the same events again, or exports in
        full, and sends nothing twice (docs/change-feed.md#watermark)."""
        try:
            return self._feed.finish(reading, result.targets, result.dry_run)
        except SnapshotError as exc:
            logger.warning(
                "change feed state not recorded; the next run reads again", extra={"error": str(exc)}
            )
            return None

    def _unfinished_streak(self) -> Callable[[Target], int]:
        """Targets the last runs left `incomplete` or `failed` go first, the longest unfinished
        first, so none starves (docs/fan-out.md#deadlines). With no more targets than workers
        every one starts at once, and the order is not worth the manifest reads."""
        targets = self._settings.targets
        if len(targets) <= self._settings.panos_max_concurrency:
            return lambda _: 0
        try:
            histories = self._store.histories([target.name for target in targets])
        except SnapshotError as exc:
            logger.warning(
                "target histories not read; targets run in their configured order", extra={"error": str(exc)}
            )
            return lambda _: 0
        return lambda target: histories[target.name].unfinished_runs
