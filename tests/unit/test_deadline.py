"""docs/fan-out.md#deadlines: when a run stops starting batches."""

from dagsync.deadline import Deadline, deadline_after
from tests.support.clock import FakeClock


def test_a_deadline_is_the_clock_plus_the_time_allowed():
    assert deadline_after(42.5, FakeClock(1000.0)) == 1042.5


def test_no_time_limit_means_no_deadline():
    assert deadline_after(None) is None


def test_without_a_deadline_work_is_always_allowed():
    clock = FakeClock()
    deadline = Deadline(None, clock)
    clock.advance(1e9)
    assert deadline.allows_more_work()
    assert deadline.remaining() is None


def test_the_margin_is_a_tenth_of_the_time_the_run_started_with():
    clock = FakeClock(0.0)
    deadline = Deadline(900.0, clock)
    assert deadline.margin == 90.0
    clock.advance(809.0)
    assert deadline.allows_more_work()
    clock.advance(1.0)
    assert not deadline.allows_more_work()


def test_the_margin_is_never_less_than_the_longest_batch_and_commit_seen():
    clock = FakeClock(0.0)
    deadline = Deadline(100.0, clock)
    deadline.record_batch(12.0)
    deadline.record_commit(5.0)
    deadline.record_batch(3.0)
    assert deadline.margin == 17.0
    clock.advance(83.5)
    assert not deadline.allows_more_work()
