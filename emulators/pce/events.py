"""The PCE's audit events: the log the events API serves, its query, and the records written.

Record shapes follow the captures cited in docs/protocols.md#pce-events (illumio-py's events.json,
illumio-ops' events_viewer.json). Where no capture shows a workload event's `changes` (labels, a
new or deleted workload), they follow the captured patterns: collections as {"created",
"updated", "deleted"} lists, fields as {"before", "after"} [unverified].
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from emulators.pce.state import PceState
from emulators.pce.wire import Json, error, json_response
from emulators.server import Request, Response

EVENTS_DEFAULT_PAGE = 100  # docs 22.2: default max_results of GET /events
EVENTS_MAX_PAGE = 10_000  # docs 22.2: the largest max_results accepted
USER: Json = {"user": {"href": "/users/1", "username": "admin@example.com"}}
SYSTEM: Json = {"system": {}}
SYSTEM_ACTION: Json = {
    "api_endpoint": None,
    "api_method": None,
    "http_status_code": None,
    "src_ip": "FILTERED",
}


@dataclass
class Event:
    record: Json
    at: datetime  # the record's timestamp, to the millisecond like the record
    visible_at: float  # epoch seconds from which the events API shows it


class EventLog:
    """Audit events in the order written; the API shows those already indexed, newest first."""

    def __init__(self) -> None:
        self._events: list[Event] = []

    def append(self, record: Json, *, visible_at: float) -> None:
        self._events.append(Event(record, _parse_timestamp(record["timestamp"]), visible_at))

    def prune(self, cutoff: float) -> None:
        """Drop events older than the cutoff (epoch seconds): the PCE's retention window."""
        oldest = datetime.fromtimestamp(cutoff, UTC)
        self._events = [event for event in self._events if event.at >= oldest]

    def visible(self, now: float) -> list[Event]:
        indexed = [event for event in self._events if event.visible_at <= now]
        return sorted(reversed(indexed), key=lambda event: event.at, reverse=True)  # stable: later first

    def records(self) -> list[Json]:
        return [event.record for event in self._events]


@dataclass(frozen=True)
class EventFilter:
    """The events API's query: timestamp[gte]/[lte] (RFC 3339), event_type, severity, status, max_results."""

    limit: int
    since: datetime | None
    until: datetime | None
    event_type: str | None
    severity: str | None
    status: str | None

    @classmethod
    def parse(cls, query: dict[str, list[str]]) -> "EventFilter":
        def one(name: str) -> str | None:
            return query[name][0] if name in query else None

        raw_limit = one("max_results")
        try:
            limit = EVENTS_DEFAULT_PAGE if raw_limit is None else int(raw_limit)
        except ValueError:
            raise ValueError("max_results must be an integer") from None
        if limit < 0:
            raise ValueError("max_results must not be negative")
        # [unverified] Docs: "The largest value accepted for max_results is 10000". Whether a larger
        # one is refused or cut is undocumented: cut silently, the case a client can miss.
        return cls(
            limit=min(limit, EVENTS_MAX_PAGE),
            since=_query_timestamp(one("timestamp[gte]")),
            until=_query_timestamp(one("timestamp[lte]")),
            event_type=one("event_type"),
            severity=one("severity"),
            status=one("status"),
        )

    def matches(self, event: Event) -> bool:
        record = event.record
        wanted_status = None if self.status == "nil" else self.status
        return (
            (self.since is None or event.at >= self.since)
            and (self.until is None or event.at <= self.until)
            and (self.event_type is None or record["event_type"] == self.event_type)
            and (self.severity is None or record["severity"] == self.severity)
            and (self.status is None or record["status"] == wanted_status)
        )


class EventWriter(PceState):
    """Writes events as a real PCE does and serves them on GET /orgs/{org}/events."""

    pce_fqdn: str
    event_index_delay: float  # seconds after its timestamp an event first shows on the API
    event_retention: float | None  # seconds of history the API keeps
    _event_log: EventLog

    def _init_events(self) -> None:
        self.pce_fqdn = "pce.example.internal"
        self.event_index_delay = 0.0
        self.event_retention = None
        self._event_log = EventLog()

    # -- events that change nothing (noise) and events of any type ----------------------------

    def emit_user_session(self, username: str = "admin@example.com") -> list[Json]:
        """A user signs in and out: four events, one with a /system_events href, one with status null."""
        with self._lock:
            user = {"href": "/users/1", "username": username}
            actor = {"user": user}
            sign_in = resource_change(
                "update",
                {"user": {**user, "type": "local"}},
                {"sign_in_attempts_count": {"before": 0, "after": 1}},
            )
            return [
                self._write(
                    "user.sign_in", actor, [sign_in], action=api_action("POST", "/login/users/sign_in", 302)
                ),
                self._write(
                    "user.login", actor, [], notification=("user.pce_session_created", {"user": user})
                ),
                self._write("user.logout", SYSTEM, [], system_href=True),
                self._write(
                    "user.pce_session_terminated",
                    SYSTEM,
                    [],
                    status=None,
                    action=None,
                    notification=("user.pce_session_terminated", {"reason": "timeout", "user": user}),
                ),
            ]

    def emit_event(
        self,
        event_type: str,
        *,
        workload_href: str | None = None,
        status: str | None = "success",
        severity: str = "info",
        system_href: bool = False,
    ) -> Json:
        """An event of any type (unknown ones included), naming a workload when given one."""
        with self._lock:
            changes = []
            if workload_href is not None:
                changes.append(resource_change("update", workload_resource(self.workload(workload_href)), {}))
            return self._write(
                event_type, SYSTEM, changes, status=status, severity=severity, system_href=system_href
            )

    @property
    def events(self) -> list[Json]:
        """Every event written, oldest first, whether or not the API shows it yet."""
        with self._lock:
            return self._event_log.records()

    def _write(
        self,
        event_type: str,
        created_by: Json,
        resource_changes: list[Json],
        *,
        status: str | None = "success",
        severity: str = "info",
        action: Json | None = SYSTEM_ACTION,
        notification: tuple[str, Json] | None = None,
        system_href: bool = False,
    ) -> Json:
        now = self.clock()
        root = "/system_events" if system_href else f"/orgs/{self.org_id}/events"
        record: Json = {
            "href": f"{root}/{uuid.uuid4()}",
            "timestamp": event_timestamp(now),
            "pce_fqdn": self.pce_fqdn,
            "created_by": created_by,
            "event_type": event_type,
            "status": status,
            "severity": severity,
            "action": None if action is None else {"uuid": str(uuid.uuid4()), **action},
            "resource_changes": resource_changes,
            "notifications": []
            if notification is None
            else [{"uuid": str(uuid.uuid4()), "notification_type": notification[0], "info": notification[1]}],
        }
        self._event_log.append(record, visible_at=now + self.event_index_delay)
        return record

    def _events_page(self, request: Request) -> Response:
        """GET /orgs/{org}/events: visible events, newest first, filtered, at most max_results."""
        try:
            events_filter = EventFilter.parse(request.query)
        except ValueError as problem:
            return error(406, str(problem))
        now = self.clock()
        if self.event_retention is not None:
            self._event_log.prune(now - self.event_retention)
        page = [event.record for event in self._event_log.visible(now) if events_filter.matches(event)]
        return json_response(200, page[: events_filter.limit])


def event_timestamp(now: float) -> str:
    """RFC 3339 in UTC to the millisecond, as events carry it (`2026-08-03T06:17:59.499Z`)."""
    at = datetime.fromtimestamp(now, UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def _parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _query_timestamp(text: str | None) -> datetime | None:
    """A timestamp filter; RFC 3339 requires an offset, so one without is refused [unverified]."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return parsed


def api_action(method: str, path: str, status: int) -> Json:
    endpoint = path if path == "FILTERED" else f"/api/v2{path}"
    return {
        "api_endpoint": endpoint,
        "api_method": method,
        "http_status_code": status,
        "src_ip": "192.0.2.10",
    }


def resource_change(change_type: str, resource: Json, changes: Json) -> Json:
    return {"uuid": str(uuid.uuid4()), "resource": resource, "changes": changes, "change_type": change_type}


def workload_resource(workload: Json) -> Json:
    return {
        "workload": {
            "href": workload["href"],
            "hostname": workload.get("hostname"),
            "name": workload.get("name"),
            "labels": [dict(label) for label in workload.get("labels") or ()],
        }
    }


def ven_actor(workload: Json) -> Json | None:
    """The VEN (and its agent) as `created_by`, for a workload that has one."""
    ven = workload.get("ven")
    if not isinstance(ven, dict) or not ven.get("href"):
        return None
    hostname = ven.get("hostname") or workload.get("hostname")
    actor: Json = {"ven": {"hostname": hostname, "href": ven["href"]}}
    agent = workload.get("agent")
    if isinstance(agent, dict) and agent.get("href"):
        actor["agent"] = {"hostname": hostname, "href": agent["href"]}
    return actor


def workload_changes(before: Json, after: Json) -> Json:
    """What differs between two versions of a workload, in the events' `changes` form."""
    changes: Json = {}
    if before.get("labels") != after.get("labels"):
        labels = label_changes(before.get("labels") or [], after.get("labels") or [])
        changes.update(labels or {"labels": {"before": before.get("labels"), "after": after.get("labels")}})
    if before.get("interfaces") != after.get("interfaces"):
        changes["interfaces"] = _interface_changes(
            after["href"], before.get("interfaces") or [], after.get("interfaces") or []
        )
    for key in sorted((before.keys() | after.keys()) - {"labels", "interfaces"}):
        if before.get(key) != after.get(key):
            changes[key] = {"before": before.get(key), "after": after.get(key)}
    return changes


def label_changes(before: list[Json], after: list[Json]) -> Json:
    old = {label.get("href") for label in before}
    new = {label.get("href") for label in after}
    change: Json = {}
    if created := [{"href": label.get("href")} for label in after if label.get("href") not in old]:
        change["created"] = created
    if deleted := [{"href": label.get("href")} for label in before if label.get("href") not in new]:
        change["deleted"] = deleted
    return {"labels": change} if change else {}


def _interface_changes(workload_href: str, before: list[Json], after: list[Json]) -> Json:
    """Interfaces matched by name, in order: changed pairs are `updated`, the rest created or deleted."""
    created: list[Json] = []
    updated: list[Json] = []
    deleted: list[Json] = []
    names = dict.fromkeys(str(interface.get("name")) for interface in [*before, *after])
    for name in names:
        olds = [interface for interface in before if str(interface.get("name")) == name]
        news = [interface for interface in after if str(interface.get("name")) == name]
        for old, new in zip(olds, news, strict=False):
            if old != new:
                fields = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
                change = {key: {"before": old.get(key), "after": new.get(key)} for key in fields}
                updated.append({"changes": change, "resource": _interface_resource(workload_href, new)})
        created.extend(_interface_resource(workload_href, new) for new in news[len(olds) :])
        deleted.extend(_interface_resource(workload_href, old) for old in olds[len(news) :])
    lists = {"created": created, "updated": updated, "deleted": deleted}
    return {kind: items for kind, items in lists.items() if items}


def _interface_resource(workload_href: str, interface: Json) -> Json:
    resource: Json = {
        "address": interface.get("address"),
        "href": f"{workload_href}/interfaces/{interface.get('name')}",
        "name": interface.get("name"),
    }
    if interface.get("network") is not None:
        resource["network"] = interface["network"]
    return resource
