"""Integration fixtures: the real handler, moto, and both emulators over loopback HTTP."""

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

import app
from dagsync.edges.runtime import ClientOptions
from dagsync.net.retry import RetryPolicy
from dagsync.pce.client import PCE_RETRY
from emulators.local import LocalDeployment
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from tests.support.clock import FakeClock

ORG = 1


def workload(
    name: str, labels: dict[str, str], addresses: list[str], *, managed: bool = True
) -> dict[str, Any]:
    """A PCE workload object shaped like PCE 25.x, labels inline."""
    return {
        "href": f"/orgs/{ORG}/workloads/{name}",
        "hostname": name if managed else "",
        "name": name,
        "managed": managed,
        "deleted": False,
        "public_ip": "203.0.113.250",
        "labels": [
            {"href": f"/orgs/{ORG}/labels/{key}-{value}", "key": key, "value": value}
            for key, value in labels.items()
        ],
        "interfaces": [{"name": f"eth{i}", "address": address} for i, address in enumerate(addresses)],
    }


def small_estate() -> list[dict[str, Any]]:
    return [
        workload(
            "web1", {"role": "Web", "app": "Ordering", "env": "Development", "loc": "AMS"}, ["10.1.0.1"]
        ),
        workload("web2", {"role": "Web", "app": "Ordering", "env": "Production", "loc": "AMS"}, ["10.1.0.2"]),
        workload("db1", {"role": "Db", "app": "Ordering", "env": "Production"}, ["10.1.0.3", "fe80::1"]),
        workload("lb1", {"role": "Lb", "app": "Payments", "env": "Production"}, ["10.1.0.4", "2001:db8::4"]),
    ]


def large_estate(count: int) -> list[dict[str, Any]]:
    return [
        workload(f"w{i}", {"app": f"App{i % 7}", "env": "Production"}, [f"10.2.{i // 250}.{i % 250 + 1}"])
        for i in range(count)
    ]


class ClientSetup:
    """How the function's execution environment builds its clients in tests: options on a fake clock.

    Three attempts per request keep the fault tests short; waits cost no real time at all. The
    handler's own environment (`app.ENVIRONMENT`) is configured with them, never replaced.
    """

    def __init__(self) -> None:
        self.clock = FakeClock(0.0)
        self.options = ClientOptions(
            retry=RetryPolicy(attempts=3),
            pce_retry=replace(PCE_RETRY, attempts=3),
            sleep=self.clock.sleep,
            clock=self.clock.monotonic,
        )

    @property
    def options(self) -> ClientOptions:
        return app.ENVIRONMENT.options

    @options.setter
    def options(self, options: ClientOptions) -> None:
        app.ENVIRONMENT.options = options

    def configure(self, **changes: Any) -> None:
        self.options = replace(self.options, **changes)


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[ClientSetup]:
    """Real retry, polling and pacing logic on a fake clock: every wait advances it, none sleeps."""
    production = app.ENVIRONMENT.options
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    yield ClientSetup()
    app.ENVIRONMENT.options = production


@pytest.fixture
def pce() -> PceEmulator:
    emulator = PceEmulator(workloads=small_estate())
    emulator.retry_after = 0
    emulator.running_polls = 0
    return emulator


@pytest.fixture
def panos() -> PanosEmulator:
    return PanosEmulator("panorama", api_keys=("test-api-key",))


@pytest.fixture
def settings() -> dict[str, str]:
    """Function environment overrides; tests change it before the deployment starts."""
    return {}


@pytest.fixture
def deployment(pce: PceEmulator, panos: PanosEmulator, settings: dict[str, str]) -> Iterator[LocalDeployment]:
    with LocalDeployment(pce=pce, panos=panos, settings=settings) as local:
        yield local
