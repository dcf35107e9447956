"""What every part of the PAN-OS emulator shares: devices, their tables and the setup helpers tests call."""

import copy
import threading
import time
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from emulators.panos.config_tree import _config_skeleton
from emulators.panos.wire import (
    HA_ACTIVE_STATES,
    MAX_REQUEST_BYTES,
    AbsentConfig,
    DenialAnswer,
    DuplicateMode,
    HaUnreadable,
    KeyCarrier,
    Kind,
    MaliciousVariant,
    UnreachableMode,
    _canonical,
)


@dataclass(frozen=True)
class IngestCost:
    """Device time one uid-message entry costs, before `time_scale` and a device's slowness.

    The defaults are the only published measurement (docs/protocols.md#pan-os-device-speed): a
    PA-VM-50 took 3.41 s for 1,000 registrations (about 293 a second) and 0.44 s for 1,000 unregistrations,
    sent 1,024 IPs a message.
    """

    register: float = 3.41 / 1000
    unregister: float = 0.44 / 1000

    def seconds(self, entries: Mapping[str, int]) -> float:
        """Device time for a message holding `entries` (verb -> entry count)."""
        return entries.get("register", 0) * self.register + entries.get("unregister", 0) * self.unregister


@dataclass
class IpRecord:
    """One registered IP: tag -> expiry on the virtual clock (None = never), as §8.4 describes."""

    tags: dict[str, float | None] = field(default_factory=dict)
    persistent: bool = True
    from_agent: bool = False


@dataclass
class Device:
    """One device's state. `plane` is its management plane: one request's device work at a time."""

    serial: str
    kind: Kind
    vsys: tuple[str, ...]
    capacity: int | None = None
    tables: dict[str, dict[str, IpRecord]] = field(default_factory=dict)
    unreachable: UnreachableMode | None = None
    slowness: float = 1.0  # multiplies every ingest cost on this device
    running: ET.Element = field(init=False)  # the committed configuration (`action=show`)
    candidate: ET.Element = field(init=False)  # the configuration with uncommitted edits (`action=get`)
    plane: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.running = _config_skeleton(self.kind, self.vsys)
        self.candidate = copy.deepcopy(self.running)

    def table_name(self, vsys: str | None) -> str:
        # Panorama holds a single table; a vsys parameter does not split it [unverified].
        if self.kind == "panorama":
            return "shared"
        return vsys or self.vsys[0]

    def table(self, name: str) -> dict[str, IpRecord]:
        return self.tables.setdefault(name, {})

    def ip_count(self) -> int:
        # The platform limit counts every registered IP on the box, whatever the vsys.
        return sum(len(table) for table in self.tables.values())

    def configs(self, committed: bool) -> tuple[ET.Element, ...]:
        """The configurations an edit lands in: the candidate, and the running one once committed."""
        return (self.candidate, self.running) if committed else (self.candidate,)


@dataclass(frozen=True)
class DagMembership:
    """A dynamic address group defined on a device, and the IPs its filter matches there.

    `members` is None when the emulator's evaluator cannot read the filter (a word other than
    `and` and `or` outside quotes, for instance); a real device would evaluate it, so the view
    does not guess. Members are sorted, IPv4 first.
    """

    name: str
    filter: str
    device_group: str | None
    vsys: str | None
    description: str | None
    members: tuple[str, ...] | None


@dataclass
class LoggedRequest:
    """One request as the emulator saw it; tests assert on these."""

    method: str
    params: dict[str, str]  # query and body merged; a `key` sent as a parameter shows up here
    key_carrier: KeyCarrier | None  # the carrier the key was taken from
    key_carriers: tuple[KeyCarrier, ...]  # every carrier that held a key
    type: str | None
    target: str | None
    vsys: str | None
    body_bytes: int
    uid: dict[str, int] = field(default_factory=dict)  # verb -> entries ("clear" -> 1)
    uid_ips: dict[str, tuple[str, ...]] = field(default_factory=dict)  # verb -> IPs as sent
    uid_pairs: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)  # verb -> (ip, tag)
    status: int = 0
    fault: str | None = None  # the injected fault that answered, or "over-limit"
    started: float = 0.0  # on the emulator's `now` clock, when the request reached the device
    finished: float = 0.0  # when its answer was ready


@dataclass
class _Fault:
    kind: Literal[
        "pass", "http", "code", "unauth", "redirect", "reset", "reset-after", "delay", "not-xml", "malicious"
    ]
    type: str | None = None  # only requests of this `type=`; None matches any
    status: int = 503
    code: str = "22"
    seconds: float = 0.0
    variant: MaliciousVariant = "billion-laughs"
    location: str = ""


class PanosState:
    """The device state every mixin works on; `__init__` holds every knob's default."""

    def __init__(
        self,
        kind: Kind = "firewall",
        *,
        serial: str = "007951000000001",
        vsys: Iterable[str] = ("vsys1",),
        api_keys: Iterable[str] = ("test-api-key",),
        users: dict[str, str] | None = None,
        duplicate_mode: DuplicateMode = "error-entry",
        capacity: int | None = None,
        firewalls: Iterable[str] = (),
        keygen_rotates: bool = False,
        allow_ranges: bool = False,
        legacy_outfile: bool = False,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        concurrency_limit: int | None = None,
        delay: float = 0.0,
        unreachable_delay: float = 2.0,
        ingest_cost: IngestCost = IngestCost(),
        time_scale: float = 0.0,
        absent_config: AbsentConfig = "empty-result",
        ha_state: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind: Kind = kind
        self.duplicate_mode: DuplicateMode = duplicate_mode
        self.keygen_rotates = keygen_rotates
        self.allow_ranges = allow_ranges
        self.legacy_outfile = legacy_outfile
        self.max_request_bytes = max_request_bytes
        self.concurrency_limit = concurrency_limit
        self.delay = delay
        self.unreachable_delay = unreachable_delay
        self.ingest_cost = ingest_cost
        self.time_scale = time_scale
        self.absent_config: AbsentConfig = absent_config
        # HA (docs/protocols.md#pan-os-high-availability): None is HA not enabled. A member in any
        # other than an active state answers User-ID calls with success and applies none of them.
        self.ha_state = ha_state
        self.ha_peer_state: str | None = None
        self.ha_unreadable: HaUnreadable | None = None
        self.clock = 0.0  # virtual seconds; advance() moves it and expires timed-out tags
        self.max_concurrency = 0  # the most requests in flight at once since the log was cleared
        self.keygen_count = 0
        self._sleep = sleep
        self._now = now
        self._lock = threading.RLock()
        self._in_flight_changed = threading.Condition(self._lock)
        self._in_flight = 0
        self._device = Device(serial=serial, kind=kind, vsys=tuple(vsys), capacity=capacity)
        self._children: dict[str, Device] = {}
        self._keys: dict[str, str | None] = dict.fromkeys(api_keys)  # key -> user (None: static)
        self._users = dict(users or {})
        self._epoch: dict[str, int] = {}
        self._faults: deque[_Fault] = deque()
        self._revoke_after: int | None = None
        self._denied: dict[str, DenialAnswer] = {}
        self._refused: set[str] = set()
        self._log: list[LoggedRequest] = []
        self._issued: list[str] = []
        for child in firewalls:
            self.add_firewall(child)

    @property
    def ha_active(self) -> bool:
        """Whether this member applies what it is sent: HA not enabled, or an active state."""
        return self.ha_state is None or self.ha_state in HA_ACTIVE_STATES

    @property
    def serial(self) -> str:
        return self._device.serial

    def add_firewall(
        self, serial: str, *, vsys: Iterable[str] = ("vsys1",), capacity: int | None = None
    ) -> None:
        """A firewall managed by this Panorama, reached with `target=<serial>`."""
        if self.kind != "panorama":
            raise ValueError("only a Panorama has managed firewalls")
        with self._lock:
            self._children[serial] = Device(
                serial=serial, kind="firewall", vsys=tuple(vsys), capacity=capacity
            )

    def add_api_key(self, key: str) -> None:
        with self._lock:
            self._keys[key] = None

    def add_user(self, user: str, password: str) -> None:
        """An admin whose credentials keygen accepts."""
        with self._lock:
            self._users[user] = password

    def set_capacity(self, capacity: int | None, *, serial: str | None = None) -> None:
        """Maximum registered IPs on the device; registering a new IP past it fails per entry."""
        with self._lock:
            self._select(serial).capacity = capacity

    def fill_table(self, *, serial: str | None = None) -> None:
        """Make the registered-IP table full at its current size."""
        with self._lock:
            device = self._select(serial)
            device.capacity = device.ip_count()

    def refuse_ips(self, ips: Iterable[str]) -> None:
        """Addresses the device answers `Invalid IP address` for, though they parse.

        Which well-formed addresses a real device refuses is not captured (docs/sync.md#per-entry-results)
        [unverified]; this lets a test put any address on the device's side of that line.
        """
        with self._lock:
            self._refused.update(ips)

    def set_slowness(self, factor: float, *, serial: str | None = None) -> None:
        """Make one device `factor` times slower at ingesting entries (a loaded or small firewall)."""
        if factor <= 0:
            raise ValueError("slowness must be positive")
        with self._lock:
            self._select(serial).slowness = factor

    def set_unreachable(
        self, serial: str, mode: UnreachableMode | None = "error", *, delay: float | None = None
    ) -> None:
        """A child firewall Panorama cannot reach: answer an error, or hang for `delay` seconds first."""
        with self._lock:
            self._select(serial).unreachable = mode
            if delay is not None:
                self.unreachable_delay = delay

    def advance(self, seconds: float) -> None:
        """Move the virtual clock; tags registered with a timeout expire when it passes them."""
        with self._lock:
            self.clock += seconds

    def reboot(self, *, serial: str | None = None, keep_persistent: bool = True) -> None:
        """Restart the device: non-persistent entries are lost, persistent ones survive.

        `keep_persistent=False` models a restart that loses the persistent store too: a replaced
        or re-imaged unit restored from its configuration, or an HA peer that never held the entries.
        """
        with self._lock:
            device = self._select(serial)
            for table in device.tables.values():
                self._expire(table)
                for ip in [ip for ip, record in table.items() if not (record.persistent and keep_persistent)]:
                    del table[ip]

    def clear_table(self, *, serial: str | None = None, vsys: str | None = None) -> None:
        """Empty one vsys table, or every table of the device when vsys is None."""
        with self._lock:
            device = self._select(serial)
            if vsys is None:
                device.tables.clear()
            else:
                device.tables.pop(device.table_name(vsys), None)

    def table(self, serial: str | None = None, vsys: str | None = None) -> dict[str, frozenset[str]]:
        """ip -> current tags (expired ones gone), in device order."""
        with self._lock:
            table = self._table(serial, vsys)
            return {ip: frozenset(record.tags) for ip, record in table.items()}

    def record(self, ip: str, *, serial: str | None = None, vsys: str | None = None) -> IpRecord | None:
        with self._lock:
            found = self._table(serial, vsys).get(_canonical(ip))
            return None if found is None else IpRecord(dict(found.tags), found.persistent, found.from_agent)

    def register_foreign(
        self,
        ip: str,
        tags: Iterable[str],
        *,
        serial: str | None = None,
        vsys: str | None = None,
        persistent: bool = True,
        from_agent: bool = False,
    ) -> None:
        """Tags written by another tool or a User-ID agent, bypassing the API and its log."""
        with self._lock:
            table = self._table(serial, vsys)
            record = table.setdefault(_canonical(ip), IpRecord(persistent=persistent, from_agent=from_agent))
            record.tags.update(dict.fromkeys(tags))

    def _select(self, serial: str | None) -> Device:
        if serial is None or serial == self._device.serial:
            return self._device
        try:
            return self._children[serial]
        except KeyError:
            raise KeyError(f"no device with serial {serial}") from None

    def _table(self, serial: str | None, vsys: str | None) -> dict[str, IpRecord]:
        device = self._select(serial)
        table = device.table(device.table_name(vsys))
        self._expire(table)
        return table

    def _expire(self, table: dict[str, IpRecord]) -> None:
        for ip in list(table):
            record = table[ip]
            for tag in [
                t for t, expires in record.tags.items() if expires is not None and expires <= self.clock
            ]:
                del record.tags[tag]
            if not record.tags:
                del table[ip]
