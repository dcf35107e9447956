"""`type=op`: the registered-IP listing, the dynamic address groups and the HA state."""

import ipaddress
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml

from emulators.panos.config_tree import _dynamic_groups
from emulators.panos.dags import Dags
from emulators.panos.state import Device
from emulators.panos.wire import (
    _XML_HEADERS,
    INVALID_CREDENTIAL,
    NOT_XML,
    PAGE_LIMIT,
    _canonical,
    _element,
    _http_error,
    _parse,
    _xml_error,
    _xml_success,
)
from emulators.server import Response


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


class Operations(Dags):
    """`type=op`: the registered-IP listing, the dynamic address groups and the HA state."""

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
