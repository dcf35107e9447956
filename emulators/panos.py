"""A PAN-OS device (firewall, or Panorama with child firewalls) for LoopbackServer.

It follows docs/protocols.md (the PAN-OS sections): one `/api/` route taking GET and POST, query and
form/multipart parameters merged, the key from `X-PAN-KEY`, `key=` or Basic auth, `type=keygen`,
`type=user-id` (register, unregister, clear) with per-entry results, `type=op`
`show object registered-ip` / `show object dynamic-address-group`, and `type=config`
`action=show|get` over the address groups of docs/protocols.md#pan-os-address-groups. Everything the real device leaves
open (message texts, codes for unknown serials, table-full answers) is marked [unverified] where
it is chosen.

It is as slow and as limited as a real device when asked to be: every uid-message entry costs
device time (`IngestCost`, from the measurement of docs/protocols.md#pan-os-device-speed, scaled by `time_scale`), the
work of one device is serialised on its management plane (a Panorama relays `target=` requests
to each firewall's own plane), requests in flight are counted for the management address, and
more than `concurrency_limit` of them are refused.

Listing order: `show object registered-ip` returns entries in device order, the order in which
each IP entered the table (an IP that lost its last tag and came back is at the end), and each
entry's tags in the order they were registered. The real order is not documented (reference
§4.3) [unverified]; insertion order is what a table without an index keeps, and it is not
sorted, so a client cannot rely on it. It is stable while the table does not change, which is
what exact paging needs.
"""

import base64
import copy
import functools
import hashlib
import ipaddress
import re
import threading
import time
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http import HTTPStatus
from typing import Literal
from urllib.parse import parse_qs, urlencode

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from emulators.server import Request, Response

Kind = Literal["firewall", "panorama"]
DuplicateMode = Literal["error-entry", "silent"]
KeyCarrier = Literal["header", "query", "body", "basic"]
UnreachableMode = Literal["error", "timeout"]
MaliciousVariant = Literal["billion-laughs", "external-entity"]
UnauthCode = Literal["16", "22"]
DenialAnswer = Literal["403", "unauth"]
AbsentConfig = Literal["empty-result", "object-not-present"]
HaUnreadable = Literal["403", "garbage", "timeout"]
# Local HA states a member may be written to (docs/protocols.md#pan-os-high-availability).
HA_ACTIVE_STATES = frozenset({"active", "primary-active", "secondary-active"})

INVALID_CREDENTIAL = (
    b"<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>"
)
INVALID_IP = "Invalid IP address"
MAX_TAGS_PER_IP = 32
MAX_TAG_LENGTH = 127
MAX_TIMEOUT = 2_592_000
PAGE_LIMIT = 500
MAX_REQUEST_BYTES = 5_000_000
MAX_FILTER_LENGTH = 2047
# "Limit the number of concurrent API calls to five" (docs/protocols.md#pan-os-concurrency).
MAX_CONCURRENT_API_CALLS = 5
# The device entry every config xpath names (docs/protocols.md#pan-os-address-groups).
LOCAL_DEVICE = "localhost.localdomain"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_XML_HEADERS = {"Content-Type": "application/xml; charset=UTF-8"}
_UNAUTH_TEXT: dict[UnauthCode, str] = {"16": "Unauthorized request", "22": "Session timed out"}

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<response status="success"><result><msg>&lol9;</msg></result></response>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response status="success"><result><msg>&xxe;</msg></result></response>"""

NOT_XML = b"Service temporarily unavailable. Please try again later.\n"


# ---------------------------------------------------------------------------------------------
# State


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


class PanosEmulator:
    """A PAN-OS firewall or Panorama, served through emulators.server.LoopbackServer.

    Fault knobs (each applies to the next matching requests, in the order they were queued):
    fail_next (HTTP 5xx), error_code_next (status="error" code=22 by default), unauth_next
    (status="unauth", code 16 or 22), redirect_next (a 3xx with a Location), reset_next
    (connection reset, before or after applying the request), delay_next, not_xml_next,
    malicious_next (billion laughs / external entity), revoke_keys_after (403 after N calls).
    Lasting conditions: deny_permission (a role without the permission a request type needs),
    set_unreachable (a Panorama child that errors or times out), set_capacity (table full),
    refuse_ips (addresses the device answers `Invalid IP address` for), set_slowness (a device
    N times slower), concurrency_limit (plain HTTP 503 above N in flight), max_request_bytes
    (HTTP 400 above it), and `delay` (every response slowed: a real device's response time,
    docs/protocols.md#pan-os-response-time).

    Time: `sleep` and `now` default to the real clock; a test may pass its fake clock's so the
    device's costs move fake time instead. `time_scale` (default 0: free) scales `ingest_cost`.
    """

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

    # -- configuration and test helpers --------------------------------------------------------

    @property
    def serial(self) -> str:
        return self._device.serial

    @property
    def ha_active(self) -> bool:
        """Whether this member applies what it is sent: HA not enabled, or an active state."""
        return self.ha_state is None or self.ha_state in HA_ACTIVE_STATES

    def set_ha_state(self, state: str | None, *, peer: str | None = None) -> None:
        """This member's local HA state (None: HA not enabled) and, in a pair, its peer's."""
        with self._lock:
            self.ha_state, self.ha_peer_state = state, peer

    def share_firewalls(self, other: "PanosEmulator") -> None:
        """Manage `other`'s firewalls (the same objects), as the second Panorama of a pair does."""
        with self._lock:
            self._children = other._children

    def copy_tables_from(self, other: "PanosEmulator") -> None:
        """`other`'s registered-IP tables in place of this device's own, as an HA sync leaves them;
        firewalls it shares with `other` are left as they are."""
        with self._lock, other._lock:
            pairs = [(self._device, other._device)]
            if self._children is not other._children:
                pairs += [(self._children[s], d) for s, d in other._children.items() if s in self._children]
            for mine, theirs in pairs:
                mine.tables = copy.deepcopy(theirs.tables)

    def non_ha_requests(self) -> list[LoggedRequest]:
        """Every logged request but the HA state query: what a passive member must never see."""
        return [entry for entry in self.requests if not _is_ha_query(entry.params)]

    def ha_queries(self) -> int:
        return len(self.requests) - len(self.non_ha_requests())

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

    def issued_keys(self) -> list[str]:
        """Every key keygen ever handed out, for tests that check no key leaks."""
        with self._lock:
            return list(self._issued)

    def revoke_keys(self) -> None:
        """Every key stops working (password change, "Expire all API keys"); keygen gives new ones."""
        with self._lock:
            self._keys.clear()
            for user in self._users:
                self._epoch[user] = self._epoch.get(user, 0) + 1

    def revoke_keys_after(self, calls: int) -> None:
        """Let `calls` more authenticated requests through, then revoke every key (HTTP 403)."""
        with self._lock:
            self._revoke_after = calls

    def deny_permission(self, request_type: str, *, answer: DenialAnswer = "403") -> None:
        """The admin role lacks the XML API permission `type=<request_type>` needs.

        Every such request with a valid key is then refused, until grant_permission: "403" is the
        HTTP 403 that docs/protocols.md#pan-os-errors and docs/protocols.md#pan-os-address-groups
        describe for an insufficient role (the body of the invalid-credential answer, the real text for a role being uncaptured [unverified]);
        "unauth" is the `status="unauth" code="16"` form.
        """
        with self._lock:
            self._denied[request_type] = answer

    def grant_permission(self, request_type: str) -> None:
        with self._lock:
            self._denied.pop(request_type, None)

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

    def fail_next(
        self, count: int = 1, *, status: int = 503, type: str | None = None, after: int = 0
    ) -> None:
        """Answer HTTP `status` to `count` requests, once `after` matching requests went through."""
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("http", type=type, status=status))

    def error_code_next(
        self, count: int = 1, *, code: str = "22", type: str | None = None, after: int = 0
    ) -> None:
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("code", type=type, code=code))

    def unauth_next(
        self, count: int = 1, *, code: UnauthCode = "16", type: str | None = None, after: int = 0
    ) -> None:
        """Answer the `status="unauth"` form (docs/protocols.md#pan-os-errors) with HTTP 200, applying nothing.

        Code 16 ("Unauthorized request") is a role without the needed permission; code 22
        ("Session timed out") is an expired key or session. Both forms come from other projects'
        code, not from a device capture [unverified].
        """
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("unauth", type=type, code=code))

    def redirect_next(
        self,
        count: int = 1,
        *,
        location: str,
        status: int = 302,
        type: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer a 3xx pointing at `location`, as a proxy or a wrong URL would (docs/sync.md#redirects)."""
        if status not in REDIRECT_STATUSES:
            raise ValueError(f"{status} is not a redirect status")
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("redirect", type=type, status=status, location=location))

    def reset_next(
        self, count: int = 1, *, after_apply: bool = False, type: str | None = None, after: int = 0
    ) -> None:
        """Drop the connection; with after_apply the request takes effect first (a lost answer)."""
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("reset-after" if after_apply else "reset", type=type))

    def delay_next(self, count: int = 1, *, seconds: float, type: str | None = None) -> None:
        self._queue(count, _Fault("delay", type=type, seconds=seconds))

    def not_xml_next(self, count: int = 1, *, type: str | None = None) -> None:
        self._queue(count, _Fault("not-xml", type=type))

    def malicious_next(
        self,
        count: int = 1,
        *,
        variant: MaliciousVariant = "billion-laughs",
        type: str | None = None,
    ) -> None:
        self._queue(count, _Fault("malicious", type=type, variant=variant))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._revoke_after = None

    def _queue(self, count: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend(fault for _ in range(count))

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

    # -- address groups (configuration, docs/protocols.md#pan-os-address-groups) -----------------------

    def define_dag(
        self,
        name: str,
        filter: str,
        *,
        description: str | None = None,
        device_group: str | None = None,
        vsys: str | None = None,
        serial: str | None = None,
        committed: bool = True,
    ) -> None:
        """Define (or redefine) a dynamic address group, as an admin would in the GUI.

        Location: shared unless `device_group` (Panorama) or `vsys` (firewall) is given; `serial`
        picks a firewall behind this Panorama. The device takes any filter up to 2047 characters,
        including ones the emulator cannot evaluate. Uncommitted (`committed=False`) it is in the
        candidate configuration only (`action=get`) until commit().
        """
        if len(filter) > MAX_FILTER_LENGTH:
            raise ValueError(f"DAG filter longer than {MAX_FILTER_LENGTH} characters")
        dynamic = ET.Element("dynamic")
        ET.SubElement(dynamic, "filter").text = filter
        self._define_group(
            name,
            dynamic,
            description=description,
            device_group=device_group,
            vsys=vsys,
            serial=serial,
            committed=committed,
        )

    def define_static_group(
        self,
        name: str,
        members: Iterable[str],
        *,
        description: str | None = None,
        device_group: str | None = None,
        vsys: str | None = None,
        serial: str | None = None,
        committed: bool = True,
    ) -> None:
        """A static address group (address object names), which a DAG reader must skip."""
        static = ET.Element("static")
        for member in members:
            ET.SubElement(static, "member").text = member
        self._define_group(
            name,
            static,
            description=description,
            device_group=device_group,
            vsys=vsys,
            serial=serial,
            committed=committed,
        )

    def remove_dag(
        self,
        name: str,
        *,
        device_group: str | None = None,
        vsys: str | None = None,
        serial: str | None = None,
        committed: bool = True,
    ) -> None:
        """Delete the address group `name` from its location (KeyError if it is not there)."""
        with self._lock:
            device = self._select(serial)
            _check_location(device, device_group, vsys)
            if _group_entry(device.candidate, name, device_group, vsys) is None:
                raise KeyError(f"no address group {name!r} there")
            for config in device.configs(committed):
                found = _group_entry(config, name, device_group, vsys)
                if found is not None:
                    parent, groups, entry = found
                    groups.remove(entry)
                    if len(groups) == 0:
                        parent.remove(groups)

    def commit(self, *, serial: str | None = None) -> None:
        """Make the candidate configuration the running one."""
        with self._lock:
            device = self._select(serial)
            device.running = copy.deepcopy(device.candidate)

    def dag_membership(self, *, serial: str | None = None) -> list[DagMembership]:
        """Every dynamic address group of the running configuration, with its current members.

        A vsys group is evaluated on that vsys's table; a shared or device-group one on the
        device's own table (Panorama's, or a firewall's first vsys).
        """
        with self._lock:
            device = self._select(serial)
            return [
                self._membership(device, entry, device_group, vsys)
                for device_group, vsys, entry in _dynamic_groups(device.running)
            ]

    def _define_group(
        self,
        name: str,
        body: ET.Element,
        *,
        description: str | None,
        device_group: str | None,
        vsys: str | None,
        serial: str | None,
        committed: bool,
    ) -> None:
        entry = ET.Element("entry", {"name": name})
        entry.append(body)
        if description is not None:
            ET.SubElement(entry, "description").text = description
        with self._lock:
            device = self._select(serial)
            _check_location(device, device_group, vsys)
            for config in device.configs(committed):
                old = _group_entry(config, name, device_group, vsys)
                if old is not None:
                    old[1].remove(old[2])
                parent = _group_parent(config, device_group, vsys, create=True)
                assert parent is not None, "created when missing"
                groups = parent.find("address-group")
                if groups is None:
                    groups = ET.SubElement(parent, "address-group")
                groups.append(copy.deepcopy(entry))

    def _membership(
        self, device: Device, entry: ET.Element, device_group: str | None, vsys: str | None
    ) -> DagMembership:
        dag_filter = entry.findtext("dynamic/filter") or ""
        try:
            predicate = compile_filter(dag_filter)
        except ValueError:
            members = None
        else:
            table = device.table(device.table_name(vsys))
            self._expire(table)
            members = tuple(
                sorted((ip for ip, r in table.items() if predicate(frozenset(r.tags))), key=_ip_key)
            )
        return DagMembership(
            name=entry.get("name") or "",
            filter=dag_filter,
            device_group=device_group,
            vsys=vsys,
            description=entry.findtext("description"),
            members=members,
        )

    def dag_members(self, filter: str, *, serial: str | None = None, vsys: str | None = None) -> list[str]:
        """IPs (sorted) whose current tags satisfy a DAG filter such as `'a' and ('b' or 'c')`."""
        predicate = compile_filter(filter)
        with self._lock:
            table = self._table(serial, vsys)
            return sorted(
                (ip for ip, record in table.items() if predicate(frozenset(record.tags))), key=_ip_key
            )

    # -- what the device saw -------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def calls(
        self,
        type: str | None = None,
        *,
        verb: str | None = None,
        target: str | None = None,
    ) -> list[LoggedRequest]:
        """Logged requests, optionally only one `type=`, one uid-message verb, or one target."""
        return [
            entry
            for entry in self.requests
            if (type is None or entry.type == type)
            and (verb is None or verb in entry.uid)
            and (target is None or entry.target == target)
        ]

    def entries_received(self, verb: str, *, serial: str | None = None) -> Counter[str]:
        """How many times each IP (as sent) arrived in a `verb` section the device processed.

        Requests refused before the device read them (faults, 403, over the limit) do not count;
        a request applied and then reset does. `serial` limits it to one firewall behind this
        Panorama (this device's own serial: requests without `target`). A count above one is an
        entry sent twice.
        """
        own = serial is not None and serial == self.serial
        counts: Counter[str] = Counter()
        for entry in self.calls("user-id", verb=verb, target=None if own else serial):
            if not own or entry.target is None:
                counts.update(entry.uid_ips.get(verb, ()))
        return counts

    @property
    def in_flight(self) -> int:
        """Requests this management address is handling now (peak: `max_concurrency`)."""
        with self._lock:
            return self._in_flight

    def wait_for_in_flight(self, count: int, *, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests are in flight (False if `timeout` passes first)."""
        with self._in_flight_changed:
            return self._in_flight_changed.wait_for(lambda: self._in_flight >= count, timeout)

    @property
    def clear_sent(self) -> bool:
        """Whether any request carried `<clear>` (our client must never send it)."""
        return any("clear" in entry.uid for entry in self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
            self.max_concurrency = self._in_flight

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

    # -- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self._in_flight_changed:
            self._in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self._in_flight)
            over_limit = self.concurrency_limit is not None and self._in_flight > self.concurrency_limit
            self._in_flight_changed.notify_all()
        try:
            if self.delay and not over_limit:  # a refused request is answered at once
                self._sleep(self.delay)
            return self._handle(request, over_limit)
        finally:
            with self._in_flight_changed:
                self._in_flight -= 1
                self._in_flight_changed.notify_all()

    def _handle(self, request: Request, over_limit: bool) -> Response:
        if request.path.rstrip("/") != "/api":
            return Response(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})
        params = _merge_params(request)
        key, carrier, carriers = _find_key(request, params)
        entry = LoggedRequest(
            method=request.method,
            params=params,
            key_carrier=carrier,
            key_carriers=carriers,
            type=params.get("type"),
            target=params.get("target"),
            vsys=params.get("vsys"),
            body_bytes=len(request.body),
            started=self._now(),
        )
        with self._lock:
            self._log.append(entry)
        if over_limit:
            # What a real device does past five concurrent calls is undocumented (docs/protocols.md#pan-os-concurrency);
            # the emulator answers a plain HTTP 503 (no XML body), the hardest case for a client.
            entry.fault = "over-limit"
            response = _http_error(503)
        else:
            response = self._respond(request, params, key, carrier, entry)
        entry.status = response.status
        entry.finished = self._now()
        return response

    def _respond(
        self,
        request: Request,
        params: dict[str, str],
        key: str | None,
        carrier: KeyCarrier | None,
        entry: LoggedRequest,
    ) -> Response:
        size = len(request.body) + len(urlencode(request.query, doseq=True))
        if size > self.max_request_bytes:
            return _xml_error("400", "Request exceeds the maximum request size", http_status=400)
        fault = self._take_fault(entry.type)
        if fault is not None:
            entry.fault = fault.kind
            early = self._apply_fault(fault)
            if early is not None:
                return early
        if entry.type == "keygen":
            return self._keygen(params, carrier)
        if not self._authorised(key, carrier, request):
            return Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
        denial = self._denied.get(entry.type or "")
        if denial is not None:
            return (
                _unauth("16") if denial == "unauth" else Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
            )
        response = self._dispatch(params, entry)
        if fault is not None and fault.kind == "reset-after":
            return Response(reset=True)
        return response

    def _take_fault(self, request_type: str | None) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.type is None or fault.type == request_type:
                    del self._faults[index]
                    return fault
        return None

    def _apply_fault(self, fault: _Fault) -> Response | None:
        match fault.kind:
            case "pass" | "reset-after":
                return None
            case "http":
                return _http_error(fault.status)
            case "code":
                return _xml_error(fault.code, "Session timed out" if fault.code == "22" else "Error")
            case "unauth":
                return _unauth("22" if fault.code == "22" else "16")
            case "redirect":
                body = f'<html><body><a href="{fault.location}">Moved</a></body></html>'.encode()
                return Response(fault.status, body, {"Location": fault.location, "Content-Type": "text/html"})
            case "reset":
                return Response(reset=True)
            case "delay":
                self._sleep(fault.seconds)
                return None
            case "not-xml":
                return Response(200, NOT_XML, {"Content-Type": "text/plain"})
            case "malicious":
                body = BILLION_LAUGHS if fault.variant == "billion-laughs" else EXTERNAL_ENTITY
                return Response(200, body, dict(_XML_HEADERS))

    def _keygen(self, params: dict[str, str], carrier: KeyCarrier | None) -> Response:
        user, password = params.get("user"), params.get("password")
        with self._lock:
            # Basic authentication cannot be used to get a key (docs/protocols.md#pan-os-keygen).
            if not user or password is None or self._users.get(user) != password:
                return Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
            self.keygen_count += 1
            if self.keygen_rotates:
                self._epoch[user] = self._epoch.get(user, 0) + 1
                for old in [k for k, owner in self._keys.items() if owner == user]:
                    del self._keys[old]
            key = _derive_key(self.serial, user, password, self._epoch.get(user, 0))
            self._keys[key] = user
            self._issued.append(key)
        return _xml_success(_element("key", text=key))

    def _authorised(self, key: str | None, carrier: KeyCarrier | None, request: Request) -> bool:
        with self._lock:
            if carrier == "basic":
                valid = _basic_ok(request, self._users)
            else:
                valid = key is not None and key in self._keys
            if not valid:
                return False
            if self._revoke_after is not None:
                if self._revoke_after <= 0:
                    self._revoke_after = None
                    self.revoke_keys()
                    return False
                self._revoke_after -= 1
            return True

    def _dispatch(self, params: dict[str, str], entry: LoggedRequest) -> Response:
        device = self._device
        if entry.target:
            relayed = self._relay(entry.target)
            if isinstance(relayed, Response):
                return relayed
            device = relayed
        vsys = params.get("vsys")
        if device.kind == "firewall" and vsys and vsys not in device.vsys:
            return _xml_error("400", f"vsys {vsys} does not exist on {device.serial}")
        # The device's management plane does one request's work at a time; a Panorama relaying
        # `target=` requests hands them to each firewall's own plane.
        with device.plane:
            match params.get("type"):
                case "user-id":
                    return self._user_id(device, vsys, params.get("cmd"), entry)
                case "op":
                    return self._op(device, vsys, params.get("cmd"))
                case "config":
                    return self._config(device, params)
                case None:
                    return _xml_error("400", "Missing parameter: type")
                case other:
                    return _xml_error("400", f"Request type {other} is not emulated")

    def _relay(self, target: str) -> Device | Response:
        """The managed firewall a `target=` request goes to, or the error Panorama answers."""
        if self.kind != "panorama":
            return _xml_error("17", f"target {target}: only Panorama relays requests to other devices")
        with self._lock:
            child = self._children.get(target)
        if child is None:
            # The real text and code are not captured (docs/protocols.md#pan-os-errors) [unverified].
            return _xml_error("17", f"Target device {target} is not a managed device")
        if child.unreachable is not None:
            if child.unreachable == "timeout":
                self._sleep(self.unreachable_delay)
            # Text and code [unverified]; no code, so a client cannot mistake it for code 22.
            return _xml_error(None, f"Failed to redirect request: device {target} is not connected")
        return child

    # -- type=user-id --------------------------------------------------------------------------

    def _user_id(self, device: Device, vsys: str | None, cmd: str | None, log: LoggedRequest) -> Response:
        payload = _uid_payload(cmd)
        if isinstance(payload, Response):
            return payload
        _log_uid(payload, log)
        if not self.ha_active:
            # A passive member answers success and never applies the message (pan-os-python
            # pull request 622): the silent drop SPEC-level HA handling exists for.
            return _uid_response([section.tag for section in payload], {})
        failures: dict[str, list[tuple[str, str]]] = {}
        with self._lock:
            table = device.table(device.table_name(vsys))
            self._expire(table)
            for section in payload:
                found = failures.setdefault(section.tag, [])
                if section.tag == "clear":
                    if section.find("registered-ip") is not None:
                        table.clear()
                    continue
                apply = self._register if section.tag == "register" else self._unregister
                for element in section.findall("entry"):
                    apply(device, table, element, found)
        cost = self.time_scale * device.slowness * self.ingest_cost.seconds(log.uid)
        if cost > 0:
            self._sleep(cost)  # still holding the device's plane: the next request waits behind it
        verbs = [section.tag for section in payload]
        return _uid_response(verbs, {verb: found for verb, found in failures.items() if found})

    def _register(
        self,
        device: Device,
        table: dict[str, IpRecord],
        element: ET.Element,
        failures: list[tuple[str, str]],
    ) -> None:
        raw_ip = element.get("ip") or ""
        ip = self._valid_ip(raw_ip)
        if ip is None:
            failures.append((raw_ip, INVALID_IP))
            return
        wanted = self._wanted_tags(element)
        if isinstance(wanted, str):
            failures.append((raw_ip, f"Failed to register {raw_ip}: {wanted}"))
            return
        record = table.get(ip)
        existing = set(record.tags) if record is not None else set()
        if len(existing | set(wanted)) > MAX_TAGS_PER_IP:
            failures.append((raw_ip, f"Failed to register {raw_ip}: more than {MAX_TAGS_PER_IP} tags"))
            return
        if record is None:
            if device.capacity is not None and device.ip_count() >= device.capacity:
                # Text [unverified]: PAN-OS logs "max registered-ip for the platform reached"
                # (knowledge base kA14u000000sdArCAI); the per-entry wording is not captured.
                failures.append(
                    (
                        raw_ip,
                        f"Failed to register {raw_ip}: max registered-ip for the platform reached "
                        f"({device.capacity})",
                    )
                )
                return
            record = table[ip] = IpRecord()
        # Re-registering sets persistence and refreshes timeouts (docs/protocols.md#pan-os-uid-message) [unverified].
        record.persistent = (element.get("persistent") or "1").strip() == "1"
        for tag, expires in wanted.items():
            if tag in record.tags and self.duplicate_mode == "error-entry":
                failures.append((raw_ip, f"tag {tag} already exists, ignore"))
            record.tags[tag] = expires

    def _wanted_tags(self, element: ET.Element) -> dict[str, float | None] | str:
        """tag -> expiry a register entry asks for, or what is wrong with the entry."""
        if (element.get("persistent") or "1").strip() not in {"0", "1"}:
            return "persistent must be 0 or 1"
        wanted: dict[str, float | None] = {}
        for member in element.findall("tag/member"):
            tag = (member.text or "").strip()
            if not tag:
                return "empty tag"
            if len(tag) > MAX_TAG_LENGTH:
                # The device's answer is not captured (docs/protocols.md#pan-os-uid-message)
                # [unverified]; reject the entry.
                return f"tag longer than {MAX_TAG_LENGTH}"
            timeout = _timeout(member.get("timeout"))
            if timeout is None:
                return f"timeout must be 0-{MAX_TIMEOUT}"
            wanted[tag] = None if timeout == 0 else self.clock + timeout
        return wanted or "no tag"

    def _unregister(
        self,
        device: Device,
        table: dict[str, IpRecord],
        element: ET.Element,
        failures: list[tuple[str, str]],
    ) -> None:
        raw_ip = element.get("ip") or ""
        ip = self._valid_ip(raw_ip)
        if ip is None:
            failures.append((raw_ip, INVALID_IP))
            return
        record = table.get(ip)
        if record is None:
            if self.duplicate_mode == "error-entry":
                failures.append((raw_ip, f"ip {raw_ip} does not exist, ignore unreg"))
            return
        tags = [(member.text or "").strip() for member in element.findall("tag/member")]
        if not tags:
            # Unverified on a device (docs/protocols.md#pan-os-uid-message): modelled as the destructive reading, so a
            # client that ever sends a tagless unregister is caught by other tools' tags vanishing.
            tags = list(record.tags)
        for tag in tags:
            if tag in record.tags:
                del record.tags[tag]
            elif self.duplicate_mode == "error-entry":
                failures.append((raw_ip, f"tag {tag} does not exist, ignore unreg"))
        if not record.tags:
            del table[ip]

    def _valid_ip(self, text: str) -> str | None:
        """The canonical form of a registrable address, or None for the device's `Invalid IP address`.

        The attribute must be the address alone: no surrounding spaces, no IPv6 zone (`%eth0`),
        which the registered-IP table has no place for [unverified].
        """
        if text in self._refused:
            return None
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return _ipv4_set(text) if self.allow_ranges else None
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
            return None
        return address.compressed

    # -- type=op -------------------------------------------------------------------------------

    def _op(self, device: Device, vsys: str | None, cmd: str | None) -> Response:
        if not cmd:
            return _xml_error("400", "Missing parameter: cmd")
        command = _parse(cmd)
        if command is None:
            return _xml_error("18", "Malformed command")
        query = command.find("object/registered-ip")
        if command.tag == "show" and query is not None:
            return self._show_registered_ip(device, vsys, query)
        if command.tag == "show" and command.find("object/dynamic-address-group") is not None:
            return self._show_dags(device)
        if command.tag == "show" and command.find("high-availability/state") is not None:
            return self._show_ha_state(device)
        return _xml_error("17", "Invalid command: not emulated")

    def _show_ha_state(self, device: Device) -> Response:
        """`show high-availability state`: Panorama puts the local state at `local-info/state`, a
        firewall at `group/local-info/state`; HA not enabled is `<enabled>no</enabled>`. The
        fields beside the state are left out [unverified beyond the state's place]."""
        if self.ha_unreadable == "403":
            return Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
        if self.ha_unreadable == "garbage":
            return Response(200, NOT_XML, {"Content-Type": "text/plain"})
        if self.ha_unreadable == "timeout":
            self._sleep(self.unreachable_delay)
            return _http_error(504)
        result = _element("result")
        if self.ha_state is None:
            ET.SubElement(result, "enabled").text = "no"
            return _xml_success(result, wrap=False)
        ET.SubElement(result, "enabled").text = "yes"
        holder = result if device.kind == "panorama" else ET.SubElement(result, "group")
        if device.kind == "firewall":
            ET.SubElement(holder, "mode").text = "Active-Passive"
        ET.SubElement(ET.SubElement(holder, "local-info"), "state").text = self.ha_state
        if self.ha_peer_state is not None:
            ET.SubElement(ET.SubElement(holder, "peer-info"), "state").text = self.ha_peer_state
        return _xml_success(result, wrap=False)

    def _show_registered_ip(self, device: Device, vsys: str | None, query: ET.Element) -> Response:
        selection = _registered_ip_query(query)
        if isinstance(selection, Response):
            return selection
        ip_filter, tag_filter, limit, start = selection
        with self._lock:
            table = device.table(device.table_name(vsys))
            self._expire(table)
            # Device order (module docstring). Several tag filters: an IP must carry all [unverified].
            matching = [
                (ip, record.persistent, record.from_agent, list(record.tags))
                for ip, record in table.items()
                if (ip_filter is None or ip == ip_filter) and all(tag in record.tags for tag in tag_filter)
            ]
        result = ET.Element("result")
        if self.legacy_outfile and len(matching) > PAGE_LIMIT:
            line = ET.SubElement(ET.SubElement(result, "msg"), "line")
            ET.SubElement(line, "outfile").text = "/var/log/clioutput/regipdump"
            return _xml_success(result, wrap=False)
        page = matching[start - 1 : start - 1 + limit]
        for ip, persistent, from_agent, tags in page:
            element = ET.SubElement(
                result,
                "entry",
                {
                    "ip": ip,
                    "from_agent": "1" if from_agent else "0",
                    "persistent": "1" if persistent else "0",
                },
            )
            tag_element = ET.SubElement(element, "tag")
            for tag in tags:
                ET.SubElement(tag_element, "member").text = tag
        ET.SubElement(result, "count").text = str(len(page))
        return _xml_success(result, wrap=False)

    def _show_dags(self, device: Device) -> Response:
        """`show object dynamic-address-group all`, from the running configuration's groups."""
        result = ET.Element("result")
        groups = ET.SubElement(result, "dyn-addr-grp")
        with self._lock:
            for device_group, vsys, definition in _dynamic_groups(device.running):
                dag = self._membership(device, definition, device_group, vsys)
                entry = ET.SubElement(groups, "entry")
                ET.SubElement(entry, "vsys").text = device.table_name(vsys)
                ET.SubElement(entry, "group-name").text = dag.name
                ET.SubElement(entry, "filter").text = dag.filter
                if dag.members is None:
                    continue  # a filter the emulator cannot evaluate: no member list rather than a guess
                members = ET.SubElement(entry, "member-list")
                for ip in dag.members:
                    ET.SubElement(members, "entry", {"name": ip, "type": "registered-ip"})
        return _xml_success(result, wrap=False, attrs={"cmd": "status"})

    # -- type=config ---------------------------------------------------------------------------

    def _config(self, device: Device, params: dict[str, str]) -> Response:
        """`action=show` reads the running configuration, `action=get` the candidate.

        See docs/protocols.md#pan-os-address-groups. An xpath naming several nodes
        (`.../device-group/entry/address-group`) answers each of them in turn inside `<result>`,
        without the device-group names; a reader that needs them asks for `.../device-group` instead. Whether `show` takes such an xpath on a real
        device is not captured [unverified].
        """
        action = params.get("action")
        if action not in {"show", "get"}:
            return _xml_error("400", f"config action {action!r} is not emulated")
        xpath = params.get("xpath") or "/config"
        with self._lock:
            nodes = _select_config(device.running if action == "show" else device.candidate, xpath)
            if nodes is None:
                return _xml_error("6", "Bad Xpath")
            if not nodes and self.absent_config == "object-not-present":
                return _xml_error("7", "Object not present")
            if action == "show":
                result = ET.Element("result")
            else:
                # `get` counts what it found and answers code 19, "Success" [unverified detail].
                result = ET.Element("result", {"total-count": str(len(nodes)), "count": str(len(nodes))})
            result.extend(copy.deepcopy(node) for node in nodes)
        return _xml_success(result, wrap=False, attrs={} if action == "show" else {"code": "19"})


# ---------------------------------------------------------------------------------------------
# DAG filter evaluator


_TOKEN = re.compile(r"\s*(?:(\()|(\))|'([^']*)'|([^\s()']+))")


def compile_filter(text: str) -> Callable[[frozenset[str]], bool]:
    """Compile a DAG filter (`'t1' and ('t2' or 't3')`) into a predicate over an IP's tags.

    Grammar: quoted tags, `and`, `or`, parentheses. `and` binds tighter than `or`, as in most
    boolean grammars; PAN-OS precedence is not documented [unverified], so filters in tests should
    use parentheses when they mix the two. `not` is a reserved word whose support is unverified
    (docs/protocols.md#pan-os-address-groups), so it is rejected.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise ValueError(f"DAG filter longer than {MAX_FILTER_LENGTH} characters")
    tokens = _tokenize(text)
    parser = _FilterParser(tokens)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise ValueError(f"unexpected {tokens[parser.position][1]!r} in DAG filter {text!r}")
    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read DAG filter {text!r} at {position}")
        position = match.end()
        opening, closing, tag, word = match.groups()
        if opening:
            tokens.append(("(", "("))
        elif closing:
            tokens.append((")", ")"))
        elif tag is not None:
            tokens.append(("tag", tag))
        elif word.lower() in {"and", "or"}:
            tokens.append((word.lower(), word))
        elif word.lower() == "not":
            raise ValueError("'not' in a DAG filter is not supported (unverified on PAN-OS)")
        else:
            raise ValueError(f"tags in a DAG filter must be in single quotes: {word!r}")
    if not tokens:
        raise ValueError("empty DAG filter")
    return tokens


class _FilterParser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def expression(self) -> Callable[[frozenset[str]], bool]:
        terms = [self._term()]
        while self._peek() == "or":
            self.position += 1
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else (lambda tags: any(term(tags) for term in terms))

    def _term(self) -> Callable[[frozenset[str]], bool]:
        factors = [self._factor()]
        while self._peek() == "and":
            self.position += 1
            factors.append(self._factor())
        return factors[0] if len(factors) == 1 else (lambda tags: all(factor(tags) for factor in factors))

    def _factor(self) -> Callable[[frozenset[str]], bool]:
        kind = self._peek()
        if kind == "tag":
            name = self.tokens[self.position][1]
            self.position += 1
            return lambda tags: name in tags
        if kind == "(":
            self.position += 1
            inner = self.expression()
            if self._peek() != ")":
                raise ValueError("unbalanced parentheses in DAG filter")
            self.position += 1
            return inner
        found = "end of filter" if kind is None else repr(self.tokens[self.position][1])
        raise ValueError(f"expected a quoted tag or '(' in DAG filter, found {found}")


# ---------------------------------------------------------------------------------------------
# Request readers


def _is_ha_query(params: Mapping[str, str]) -> bool:
    command = _parse(params.get("cmd") or "") if params.get("type") == "op" else None
    return command is not None and command.find("high-availability/state") is not None


def _uid_payload(cmd: str | None) -> ET.Element | Response:
    """The `<payload>` of a uid-message, or the error its shape earns."""
    if not cmd:
        return _xml_error("400", "Missing parameter: cmd")
    message = _parse(cmd)
    if message is None or message.tag != "uid-message":
        return _xml_error("18", "Malformed uid-message: cmd is not a <uid-message> document")
    payload = message.find("payload")
    if (message.findtext("type") or "").strip() != "update" or payload is None:
        return _xml_error("18", "Malformed uid-message: <type>update</type> and <payload> are required")
    unknown = [section.tag for section in payload if section.tag not in {"register", "unregister", "clear"}]
    if unknown:
        return _xml_error("17", f"uid-message verb {unknown[0]} is not emulated")
    return payload


def _log_uid(payload: ET.Element, log: LoggedRequest) -> None:
    """What the message carried, per verb (a verb may appear in several sections)."""
    for section in payload:
        verb, entries = section.tag, section.findall("entry")
        log.uid[verb] = log.uid.get(verb, 0) + (1 if verb == "clear" else len(entries))
        log.uid_ips[verb] = log.uid_ips.get(verb, ()) + tuple(e.get("ip") or "" for e in entries)
        log.uid_pairs[verb] = log.uid_pairs.get(verb, frozenset()) | frozenset(
            (entry.get("ip") or "", member.text or "")
            for entry in entries
            for member in entry.findall("tag/member")
        )


def _registered_ip_query(query: ET.Element) -> tuple[str | None, list[str], int, int] | Response:
    """(ip filter, tag filters, limit, start-point) of a `show object registered-ip`, or its error."""
    ip_filter: str | None = None
    tag_filter: list[str] = []
    limit, start = PAGE_LIMIT, 1
    for child in query:
        text = (child.text or "").strip()
        match child.tag:
            case "all":
                pass
            case "ip":
                ip_filter = _canonical(text)
            case "tag":
                tag_filter.extend(e.get("name") or "" for e in child.findall("entry"))
            case "limit" | "start-point":
                if not text.isdigit() or int(text) < 1:
                    return _xml_error("17", f"Invalid value for {child.tag}: {text!r}")
                if child.tag == "limit":
                    limit = min(int(text), PAGE_LIMIT)
                else:
                    start = int(text)
            case other:
                return _xml_error("17", f"Invalid syntax: {other}")
    return ip_filter, tag_filter, limit, start


def _ipv4_set(text: str) -> str | None:
    """PAN-OS 10.0+: an IPv4 range or network, canonical (docs/protocols.md#pan-os-uid-message), or None."""
    if "-" in text:
        first, _, last = text.partition("-")
        try:
            low, high = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
        except ValueError:
            return None
        return f"{low}-{high}" if low <= high else None
    try:
        return str(ipaddress.IPv4Network(text, strict=True))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Configuration tree (address groups, docs/protocols.md#pan-os-address-groups)


def _config_skeleton(kind: Kind, vsys: Iterable[str]) -> ET.Element:
    """`<config>` with `shared` and the local device entry: its vsys (firewall) or device groups (Panorama)."""
    config = ET.Element("config")
    ET.SubElement(config, "shared")
    local = ET.SubElement(ET.SubElement(config, "devices"), "entry", {"name": LOCAL_DEVICE})
    if kind == "firewall":
        container = ET.SubElement(local, "vsys")
        for name in vsys:
            ET.SubElement(container, "entry", {"name": name})
    else:
        ET.SubElement(local, "device-group")
    return config


def _check_location(device: Device, device_group: str | None, vsys: str | None) -> None:
    if device_group is not None and vsys is not None:
        raise ValueError("an address group lives in a device group or a vsys, not both")
    if device_group is not None and device.kind != "panorama":
        raise ValueError("device groups exist on Panorama only")
    if vsys is not None and (device.kind != "firewall" or vsys not in device.vsys):
        raise ValueError(f"{device.serial} has no vsys {vsys}")


def _named(parent: ET.Element, name: str) -> ET.Element | None:
    return next((entry for entry in parent.findall("entry") if entry.get("name") == name), None)


def _local_device(config: ET.Element) -> ET.Element:
    devices = config.find("devices")
    local = None if devices is None else _named(devices, LOCAL_DEVICE)
    assert local is not None, "the skeleton always holds the local device"
    return local


def _group_parent(
    config: ET.Element, device_group: str | None, vsys: str | None, *, create: bool
) -> ET.Element | None:
    """The element whose `address-group` holds a location's groups (a new device group if `create`)."""
    if vsys is not None:
        container = _local_device(config).find("vsys")
        return None if container is None else _named(container, vsys)
    if device_group is None:
        return config.find("shared")
    groups = _local_device(config).find("device-group")
    assert groups is not None, "a Panorama skeleton always holds device-group"
    found = _named(groups, device_group)
    if found is None and create:
        found = ET.SubElement(groups, "entry", {"name": device_group})
    return found


def _group_entry(
    config: ET.Element, name: str, device_group: str | None, vsys: str | None
) -> tuple[ET.Element, ET.Element, ET.Element] | None:
    """(location element, its `address-group`, the entry) of the group `name`, if it is there."""
    parent = _group_parent(config, device_group, vsys, create=False)
    groups = None if parent is None else parent.find("address-group")
    entry = None if groups is None else _named(groups, name)
    if parent is None or groups is None or entry is None:
        return None
    return parent, groups, entry


def _dynamic_groups(config: ET.Element) -> Iterator[tuple[str | None, str | None, ET.Element]]:
    """(device group, vsys, entry) of every dynamic address group: shared, device groups, vsys."""
    local = _local_device(config)
    locations: list[tuple[str | None, str | None, ET.Element | None]] = [(None, None, config.find("shared"))]
    locations += [(entry.get("name"), None, entry) for entry in local.findall("device-group/entry")]
    locations += [(None, entry.get("name"), entry) for entry in local.findall("vsys/entry")]
    for device_group, vsys, parent in locations:
        if parent is None:
            continue
        for entry in parent.findall("address-group/entry"):
            if entry.find("dynamic/filter") is not None:
                yield device_group, vsys, entry


def _select_config(config: ET.Element, xpath: str) -> list[ET.Element] | None:
    """The nodes an absolute `/config/...` xpath names, or None when the xpath cannot be read.

    ElementTree's path language covers the xpaths of docs/protocols.md#pan-os-address-groups (child steps, `entry`
    without a predicate, `[@name='…']`); anything it cannot read is PAN-OS code 6, Bad Xpath.
    """
    path = xpath.strip().rstrip("/")
    if path == "/config":
        return [config]
    if not path.startswith("/config/"):
        return None
    try:
        return config.findall("./" + path.removeprefix("/config/"))
    except (SyntaxError, KeyError, TypeError):  # what ElementPath raises for paths it cannot compile
        return None


# ---------------------------------------------------------------------------------------------
# Helpers


def _merge_params(request: Request) -> dict[str, str]:
    """Query string first, then the body (urlencoded or multipart, whose `file` part is the cmd)."""
    params = {name: values[-1] for name, values in request.query.items() if values}
    params.update(_body_params(request))
    return params


def _body_params(request: Request) -> dict[str, str]:
    if not request.body:
        return {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return _multipart(request.body, content_type)
    body = parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in body.items() if values}


def _multipart(body: bytes, content_type: str) -> dict[str, str]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        raw = part.get_payload(decode=True)
        value = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
        fields["cmd" if name == "file" and "cmd" not in fields else str(name)] = value
    return fields


def _find_key(
    request: Request, params: dict[str, str]
) -> tuple[str | None, KeyCarrier | None, tuple[KeyCarrier, ...]]:
    """The key and its carrier (header, then query, then body, then Basic auth), and every carrier used."""
    found: list[tuple[KeyCarrier, str | None]] = []
    if request.headers.get("x-pan-key"):
        found.append(("header", request.headers["x-pan-key"]))
    query_key = request.query.get("key", [""])[-1]
    if query_key:
        found.append(("query", query_key))
    body_key = params.get("key")
    if body_key and (not query_key or _body_params(request).get("key")):
        found.append(("body", body_key))
    if request.headers.get("authorization", "").lower().startswith("basic "):
        found.append(("basic", None))
    if not found:
        return None, None, ()
    carrier, key = found[0]
    return key, carrier, tuple(item[0] for item in found)


def _basic_ok(request: Request, users: dict[str, str]) -> bool:
    try:
        decoded = base64.b64decode(request.headers["authorization"][6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    return user in users and users[user] == password


def _derive_key(serial: str, user: str, password: str, epoch: int) -> str:
    """A device's key is its own (PAN-OS encrypts it with the device's master key): the other
    member of a pair refuses it."""
    digest = hashlib.sha256(f"{serial}:{user}:{password}:{epoch}".encode()).digest()
    return "LUFRPT" + base64.b64encode(digest).decode()


def _timeout(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return 0
    text = value.strip()
    if not text.isdigit() or int(text) > MAX_TIMEOUT:
        return None
    return int(text)


def _canonical(ip: str) -> str:
    try:
        return ipaddress.ip_address(ip.strip()).compressed
    except ValueError:
        return ip.strip()


@functools.cache  # the listing sorts the whole table on every page; parse each address once
def _ip_key(ip: str) -> tuple[int, int, str]:
    first = ip.split("-", 1)[0].split("/", 1)[0]
    try:
        address = ipaddress.ip_address(first)
    except ValueError:
        return (9, 0, ip)
    return (address.version, int(address), ip)


def _parse(text: str) -> ET.Element | None:
    try:
        root: ET.Element = SafeET.fromstring(text)
    except (ET.ParseError, DefusedXmlException):
        return None
    return root


def _element(tag: str, *, text: str | None = None) -> ET.Element:
    element = ET.Element(tag)
    element.text = text
    return element


def _xml_success(content: ET.Element, *, wrap: bool = True, attrs: dict[str, str] | None = None) -> Response:
    root = ET.Element("response", {**(attrs or {}), "status": "success"})
    if wrap:
        ET.SubElement(root, "result").append(content)
    else:
        root.append(content)
    return Response(200, ET.tostring(root, encoding="utf-8"), dict(_XML_HEADERS))


def _xml_error(code: str | None, text: str, *, http_status: int = 200, status: str = "error") -> Response:
    root = ET.Element("response", {"status": status, **({"code": code} if code else {})})
    ET.SubElement(ET.SubElement(root, "msg"), "line").text = text
    return Response(http_status, ET.tostring(root, encoding="utf-8"), dict(_XML_HEADERS))


def _unauth(code: UnauthCode) -> Response:
    """The `status="unauth"` answer of docs/protocols.md#pan-os-errors, sent with HTTP 200."""
    return _xml_error(code, _UNAUTH_TEXT[code], status="unauth")


def _http_error(status: int) -> Response:
    """A bare HTTP error page, as the web server in front of the API sends it: no XML."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"<html><body><h1>{status} {phrase}</h1></body></html>".encode()
    return Response(status, body, {"Content-Type": "text/html"})


def _uid_response(verbs: list[str], failures: dict[str, list[tuple[str, str]]]) -> Response:
    """Success with an empty element per verb, or status="error" listing the failing entries (§5.1-5.2)."""
    uid = ET.Element("uid-response")
    ET.SubElement(uid, "version").text = "2.0"
    payload = ET.SubElement(uid, "payload")
    if not failures:
        for verb in dict.fromkeys(verbs):
            ET.SubElement(payload, verb)
        return _xml_success(uid)
    for verb, entries in failures.items():
        section = ET.SubElement(payload, verb)
        for ip, message in entries:
            ET.SubElement(section, "entry", {"ip": ip, "message": message})
    root = ET.Element("response", {"status": "error"})
    ET.SubElement(ET.SubElement(root, "msg"), "line").append(uid)
    return Response(200, ET.tostring(root, encoding="utf-8"), dict(_XML_HEADERS))
