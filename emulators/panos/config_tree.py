"""The configuration tree a device holds: its skeleton, locations and the address groups in it."""

import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from emulators.panos.wire import LOCAL_DEVICE, Kind

if TYPE_CHECKING:
    from emulators.panos.state import Device


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


def _check_location(device: "Device", device_group: str | None, vsys: str | None) -> None:
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
