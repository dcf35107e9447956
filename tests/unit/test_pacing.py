"""Pacer: no minute holds more requests than the budget, and waiting never passes the deadline."""

import pytest

from dagsync.net.pacing import Pacer, PacingPastDeadline
from tests.support.clock import FakeClock


def pacer(clock: FakeClock, per_minute: int, deadline: float | None = None) -> Pacer:
    return Pacer(per_minute, clock=clock.monotonic, sleep=clock.sleep, deadline=deadline)


def test_requests_within_the_budget_go_at_once() -> None:
    clock = FakeClock(0.0)
    paced = pacer(clock, 3)

    waits = [paced.wait() for _ in range(3)]

    assert waits == [0.0, 0.0, 0.0]
    assert clock.sleeps == []


def test_a_request_over_the_budget_waits_until_the_oldest_is_a_minute_old() -> None:
    clock = FakeClock(0.0)
    paced = pacer(clock, 2)
    paced.wait()
    clock.now = 10.0
    paced.wait()
    clock.now = 15.0

    assert paced.wait() == 45.0
    assert clock.now == 60.0
    assert paced.wait() == 10.0
    assert clock.now == 70.0
    assert paced.waited == 55.0


def test_no_sixty_second_window_holds_more_than_the_budget() -> None:
    clock = FakeClock(0.0)
    paced = pacer(clock, 5)
    sent = []
    for _ in range(23):
        paced.wait()
        sent.append(clock.now)
        clock.now += 1.0

    assert max(sum(1 for t in sent if start <= t < start + 60) for start in sent) == 5


def test_time_spent_elsewhere_counts_towards_the_window() -> None:
    clock = FakeClock(0.0)
    paced = pacer(clock, 1)
    paced.wait()
    clock.now = 61.0

    assert paced.wait() == 0.0


def test_a_wait_that_would_pass_the_deadline_raises_at_once() -> None:
    clock = FakeClock(0.0)
    paced = pacer(clock, 1, deadline=30.0)
    paced.wait()

    with pytest.raises(PacingPastDeadline, match=r"pacing to 1 requests per minute would wait 60.0 s"):
        paced.wait()
    assert clock.sleeps == []


def test_a_budget_below_one_request_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one request per minute"):
        Pacer(0)
