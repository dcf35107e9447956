"""Fixtures shared by the PCE client and PCE emulator tests: one loopback server per module."""

from collections.abc import Iterator

import pytest

from emulators.pce import PceEmulator
from emulators.server import LoopbackServer
from tests.unit.pce_support import CurrentApp


@pytest.fixture(scope="module")
def current() -> CurrentApp:
    return CurrentApp()


@pytest.fixture(scope="module")
def server(current: CurrentApp) -> Iterator[LoopbackServer]:
    with LoopbackServer(current) as running:
        yield running


@pytest.fixture
def pce(current: CurrentApp) -> PceEmulator:
    current.app = PceEmulator()
    return current.app
