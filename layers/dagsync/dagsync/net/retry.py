"""The one retry mechanism: what waits how long, and when retrying stops.

Every client (PCE, PAN-OS, DynamoDB) runs its attempts through `Retrier.call`. An attempt that
should be tried again raises `Retryable`; anything else propagates at once. Retrying stops when
the policy's attempts are used up, when the waits would add up past `max_waited`, or when the
next wait would end past the run's deadline; the caller then gets `RetriesExhausted`, which says
how many attempts were made and how long was waited, so the caller's error can say so too.
Beside it, not through it: the PCE's async job is polled until it finishes (`pce/jobs.py`, a wait
for work in progress, not a retry of a failure), and botocore keeps its own standard retries for
throttled DynamoDB calls under ours. See docs/sync.md#retries.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dagsync.core.clocks import Clock, Sleep


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before each retry, as named data.

    Backoff is exponential with equal jitter: half of each step is fixed and half is random,
    so retries spread out without ever shrinking to nothing. A server's own `Retry-After` is
    honoured between `min_retry_after` and `max_retry_after`. Rate limiting without
    `Retry-After` waits `rate_limited_wait` (a jittered range) when that is set, and may keep
    trying beyond `attempts` when `rate_limited_attempts` is None, for as long as the deadline
    and `max_waited` allow. Rate-limited answers and other failures are counted apart, so a long
    spell of rate limiting does not use up the attempts a server error is allowed.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    min_retry_after: float = 1.0
    max_retry_after: float = 20.0
    rate_limited_wait: tuple[float, float] | None = None
    rate_limited_attempts: int | None = 4
    max_waited: float = 900.0  # no Lambda invocation lives longer, with or without a deadline
    jitter: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based) when nothing else says."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(ceiling * (0.5 + 0.5 * self.jitter()))

    def delay(self, attempt: int, *, retry_after: float | None = None, rate_limited: bool = False) -> float:
        """Seconds to wait before retry number `attempt`, given what the server said."""
        if retry_after is not None:
            return min(max(retry_after, self.min_retry_after), self.max_retry_after)
        if rate_limited and self.rate_limited_wait is not None:
            low, high = self.rate_limited_wait
            return float(low + (high - low) * self.jitter())
        return self.backoff(attempt)

    def allows(self, attempt: int, *, rate_limited: bool) -> bool:
        """Whether failure number `attempt` (1-based, of its kind) may be followed by another try."""
        if rate_limited:
            limit = self.rate_limited_attempts
            return limit is None or attempt < limit
        return attempt < self.attempts


class Retryable(Exception):
    """Raised by an attempt that may succeed if tried again; `error` is what it failed with."""

    def __init__(
        self, error: Exception, *, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class RetriesExhausted(Exception):
    """Retrying stopped; `error` is the last attempt's failure and `summary` says why it stopped."""

    def __init__(self, error: Exception, *, attempts: int, waited: float, deadline_reached: bool) -> None:
        self.error = error
        self.attempts = attempts
        self.waited = waited
        self.deadline_reached = deadline_reached
        super().__init__(f"{error} ({self.summary})")

    @property
    def summary(self) -> str:
        plural = "s" if self.attempts != 1 else ""
        waited = f", having waited {self.waited:.1f} s" if self.waited else ""
        if self.deadline_reached:
            return f"gave up after {self.attempts} attempt{plural}{waited}: the run's time is nearly out"
        return f"gave up after {self.attempts} attempt{plural}{waited}"


OnRetry = Callable[[Retryable, int, float], None]


@dataclass
class Retrier:
    """Runs attempts under one policy, one clock and one deadline (a value of `clock`)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    deadline: float | None = None

    def call[T](self, attempt: Callable[[], T], *, on_retry: OnRetry | None = None) -> T:
        """`attempt()` until it returns, raises something other than Retryable, or retrying stops."""
        made = 0
        failures = {False: 0, True: 0}  # counted apart: rate limited or not
        waited = 0.0
        while True:
            made += 1
            try:
                return attempt()
            except Retryable as retry:
                failures[retry.rate_limited] += 1
                count = failures[retry.rate_limited]
                delay = self.policy.delay(
                    count, retry_after=retry.retry_after, rate_limited=retry.rate_limited
                )
                late = self.deadline is not None and self.clock() + delay > self.deadline
                if (
                    late
                    or not self.policy.allows(count, rate_limited=retry.rate_limited)
                    or (waited + delay > self.policy.max_waited)
                ):
                    raise RetriesExhausted(
                        retry.error, attempts=made, waited=waited, deadline_reached=late
                    ) from retry.error
                if on_retry is not None:
                    on_retry(retry, made, delay)
                self.sleep(delay)
                waited += delay

    def remaining(self) -> float | None:
        """Seconds until the deadline (never negative), or None without one."""
        return None if self.deadline is None else max(self.deadline - self.clock(), 0.0)
