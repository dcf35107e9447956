"""Shared helpers for the PCE client and emulator tests: a fake clock and workload builders."""

from typing import Any

from emulators.pce import PceEmulator
from emulators.server import Request, Response

ORG = 1


class FakeClock:
    """An injected sleep/monotonic pair: sleeping advances time instantly and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class CurrentApp:
    """Lets one loopback server (started once per module) serve each test's own emulator."""

    def __init__(self) -> None:
        self.app = PceEmulator()

    def handle(self, request: Request) -> Response:
        return self.app.handle(request)


def interface(address: str | None, *, name: str = "eth0", loopback: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "address": address,
        "cidr_block": 24,
        "default_gateway_address": None,
        "link_state": "up",
        "loopback": loopback,
        "network": {"href": "/orgs/1/networks/n1", "name": "Corporate"},
        "network_detection_mode": "single_private_brn",
        "public_ip": None,
    }


def workload(
    pce: PceEmulator,
    uid: str,
    *addresses: str,
    labels: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A PCE workload dict with inline labels taken from (and added to) the emulator's label table."""
    body: dict[str, Any] = {
        "href": f"/orgs/{ORG}/workloads/{uid}",
        "hostname": f"{uid}.example.internal",
        "name": None,
        "managed": True,
        "online": True,
        "deleted": False,
        "public_ip": None,
        "interfaces": [interface(address) for address in addresses],
        "labels": [pce.add_label(key, value) for key, value in (labels or {}).items()],
    }
    body.update(fields)
    return body
