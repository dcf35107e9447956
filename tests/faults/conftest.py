"""Fault-suite fixtures: the integration fixtures, plus the I/O seams and a fake lease clock."""

import pytest

from dagsync.pce.transport import JobPolling, PceLimits
from tests.faults.harness import START, Seams, install_seams
from tests.integration.conftest import deployment, fast_retries, panos, pce, settings
from tests.support.clock import FakeClock

__all__ = ["clock", "deployment", "fast_polls", "fast_retries", "panos", "pce", "seams", "settings"]


@pytest.fixture(autouse=True)
def fast_polls(fast_retries) -> None:
    """The PCE job is polled without the production floor of 0.2 s between polls."""
    fast_retries.configure(pce_limits=PceLimits(polling=JobPolling(min_delay=0.001)))


@pytest.fixture(autouse=True)
def clock(fast_retries) -> FakeClock:
    """The function's wall clock (leases, target history, the feed's watermark); a test that
    builds its own store passes the clock too."""
    fake = FakeClock(START)
    fast_retries.configure(wall_clock=fake)
    return fake


@pytest.fixture
def seams(monkeypatch: pytest.MonkeyPatch) -> Seams:
    recorder = Seams()
    install_seams(monkeypatch, recorder)
    return recorder
