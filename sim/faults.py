"""The fault schedule, as data, and the seams that inject each fault from outside the function.

`FAULTS` lists every kind of fault with how often it starts per simulated day and how long it
lasts. The seams sit where the outside world is: in front of the emulators' HTTP applications
(events pages duplicated, reordered or missing an event; a process that died answers nothing)
and on the AWS SDK's own event hooks (a process killed right after a DynamoDB write took
effect). None of them replaces a function of DAG Sync.
"""

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3

from emulators.server import Request, Response

Where = Literal["pce", "events", "device", "run"]


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault: starts `per_day` times a simulated day, lasts `minutes` (drawn in range).

    `unavailable` marks what makes the PCE or a device unreachable or refusing while it lasts:
    change-to-device times measured across such a window are reported apart from the rest.
    """

    name: str
    per_day: float
    minutes: tuple[int, int] = (1, 1)
    where: Where = "run"
    unavailable: bool = False


FAULTS: tuple[FaultKind, ...] = (
    # Events: changes made while these last are indexed late, or their pages come back wrong.
    FaultKind("late_index", 48, (1, 5), "events"),  # 30-240 s late: inside the feed's read-back
    FaultKind("very_late_index", 2, (1, 2), "events"),  # 6-12 min late: past it, the export's job
    FaultKind("duplicate_events", 24, (1, 3), "events"),
    FaultKind("reorder_events", 24, (1, 3), "events"),
    FaultKind("drop_from_page", 24, (1, 1), "events"),  # one event missing from one page only
    # The PCE.
    FaultKind("pce_429", 24, where="pce"),  # the next 1-6 requests answer 429
    FaultKind("pce_5xx", 24, where="pce"),  # the next 1-4 requests answer 503
    FaultKind("pce_outage", 1, (10, 30), "pce", unavailable=True),
    # The devices.
    FaultKind("device_reboot", 2, where="device"),  # non-persistent entries (the canary) lost
    FaultKind("device_failover", 0.5, where="device"),  # an HA peer that never held the entries
    FaultKind("target_down", 0.5, (60, 60), "device", unavailable=True),
    FaultKind("key_expiry", 2, where="device"),  # every API key revoked; keygen issues new ones
    FaultKind("table_full", 1, (5, 20), "device", unavailable=True),  # new addresses refused per entry
    FaultKind("refused_address", 0.5, where="device"),  # one address the device refuses for good
    # The run itself.
    FaultKind("dynamodb_kill", 12),  # the process dies right after its n-th DynamoDB write
    FaultKind("deadline", 12),  # the invocation has seconds left and the device is slow
    FaultKind("overlap", 12),  # a second invocation starts at the first one's first device write
)
LATE_INDEX_SECONDS = (30.0, 240.0)
VERY_LATE_INDEX_SECONDS = (360.0, 720.0)
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


class Killed(BaseException):
    """The function's process died here: nothing in it catches this, and it makes no more calls."""


@dataclass
class EventPageFaults:
    """What the events API does to the pages it serves while an events fault lasts."""

    duplicate: bool = False
    reorder: bool = False
    drop_once: bool = False  # one event missing from the next page only


@dataclass
class Process:
    """The function's process as the outside world sees it: alive, or killed at a write."""

    kill_after_writes: int | None = None
    dead: bool = False
    writes: int = 0
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        self.kill_after_writes, self.dead, self.writes, self.requests = None, False, 0, 0
        self.read_units = self.write_units = 0.0

    def install(self) -> None:
        """Hooks on the default session's DynamoDB calls: every client the function makes has them."""
        events = boto3._get_default_session().events
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def _before(self, **_: Any) -> None:
        if self.dead:
            raise Killed("the process is dead")

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        parts = consumed if isinstance(consumed, list) else [consumed]
        units = sum(float(part.get("CapacityUnits", 0.0)) for part in parts)
        with self._lock:
            self.requests += 1
            if model.name in DYNAMODB_WRITES:
                self.write_units += units
                self.writes += 1
                if self.kill_after_writes is not None and self.writes >= self.kill_after_writes:
                    self.kill_after_writes, self.dead = None, True
                    raise Killed(f"process killed after DynamoDB write {self.writes} ({model.name})")
            else:
                self.read_units += units


class PceGate:
    """The PCE emulator's application behind the events faults; a dead process gets no answer."""

    def __init__(self, app: Any, process: Process, rng: random.Random) -> None:
        self.app = app
        self.process = process
        self.rng = rng
        self.pages = EventPageFaults()
        self.dropped: list[str] = []  # hrefs left out of a page

    def handle(self, request: Request) -> Response:
        if self.process.dead:
            return Response(reset=True)
        response: Response = self.app.handle(request)
        if request.path.endswith("/events") and response.status == 200:
            response.body = self._page(
                response.body if isinstance(response.body, bytes) else b"".join(response.body)
            )
        return response

    def _page(self, body: bytes) -> bytes:
        faults = self.pages
        if not (faults.duplicate or faults.reorder or faults.drop_once):
            return body
        page: list[Any] = json.loads(body)
        if faults.drop_once and page:
            index = self.rng.randrange(len(page))
            self.dropped.append(str(page[index].get("href")))
            del page[index]
            faults.drop_once = False
        if faults.duplicate and page:
            page.insert(self.rng.randrange(len(page) + 1), self.rng.choice(page))
        if faults.reorder:
            self.rng.shuffle(page)
        return json.dumps(page, separators=(",", ":")).encode()


class DeviceGate:
    """The PAN-OS emulator's application; at an armed overlap, a second invocation runs first.

    The second invocation starts when the first one's first uid message reaches the device and
    runs to its end before the device answers the first: two runs overlapping, deterministically.
    """

    def __init__(self, app: Any, process: Process) -> None:
        self.app = app
        self.process = process
        self.overlap: Callable[[], None] | None = None

    def handle(self, request: Request) -> Response:
        if self.process.dead:
            return Response(reset=True)
        if (
            self.overlap is not None
            and b"user-id" in request.body + request.path.encode() + str(request.query).encode()
        ):
            second, self.overlap = self.overlap, None
            second()
        response: Response = self.app.handle(request)
        return response
