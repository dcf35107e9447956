"""Address groups as configuration: defining, removing and committing them, and their members."""

import copy
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml
from collections.abc import Iterable

from emulators.panos.config_tree import _check_location, _dynamic_groups, _group_entry, _group_parent
from emulators.panos.dag_filter import compile_filter
from emulators.panos.state import DagMembership, Device, PanosState
from emulators.panos.wire import MAX_FILTER_LENGTH, _ip_key


class Dags(PanosState):
    """Address groups as configuration: defining, removing and committing them, and their members."""

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
