"""`type=user-id`: register and unregister with per-entry results, and a passive member's silent drop."""

import ipaddress
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml

from emulators.panos.op import _ipv4_set
from emulators.panos.state import Device, IpRecord, LoggedRequest, PanosState
from emulators.panos.wire import (
    INVALID_IP,
    MAX_TAG_LENGTH,
    MAX_TAGS_PER_IP,
    MAX_TIMEOUT,
    _parse,
    _timeout,
    _uid_response,
    _xml_error,
)
from emulators.server import Response


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


class UserId(PanosState):
    """`type=user-id`: register and unregister with per-entry results, and a passive member's silent drop."""

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
        ip = self._entry_ip(raw_ip, failures)
        if ip is None:
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
        ip = self._entry_ip(raw_ip, failures)
        if ip is None:
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

    def _entry_ip(self, raw_ip: str, failures: list[tuple[str, str]]) -> str | None:
        """The entry's address as the table keys it, or None with the device's refusal recorded."""
        ip = self._valid_ip(raw_ip)
        if ip is None:
            failures.append((raw_ip, INVALID_IP))
        return ip

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
