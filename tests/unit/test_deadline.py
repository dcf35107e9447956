"""docs/fan-out.md#deadlines: when a run stops starting batches."""

from dagsync.sync.deadline import RECENT_SAMPLES, Deadline, countdown, deadline_after, sooner
from tests.support.clock import FakeClock


def test_a_deadline_is_the_clock_plus_the_time_allowed():
    assert deadline_after(42.5, FakeClock(1000.0)) == 1042.5


def test_no_time_limit_means_no_deadline():
    assert deadline_after(None) is None


def test_a_countdown_is_the_time_left_until_its_end():
    clock = FakeClock(1000.0)
    remaining = countdown(1060.0, clock)
    clock.advance(15.0)
    assert remaining() == 45.0


def test_the_sooner_of_two_countdowns_is_the_one_that_ends_first():
    clock = FakeClock(0.0)
    remaining = sooner(countdown(30.0, clock), countdown(20.0, clock), None)
    assert remaining is not None and remaining() == 20.0


def test_no_countdown_at_all_is_no_deadline():
    assert sooner(None, None) is None


def test_without_a_deadline_work_is_always_allowed():
    clock = FakeClock()
    deadline = Deadline(None)
    clock.advance(1e9)
    assert deadline.allows_more_work()
    assert deadline.remaining() is None


def test_the_remaining_time_is_read_from_its_source_each_time():
    clock = FakeClock(0.0)
    deadline = Deadline(countdown(100.0, clock))
    clock.advance(30.0)
    assert deadline.remaining() == 70.0


def test_the_margin_is_a_tenth_of_the_time_the_run_started_with():
    clock = FakeClock(0.0)
    deadline = Deadline(countdown(900.0, clock))
    assert deadline.margin == 90.0
    clock.advance(809.0)
    assert deadline.allows_more_work()
    clock.advance(1.0)
    assert not deadline.allows_more_work()


def test_the_margin_is_never_less_than_what_a_batch_and_a_commit_take_now():
    clock = FakeClock(0.0)
    deadline = Deadline(countdown(100.0, clock))
    deadline.record_batch(12.0)
    deadline.record_commit(5.0)
    deadline.record_batch(4.0)
    assert deadline.margin == 13.0  # the mean batch and the mean commit
    clock.advance(87.5)
    assert not deadline.allows_more_work()


def test_only_the_most_recent_batches_make_the_margin():
    deadline = Deadline(countdown(10.0, FakeClock(0.0)))
    deadline.record_batch(60.0)  # long ago, while the device was slow
    for _ in range(RECENT_SAMPLES):
        deadline.record_batch(2.0)
    assert deadline.margin == 2.0
