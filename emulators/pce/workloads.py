"""Workloads changing: every helper that changes the estate writes the events a real PCE would."""

import ipaddress
from collections.abc import Iterable
from typing import Literal

from emulators.churn import ChurnReport, churn
from emulators.estate import Estate
from emulators.pce.events import (
    SYSTEM,
    USER,
    api_action,
    event_timestamp,
    label_changes,
    resource_change,
    ven_actor,
    workload_changes,
    workload_resource,
)
from emulators.pce.labels import LabelTable
from emulators.pce.wire import Json


class WorkloadChanges(LabelTable):
    """The constructor and load_estate set the estate as it already was, with no events; the rest write them."""

    _link_local_churns: int

    def _init_workloads(self) -> None:
        self._link_local_churns = 0

    def set_workloads(self, workloads: Iterable[Json]) -> None:
        """Replace the estate, writing one create, update or delete event per workload that differs."""
        with self._lock:
            new = list(workloads)
            old = {workload["href"]: workload for workload in self.workloads}
            self.workloads = new
            for workload in new:
                before = old.pop(workload["href"], None)
                self._record_change(before, workload)
            for gone in old.values():
                self._bury(gone, soft=False)

    def load_estate(self, estate: Estate) -> None:
        """Serve this estate; its lists are shared, so churn(estate, ...) shows on the next job.

        Changing the estate directly writes no events (like a PCE whose feed missed them);
        `churn` below changes it and writes them.
        """
        with self._lock:
            self._estate = estate
            self.org_id = estate.org_id
            self.workloads = estate.workloads
            self.labels = estate.labels

    def upsert_workload(self, workload: Json) -> Json | None:
        """Add or replace a workload: `workload.create`, `workload.undelete` or an update event."""
        with self._lock:
            for index, existing in enumerate(self.workloads):
                if existing["href"] == workload["href"]:
                    self.workloads[index] = workload
                    return self._record_change(existing, workload)
            self.workloads.append(workload)
            return self._record_change(None, workload)

    def delete_workload(self, href: str, *, soft: bool = False) -> Json:
        """Delete a workload (`workload.delete`); it stays listed with include_deleted=true.

        A hard delete answers 404 on GET /workloads/{id}, as docs/protocols.md#pce-events says a PCE does for a
        workload that no longer exists. `soft=True` (`workload.soft_delete`, what unpairing a VEN
        does) keeps answering it, with `deleted: true` [unverified: no capture shows either].
        """
        with self._lock:
            for index, existing in enumerate(self.workloads):
                if existing["href"] == href:
                    del self.workloads[index]
                    return self._bury(existing, soft=soft)
            raise KeyError(href)

    def relabel(self, href: str, key: str, value: str) -> Json | None:
        """Give a workload the label key=value, replacing its label of that key (`workload.update`)."""
        with self._lock:
            workload = self.workload(href)
            before = dict(workload)
            label = self.add_label(key, value)
            others = [existing for existing in workload.get("labels") or () if existing.get("key") != key]
            workload["labels"] = [*others, label]
            return self._record_change(before, workload)

    def bulk_relabel(self, hrefs: Iterable[str], key: str, value: str, *, itemised: bool = True) -> Json:
        """Relabel many workloads in one PUT /workloads/bulk_update: one `workloads.bulk_update` event.

        One event, not one per workload: the endpoint is one auditable call and the events framework
        records one event per action (docs "Events Framework"), naming each workload in
        `resource_changes`. `itemised=False` writes the event without them [unverified: whether a
        PCE always lists every workload of a bulk call is undocumented].
        """
        with self._lock:
            label = self.add_label(key, value)
            workloads = self._by_href()
            changes = []
            for href in hrefs:
                workload = workloads[href]
                before = list(workload.get("labels") or ())
                workload["labels"] = [*(item for item in before if item.get("key") != key), label]
                changes.append(
                    resource_change(
                        "update", workload_resource(workload), label_changes(before, workload["labels"])
                    )
                )
            action = api_action("PUT", f"/orgs/{self.org_id}/workloads/bulk_update", 204)
            return self._write("workloads.bulk_update", USER, changes if itemised else [], action=action)

    def set_addresses(self, href: str, addresses: Iterable[str]) -> Json | None:
        """Replace a workload's interfaces with one interface per address.

        A managed workload's interfaces are reported by its VEN (`workload_interfaces.update`); an
        unmanaged one's are edited by a user (`workload.update`).
        """
        with self._lock:
            workload = self.workload(href)
            before = dict(workload)
            workload["interfaces"] = [
                {"name": f"eth{n}", "address": address, "cidr_block": None, "loopback": False}
                for n, address in enumerate(addresses)
            ]
            return self._record_change(before, workload)

    def set_enforcement_mode(self, href: str, mode: str) -> Json | None:
        """A user changes a workload's enforcement mode (`workload.update`)."""
        with self._lock:
            workload = self.workload(href)
            before = dict(workload)
            workload["enforcement_mode"] = mode
            return self._record_change(before, workload)

    def go_offline(self, *hrefs: str) -> Json:
        """The PCE's offline check marks VENs that stopped calling in: one
        `system_task.agent_offline_check` naming each workload with `changes.online`
        (there is no `workload.offline` event)."""
        with self._lock:
            changes = []
            for href in hrefs:
                workload = self.workload(href)
                before = workload.get("online")
                workload["online"] = False
                online = {"online": {"before": before, "after": False}}
                changes.append(resource_change("update", workload_resource(workload), online))
            return self._write("system_task.agent_offline_check", SYSTEM, changes)

    def come_online(self, href: str) -> Json:
        """A VEN calls in again: `workload.online`, naming the workload in its notification only."""
        with self._lock:
            workload = self.workload(href)
            workload["online"] = True
            named = workload_resource(workload)["workload"]
            return self._write(
                "workload.online",
                ven_actor(workload) or SYSTEM,
                [],
                notification=("workload.online", {"workload": named}),
            )

    def agent_event(self, href: str, kind: Literal["suspend", "goodbye", "deactivate"]) -> Json:
        """`agent.suspend`, `agent.goodbye` (the VEN is uninstalled) or `agent.deactivate` (a user
        unpairs it), naming the workload and its agent; the last two leave the workload unmanaged."""
        with self._lock:
            workload = self.workload(href)
            before = dict(workload)
            agent = before.get("agent") if isinstance(before.get("agent"), dict) else {}
            if kind != "suspend":
                workload["managed"] = False
                workload["ven"] = None
                workload["agent"] = {"config": (agent or {}).get("config") or {}}
            resource = {**workload_resource(workload), "agent": {"href": (agent or {}).get("href")}}
            actor = USER if kind == "deactivate" else (ven_actor(before) or SYSTEM)
            changes = workload_changes(before, workload)
            return self._write(f"agent.{kind}", actor, [resource_change("update", resource, changes)])

    def churn(self, percent: float, seed: int) -> ChurnReport:
        """estate.churn on the loaded estate, writing each change's event (deleted ones leave tombstones)."""
        with self._lock:
            if self._estate is None:
                raise RuntimeError("churn needs an estate: call load_estate first")
            before = {workload["href"]: dict(workload) for workload in self.workloads}
            report = churn(self._estate, percent, seed)
            after = self._by_href()
            for href in [*report.relabeled, *report.moved]:
                self._record_change(before[href], after[href])
            for href in report.deleted:
                self._bury(before[href], soft=False)
            for href in report.added:
                self._record_change(None, after[href])
            return report

    # -- events that change nothing (noise) and events of any type ----------------------------

    def emit_link_local_churn(self, href: str) -> Json:
        """The VEN reports a new `fe80::` address (seen five times in 45 minutes from one macOS VEN).

        The workload's first link-local address changes (one is added if it has none); the
        `workload_interfaces.update` event names the workload and only that address.
        """
        with self._lock:
            workload = self.workload(href)
            before = dict(workload)
            interfaces = [dict(interface) for interface in workload.get("interfaces") or ()]
            fresh = str(
                ipaddress.IPv6Address(int(ipaddress.IPv6Address("fe80::")) + self._link_local_counter())
            )
            for interface in interfaces:
                if str(interface.get("address", "")).lower().startswith("fe80:"):
                    interface["address"] = fresh
                    break
            else:
                interfaces.append(
                    {
                        "name": "eth0",
                        "address": fresh,
                        "cidr_block": 64,
                        "loopback": False,
                        "network_detection_mode": "link_local",
                    }
                )
            workload["interfaces"] = interfaces
            event = self._record_change(before, workload)
            assert event is not None
            return event

    def _record_change(self, before: Json | None, after: Json) -> Json | None:
        """The event of one workload going from `before` (None: it is new) to `after`; None if equal."""
        href = after["href"]
        if before is None:
            revived = self._revive(href)
            created = {
                "hostname": {"before": None, "after": after.get("hostname")},
                **label_changes([], after.get("labels") or []),
            }
            kind = "workload.undelete" if revived else "workload.create"
            action = (
                api_action("PUT", f"{href}/undelete", 204)
                if revived
                else api_action("POST", f"/orgs/{self.org_id}/workloads", 201)
            )
            return self._write(
                kind, USER, [resource_change("create", workload_resource(after), created)], action=action
            )
        changes = workload_changes(before, after)
        if not changes:
            return None
        ven = ven_actor(after)
        if set(changes) == {"interfaces"} and ven is not None:
            interface_changes = {"workload_interfaces": changes["interfaces"]}
            resource = [resource_change("update", workload_resource(after), interface_changes)]
            return self._write(
                "workload_interfaces.update", ven, resource, action=api_action("PUT", "FILTERED", 200)
            )
        resource = [resource_change("update", workload_resource(after), changes)]
        return self._write("workload.update", USER, resource, action=api_action("PUT", href, 204))

    def _bury(self, workload: Json, *, soft: bool) -> Json:
        """Keep a deleted workload as a tombstone and write its delete event."""
        stamp = event_timestamp(self.clock())
        self.tombstones.append(
            {**workload, "deleted": True, "deleted_at": stamp, "deleted_by": {"href": "/users/1"}}
        )
        if soft:
            self._soft_deleted.add(workload["href"])
        changes = {"deleted": {"before": False, "after": True}} if soft else {}
        resource = [resource_change("delete", workload_resource(workload), changes)]
        kind = "workload.soft_delete" if soft else "workload.delete"
        return self._write(kind, USER, resource, action=api_action("DELETE", workload["href"], 204))

    def _revive(self, href: str) -> bool:
        """Drop a tombstone for href; true when there was one."""
        kept = [tombstone for tombstone in self.tombstones if tombstone["href"] != href]
        revived = len(kept) != len(self.tombstones)
        self.tombstones = kept
        self._soft_deleted.discard(href)
        return revived

    def _link_local_counter(self) -> int:
        self._link_local_churns += 1
        return 0x1000_0000_0000 + self._link_local_churns
