"""docs/fan-out.md#parallel-targets: targets in parallel, unfinished ones first."""

import threading
import time

from dagsync.sync.fanout import run_in_parallel


def test_results_come_back_in_the_order_of_the_targets():
    assert run_in_parallel([3, 1, 2], lambda n: n * 10, workers=3) == [30, 10, 20]


def test_never_more_than_the_given_number_of_workers_at_once():
    lock, running, peak = threading.Lock(), [0], [0]

    def work(_: int) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1

    run_in_parallel(list(range(20)), work, workers=4)
    assert peak[0] == 4


def test_targets_of_a_higher_priority_start_first_and_equal_ones_in_their_order():
    started: list[str] = []
    streaks = {"a": 0, "b": 1, "c": 3, "d": 1}
    run_in_parallel(["a", "b", "c", "d"], started.append, workers=1, priority=streaks.__getitem__)
    assert started == ["c", "b", "d", "a"]


def test_no_targets_is_no_work():
    assert run_in_parallel([], lambda n: n, workers=5) == []
