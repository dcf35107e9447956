"""What the PAN-OS emulator says on the wire: parameter forms, XML answers, error bodies and the fixed texts."""

import functools
import ipaddress
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml
from email import policy
from email.parser import BytesParser
from http import HTTPStatus
from typing import Literal
from urllib.parse import parse_qs

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
