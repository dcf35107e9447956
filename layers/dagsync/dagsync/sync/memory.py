"""Process-level memory policy for one run."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a run builds its large, acyclic state.

    A run holds hundreds of thousands of small objects at once (workload projections, tag sets,
    the snapshot's maps) and none of them form reference cycles, so the collector's full passes,
    which come each time the heap grows by a quarter, walk them all for nothing: about a tenth of
    a 100,000-workload run. Reference counting frees everything as usual meanwhile; the few cycles
    a run makes (exception tracebacks, HTTP internals) are collected once it is over.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
