"""The run's time budget: when to stop starting work so that the run ends on its own terms.

A run never dies of its own timeout (docs/fan-out.md#deadlines): it stops starting batches once
the remaining time falls under a margin, a tenth of what the invocation started with and never
less than what a batch and a commit take now, then commits what the device confirmed.

"Now" is the mean of the most recent batches and commits of the run, whatever their target.
Their longest would be the wrong measure when targets run in parallel: a batch that waited
behind four others for a shared device or for the interpreter measures all five, and a margin
made of the worst batch plus the worst commit, each seen at the busiest moment, keeps an unused
slice of every run and so adds runs to a first sync. What a single slow batch needs beyond the
mean is what the tenth of the invocation is for.

The remaining time is read from a source each time it is asked (in Lambda, the context's
countdown), so the budget follows the invocation itself rather than a copy of it taken at start.
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from dagsync.core.clocks import Clock, RemainingTime

MARGIN_FRACTION = 0.1
RECENT_SAMPLES = 16  # batches and commits the margin's estimate of "now" is the mean of


def deadline_after(seconds: float | None, clock: Clock = time.monotonic) -> float | None:
    """The `clock` time by which a run allowed `seconds` must have stopped; None means no deadline."""
    return None if seconds is None else clock() + seconds


def countdown(at: float, clock: Clock = time.monotonic) -> RemainingTime:
    """The time left until `at` on `clock`."""
    return lambda: at - clock()


def sooner(*sources: RemainingTime | None) -> RemainingTime | None:
    """The time left until the first of `sources` runs out; None when none is given."""
    given = [source for source in sources if source is not None]
    if not given:
        return None
    if len(given) == 1:
        return given[0]
    return lambda: min(source() for source in given)


@dataclass
class Deadline:
    """The run's remaining time (None: no deadline, as for the CLI by default) and what work has cost.

    Shared by every target's worker thread: the costs it learns are the run's, not one target's.
    """

    remaining_time: RemainingTime | None
    started_with: float = field(init=False)
    _batches: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_SAMPLES), init=False)
    _commits: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_SAMPLES), init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.started_with = 0.0 if self.remaining_time is None else max(self.remaining_time(), 0.0)

    def remaining(self) -> float | None:
        return None if self.remaining_time is None else self.remaining_time()

    @property
    def margin(self) -> float:
        with self._lock:
            in_flight = _mean(self._batches) + _mean(self._commits)
        return max(self.started_with * MARGIN_FRACTION, in_flight)

    def allows_more_work(self) -> bool:
        """Whether another batch may start and still leave time for its commit."""
        remaining = self.remaining()
        return remaining is None or remaining > self.margin

    def record_batch(self, seconds: float) -> None:
        with self._lock:
            self._batches.append(seconds)

    def record_commit(self, seconds: float) -> None:
        with self._lock:
            self._commits.append(seconds)


def _mean(samples: deque[float]) -> float:
    return sum(samples) / len(samples) if samples else 0.0
