"""One target's sync (docs/sync.md): the only place that decides order and safety on a device.

Read the snapshot (or, when drift is suspected, the device), plan, guard, take the lease, record
the write-ahead, push registrations before unregistrations in batches while the deadline allows,
commit what the device confirmed, and arm the canary.
"""

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from aws_lambda_powertools import Logger

from dagsync.core.canary import CANARY_IP, Canary, excluding_canary
from dagsync.core.dag_filter import cut_to_tags_in_use, dag_changes
from dagsync.core.diff import (
    GUARD_MINIMUM_PREVIOUS,
    Plan,
    intersect,
    plan_changes,
    removal_blocked,
    restricted,
    subtract,
    union,
    with_prefix,
)
from dagsync.core.errors import DagSyncError, PanosError, SnapshotConflict, SnapshotError
from dagsync.core.history import RunOutcome, TargetHistory
from dagsync.core.invocation import SyncRequest
from dagsync.core.models import TagMap, count_pairs
from dagsync.core.result import DagChange, TargetResult
from dagsync.core.settings import Settings, Target
from dagsync.edges.notify import BlockedNotifier, GuardRule
from dagsync.edges.observability import SERVICE
from dagsync.store.snapshot import Lease, LeaseHeld, Snapshot
from dagsync.sync.deadline import Deadline
from dagsync.sync.tags_in_use import Definition, TagsInUse, TagsInUseAnswer

logger = Logger(service=SERVICE, child=True)


class RegisteredIp(Protocol):
    @property
    def tags(self) -> frozenset[str]: ...


class UidOutcome(Protocol):
    @property
    def failed(self) -> Mapping[str, str]: ...

    @property
    def rejected(self) -> frozenset[str]: ...


class Device(Protocol):
    api_calls: int

    def register(self, entries: TagMap, *, persistent: bool = True) -> UidOutcome: ...

    def unregister(self, entries: TagMap) -> UidOutcome: ...

    def batches(self, entries: TagMap) -> Iterator[TagMap]: ...

    def registered_ips(
        self, *, ip: str | None = None, tag: str | None = None
    ) -> Mapping[str, RegisteredIp]: ...

    def address_groups(self) -> Sequence[Definition]: ...


class Store(Protocol):
    def load(
        self, target: str, *, ips: Iterable[str] | None = None, expect: TagMap | None = None
    ) -> Snapshot: ...

    def acquire(self, snapshot: Snapshot, run_id: str, lease_seconds: float) -> Lease: ...

    def checkpoint(self, lease: Lease, confirmed: TagMap, uncertain: TagMap) -> Lease: ...

    def commit(
        self, lease: Lease, confirmed: TagMap, uncertain: TagMap, *, outcome: RunOutcome | None = None
    ) -> int: ...

    def release(self, lease: Lease) -> None: ...

    def record_outcome(self, snapshot: Snapshot, status: str) -> bool: ...

    def now(self) -> float: ...

    def histories(self, targets: Sequence[str]) -> Mapping[str, TargetHistory]: ...


@dataclass
class _TargetRun:
    """What one target's sync works with, and the result it fills in."""

    target: Target
    device: Device
    desired: TagMap
    request: SyncRequest
    dry_run: bool
    result: TargetResult
    deadline: Deadline
    hostnames: Mapping[str, str] = field(default_factory=dict)  # of the desired IPs, where known
    snapshot: Snapshot | None = None  # once loaded
    committed: bool = False  # whether this run wrote a generation (and with it the history)
    # On a reconcile: what it sends that a snapshot-based sync would not (the drift it repairs).
    repair: Plan | None = None
    # A targeted update (docs/change-feed.md#targeted-update): `desired` holds only these IPs'
    # pairs, and only they are planned; an empty set means nothing changed.
    only_ips: frozenset[str] | None = None
    # With TAGS_IN_USE_ONLY: the set this run planned with, recorded once the target ends `ok`.
    tags_in_use: TagsInUseAnswer | None = None


@dataclass(frozen=True)
class ProgressPolicy:
    """How often a long push commits what the device confirmed (docs/sync.md#crash-rules).

    A killed run repeats at most the batches sent since the last progress commit; each commit
    rewrites the shards the push touched, so committing after every batch would cost more
    DynamoDB writes than the pairs are worth. Measured (README "Sizing"): a checkpoint of a first
    sync takes about 0.3 s at 10,000 IPs and 5 s at 100,000, so one a minute costs under a tenth of
    the push at any size, and a kill repeats at most a minute of device time.
    """

    every_batches: int = 100
    every_seconds: float = 60.0


@dataclass
class _Push:
    """What one direction of a push achieved."""

    done: dict[str, frozenset[str]] = field(default_factory=dict)
    failed: dict[str, frozenset[str]] = field(default_factory=dict)
    # Refused for good (an address the device cannot take): neither on the device nor retried.
    rejected: dict[str, frozenset[str]] = field(default_factory=dict)
    error: PanosError | None = None


@dataclass
class _Progress:
    """A push under way: what was there before, what the plan sends, and what came of it so far."""

    confirmed: TagMap
    uncertain: TagMap
    plan: Plan
    registered: _Push = field(default_factory=_Push)
    unregistered: _Push = field(default_factory=_Push)
    stopped_early: bool = False

    @property
    def error(self) -> PanosError | None:
        return self.registered.error or self.unregistered.error

    def settled(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        """The snapshot once the push ends here: confirmed and uncertain pairs."""
        rejected = union(self.registered.rejected, self.unregistered.rejected)
        settled = union(union(self.registered.done, self.unregistered.done), rejected)
        unsettled = union(self.registered.failed, self.unregistered.failed)
        gone = union(self.unregistered.done, rejected)
        confirmed = union(subtract(subtract(self.confirmed, gone), unsettled), self.registered.done)
        return confirmed, union(subtract(self.uncertain, settled), unsettled)

    def unsent(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        """Planned pairs not yet sent: registrations, then unregistrations."""
        sent_register = union(union(self.registered.done, self.registered.failed), self.registered.rejected)
        sent_unregister = union(
            union(self.unregistered.done, self.unregistered.failed), self.unregistered.rejected
        )
        return subtract(self.plan.register, sent_register), subtract(self.plan.unregister, sent_unregister)

    def checkpoint(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        """The snapshot to record while pushing: what is settled, with every unsent pair uncertain
        (still write-ahead), so a kill after this point repeats only what follows it."""
        confirmed, uncertain = self.settled()
        register, unregister = self.unsent()
        return subtract(confirmed, unregister), union(uncertain, union(register, unregister))


class TargetSync:
    """Syncs one target at a time; safe to call from several worker threads at once."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        device_for: Callable[[Target], Device],
        run_id: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        progress: ProgressPolicy | None = None,
        tags_in_use: TagsInUse | None = None,
        notifier: BlockedNotifier | None = None,
    ) -> None:
        """`tags_in_use` is given when TAGS_IN_USE_ONLY is on; `notifier` tells the alarm topic of
        blocked targets (docs/dag-awareness.md)."""
        self._settings = settings
        self._store = store
        self._device_for = device_for
        self._run_id = run_id
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._progress = progress or ProgressPolicy()
        self._canary = Canary(settings.tag_prefix, settings.deployment_id)
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
    ) -> TargetResult:
        """One target, isolated: whatever goes wrong here is this target's status, not the run's.

        `hostnames` (ip -> workload hostnames) name the members of a dry run's membership plan.
        `only_ips`: `desired` is the pairs of these IPs alone (a targeted update); empty, the
        run found nothing changed and the target only checks its canary.
        """
        result = TargetResult(target=target.name)
        device: Device | None = None
        run: _TargetRun | None = None
        try:
            device = self._device_for(target)
            run = _TargetRun(
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

    def _record_history(self, run: _TargetRun, snapshot: Snapshot) -> None:
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
            logger.warning(
                "target history not recorded", extra={"target": run.target.name, "error": str(exc)}
            )

    def _sync(self, run: _TargetRun) -> None:
        # A targeted update reads only the shards of its IPs (docs/snapshot.md#partial-reads). A
        # whole-estate run names the pairs it will plan, so shards already holding exactly them
        # are neither read nor decoded (docs/snapshot.md#expected-content); with TAGS_IN_USE_ONLY
        # the pairs are cut only after the load, so there is nothing to name yet.
        expect = run.desired if run.only_ips is None and self._tags_in_use is None else None
        snapshot = run.snapshot = self._store.load(run.target.name, ips=run.only_ips, expect=expect)
        drift_reason = self._drift_reason(run.request, snapshot, run.device)
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
            self._describe_dry_run(run, plan, confirmed, answer, blocked=blocked)
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
            self._push_and_commit(
                run, lease, plan, (confirmed, uncertain), previous_pairs, needs_canary=needs_canary
            )
        finally:
            if not run.committed:
                self._store.release(lease)

    def _canary_armed(self, device: Device) -> bool:
        """One filtered `show` of the canary address (docs/sync.md#canary)."""
        on_canary_ip = {ip: entry.tags for ip, entry in device.registered_ips(ip=CANARY_IP).items()}
        return self._canary.check(on_canary_ip).armed

    def _check_canary(self, run: _TargetRun) -> None:
        """Nothing changed (docs/change-feed.md#decision): one canary check, no snapshot read, and
        with TAGS_IN_USE_ONLY the DAG definitions when their refresh is due."""
        if not self._canary_armed(run.device):
            self._needs_whole_inventory(run, "canary missing: the device lost registrations")
            return
        answer = self._read_tags_in_use(run, reconcile=False)
        if answer is not None and answer.changed:
            self._needs_whole_inventory(run, answer.change())

    @staticmethod
    def _needs_whole_inventory(run: _TargetRun, reason: str) -> None:
        """A reconcile, or a new set of tags in use, needs the whole estate, which a feed run did
        not read: this target waits for the next run, which then exports in full
        (docs/change-feed.md#watermark)."""
        run.result.status = "incomplete"
        run.result.error = f"{reason}; the next run reads the whole inventory and syncs this target from it"
        logger.warning("target needs a full export", extra={"target": run.target.name, "reason": reason})

    def _read_tags_in_use(self, run: _TargetRun, *, reconcile: bool) -> TagsInUseAnswer | None:
        """With TAGS_IN_USE_ONLY, the tags some DAG on the target names (docs/dag-awareness.md#tags-in-use).

        A set other than the one the target was synced with cannot be applied from a delta: a
        feed run that did not read the whole estate then leaves the target to the next run.
        """
        if self._tags_in_use is None:
            return None
        answer = run.tags_in_use = self._tags_in_use.for_target(
            run.target.name, run.device, reconcile=reconcile, now=self._store.now()
        )
        self._warn(run, answer.warning)
        return answer

    def _record_tags_in_use(self, run: _TargetRun) -> None:
        """A new set of tags in use is the target's once a real sync of the whole estate applied it."""
        answer = run.tags_in_use
        if self._tags_in_use is None or answer is None or not answer.changed:
            return
        if run.result.status == "ok" and not run.dry_run:
            self._warn(run, self._tags_in_use.record(run.target.name, answer))

    @staticmethod
    def _warn(run: _TargetRun, warning: str | None) -> None:
        if warning is not None:
            run.result.warnings.append(warning)
            logger.warning(warning, extra={"target": run.target.name})

    def _plan(
        self, run: _TargetRun, snapshot: Snapshot, drift_reason: str | None
    ) -> tuple[Plan, TagMap, TagMap]:
        """The plan, and the confirmed and uncertain pairs it was made against."""
        # A snapshot written under another TAG_PREFIX holds tags we no longer own: leave them be.
        confirmed: TagMap = with_prefix(snapshot.confirmed, self._settings.tag_prefix)
        uncertain: TagMap = with_prefix(snapshot.uncertain, self._settings.tag_prefix)
        if run.only_ips is None:
            plan = plan_changes(run.desired, confirmed, uncertain)
        else:
            # A targeted update plans only its IPs, against the rest of the snapshot kept.
            plan = plan_changes(
                run.desired, restricted(confirmed, run.only_ips), restricted(uncertain, run.only_ips)
            )
        if drift_reason is not None:
            # The device replaces the snapshot as `previous`, for the plan and for the removal guard:
            # after a reboot or a clear it holds nothing of ours, so there is nothing to unregister.
            on_device = self._our_pairs_on(run.device)
            drift = count_pairs(subtract(on_device, confirmed)) + count_pairs(subtract(confirmed, on_device))
            snapshot_plan, plan = plan, plan_changes(run.desired, on_device, {})
            run.repair = Plan(
                register=subtract(plan.register, snapshot_plan.register),
                unregister=subtract(plan.unregister, snapshot_plan.unregister),
            )
            logger.warning(
                "reconciling against the device",
                extra={
                    "target": run.target.name,
                    "reason": drift_reason,
                    "drifted_pairs": drift,
                    "pairs_to_repair": run.repair.register_count + run.repair.unregister_count,
                },
            )
            run.result.reconciled = True
            confirmed, uncertain = on_device, {}
        return plan, confirmed, uncertain

    def _describe_dry_run(
        self, run: _TargetRun, plan: Plan, before: TagMap, answer: TagsInUseAnswer | None, *, blocked: bool
    ) -> None:
        """What the run would send, and what each DAG would gain and lose, sending nothing."""
        run.result.plan = plan.as_lists()
        if not blocked:
            run.result.registered, run.result.unregistered = plan.register_count, plan.unregister_count
            if run.repair is not None:
                run.result.drift_repaired = run.repair.register_count + run.repair.unregister_count
        definitions: Sequence[Definition] | None = None if answer is None else answer.definitions
        if definitions is None:
            definitions = self._definitions(run)
        # A device that defines no DAG has no membership to report, and the plan shows none.
        if definitions:
            after = union(subtract(before, plan.unregister), plan.register)
            changes = dag_changes(definitions, before, after, run.hostnames, prefix=self._settings.tag_prefix)
            run.result.dag_changes = [
                DagChange(
                    dag=change.dag,
                    filter=change.filter,
                    joins=list(change.joins),
                    leaves=list(change.leaves),
                    evaluable=change.problem is None,
                    hostnames=dict(change.hostnames),
                )
                for change in changes
            ]

    @staticmethod
    def _definitions(run: _TargetRun) -> Sequence[Definition] | None:
        """The device's DAG definitions for a membership plan, or None when they cannot be read."""
        try:
            return run.device.address_groups()
        except PanosError as exc:
            logger.info(
                "DAG definitions not read; the plan has no membership changes",
                extra={"target": run.target.name, "error": str(exc)},
            )
            return None

    def _blocked(self, run: _TargetRun, plan: Plan, previous_pairs: int, history: TargetHistory) -> bool:
        """The removal guard, one run and rolling 24 hours (docs/sync.md#removal-guard); `force`
        lets a run through it."""
        if run.request.force:
            return False
        verdict = self._guard_verdict(plan, previous_pairs, history)
        if verdict is None:
            return False
        rule, tally = verdict
        run.result.status = "blocked"
        run.result.drift_repaired = 0
        run.result.error = (
            f"removal guard ({rule} rule): {tally}, more than MAX_REMOVAL_RATIO="
            f"{self._settings.max_removal_ratio}; nothing was sent. "
            'Check the PCE, then run with {"force": true} if this is intended'
        )
        logger.error(
            "removal guard blocked the target",
            extra={"target": run.target.name, "rule": rule, "error": run.result.error},
        )
        if self._notifier is not None and not run.dry_run:
            self._notifier.blocked(
                run.target.name,
                rule=rule,
                unregister=plan.unregister,
                previous_pairs=previous_pairs,
                tally=tally,
                deployment=self._settings.deployment_id,
            )
        return True

    def _guard_verdict(
        self, plan: Plan, previous_pairs: int, history: TargetHistory
    ) -> tuple[GuardRule, str] | None:
        """Which guard rule holds, with its tally, or None when the plan may go through."""
        ratio = self._settings.max_removal_ratio
        if removal_blocked(plan, previous_pairs, ratio):
            return "one run", f"{plan.unregister_count} of {previous_pairs} pairs would be unregistered"
        if not plan.unregister_count:
            return None
        now = self._store.now()
        removed = history.removed_within(now) + plan.unregister_count
        largest = history.largest_held_within(now, previous_pairs)
        if largest < GUARD_MINIMUM_PREVIOUS or removed <= ratio * largest:
            return None
        return "24 hours", (
            f"{removed} pairs would be unregistered within 24 hours ({plan.unregister_count} by this run), "
            f"of at most {largest} pairs held in that time"
        )

    def _drift_reason(self, request: SyncRequest, snapshot: Snapshot, device: Device) -> str | None:
        if request.mode == "reconcile":
            return "reconcile requested"
        if snapshot.generation == 0:
            # No snapshot (a first run, a recreated table, a renamed target): the device may still
            # hold pairs of ours that no snapshot records, and only its own table can tell.
            return "no snapshot for this target yet: reading what the device holds under TAG_PREFIX"
        if not self._canary_armed(device):
            return "canary missing: the device lost registrations (reboot, failover or clear)"
        return None

    def _our_pairs_on(self, device: Device) -> dict[str, frozenset[str]]:
        """Our prefix's pairs as the device holds them; tags of other tools are left out.

        A reconcile removes every pair of our prefix that is not desired, so another deployment's
        canary under our prefix stops it: those pairs are that deployment's (docs/sync.md#ownership).
        """
        table = {ip: entry.tags for ip, entry in device.registered_ips().items()}
        shared = self._canary.check(table).shared_prefix
        if shared is not None:
            raise DagSyncError(shared)
        return with_prefix(excluding_canary(table), self._settings.tag_prefix)

    def _push_and_commit(
        self,
        run: _TargetRun,
        lease: Lease,
        plan: Plan,
        previous: tuple[TagMap, TagMap],
        previous_pairs: int,
        *,
        needs_canary: bool,
    ) -> None:
        """Registrations, then unregistrations, committing progress as it goes, then the commit,
        which carries the run's outcome into the target's history."""
        progress = _Progress(*previous, plan)
        if not plan.empty:
            # Write-ahead: every pair about to be sent is first recorded as uncertain, so that a run
            # killed before its commit leaves a snapshot from which the next run resends or takes
            # back each of them, whatever the estate has become by then.
            lease = self._commit_progress(run, lease, progress)
        lease = self._push(run, lease, progress, "register")
        if progress.error is None and not progress.stopped_early:
            lease = self._push(run, lease, progress, "unregister")
        self._report(run, progress)
        outcome = RunOutcome(
            run.result.status, removed=count_pairs(progress.unregistered.done), held=previous_pairs
        )
        started = self._clock()
        self._store.commit(lease, *progress.settled(), outcome=outcome)
        run.committed = True
        run.deadline.record_commit(self._clock() - started)
        # Only after the commit: a canary on the device promises a snapshot that matches it. A push
        # stopped by the deadline keeps that promise too (what it did not send is not recorded).
        if needs_canary and progress.error is None:
            self._register_canary(run)

    def _commit_progress(self, run: _TargetRun, lease: Lease, progress: _Progress) -> Lease:
        started = self._clock()
        lease = self._store.checkpoint(lease, *progress.checkpoint())
        run.deadline.record_commit(self._clock() - started)
        return lease

    def _report(self, run: _TargetRun, progress: _Progress) -> None:
        registered, unregistered = progress.registered, progress.unregistered
        run.result.registered = count_pairs(registered.done)
        run.result.unregistered = count_pairs(unregistered.done)
        if run.repair is not None:
            repaired = (
                intersect(run.repair.register, registered.done),
                intersect(run.repair.unregister, unregistered.done),
            )
            run.result.drift_repaired = sum(count_pairs(pairs) for pairs in repaired)
        for ip in sorted(registered.rejected.keys() | unregistered.rejected.keys()):
            run.result.warnings.append(f"the device refused address {ip} as invalid; it is not tagged")
        unsettled = count_pairs(registered.failed) + count_pairs(unregistered.failed)
        if progress.error is not None:
            run.result.status, run.result.error = "failed", str(progress.error)
        elif unsettled:
            run.result.status = "partial"
            run.result.error = f"{unsettled} pairs were refused by the device; the next run retries them"
        elif progress.stopped_early:
            register, unregister = progress.unsent()
            run.result.status = "incomplete"
            run.result.remaining = count_pairs(register) + count_pairs(unregister)
            run.result.error = (
                f"the run's time ran out with {run.result.remaining} pairs still to send; "
                "what the device confirmed is committed and the next run goes on"
            )
            logger.warning(
                "target incomplete", extra={"target": run.target.name, "remaining": run.result.remaining}
            )

    def _register_canary(self, run: _TargetRun) -> None:
        """Best effort: without a canary the next run reconciles this target again, which is safe."""
        try:
            outcome = run.device.register(self._canary.arming(), persistent=False)
        except PanosError as exc:
            problem = str(exc)
        else:
            if CANARY_IP not in outcome.failed:
                return
            problem = outcome.failed[CANARY_IP]
        logger.warning(
            "drift canary not registered; the next run reconciles this target again",
            extra={"target": run.target.name, "error": problem},
        )

    def _push(
        self, run: _TargetRun, lease: Lease, progress: _Progress, verb: Literal["register", "unregister"]
    ) -> Lease:
        """Send one direction in batches: stop at the first batch the device cannot take, and
        start no batch the deadline leaves no time for."""
        push = progress.registered if verb == "register" else progress.unregistered
        entries = progress.plan.register if verb == "register" else progress.plan.unregister
        send = run.device.register if verb == "register" else run.device.unregister
        name = run.target.name
        batches_since_commit, last_commit = 0, self._clock()
        for batch in run.device.batches(entries):
            if not run.deadline.allows_more_work():
                progress.stopped_early = True
                return lease
            started = self._clock()
            try:
                outcome = send(batch)
            except PanosError as exc:
                push.failed.update(batch)
                push.error = exc
                logger.error(f"{verb} batch failed; stopping this target", extra={"target": name})
                return lease
            run.deadline.record_batch(self._clock() - started)
            self._settle(name, verb, batch, outcome, push)
            batches_since_commit += 1
            if (
                batches_since_commit >= self._progress.every_batches
                or self._clock() - last_commit >= self._progress.every_seconds
            ):
                lease = self._commit_progress(run, lease, progress)
                batches_since_commit, last_commit = 0, self._clock()
        return lease

    @staticmethod
    def _settle(name: str, verb: str, batch: TagMap, outcome: UidOutcome, push: _Push) -> None:
        """Each entry's own result: done (and audited once) or refused (and retried next run)."""
        for ip, tags in batch.items():
            if ip in outcome.rejected:
                push.rejected[ip] = tags
                logger.warning(
                    f"{verb} refused for good; the address is not sent again until it changes",
                    extra={"target": name, "ip": ip, "device_message": outcome.failed.get(ip, "")},
                )
            elif ip in outcome.failed:
                push.failed[ip] = tags
                logger.error(
                    f"{verb} refused",
                    extra={"target": name, "ip": ip, "device_message": outcome.failed[ip]},
                )
            else:
                push.done[ip] = tags
                logger.info("audit", extra={"action": verb, "target": name, "ip": ip, "tags": sorted(tags)})
