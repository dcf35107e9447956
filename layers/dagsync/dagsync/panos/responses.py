"""Parsing PAN-OS XML API answers; no I/O.

Answers are parsed with defusedxml only: a device, proxy or attacker answering for the device
cannot make us expand entities or fetch external resources. An answer that failed as a whole
raises PanosError (PanosAuthError for a refused key or permission) with `retryable` set only
where a retry may cure it; per-entry results are classified one by one (docs/sync.md#per-entry-results).
"""

import ipaddress
import xml.etree.ElementTree as ET  # the parsed tree's type; parsing goes through defusedxml
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from dagsync.core.device import DagDefinition, RegisteredIp
from dagsync.core.errors import PanosAuthError, PanosError

EntryClass = Literal["done", "failed"]

# Codes that a retry may cure: 22 is "session timed out". Every other code describes the request
# or the account and would fail the same way again. Internal-error codes (2-5, 11, 21) are not
# retried either: the reference does not say they are transient, and the next scheduled run retries.
_RETRYABLE_CODES = frozenset({"22"})
_AUTH_CODES = frozenset({"403"})
_PERMISSION_CODE = "16"  # "Unauthorized": the admin role lacks the permission the request needs
_SUCCESS_CODES = frozenset({"19", "20"})
_MAX_MESSAGE = 300


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
class RegisteredIpPage:
    entries: dict[str, RegisteredIp]
    raw_count: int  # <entry> elements in this page, duplicates included; drives paging


def is_permanent_refusal(message: str) -> bool:
    """An entry the device will refuse however often it is sent: its address is invalid to it.

    Retrying it every run would keep the target `partial` (and the run raising) for an address
    the PCE holds and the device cannot take; it is reported as a warning, the target stays `ok`,
    and only a full export sends it again (docs/sync.md#per-entry-results).
    """
    return "invalid ip address" in message.lower()


def is_table_full(message: str) -> bool:
    """An entry refused because the registered-IP table is at the platform's maximum.

    PAN-OS logs "max registered-ip for the platform reached" (Palo Alto Networks knowledge base
    kA14u000000sdArCAI); the per-entry wording is unverified, so any message naming the maximum
    of registered IPs, or a full table, counts (docs/protocols.md#pan-os-table-limit).
    """
    lowered = message.lower()
    return (
        ("max" in lowered and "registered-ip" in lowered)
        or "table full" in lowered
        or "table is full" in lowered
    )


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
