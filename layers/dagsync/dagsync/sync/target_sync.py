"""One target's sync (docs/sync.md): the only place that decides order and safety on a device.

Read the snapshot (or, when drift is suspected, the device), plan, guard, take the lease, record
the write-ahead, push registrations before unregistrations in batches while the deadline allows,
commit what the device confirmed, and arm the canary. The parts live beside it: the plan against
the device (`drift`), the push and its progress commits (`push`), a dry run's report (`dry_run`);
this class holds their order.
"""

import time
from collections.abc import Callable, Mapping

from aws_lambda_powertools import Logger

from dagsync import SERVICE
from dagsync.core import guard
from dagsync.core.canary import Canary
from dagsync.core.clocks import Clock
from dagsync.core.dag_filter import cut_to_tags_in_use
from dagsync.core.diff import Plan, plan_changes, restricted, with_prefix
from dagsync.core.errors import DagSyncError, LeaseHeld, SnapshotConflict, SnapshotError
from dagsync.core.history import TargetHistory
from dagsync.core.invocation import SyncRequest
from dagsync.core.models import TagMap, count_pairs
from dagsync.core.result import TargetResult
from dagsync.core.settings import Settings, Target
from dagsync.sync import dry_run
from dagsync.sync.deadline import Deadline
from dagsync.sync.drift import Drift, Planned
from dagsync.sync.ports import Device, Notifier, Snapshots, SnapshotView
from dagsync.sync.push import ProgressPolicy, Pusher, Recorded
from dagsync.sync.tags_in_use import TagsInUse, TagsInUseAnswer
from dagsync.sync.target_run import TargetRun

logger = Logger(service=SERVICE, child=True)


class TargetSync[S: SnapshotView, L]:
    """Syncs one target at a time; safe to call from several worker threads at once."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Snapshots[S, L],
        device_for: Callable[[Target, str], Device],
        run_id: str,
        lease_seconds: float,
        clock: Clock = time.monotonic,
        progress: ProgressPolicy | None = None,
        tags_in_use: TagsInUse | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        """`tags_in_use` is given when TAGS_IN_USE_ONLY is on; `notifier` tells the alarm topic of
        blocked targets (docs/dag-awareness.md)."""
        self._settings = settings
        self._store = store
        self._device_for = device_for
        self._run_id = run_id
        self._lease_seconds = lease_seconds
        self._pusher = Pusher(store, progress or ProgressPolicy(), clock)
        self._drift = Drift(Canary(settings.tag_prefix, settings.deployment_id), settings.tag_prefix)
        self._tags_in_use = tags_in_use
        self._notifier = notifier

    def sync(
        self,
        target: Target,
        desired: TagMap,
        request: SyncRequest,
        dry_run: bool,
        deadline: Deadline,
        *,
        hostnames: Mapping[str, str] | None = None,
        only_ips: frozenset[str] | None = None,
        address: str = "",
    ) -> TargetResult:
        """One target, isolated: whatever goes wrong here is this target's status, not the run's.

        `hostnames` (ip -> workload hostnames) name the members of a dry run's membership plan.
        `only_ips`: `desired` is the pairs of these IPs alone (a targeted update); empty, the
        run found nothing changed and the target only checks its canary. `address` is the
        management address this run writes to (docs/high-availability.md).
        """
        result = TargetResult(target=target.name)
        device: Device | None = None
        run: TargetRun[S] | None = None
        try:
            device = self._device_for(target, address)
            run = TargetRun(
                target, device, desired, request, dry_run, result, deadline, dict(hostnames or {})
            )
            run.only_ips = only_ips
            if only_ips is not None and not only_ips:
                self._check_canary(run)
            else:
                self._sync(run)
        except LeaseHeld as exc:
            result.status, result.error, result.conflict_seconds = "conflict", str(exc), exc.held_for
            logger.warning("another run holds this target; nothing committed", extra={"target": target.name})
        except SnapshotConflict as exc:
            result.status, result.error = "conflict", str(exc)
            logger.warning("another run holds this target; nothing committed", extra={"target": target.name})
        except DagSyncError as exc:
            result.status, result.error = "failed", str(exc)
            logger.error("target failed", extra={"target": target.name, "error": str(exc)})
        except Exception as exc:
            result.status, result.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
            logger.exception("target failed unexpectedly", extra={"target": target.name})
        if device is not None:
            result.api_calls = device.api_calls
        if run is not None:
            self._record_tags_in_use(run)
        if run is not None and run.snapshot is not None:
            self._record_history(run, run.snapshot)
        elif result.status == "ok" and not dry_run:
            result.last_sync_age_seconds = 0.0  # a quiet feed run: the canary proved the device exact
        return result

    def _sync(self, run: TargetRun[S]) -> None:
        # A targeted update reads only the shards of its IPs (docs/snapshot.md#partial-reads). A
        # whole-estate run names the pairs it will plan, so shards already holding exactly them
        # are neither read nor decoded (docs/snapshot.md#expected-content); with TAGS_IN_USE_ONLY
        # the pairs are cut only after the load, so there is nothing to name yet.
        expect = run.desired if run.only_ips is None and self._tags_in_use is None else None
        snapshot = run.snapshot = self._store.load(run.name, ips=run.only_ips, expect=expect)
        drift_reason = self._drift.reason(run.request, snapshot, run.device)
        if drift_reason is not None and run.only_ips is not None:
            self._needs_whole_inventory(run, drift_reason)
            return
        answer = self._read_tags_in_use(run, reconcile=drift_reason is not None)
        if answer is not None:
            if answer.changed and run.only_ips is not None:
                self._needs_whole_inventory(run, answer.change())
                return
            # Before the plan, so the guard, order and commit rules apply unchanged
            # (docs/dag-awareness.md#tags-in-use).
            run.desired = cut_to_tags_in_use(run.desired, answer.tags)
        plan, confirmed, uncertain = self._plan(run, snapshot, drift_reason)
        previous_pairs = (
            count_pairs(confirmed) + count_pairs(uncertain)
            if snapshot.part is None
            else snapshot.recorded_pairs
        )
        blocked = self._blocked(run, plan, previous_pairs, snapshot.history)
        if run.dry_run:
            dry_run.describe(run, plan, confirmed, answer, blocked=blocked, prefix=self._settings.tag_prefix)
            return
        # Every reconcile (a first run included) ends by arming the canary, even with nothing to send.
        needs_canary = drift_reason is not None
        if blocked or (plan.empty and not needs_canary):
            return
        if not run.deadline.allows_more_work():
            # Too late to start: the next run goes on from here (docs/fan-out.md#deadlines).
            run.result.status = "incomplete"
            run.result.remaining = plan.register_count + plan.unregister_count
            return
        lease = self._store.acquire(snapshot, self._run_id, self._lease_seconds)
        try:
            progress = self._pusher.push_and_commit(
                run, lease, plan, Recorded(confirmed, uncertain), previous_pairs
            )
        finally:
            if not run.committed:
                self._store.release(lease)
        # Only after the commit: a canary on the device promises a snapshot that matches it. A push
        # stopped by the deadline keeps that promise too (what it did not send is not recorded).
        if needs_canary and progress.error is None:
            self._drift.arm(run)

    def _plan(self, run: TargetRun[S], snapshot: S, drift_reason: str | None) -> Planned:
        """The plan, and the confirmed and uncertain pairs it was made against."""
        # A snapshot written under another TAG_PREFIX holds tags we no longer own: leave them be.
        confirmed = with_prefix(snapshot.confirmed, self._settings.tag_prefix)
        uncertain = with_prefix(snapshot.uncertain, self._settings.tag_prefix)
        if run.only_ips is None:
            plan = plan_changes(run.desired, confirmed, uncertain)
        else:
            # A targeted update plans only its IPs, against the rest of the snapshot kept.
            plan = plan_changes(
                run.desired, restricted(confirmed, run.only_ips), restricted(uncertain, run.only_ips)
            )
        if drift_reason is None:
            return Planned(plan, confirmed, uncertain)
        return self._drift.against_device(run, plan, confirmed, drift_reason)

    def _blocked(self, run: TargetRun[S], plan: Plan, previous_pairs: int, history: TargetHistory) -> bool:
        """The removal guard, one run and rolling 24 hours (docs/sync.md#removal-guard); `force`
        lets a run through it."""
        if run.request.force:
            return False
        ratio = self._settings.max_removal_ratio
        held = guard.verdict(plan, previous_pairs, history, now=self._store.now(), max_removal_ratio=ratio)
        if held is None:
            return False
        run.result.status = "blocked"
        run.result.drift_repaired = 0
        run.result.error = (
            f"removal guard ({held.rule} rule): {held.tally}, more than MAX_REMOVAL_RATIO={ratio}; "
            'nothing was sent. Check the PCE, then run with {"force": true} if this is intended'
        )
        logger.error(
            "removal guard blocked the target",
            extra={"target": run.name, "rule": held.rule, "error": run.result.error},
        )
        if self._notifier is not None and not run.dry_run:
            self._notifier.blocked(
                run.name,
                rule=held.rule,
                unregister=plan.unregister,
                previous_pairs=previous_pairs,
                tally=held.tally,
                deployment=self._settings.deployment_id,
            )
        return True

    def _check_canary(self, run: TargetRun[S]) -> None:
        """Nothing changed (docs/change-feed.md#decision): one canary check, no snapshot read, and
        with TAGS_IN_USE_ONLY the DAG definitions when their refresh is due."""
        if not self._drift.canary_armed(run.device):
            self._needs_whole_inventory(run, "canary missing: the device lost registrations")
            return
        answer = self._read_tags_in_use(run, reconcile=False)
        if answer is not None and answer.changed:
            self._needs_whole_inventory(run, answer.change())

    @staticmethod
    def _needs_whole_inventory(run: TargetRun[S], reason: str) -> None:
        """A reconcile, or a new set of tags in use, needs the whole estate, which a feed run did
        not read: this target waits for the next run, which then exports in full
        (docs/change-feed.md#watermark)."""
        run.result.status = "incomplete"
        run.result.error = f"{reason}; the next run reads the whole inventory and syncs this target from it"
        logger.warning("target needs a full export", extra={"target": run.name, "reason": reason})

    def _read_tags_in_use(self, run: TargetRun[S], *, reconcile: bool) -> TagsInUseAnswer | None:
        """With TAGS_IN_USE_ONLY, the tags some DAG on the target names (docs/dag-awareness.md#tags-in-use).

        A set other than the one the target was synced with cannot be applied from a delta: a
        feed run that did not read the whole estate then leaves the target to the next run.
        """
        if self._tags_in_use is None:
            return None
        answer = run.tags_in_use = self._tags_in_use.for_target(
            run.name, run.device, reconcile=reconcile, now=self._store.now()
        )
        self._warn(run, answer.warning)
        return answer

    def _record_tags_in_use(self, run: TargetRun[S]) -> None:
        """A new set of tags in use is the target's once a real sync of the whole estate applied it."""
        answer = run.tags_in_use
        if self._tags_in_use is None or answer is None or not answer.changed:
            return
        if run.result.status == "ok" and not run.dry_run:
            self._warn(run, self._tags_in_use.record(run.name, answer))

    def _record_history(self, run: TargetRun[S], snapshot: S) -> None:
        """Freshness for the result, and the outcome for a run whose commit did not carry it
        (docs/snapshot.md#target-history). A dry run records nothing and is not a sync."""
        now = self._store.now()
        synced_now = run.result.status == "ok" and not run.dry_run
        run.result.last_sync_age_seconds = 0.0 if synced_now else snapshot.history.seconds_since_ok(now)
        if run.dry_run or run.committed:
            return
        try:
            self._store.record_outcome(snapshot, run.result.status)
        except SnapshotError as exc:
            # Only the history is lost: the next commit or outcome record writes it again.
            logger.warning("target history not recorded", extra={"target": run.name, "error": str(exc)})

    @staticmethod
    def _warn(run: TargetRun[S], warning: str | None) -> None:
        if warning is not None:
            run.result.warnings.append(warning)
            logger.warning(warning, extra={"target": run.name})
