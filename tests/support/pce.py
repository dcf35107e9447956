"""Shared helpers for the PCE client and emulator tests: canned answers, a switchable app, workload builders."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulators.pce import PceEmulator
from emulators.server import Request, Response

ORG = 1


@dataclass
class Canned:
    """An answer served instead of the emulator's to requests whose path contains `path`.

    It is served while `active()` holds (always, by default); `served` counts how often.
    """

    response: Response | Callable[[Request], Response]
    path: str = ""
    active: Callable[[], bool] = lambda: True
    served: int = 0

    def answer(self, request: Request) -> Response:
        self.served += 1
        return self.response(request) if callable(self.response) else self.response


class CurrentApp:
    """Lets one loopback server (started once per module) serve each test's own emulator.

    Canned answers (see `Canned`) take precedence; setting a new `app` clears them, so each
    test starts with the emulator alone.
    """

    def __init__(self) -> None:
        self._app = PceEmulator()
        self.canned: list[Canned] = []

    @property
    def app(self) -> PceEmulator:
        return self._app

    @app.setter
    def app(self, emulator: PceEmulator) -> None:
        self._app = emulator
        self.canned = []

    def handle(self, request: Request) -> Response:
        for canned in self.canned:
            if canned.path in request.path and canned.active():
                return canned.answer(request)
        return self.app.handle(request)


def json_answer(status: int, body: object, **headers: str) -> Response:
    """A JSON response as the PCE sends it."""
    return Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )


def pce_error(status: int, token: str, message: str, **headers: str) -> Response:
    """A PCE error answer: a JSON array of {token, message}."""
    return json_answer(status, [{"token": token, "message": message}], **headers)


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
