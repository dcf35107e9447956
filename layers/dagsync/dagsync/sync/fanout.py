"""Targets in parallel, unfinished ones first (docs/fan-out.md#parallel-targets).

The work is I/O, so threads serve. The number of workers is the number of requests PAN-OS
allows in flight to one management address; the PAN-OS client's in-flight limit enforces the
same bound on every request, keygen and canary checks included.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def run_in_parallel[T, R](
    items: Sequence[T], work: Callable[[T], R], *, workers: int, priority: Callable[[T], int] = lambda _: 0
) -> list[R]:
    """`work(item)` for every item, at most `workers` at once; results in the order of `items`.

    Items of a higher `priority` start first (equal ones in their given order), so work left
    unfinished by the last runs is never starved by work that is up to date.
    """
    if not items:
        return []
    order = sorted(range(len(items)), key=lambda index: -priority(items[index]))
    if workers <= 1 or len(items) == 1:
        results = {index: work(items[index]) for index in order}
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="target") as pool:
            futures = {index: pool.submit(work, items[index]) for index in order}
            results = {index: future.result() for index, future in futures.items()}
    return [results[index] for index in range(len(items))]
