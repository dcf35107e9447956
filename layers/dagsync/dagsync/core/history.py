"""What a target's snapshot remembers of its recent runs: removals, freshness and unfinished runs.

Pure. The record rides in the target's manifest, so reading it costs nothing beyond the snapshot
read, and it is written with the commits a run makes anyway. A run that commits nothing writes it
only when it says something new (see `TargetHistory.worth_recording`), so an unchanged estate
still costs no write. See docs/snapshot.md#target-history.

- `removals`: the pairs each committing run unregistered in the last 24 hours, with the pairs the
  target held before that run, for the rolling removal guard (docs/sync.md#removal-guard).
- `last_ok_at`: wall-clock epoch seconds up to which the target is known to have ended `ok`. A
  quiet `ok` run writes nothing, so while `last_status` is `ok` the target is fresh now; the first
  run that is not `ok` stamps the time it ran, which is at most one schedule period after the
  last `ok` run. LastSyncAgeSeconds so errs by at most one period on the young side, never old.
- `unfinished_runs`: consecutive runs that ended `incomplete` or `failed` (any other status
  ends the streak), for starvation ordering and the alarm on a target that never finishes.
"""

from dataclasses import dataclass, replace

REMOVAL_WINDOW_SECONDS = 24 * 3600.0
UNFINISHED = frozenset({"incomplete", "failed"})
# A record is never written for a conflict: the run that holds the target records its own.
NOT_RECORDED = frozenset({"conflict"})
# Keeps the record small even on a fast schedule; older entries merge, never drop (see _bounded).
MAX_REMOVALS = 1_500


@dataclass(frozen=True, slots=True)
class Removal:
    """One committing run's removals: `pairs` unregistered at `at`, out of `held` held before."""

    at: float
    pairs: int
    held: int


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended for a target, as the engine passes it to a commit."""

    status: str
    removed: int = 0  # pairs this run unregistered (the device confirmed)
    held: int = 0  # pairs the target held before this run (the `previous` of its plan)


@dataclass(frozen=True, slots=True)
class TargetHistory:
    removals: tuple[Removal, ...] = ()
    last_ok_at: float | None = None
    last_status: str | None = None
    unfinished_runs: int = 0

    def removed_within(self, now: float) -> int:
        """Pairs removed by the runs of the last 24 hours, this one not included."""
        return sum(removal.pairs for removal in self._window(now))

    def largest_held_within(self, now: float, held_now: int) -> int:
        """The most pairs the target held in the last 24 hours, `held_now` included.

        Between removals the count only grows, so its peaks are the counts held just before
        each removal, and the count held now.
        """
        return max([held_now, *(removal.held for removal in self._window(now))])

    def seconds_since_ok(self, now: float) -> float | None:
        """For LastSyncAgeSeconds: 0 while the last recorded status is `ok`; None if never recorded."""
        if self.last_status == "ok":
            return 0.0
        return None if self.last_ok_at is None else max(0.0, now - self.last_ok_at)

    def worth_recording(self, status: str) -> bool:
        """Whether a run that commits nothing should write its outcome: any status but `ok`
        (each one moves `unfinished_runs` or `last_status`), and an `ok` that ends a streak."""
        if status in NOT_RECORDED:
            return False
        return status != "ok" or self.last_status != "ok"

    def after(self, outcome: RunOutcome, now: float) -> "TargetHistory":
        """The record once `outcome` is added at `now`: removals pruned to the window."""
        removals = self._window(now)
        if outcome.removed > 0:
            removals = (*removals, Removal(now, outcome.removed, outcome.held))
        ok = outcome.status == "ok"
        streak_broken = self.last_status in (None, "ok")
        return replace(
            self,
            removals=_bounded(removals),
            last_ok_at=now if ok or streak_broken else self.last_ok_at,
            last_status=outcome.status,
            unfinished_runs=self.unfinished_runs + 1 if outcome.status in UNFINISHED else 0,
        )

    def _window(self, now: float) -> tuple[Removal, ...]:
        start = now - REMOVAL_WINDOW_SECONDS
        return tuple(removal for removal in self.removals if removal.at > start)


def _bounded(removals: tuple[Removal, ...]) -> tuple[Removal, ...]:
    """At most MAX_REMOVALS entries: the two oldest merge into one stamped with the later time,
    which keeps their pairs in the window a little longer (the guard errs towards blocking)."""
    while len(removals) > MAX_REMOVALS:
        first, second, *rest = removals
        merged = Removal(second.at, first.pairs + second.pairs, max(first.held, second.held))
        removals = (merged, *rest)
    return removals
