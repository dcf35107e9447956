"""What every part of the PCE emulator shares: the org, the clock, the lock and the estate."""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from emulators.estate import Estate
from emulators.pce.wire import Json

JobOutcome = Literal["done", "failed", "cancelled", "running"]
LocationStyle = Literal["relative", "api", "absolute"]
LabelMode = Literal["inline", "href"]


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names, Authorization removed
    status: int


class PceState:
    """The estate as the PCE holds it; each concern's mixin adds its own state in its `_init_*`."""

    org_id: int
    clock: Callable[[], float]
    workloads: list[Json]
    labels: dict[str, Json]  # href -> label
    tombstones: list[Json]  # deleted workloads, served only with include_deleted=true
    label_mode: LabelMode
    _estate: Estate | None
    _lock: threading.RLock
    _soft_deleted: set[str]

    def _by_href(self) -> dict[str, Json]:
        return {workload["href"]: workload for workload in self.workloads}

    def workload(self, href: str) -> Json:
        for existing in self.workloads:
            if existing["href"] == href:
                return existing
        raise KeyError(href)
