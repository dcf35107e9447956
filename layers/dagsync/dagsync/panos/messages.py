"""Building PAN-OS XML API requests; no I/O.

Requests are built with ElementTree so every tag and IP is escaped by the serialiser, never by
hand. What the device cannot take (a tag too long, more tags than an IP holds, a character XML
cannot carry, text that is no address) is found here, before anything is sent, as a failure of
that IP alone; batching keeps every message under the entry and byte limits.
"""

import functools
import ipaddress
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import quote_plus

from dagsync.core.device import Verb
from dagsync.core.models import TagMap

UID_VERBS: tuple[Verb, ...] = ("register", "unregister")
PAGE_LIMIT = 500  # the most entries `show object registered-ip` returns per call (PAN-OS 8.0+)
MAX_REQUEST_BYTES = 5_000_000  # documented ceiling for one POST
MAX_TAGS_PER_IP = 32  # docs/protocols.md#pan-os-registered-ip
MAX_TAG_LENGTH = 127

# Characters XML 1.0 cannot carry at all; ElementTree would serialise them into a broken document.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# The envelope around the entries of one uid-message, form-encoded, plus room for the other form
# fields (type, vsys, target). Used only by the size estimate, so it errs on the large side.
_ENVELOPE_BYTES = 600


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
    if XML_ILLEGAL.search(value):
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
    if XML_ILLEGAL.search(tag):
        return "a tag holding a character XML cannot carry; not sent"
    return None


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _is_registrable(text: str) -> bool:
    """A host address without a zone, a network, or a range `a-b`: what a registered IP can be."""
    if _IPV4.fullmatch(text):
        return True  # the common case, at a fraction of ipaddress's cost
    if len(text) > 100 or "%" in text or XML_ILLEGAL.search(text):
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
