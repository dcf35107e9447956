"""Retrier and RetryPolicy: what is retried, how long each wait is, and when retrying stops."""

import pytest

from dagsync.net.retry import Retrier, RetriesExhausted, Retryable, RetryPolicy
from tests.support.clock import FakeClock


class Flaky:
    """An attempt that fails with the given Retryables in turn, then returns "done"."""

    def __init__(self, *failures: Retryable) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def retrier(clock: FakeClock, policy: RetryPolicy, deadline: float | None = None) -> Retrier:
    return Retrier(policy, sleep=clock.sleep, clock=clock.monotonic, deadline=deadline)


def failure(*, retry_after: float | None = None, rate_limited: bool = False) -> Retryable:
    return Retryable(RuntimeError("boom"), retry_after=retry_after, rate_limited=rate_limited)


def test_backoff_is_exponential_with_equal_jitter() -> None:
    lowest = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=lambda: 0.0)
    highest = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=lambda: 1.0)

    assert [lowest.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [highest.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_retry_after_is_honoured_within_its_bounds() -> None:
    policy = RetryPolicy(min_retry_after=1.0, max_retry_after=60.0)

    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=0.0) == 1.0
    assert policy.delay(1, retry_after=600.0) == 60.0


def test_rate_limited_wait_without_retry_after_is_the_jittered_range() -> None:
    policy = RetryPolicy(rate_limited_wait=(10.0, 15.0), jitter=lambda: 0.5)

    assert policy.delay(1, rate_limited=True) == 12.5
    assert policy.delay(1) == policy.backoff(1)


def test_a_failure_is_retried_until_the_attempt_succeeds() -> None:
    clock = FakeClock(0.0)
    attempt = Flaky(failure(), failure())

    result = retrier(clock, RetryPolicy(base_delay=1.0, jitter=lambda: 1.0)).call(attempt)

    assert (result, attempt.calls, clock.sleeps) == ("done", 3, [1.0, 2.0])


def test_retrying_stops_when_the_attempts_are_used_up() -> None:
    clock = FakeClock(0.0)
    attempt = Flaky(*[failure() for _ in range(5)])

    with pytest.raises(RetriesExhausted) as caught:
        retrier(clock, RetryPolicy(attempts=3, base_delay=1.0, jitter=lambda: 1.0)).call(attempt)

    assert attempt.calls == 3
    assert caught.value.summary == "gave up after 3 attempts, having waited 3.0 s"
    assert str(caught.value.error) == "boom"


def test_an_error_that_is_not_retryable_propagates_at_once() -> None:
    def attempt() -> None:
        raise ValueError("not retryable")

    with pytest.raises(ValueError, match="not retryable"):
        retrier(FakeClock(0.0), RetryPolicy()).call(attempt)


def test_rate_limiting_does_not_use_up_the_attempts_of_other_failures() -> None:
    clock = FakeClock(0.0)
    policy = RetryPolicy(attempts=2, rate_limited_attempts=None, rate_limited_wait=(10.0, 10.0))
    attempt = Flaky(*[failure(rate_limited=True) for _ in range(6)], failure())

    assert retrier(clock, policy).call(attempt) == "done"
    assert attempt.calls == 8


def test_unlimited_rate_limited_retries_stop_at_the_deadline_and_say_how_long_they_waited() -> None:
    clock = FakeClock(0.0)
    policy = RetryPolicy(rate_limited_attempts=None, rate_limited_wait=(10.0, 10.0))
    attempt = Flaky(*[failure(rate_limited=True) for _ in range(100)])

    with pytest.raises(RetriesExhausted) as caught:
        retrier(clock, policy, deadline=45.0).call(attempt)

    assert clock.now == 40.0
    assert caught.value.deadline_reached
    assert caught.value.summary == (
        "gave up after 5 attempts, having waited 40.0 s: the run's time is nearly out"
    )


def test_without_a_deadline_the_waits_are_bounded_by_max_waited() -> None:
    clock = FakeClock(0.0)
    policy = RetryPolicy(rate_limited_attempts=None, rate_limited_wait=(10.0, 10.0), max_waited=100.0)
    attempt = Flaky(*[failure(rate_limited=True) for _ in range(100)])

    with pytest.raises(RetriesExhausted):
        retrier(clock, policy).call(attempt)

    assert clock.now == 100.0
    assert attempt.calls == 11


def test_on_retry_hears_of_each_retry_before_its_wait() -> None:
    heard: list[tuple[int, float]] = []
    attempt = Flaky(failure(retry_after=3.0), failure(retry_after=4.0))

    retrier(FakeClock(0.0), RetryPolicy()).call(
        attempt, on_retry=lambda retry, made, delay: heard.append((made, delay))
    )

    assert heard == [(1, 3.0), (2, 4.0)]
