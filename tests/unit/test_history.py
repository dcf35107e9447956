"""A target's history alone: the rolling removal tally, freshness and the unfinished streak."""

from dagsync.core.history import MAX_REMOVALS, REMOVAL_WINDOW_SECONDS, Removal, RunOutcome, TargetHistory

NOW = 1_800_000_000.0
HOUR = 3600.0


def test_removals_of_the_last_24_hours_are_tallied() -> None:
    history = TargetHistory().after(RunOutcome("ok", removed=20, held=100), NOW)
    history = history.after(RunOutcome("ok", removed=15, held=80), NOW + HOUR)

    assert history.removed_within(NOW + 2 * HOUR) == 35


def test_removals_older_than_24_hours_leave_the_tally() -> None:
    history = TargetHistory().after(RunOutcome("ok", removed=20, held=100), NOW)

    assert history.removed_within(NOW + REMOVAL_WINDOW_SECONDS + 1) == 0


def test_removals_older_than_24_hours_are_pruned_when_the_record_is_next_written() -> None:
    history = TargetHistory().after(RunOutcome("ok", removed=20, held=100), NOW)

    later = history.after(RunOutcome("ok", removed=5, held=80), NOW + REMOVAL_WINDOW_SECONDS + 1)

    assert later.removals == (Removal(NOW + REMOVAL_WINDOW_SECONDS + 1, 5, 80),)


def test_a_run_that_removes_nothing_adds_no_removal() -> None:
    history = TargetHistory().after(RunOutcome("ok", removed=0, held=100), NOW)

    assert history.removals == ()


def test_the_largest_count_held_in_the_window_is_the_peak_before_a_removal_or_now() -> None:
    history = TargetHistory().after(RunOutcome("ok", removed=20, held=100), NOW)
    history = history.after(RunOutcome("ok", removed=20, held=80), NOW + HOUR)

    assert history.largest_held_within(NOW + 2 * HOUR, held_now=60) == 100
    assert history.largest_held_within(NOW + 2 * HOUR, held_now=150) == 150
    assert history.largest_held_within(NOW + REMOVAL_WINDOW_SECONDS + 2 * HOUR, held_now=60) == 60


def test_a_fifth_removed_per_run_adds_up_in_the_tally() -> None:
    history, held = TargetHistory(), 100
    for run in range(3):
        removed = held // 5
        history = history.after(RunOutcome("ok", removed=removed, held=held), NOW + run * HOUR)
        held -= removed

    assert (history.removed_within(NOW + 3 * HOUR), history.largest_held_within(NOW + 3 * HOUR, held)) == (
        20 + 16 + 12,
        100,
    )


def test_the_oldest_removals_merge_beyond_the_bound_keeping_every_pair() -> None:
    history = TargetHistory()
    for run in range(MAX_REMOVALS + 10):
        history = history.after(RunOutcome("ok", removed=1, held=5_000 - run), NOW + run)

    assert len(history.removals) == MAX_REMOVALS
    assert history.removed_within(NOW + MAX_REMOVALS + 10) == MAX_REMOVALS + 10
    assert history.largest_held_within(NOW + MAX_REMOVALS + 10, held_now=0) == 5_000


def test_an_ok_run_is_fresh_and_stamps_its_time() -> None:
    history = TargetHistory().after(RunOutcome("ok"), NOW)

    assert (history.last_ok_at, history.last_status, history.seconds_since_ok(NOW + HOUR)) == (NOW, "ok", 0.0)


def test_freshness_counts_from_the_first_run_that_was_not_ok() -> None:
    history = TargetHistory().after(RunOutcome("ok"), NOW)
    history = history.after(RunOutcome("failed"), NOW + HOUR)
    history = history.after(RunOutcome("failed"), NOW + HOUR + 60)

    assert history.last_ok_at == NOW + HOUR
    assert history.seconds_since_ok(NOW + HOUR + 1800) == 1800


def test_a_target_never_recorded_has_no_freshness() -> None:
    assert TargetHistory().seconds_since_ok(NOW) is None


def test_incomplete_and_failed_runs_count_as_unfinished_in_a_row() -> None:
    history = TargetHistory()
    for status in ("incomplete", "failed", "incomplete"):
        history = history.after(RunOutcome(status), NOW)

    assert history.unfinished_runs == 3


def test_any_other_status_ends_the_unfinished_streak() -> None:
    for status in ("ok", "partial", "blocked"):
        history = TargetHistory(unfinished_runs=4, last_status="incomplete").after(RunOutcome(status), NOW)

        assert history.unfinished_runs == 0, status


def test_a_quiet_ok_after_an_ok_is_not_worth_recording() -> None:
    assert not TargetHistory(last_status="ok").worth_recording("ok")


def test_an_ok_after_anything_else_is_worth_recording() -> None:
    assert TargetHistory(last_status="failed").worth_recording("ok")
    assert TargetHistory().worth_recording("ok")


def test_every_status_but_ok_is_worth_recording_except_a_conflict() -> None:
    history = TargetHistory(last_status="ok")

    assert [
        history.worth_recording(s) for s in ("blocked", "partial", "failed", "incomplete", "conflict")
    ] == [
        True,
        True,
        True,
        True,
        False,
    ]
