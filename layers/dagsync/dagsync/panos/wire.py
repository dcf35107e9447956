"""Building and parsing PAN-OS XML API documents; no I/O.

Requests are built with ElementTree so every tag and IP is escaped by the serialiser, never by
hand. Responses are parsed with defusedxml only: a device, proxy or attacker answering for the
device cannot make us expand entities or fetch external resources.
"""

import functools
import ipaddress
import re
import xml.etree.ElementTree as ET  # building only; parsing goes through defusedxml
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote_plus

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from dagsync.core.errors import PanosAuthError, PanosError
from dagsync.core.models import TagMap

Verb = Literal["register", "unregister"]
EntryClass = Literal["done", "failed"]

UID_VERBS: tuple[Verb, ...] = ("register", "unregister")
PAGE_LIMIT = 500  # the most entries `show object registered-ip` returns per call (PAN-OS 8.0+)
MAX_REQUEST_BYTES = 5_000_000  # documented ceiling for one POST
MAX_TAGS_PER_IP = 32  # docs/protocols.md#pan-os-registered-ip
MAX_TAG_LENGTH = 127

# Codes that a retry may cure: 22 is "session timed out". Every other code describes the request
# or the account and would fail the same way again. Internal-error codes (2-5, 11, 21) are not
# retried either: the reference does not say they are transient, and the next scheduled run retries.
_RETRYABLE_CODES = frozenset({"22"})
_AUTH_CODES = frozenset({"403"})
_PERMISSION_CODE = "16"  # "Unauthorized": the admin role lacks the permission the request needs
_SUCCESS_CODES = frozenset({"19", "20"})
_MAX_MESSAGE = 300

# Characters XML 1.0 cannot carry at all; ElementTree would serialise them into a broken document.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# The envelope around the entries of one uid-message, form-encoded, plus room for the other form
# fields (type, vsys, target). Used only by the size estimate, so it errs on the large side.
_ENVELOPE_BYTES = 600


@dataclass(frozen=True, slots=True)
class EntryMessage:
    """One `<entry ip=".." message=".."/>` from a uid-response: a per-entry result."""

    verb: str
    ip: str
    message: str

    @property
    def outcome(self) -> EntryClass:
        return classify_entry(self.message)


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """A response that did not fail as a whole: `status="success"`, or per-entry failures only."""

    status: str
    root: ET.Element
    entries: tuple[EntryMessage, ...] = ()

    @property
    def result(self) -> ET.Element | None:
        return self.root.find("result")


@dataclass(frozen=True, slots=True)
class RegisteredIp:
    """What the device reports for one registered IP.

    Timeouts are never readable (docs/protocols.md#pan-os-registered-ip).
    """

    tags: frozenset[str]
    persistent: bool = True
    from_agent: bool = False

    def merged(self, other: "RegisteredIp") -> "RegisteredIp":
        """One IP listed twice (a page shifted, or a duplicate row): the union of what both say."""
        return RegisteredIp(
            tags=self.tags | other.tags,
            persistent=self.persistent and other.persistent,
            from_agent=self.from_agent or other.from_agent,
        )


@dataclass(frozen=True, slots=True)
class DagDefinition:
    """One dynamic address group as the device defines it.

    `location` is where it is defined: "shared", "device-group:<name>" (or "device-group" when
    the answer does not say which), or "vsys:<name>".
    """

    name: str
    filter: str
    location: str


@dataclass(frozen=True, slots=True)
class RegisteredIpPage:
    entries: dict[str, RegisteredIp]
    raw_count: int  # <entry> elements in this page, duplicates included; drives paging


# ---------------------------------------------------------------------------------------------
# Requests


def build_uid_message(verb: Verb, entries: TagMap, *, persistent: bool = True) -> str:
    """One uid-message carrying a single verb, entries and tags sorted so equal input gives equal bytes.

    Register and unregister never share a message: PAN-OS's order of applying the sections of one
    payload is unverified (docs/protocols.md#pan-os-uid-message). Every entry lists its tags explicitly; an unregister
    entry without tags might drop every tag on the IP, other tools' included [unverified], so an
    empty tag set is refused rather than sent.
    """
    if verb not in UID_VERBS:
        raise ValueError(f"unsupported uid-message verb {verb!r}")
    if not entries:
        raise ValueError("a uid-message needs at least one entry")
    root = ET.Element("uid-message")
    ET.SubElement(root, "version").text = "2.0"
    ET.SubElement(root, "type").text = "update"
    section = ET.SubElement(ET.SubElement(root, "payload"), verb)
    for ip in sorted(entries):
        section.append(_entry_element(verb, ip, entries[ip], persistent=persistent))
    return ET.tostring(root, encoding="unicode")


def _entry_element(verb: Verb, ip: str, tags: frozenset[str], *, persistent: bool) -> ET.Element:
    if not tags:
        raise ValueError(f"entry for {ip} has no tags; every entry must name its tags")
    _check_text(ip, "IP")
    entry = ET.Element("entry", {"ip": ip})
    if verb == "register":
        entry.set("persistent", "1" if persistent else "0")
    tag_element = ET.SubElement(entry, "tag")
    for tag in sorted(tags):
        _check_text(tag, "tag")
        ET.SubElement(tag_element, "member").text = tag
    return entry


def _check_text(value: str, what: str) -> None:
    if _XML_ILLEGAL.search(value):
        raise ValueError(f"{what} {value!r} contains a character XML cannot carry")


def split_sendable(entries: TagMap) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """The entries a uid-message can carry, and why each other one cannot (it is never sent).

    One odd entry must fail alone, not the message it would have been part of
    (docs/sync.md#per-entry-results); the reason never quotes the entry's text.
    """
    sendable: dict[str, frozenset[str]] = {}
    refused: dict[str, str] = {}
    for ip, tags in entries.items():
        problem = entry_problem(ip, frozenset(tags))
        if problem is None:
            sendable[ip] = frozenset(tags)
        else:
            refused[ip] = problem
    return sendable, refused


def entry_problem(ip: str, tags: frozenset[str]) -> str | None:
    """Why PAN-OS could not take this entry, or None when it can be sent."""
    if not _is_registrable(ip):
        return "not an address PAN-OS can register (an IPv6 zone, or not an IP address at all); not sent"
    if not tags:
        return "no tags to send; not sent"
    if len(tags) > MAX_TAGS_PER_IP:
        return f"{len(tags)} tags, more than the {MAX_TAGS_PER_IP} PAN-OS holds for one IP; not sent"
    problems = [problem for problem in map(_tag_problem, tags) if problem is not None]
    return min(problems) if problems else None  # min: the same reason whatever the set's order


@functools.lru_cache(maxsize=65_536)
def _tag_problem(tag: str) -> str | None:
    if not tag.strip():
        return "an empty tag; not sent"
    if len(tag) > MAX_TAG_LENGTH:
        return f"a tag of {len(tag)} characters, more than the {MAX_TAG_LENGTH} PAN-OS allows; not sent"
    if _XML_ILLEGAL.search(tag):
        return "a tag holding a character XML cannot carry; not sent"
    return None


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _is_registrable(text: str) -> bool:
    """A host address without a zone, a network, or a range `a-b`: what a registered IP can be."""
    if _IPV4.fullmatch(text):
        return True  # the common case, at a fraction of ipaddress's cost
    if len(text) > 100 or "%" in text or _XML_ILLEGAL.search(text):
        return False
    first, dash, last = text.partition("-")
    try:
        if dash:
            return ipaddress.ip_address(first).version == ipaddress.ip_address(last).version
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return True
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def estimate_entry_bytes(ip: str, tags: frozenset[str]) -> int:
    """Bytes one entry adds to the form-encoded request body (register form: the larger one).

    URL-encoding is per character, so the entry's cost is the sum of its parts' costs: the
    envelope, the IP (hex digits, dots and colons are never escaped by XML; a colon becomes %3A)
    and each `<member>` (computed once per distinct tag).
    """
    if not tags or not _PLAIN_IP.fullmatch(ip):
        return _serialized_entry_bytes(ip, tags)
    return _ENTRY_ENVELOPE_BYTES + len(ip) + 2 * ip.count(":") + sum(map(_member_bytes, sorted(tags)))


def _serialized_entry_bytes(ip: str, tags: frozenset[str]) -> int:
    xml = ET.tostring(_entry_element("register", ip, tags, persistent=True), encoding="unicode")
    return len(quote_plus(xml))


@functools.lru_cache(maxsize=65_536)
def _member_bytes(tag: str) -> int:
    _check_text(tag, "tag")
    member = ET.Element("member")
    member.text = tag
    return len(quote_plus(ET.tostring(member, encoding="unicode")))


_PLAIN_IP = re.compile(r"[0-9A-Fa-f.:]+")
_ENTRY_ENVELOPE_BYTES = _serialized_entry_bytes("0", frozenset({"t"})) - 1 - _member_bytes("t")


def chunk_entries(
    entries: TagMap, max_entries: int, max_bytes: int = 1_000_000
) -> Iterator[dict[str, frozenset[str]]]:
    """Batches in IP order, each at most `max_entries` IPs and an estimated `max_bytes` on the wire.

    The estimate is of the URL-encoded form body (what the 5 MB limit applies to), so tags heavy in
    escaped characters are counted at their real cost. Entries with no tags are skipped: there is
    nothing to send for them. An entry that cannot be built costs nothing: it is batched like the
    others, and the client refuses it without sending it (split_sendable).
    """
    if max_entries < 1:
        raise ValueError("max_entries must be at least 1")
    if max_bytes > MAX_REQUEST_BYTES:
        raise ValueError(f"max_bytes must stay under the {MAX_REQUEST_BYTES}-byte request limit")
    batch: dict[str, frozenset[str]] = {}
    size = _ENVELOPE_BYTES
    for ip in sorted(entries):
        tags = frozenset(entries[ip])
        if not tags:
            continue
        try:
            cost = estimate_entry_bytes(ip, tags)
        except ValueError:
            cost = 0
        if cost + _ENVELOPE_BYTES > max_bytes:
            raise ValueError(f"entry for {ip} alone exceeds the {max_bytes}-byte batch limit")
        if batch and (len(batch) >= max_entries or size + cost > max_bytes):
            yield batch
            batch, size = {}, _ENVELOPE_BYTES
        batch[ip] = tags
        size += cost
    if batch:
        yield batch


def build_show_registered_ip(
    *,
    start: int | None = None,
    limit: int | None = None,
    ip: str | None = None,
    tag: str | None = None,
) -> str:
    """`<show><object><registered-ip>` for `type=op`, optionally filtered and paged.

    With no filter the command carries `<all/>` (the form minemeld sends alongside paging);
    devices before 8.0 ignore paging and may answer with an `<outfile>` (see parse_registered_ips).
    """
    if start is not None and start < 1:
        raise ValueError("start-point is 1-based")
    if limit is not None and not 1 <= limit <= PAGE_LIMIT:
        raise ValueError(f"limit must be between 1 and {PAGE_LIMIT}")
    show = ET.Element("show")
    query = ET.SubElement(ET.SubElement(show, "object"), "registered-ip")
    if ip is not None:
        _check_text(ip, "IP")
        ET.SubElement(query, "ip").text = ip
    if tag is not None:
        _check_text(tag, "tag")
        ET.SubElement(ET.SubElement(query, "tag"), "entry", {"name": tag})
    if ip is None and tag is None:
        ET.SubElement(query, "all")
    if limit is not None:
        ET.SubElement(query, "limit").text = str(limit)
    if start is not None:
        ET.SubElement(query, "start-point").text = str(start)
    return ET.tostring(show, encoding="unicode")


# Where address groups are defined (docs/protocols.md#pan-os-address-groups).
_LOCALHOST = "/config/devices/entry[@name='localhost.localdomain']"
SHARED_ADDRESS_GROUPS = "/config/shared/address-group"
DEVICE_GROUP_ADDRESS_GROUPS = f"{_LOCALHOST}/device-group/entry/address-group"  # every device group
_VSYS_NAME = re.compile(r"[A-Za-z0-9_.-]{1,31}")


def vsys_address_groups(vsys: str) -> str:
    """The xpath of one vsys's address groups; the name is checked, never quoted into the xpath raw."""
    if not _VSYS_NAME.fullmatch(vsys):
        raise ValueError(f"vsys name {vsys!r} cannot be used in an xpath")
    return f"{_LOCALHOST}/vsys/entry[@name='{vsys}']/address-group"


# ---------------------------------------------------------------------------------------------
# Responses


def is_permanent_refusal(message: str) -> bool:
    """An entry the device will refuse however often it is sent: its address is invalid to it.

    Retrying it every run would keep the target `partial` (and the run raising) for an address
    the PCE holds and the device cannot take; it is reported as a warning instead
    (docs/sync.md#per-entry-results).
    """
    return "invalid ip address" in message.lower()


def classify_entry(message: str) -> EntryClass:
    """Per-entry result: a duplicate register or an unregister of something absent is already done."""
    lowered = message.lower()
    if "already exists" in lowered or "does not exist" in lowered:
        return "done"
    return "failed"


def parse_response(body: bytes, http_status: int) -> ParsedResponse:
    """Classify a device answer: return success or per-entry failures, raise for request failures.

    Raises PanosAuthError for HTTP 403 / code 403, and PanosError otherwise, with `retryable` set
    for HTTP 5xx (and 429 from a proxy) and code 22.
    """
    if http_status == 403:
        raise PanosAuthError(
            f"PAN-OS refused the credentials (HTTP 403){_detail(_safe_message(body))}", code="403"
        )
    if http_status >= 500 or http_status == 429:
        # The body of a 5xx is usually a proxy's or web server's page; it is read only for its text.
        raise PanosError(
            f"PAN-OS answered HTTP {http_status}{_detail(_safe_message(body))}",
            code=_safe_code(body),
            retryable=True,
        )
    root = _parse_xml(body, http_status)
    if root.tag != "response":
        raise PanosError(f"PAN-OS answered HTTP {http_status} with an unexpected <{root.tag}> document")
    status = (root.get("status") or "").strip().lower()
    code = (root.get("code") or "").strip() or None
    entries = _uid_entries(root)
    if status == "success" or (code in _SUCCESS_CODES and status != "error"):
        if http_status != 200:
            raise PanosError(f"PAN-OS answered HTTP {http_status} with status success", code=code)
        return ParsedResponse(status="success", root=root, entries=entries)
    if entries and http_status == 200:
        return ParsedResponse(status=status or "error", root=root, entries=entries)
    raise _request_error(root, status, code, http_status)


def _parse_xml(body: bytes, http_status: int) -> ET.Element:
    try:
        root: ET.Element = SafeET.fromstring(body)
    except DefusedXmlException as exc:
        # Entity declarations or external references: never expanded or fetched. Not retried: the
        # same answer would come back.
        raise PanosError(
            f"PAN-OS response (HTTP {http_status}) was refused: it declares entities or external "
            f"references ({type(exc).__name__}), which a PAN-OS device never sends"
        ) from None
    except ET.ParseError:
        # Not retried: a 200 that is not XML is almost always PANOS_URL pointing at something other
        # than the XML API (a web UI, a proxy login page), and retrying only delays the diagnosis.
        # Truncated transfers fail earlier, as transport errors, and those are retried.
        raise PanosError(
            f"PAN-OS response (HTTP {http_status}) is not XML; check that PANOS_URL is the "
            "management address of a firewall or Panorama"
        ) from None
    return root


def _uid_entries(root: ET.Element) -> tuple[EntryMessage, ...]:
    found: list[EntryMessage] = []
    for payload in root.iterfind(".//uid-response/payload"):
        for section in payload:
            for entry in section.iterfind("entry"):
                found.append(
                    EntryMessage(
                        verb=section.tag,
                        ip=(entry.get("ip") or "").strip(),
                        message=(entry.get("message") or "").strip(),
                    )
                )
    return tuple(found)


def _request_error(root: ET.Element, status: str, code: str | None, http_status: int) -> PanosError:
    text = _error_text(root)
    label = f"code {code}" if code else f'status "{status or "missing"}"'
    if status == "unauth" and code:
        label = f'status "unauth", code {code}'
    message = f"PAN-OS request failed (HTTP {http_status}, {label}){_detail(text)}"
    # The two unauth forms (docs/protocols.md#pan-os-errors) [unverified on a device: seen in other
    # projects' code]: code 16 says the role lacks a permission, which no new key cures; code 22 (or
    # no code) says the key or its session is no longer valid, which a freshly generated key may
    # cure. Neither is retried as it stands: code 22 is retryable only in the status="error" form.
    if code == _PERMISSION_CODE:
        return PanosAuthError(message, code=code)
    if status == "unauth":
        return PanosAuthError(message, code=code, key_expired=True)
    if code in _AUTH_CODES:
        return PanosAuthError(message, code=code)
    return PanosError(message, code=code, retryable=code in _RETRYABLE_CODES)


def _error_text(root: ET.Element) -> str:
    """The error text in the shapes pan-python handles, in its order (docs/protocols.md#pan-os-errors)."""
    lines = root.findall("./msg/line")
    if lines:
        return "; ".join(_flatten(line) for line in lines if _flatten(line))
    msg = root.find("./msg")
    if msg is not None and _flatten(msg):
        return _flatten(msg)
    result_msg = root.find("./result/msg")
    if result_msg is not None:
        return _flatten(result_msg)
    return ""


def _flatten(element: ET.Element) -> str:
    return " ".join(" ".join(element.itertext()).split())


def _detail(text: str) -> str:
    if not text:
        return ""
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "…"
    return f": {text}"


def _safe_root(body: bytes) -> ET.Element | None:
    try:
        root: ET.Element = SafeET.fromstring(body)
    except (DefusedXmlException, ET.ParseError):
        return None
    return root


def _safe_message(body: bytes) -> str:
    root = _safe_root(body)
    return _error_text(root) if root is not None and root.tag == "response" else ""


def _safe_code(body: bytes) -> str | None:
    root = _safe_root(body)
    return (root.get("code") or None) if root is not None else None


def parse_keygen(parsed: ParsedResponse) -> str:
    """The key from a keygen answer (`result/key`)."""
    result = parsed.result
    key = result.findtext("key") if result is not None else None
    if not key or not key.strip():
        raise PanosError("PAN-OS keygen answered success without a key")
    return key.strip()


def parse_registered_ips(parsed: ParsedResponse) -> RegisteredIpPage:
    """One page of `show object registered-ip`.

    The empty-result XML is not captured (docs/protocols.md#pan-os-registered-ip) [unverified], so a missing <result> is
    an empty page and <count> is never relied on: paging counts the <entry> elements.
    """
    result = parsed.result
    if result is None:
        return RegisteredIpPage(entries={}, raw_count=0)
    if result.find(".//outfile") is not None:
        raise PanosError(
            "PAN-OS wrote the registered-IP list to a file (<outfile>) instead of returning it: "
            "the device predates PAN-OS 8.0 and cannot page `show object registered-ip`; "
            "upgrade it, or do not use reconcile against it"
        )
    entries: dict[str, RegisteredIp] = {}
    raw = result.findall("entry")
    for element in raw:
        ip = normalise_ip((element.get("ip") or "").strip())
        if not ip:
            continue
        members = (member.text or "" for member in element.iterfind("tag/member"))
        tags = frozenset(text.strip() for text in members if text.strip())
        record = RegisteredIp(
            tags=tags,
            # persistent defaults to 1 on the device (docs/protocols.md#pan-os-uid-message), so a
            # missing attribute means 1.
            persistent=(element.get("persistent") or "1").strip() != "0",
            from_agent=(element.get("from_agent") or "0").strip() == "1",
        )
        previous = entries.get(ip)
        entries[ip] = record if previous is None else previous.merged(record)
    return RegisteredIpPage(entries=entries, raw_count=len(raw))


def normalise_ip(text: str) -> str:
    """Canonical text for a host address (compressed IPv6, no /32 or /128); ranges and networks as given."""
    if not text:
        return text
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    if network.num_addresses == 1:
        return network.network_address.compressed
    return text


def entry_messages_by_ip(entries: tuple[EntryMessage, ...], sent: Mapping[str, object]) -> dict[str, str]:
    """Failed per-entry messages keyed by the IP as we sent it, several messages for one IP joined."""
    by_normal = {normalise_ip(ip): ip for ip in sent}
    failed: dict[str, list[str]] = {}
    for entry in entries:
        if entry.outcome == "done":
            continue
        ip = by_normal.get(normalise_ip(entry.ip), entry.ip)
        failed.setdefault(ip, []).append(entry.message or "entry rejected without a message")
    return {ip: "; ".join(messages) for ip, messages in failed.items()}


def parse_address_groups(parsed: ParsedResponse, location: str) -> list[DagDefinition]:
    """The dynamic address groups in a `type=config&action=show` answer for one location.

    Static groups are skipped. An empty `<result/>` means no groups. When one xpath matches
    several device groups, each entry's `loc` attribute names its device group where the device
    gives one [unverified: the answer's shape for a multi-node xpath is not captured].
    """
    result = parsed.result
    if result is None:
        return []
    groups = list(result.iter("address-group")) or [result]
    found: list[DagDefinition] = []
    for group in groups:
        for entry in group.iterfind("entry"):
            expression = entry.find("dynamic/filter")
            name = (entry.get("name") or "").strip()
            if expression is None or not name:
                continue
            where = entry.get("loc")
            found.append(
                DagDefinition(
                    name=name,
                    filter="".join(expression.itertext()).strip(),
                    location=f"{location}:{where}" if location == "device-group" and where else location,
                )
            )
    return found
