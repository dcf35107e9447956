"""The run's garbage-collector pause: on during a run, restored after it, whatever happens."""

import gc

import pytest

from dagsync.sync.memory import collector_paused


def test_the_collector_is_paused_during_a_run_and_enabled_again_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failing_run_enables_the_collector_again() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_as_a_decorator_it_returns_what_the_function_returns() -> None:
    @collector_paused()
    def run() -> bool:
        return gc.isenabled()

    assert run() is False
    assert gc.isenabled()
