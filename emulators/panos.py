"""A PAN-OS device (firewall, or Panorama with child firewalls) for LoopbackServer.

It follows reference §8 (panos-xml-api.md): one `/api/` route taking GET and POST, query and
form/multipart parameters merged, the key from `X-PAN-KEY`, `key=` or Basic auth, `type=keygen`,
`type=user-id` (register, unregister, clear) with per-entry results, and `type=op`
`show object registered-ip` / `show object dynamic-address-group`. Everything the real device
leaves open (message texts, codes for unknown serials, table-full answers) is marked
[unverified] where it is chosen.

Listing order: `show object registered-ip` returns entries sorted by IP (IPv4 before IPv6,
numerically; ranges and networks by their first address, then text). The order is stable while the
table does not change, which is what paging needs.
"""

import base64
import functools
import hashlib
import ipaddress
import re
import threading
import time
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
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

INVALID_CREDENTIAL = (
    b"<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>"
)
MAX_TAGS_PER_IP = 32
MAX_TAG_LENGTH = 127
MAX_TIMEOUT = 2_592_000
PAGE_LIMIT = 500
MAX_REQUEST_BYTES = 5_000_000
MAX_FILTER_LENGTH = 2047
_XML_HEADERS = {"Content-Type": "application/xml; charset=UTF-8"}

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


@dataclass
class IpRecord:
    """One registered IP: tag -> expiry on the virtual clock (None = never), as §8.4 describes."""

    tags: dict[str, float | None] = field(default_factory=dict)
    persistent: bool = True
    from_agent: bool = False


@dataclass
class Device:
    serial: str
    kind: Kind
    vsys: tuple[str, ...]
    capacity: int | None = None
    tables: dict[str, dict[str, IpRecord]] = field(default_factory=dict)
    unreachable: UnreachableMode | None = None
    dags: list[tuple[str, str, str]] = field(default_factory=list)  # (name, filter, table name)

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
    uid_ips: dict[str, tuple[str, ...]] = field(default_factory=dict)
    uid_pairs: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)  # verb -> (ip, tag)
    status: int = 0
    fault: str | None = None


@dataclass
class _Fault:
    kind: Literal["pass", "http", "code", "reset", "reset-after", "delay", "not-xml", "malicious"]
    type: str | None = None  # only requests of this `type=`; None matches any
    status: int = 503
    code: str = "22"
    seconds: float = 0.0
    variant: MaliciousVariant = "billion-laughs"


class PanosEmulator:
    """A PAN-OS firewall or Panorama, served through emulators.server.LoopbackServer.

    Fault knobs (each applies to the next matching requests, in the order they were queued):
    fail_next (HTTP 5xx), error_code_next (status="error" code=22 by default), reset_next
    (connection reset, before or after applying the request), delay_next, not_xml_next,
    malicious_next (billion laughs / external entity), revoke_keys_after (403 after N calls),
    set_unreachable (a Panorama child that errors or times out), set_capacity (table full),
    concurrency_limit (reject above N in flight), max_request_bytes (HTTP 400 above it),
    and `delay` (every response slowed).
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
        self.clock = 0.0  # virtual seconds; advance() moves it and expires timed-out tags
        self.max_concurrency = 0
        self.keygen_count = 0
        self._lock = threading.RLock()
        self._in_flight = 0
        self._device = Device(serial=serial, kind=kind, vsys=tuple(vsys), capacity=capacity)
        self._children: dict[str, Device] = {}
        self._keys: dict[str, str | None] = dict.fromkeys(api_keys)  # key -> user (None: static)
        self._users = dict(users or {})
        self._epoch: dict[str, int] = {}
        self._faults: deque[_Fault] = deque()
        self._revoke_after: int | None = None
        self._log: list[LoggedRequest] = []
        self._issued: list[str] = []
        for child in firewalls:
            self.add_firewall(child)

    # -- configuration and test helpers --------------------------------------------------------

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

    def set_capacity(self, capacity: int | None, *, serial: str | None = None) -> None:
        """Maximum registered IPs on the device; registering a new IP past it fails per entry."""
        with self._lock:
            self._select(serial).capacity = capacity

    def fill_table(self, *, serial: str | None = None) -> None:
        """Make the registered-IP table full at its current size."""
        with self._lock:
            device = self._select(serial)
            device.capacity = device.ip_count()

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
        """ip -> current tags (expired ones gone)."""
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

    def add_dag(self, name: str, filter: str, *, serial: str | None = None, vsys: str | None = None) -> None:
        """A dynamic address group, listed by `show object dynamic-address-group all`."""
        compile_filter(filter)
        with self._lock:
            device = self._select(serial)
            device.dags.append((name, filter, device.table_name(vsys)))

    def dag_members(self, filter: str, *, serial: str | None = None, vsys: str | None = None) -> list[str]:
        """IPs (sorted) whose current tags satisfy a DAG filter such as `'a' and ('b' or 'c')`."""
        predicate = compile_filter(filter)
        with self._lock:
            table = self._table(serial, vsys)
            return sorted(
                (ip for ip, record in table.items() if predicate(frozenset(record.tags))), key=_ip_key
            )

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

    @property
    def clear_sent(self) -> bool:
        """Whether any request carried `<clear>` (our client must never send it)."""
        return any("clear" in entry.uid for entry in self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
            self.max_concurrency = 0

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
        with self._lock:
            self._in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self._in_flight)
            over_limit = self.concurrency_limit is not None and self._in_flight > self.concurrency_limit
        try:
            if self.delay:
                time.sleep(self.delay)
            if over_limit:
                return _xml_error("503", "Too many concurrent API requests", http_status=503)
            return self._handle(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _handle(self, request: Request) -> Response:
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
        )
        with self._lock:
            self._log.append(entry)
        response = self._respond(request, params, key, carrier, entry)
        entry.status = response.status
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
            case "pass":
                return None
            case "http":
                body = f"<html><body><h1>{fault.status} Service Unavailable</h1></body></html>".encode()
                return Response(fault.status, body, {"Content-Type": "text/html"})
            case "code":
                return _xml_error(fault.code, "Session timed out" if fault.code == "22" else "Error")
            case "reset":
                return Response(reset=True)
            case "delay":
                time.sleep(fault.seconds)
            case "not-xml":
                return Response(200, NOT_XML, {"Content-Type": "text/plain"})
            case "malicious":
                body = BILLION_LAUGHS if fault.variant == "billion-laughs" else EXTERNAL_ENTITY
                return Response(200, body, dict(_XML_HEADERS))
            case "reset-after":
                pass
        return None

    def _keygen(self, params: dict[str, str], carrier: KeyCarrier | None) -> Response:
        user, password = params.get("user"), params.get("password")
        with self._lock:
            # Basic authentication cannot be used to get a key (reference §1.2).
            if not user or password is None or self._users.get(user) != password:
                return Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
            self.keygen_count += 1
            if self.keygen_rotates:
                self._epoch[user] = self._epoch.get(user, 0) + 1
                for old in [k for k, owner in self._keys.items() if owner == user]:
                    del self._keys[old]
            key = _derive_key(user, password, self._epoch.get(user, 0))
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
        target = params.get("target")
        device = self._device
        if target:
            if self.kind != "panorama":
                return _xml_error("17", f"target {target}: only Panorama relays requests to other devices")
            with self._lock:
                child = self._children.get(target)
            if child is None:
                # The real text and code are not captured (reference §11.10) [unverified].
                return _xml_error("17", f"Target device {target} is not a managed device")
            if child.unreachable is not None:
                if child.unreachable == "timeout":
                    time.sleep(self.unreachable_delay)
                # Text and code [unverified]; no code, so a client cannot mistake it for code 22.
                return _xml_error(None, f"Failed to redirect request: device {target} is not connected")
            device = child
        vsys = params.get("vsys")
        if device.kind == "firewall" and vsys and vsys not in device.vsys:
            return _xml_error("400", f"vsys {vsys} does not exist on {device.serial}")
        match params.get("type"):
            case "user-id":
                return self._user_id(device, vsys, params.get("cmd"), entry)
            case "op":
                return self._op(device, vsys, params.get("cmd"))
            case None:
                return _xml_error("400", "Missing parameter: type")
            case other:
                return _xml_error("400", f"Request type {other} is not emulated")

    # -- type=user-id --------------------------------------------------------------------------

    def _user_id(self, device: Device, vsys: str | None, cmd: str | None, log: LoggedRequest) -> Response:
        if not cmd:
            return _xml_error("400", "Missing parameter: cmd")
        message = _parse(cmd)
        if message is None or message.tag != "uid-message":
            return _xml_error("18", "Malformed uid-message: cmd is not a <uid-message> document")
        payload = message.find("payload")
        if (message.findtext("type") or "").strip() != "update" or payload is None:
            return _xml_error("18", "Malformed uid-message: <type>update</type> and <payload> are required")
        unknown = [
            section.tag for section in payload if section.tag not in {"register", "unregister", "clear"}
        ]
        if unknown:
            return _xml_error("17", f"uid-message verb {unknown[0]} is not emulated")
        for section in payload:
            count = 1 if section.tag == "clear" else len(section.findall("entry"))
            log.uid[section.tag] = log.uid.get(section.tag, 0) + count
            log.uid_ips[section.tag] = tuple(e.get("ip") or "" for e in section.findall("entry"))
            log.uid_pairs[section.tag] = frozenset(
                (entry.get("ip") or "", member.text or "")
                for entry in section.findall("entry")
                for member in entry.findall("tag/member")
            )
        failures: dict[str, list[tuple[str, str]]] = {}
        with self._lock:
            table = device.table(device.table_name(vsys))
            self._expire(table)
            for section in payload:
                match section.tag:
                    case "register":
                        for element in section.findall("entry"):
                            self._register(device, table, element, failures.setdefault("register", []))
                    case "unregister":
                        for element in section.findall("entry"):
                            self._unregister(table, element, failures.setdefault("unregister", []))
                    case "clear":
                        if section.find("registered-ip") is not None:
                            table.clear()
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
            failures.append((raw_ip, f"Failed to register {raw_ip}: invalid IP address"))
            return
        persistent_attr = (element.get("persistent") or "1").strip()
        if persistent_attr not in {"0", "1"}:
            failures.append((raw_ip, f"Failed to register {raw_ip}: persistent must be 0 or 1"))
            return
        wanted: dict[str, float | None] = {}
        for member in element.findall("tag/member"):
            tag = (member.text or "").strip()
            if not tag:
                failures.append((raw_ip, f"Failed to register {raw_ip}: empty tag"))
                return
            if len(tag) > MAX_TAG_LENGTH:
                # The device's answer is not captured (reference §6) [unverified]; reject the entry.
                failures.append((raw_ip, f"Failed to register {raw_ip}: tag longer than {MAX_TAG_LENGTH}"))
                return
            timeout = _timeout(member.get("timeout"))
            if timeout is None:
                failures.append((raw_ip, f"Failed to register {raw_ip}: timeout must be 0-{MAX_TIMEOUT}"))
                return
            wanted[tag] = None if timeout == 0 else self.clock + timeout
        if not wanted:
            failures.append((raw_ip, f"Failed to register {raw_ip}: no tag"))
            return
        record = table.get(ip)
        existing = set(record.tags) if record is not None else set()
        if len(existing | set(wanted)) > MAX_TAGS_PER_IP:
            failures.append((raw_ip, f"Failed to register {raw_ip}: more than {MAX_TAGS_PER_IP} tags"))
            return
        if record is None:
            if device.capacity is not None and device.ip_count() >= device.capacity:
                # Text [unverified]: the KB names "max registered-ip ... reached" in the system log.
                failures.append(
                    (raw_ip, f"Failed to register {raw_ip}: max registered-ip reached ({device.capacity})")
                )
                return
            record = table[ip] = IpRecord()
        # Re-registering sets persistence and refreshes timeouts (reference §11.2) [unverified].
        record.persistent = persistent_attr == "1"
        for tag, expires in wanted.items():
            if tag in record.tags and self.duplicate_mode == "error-entry":
                failures.append((raw_ip, f"tag {tag} already exists, ignore"))
            record.tags[tag] = expires

    def _unregister(
        self, table: dict[str, IpRecord], element: ET.Element, failures: list[tuple[str, str]]
    ) -> None:
        raw_ip = element.get("ip") or ""
        ip = self._valid_ip(raw_ip)
        if ip is None:
            failures.append((raw_ip, f"Failed to unregister {raw_ip}: invalid IP address"))
            return
        record = table.get(ip)
        if record is None:
            if self.duplicate_mode == "error-entry":
                failures.append((raw_ip, f"ip {raw_ip} does not exist, ignore unreg"))
            return
        tags = [(member.text or "").strip() for member in element.findall("tag/member")]
        if not tags:
            # Unverified on a device (reference §11.4): modelled as the destructive reading, so a
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
        text = text.strip()
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            pass
        if not self.allow_ranges:
            return None
        # PAN-OS 10.0+: IPv4 ranges and networks only (reference §2.2).
        if "-" in text:
            first, _, last = text.partition("-")
            try:
                low, high = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
            except ValueError:
                return None
            return f"{low}-{high}" if low <= high else None
        try:
            return str(ipaddress.IPv4Network(text, strict=True))
        except ValueError:
            return None

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
        return _xml_error("17", "Invalid command: not emulated")

    def _show_registered_ip(self, device: Device, vsys: str | None, query: ET.Element) -> Response:
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
        with self._lock:
            table = device.table(device.table_name(vsys))
            self._expire(table)
            # Several tag filters: an IP must carry all of them [unverified].
            matching = [
                (ip, record.persistent, record.from_agent, sorted(record.tags))
                for ip, record in table.items()
                if (ip_filter is None or ip == ip_filter) and all(tag in record.tags for tag in tag_filter)
            ]
        matching.sort(key=lambda item: _ip_key(item[0]))
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
        result = ET.Element("result")
        groups = ET.SubElement(result, "dyn-addr-grp")
        with self._lock:
            for name, dag_filter, table_name in device.dags:
                table = device.table(table_name)
                self._expire(table)
                predicate = compile_filter(dag_filter)
                entry = ET.SubElement(groups, "entry")
                ET.SubElement(entry, "vsys").text = table_name
                ET.SubElement(entry, "group-name").text = name
                ET.SubElement(entry, "filter").text = dag_filter
                members = ET.SubElement(entry, "member-list")
                for ip in sorted(table, key=_ip_key):
                    if predicate(frozenset(table[ip].tags)):
                        ET.SubElement(members, "entry", {"name": ip, "type": "registered-ip"})
        return _xml_success(result, wrap=False, attrs={"cmd": "status"})


# ---------------------------------------------------------------------------------------------
# DAG filter evaluator


_TOKEN = re.compile(r"\s*(?:(\()|(\))|'([^']*)'|([^\s()']+))")


def compile_filter(text: str) -> Callable[[frozenset[str]], bool]:
    """Compile a DAG filter (`'t1' and ('t2' or 't3')`) into a predicate over an IP's tags.

    Grammar: quoted tags, `and`, `or`, parentheses. `and` binds tighter than `or`, as in most
    boolean grammars; PAN-OS precedence is not documented [unverified], so filters in tests should
    use parentheses when they mix the two. `not` is a reserved word whose support is unverified
    (reference §7), so it is rejected.
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


def _derive_key(user: str, password: str, epoch: int) -> str:
    digest = hashlib.sha256(f"{user}:{password}:{epoch}".encode()).digest()
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


def _xml_error(code: str | None, text: str, *, http_status: int = 200) -> Response:
    root = ET.Element("response", {"status": "error", **({"code": code} if code else {})})
    ET.SubElement(ET.SubElement(root, "msg"), "line").text = text
    return Response(http_status, ET.tostring(root, encoding="utf-8"), dict(_XML_HEADERS))


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
