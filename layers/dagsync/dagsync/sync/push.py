"""Pushing a plan to one target and settling what the device confirmed (docs/sync.md#crash-rules).

Registrations go before unregistrations, in batches, while the deadline allows; each entry's own
result decides whether its pair is done, refused for good, or left uncertain for the next run.
Progress is committed as the push goes, so a killed run repeats at most the batches since the
last checkpoint; the commit at the end carries the run's outcome into the target's history.
"""

import time
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from aws_lambda_powertools import Logger

from dagsync import SERVICE
from dagsync.core.clocks import Clock
from dagsync.core.device import UidOutcome
from dagsync.core.diff import Plan, intersect, subtract, union
from dagsync.core.errors import PanosError
from dagsync.core.history import RunOutcome
from dagsync.core.models import TagMap, count_pairs
from dagsync.sync.ports import Commits, SnapshotView
from dagsync.sync.target_run import TargetRun

logger = Logger(service=SERVICE, child=True)

PushVerb = Literal["register", "unregister"]


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


class Recorded(NamedTuple):
    """A snapshot's content as the store records it: confirmed pairs, and uncertain ones."""

    confirmed: TagMap
    uncertain: TagMap


class Unsent(NamedTuple):
    """Planned pairs not yet sent, by direction."""

    register: dict[str, frozenset[str]]
    unregister: dict[str, frozenset[str]]


@dataclass
class Direction:
    """What one direction of a push achieved."""

    done: dict[str, frozenset[str]] = field(default_factory=dict)
    failed: dict[str, frozenset[str]] = field(default_factory=dict)
    # Refused for good (an address the device cannot take): neither confirmed nor uncertain, so
    # only a recomputed desired state (a full export) plans it again (docs/sync.md#per-entry-results).
    rejected: dict[str, frozenset[str]] = field(default_factory=dict)
    # Refused for want of room in the device's table: failed (retried), and counted apart.
    table_full: set[str] = field(default_factory=set)
    error: PanosError | None = None

    def sent(self) -> dict[str, frozenset[str]]:
        return union(union(self.done, self.failed), self.rejected)

    def settle(self, target: str, verb: PushVerb, batch: TagMap, outcome: UidOutcome) -> None:
        """Each entry's own result: done (and audited once), refused for good (a warning), or
        refused (uncertain, so the next run sends it again)."""
        full = [ip for ip in batch if ip in outcome.table_full]
        if full:
            self.table_full.update(full)
            logger.warning(
                f"{verb} refused: the device's registered-IP table is full",
                extra={"target": target, "entries": len(full), "device_message": outcome.failed[full[0]]},
            )
        for ip, tags in batch.items():
            if ip in outcome.table_full:
                self.failed[ip] = tags
            elif ip in outcome.rejected:
                self.rejected[ip] = tags
                logger.warning(
                    f"{verb} refused for good: the device cannot take this address; it is not tagged",
                    extra={"target": target, "ip": ip, "device_message": outcome.failed.get(ip, "")},
                )
            elif ip in outcome.failed:
                self.failed[ip] = tags
                logger.error(
                    f"{verb} refused",
                    extra={"target": target, "ip": ip, "device_message": outcome.failed[ip]},
                )
            else:
                self.done[ip] = tags
                logger.info("audit", extra={"action": verb, "target": target, "ip": ip, "tags": sorted(tags)})


@dataclass
class Progress:
    """A push under way: what was recorded before, what the plan sends, and what came of it so far."""

    before: Recorded
    plan: Plan
    registered: Direction = field(default_factory=Direction)
    unregistered: Direction = field(default_factory=Direction)
    stopped_early: bool = False

    @property
    def error(self) -> PanosError | None:
        return self.registered.error or self.unregistered.error

    def settled(self) -> Recorded:
        """The snapshot once the push ends here."""
        rejected = union(self.registered.rejected, self.unregistered.rejected)
        settled = union(union(self.registered.done, self.unregistered.done), rejected)
        unsettled = union(self.registered.failed, self.unregistered.failed)
        gone = union(self.unregistered.done, rejected)
        confirmed = union(subtract(subtract(self.before.confirmed, gone), unsettled), self.registered.done)
        return Recorded(confirmed, union(subtract(self.before.uncertain, settled), unsettled))

    def unsent(self) -> Unsent:
        return Unsent(
            subtract(self.plan.register, self.registered.sent()),
            subtract(self.plan.unregister, self.unregistered.sent()),
        )

    def checkpoint(self) -> Recorded:
        """The snapshot to record while pushing: what is settled, with every unsent pair uncertain
        (still write-ahead), so a kill after this point repeats only what follows it."""
        confirmed, uncertain = self.settled()
        register, unregister = self.unsent()
        return Recorded(subtract(confirmed, unregister), union(uncertain, union(register, unregister)))


class Pusher[L]:
    """Sends one target's plan and commits what the device confirmed; `L` is the store's lease."""

    def __init__(self, store: Commits[L], policy: ProgressPolicy, clock: Clock = time.monotonic) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock

    def push_and_commit[S: SnapshotView](
        self, run: TargetRun[S], lease: L, plan: Plan, before: Recorded, previous_pairs: int
    ) -> Progress:
        """Write-ahead, registrations, then unregistrations, committing progress as it goes, then
        the commit, which carries the run's outcome into the target's history."""
        progress = Progress(before, plan)
        if not plan.empty:
            # Write-ahead: every pair about to be sent is first recorded as uncertain, so that a run
            # killed before its commit leaves a snapshot from which the next run resends or takes
            # back each of them, whatever the estate has become by then.
            lease = self._checkpoint(run, lease, progress)
        lease = self._push(run, lease, progress, "register")
        if progress.error is None and not progress.stopped_early:
            lease = self._push(run, lease, progress, "unregister")
        report(run, progress)
        outcome = RunOutcome(
            run.result.status, removed=count_pairs(progress.unregistered.done), held=previous_pairs
        )
        started = self._clock()
        self._store.commit(lease, *progress.settled(), outcome=outcome)
        run.committed = True
        run.deadline.record_commit(self._clock() - started)
        return progress

    def _checkpoint[S: SnapshotView](self, run: TargetRun[S], lease: L, progress: Progress) -> L:
        started = self._clock()
        lease = self._store.checkpoint(lease, *progress.checkpoint())
        run.deadline.record_commit(self._clock() - started)
        return lease

    def _push[S: SnapshotView](self, run: TargetRun[S], lease: L, progress: Progress, verb: PushVerb) -> L:
        """Send one direction in batches: stop at the first batch the device cannot take, and
        start no batch the deadline leaves no time for."""
        direction = progress.registered if verb == "register" else progress.unregistered
        entries = progress.plan.register if verb == "register" else progress.plan.unregister
        send = run.device.register if verb == "register" else run.device.unregister
        batches_since_commit, last_commit = 0, self._clock()
        for batch in run.device.batches(entries):
            if not run.deadline.allows_more_work():
                progress.stopped_early = True
                return lease
            started = self._clock()
            try:
                outcome = send(batch)
            except PanosError as exc:
                direction.failed.update(batch)
                direction.error = exc
                logger.error(f"{verb} batch failed; stopping this target", extra={"target": run.name})
                return lease
            run.deadline.record_batch(self._clock() - started)
            direction.settle(run.name, verb, batch, outcome)
            batches_since_commit += 1
            if (
                batches_since_commit >= self._policy.every_batches
                or self._clock() - last_commit >= self._policy.every_seconds
            ):
                lease = self._checkpoint(run, lease, progress)
                batches_since_commit, last_commit = 0, self._clock()
        return lease


def report[S: SnapshotView](run: TargetRun[S], progress: Progress) -> None:
    """The target's counts, warnings and status from what the push achieved."""
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
    full = len(registered.table_full | unregistered.table_full)
    if full:
        run.result.table_full = full
        run.result.warnings.append(
            f"the device's registered-IP table is full: {full} entries refused; nothing registered was "
            "removed to make room (README: when the device's table is full)"
        )
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
        logger.warning("target incomplete", extra={"target": run.name, "remaining": run.result.remaining})
