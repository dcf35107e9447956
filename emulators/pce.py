"""An Illumio PCE emulator (REST API v2 subset) for emulators.server.LoopbackServer.

Faithful to the PCE facts of docs/protocols.md where they matter to DAG Sync, and never kinder
than a real PCE where those facts leave a behaviour open:

* HTTP Basic auth with the API key's auth_username and secret (401 otherwise); every path is
  under /api/v2; an org other than the emulated one answers 403.
* GET /api/v2/orgs/{org}/workloads and /labels: synchronously at most 500 objects, silently
  truncated, with X-Total-Count; with `Prefer: respond-async` a 202 with
  `Location: /orgs/{org}/jobs/{uuid}` and Retry-After.
* GET /api/v2/orgs/{org}/jobs/{uuid}: "running" for `running_polls` polls, then "done" with
  result.href `/orgs/{org}/datafiles/{uuid}`; DELETE removes the job.
* GET /api/v2/orgs/{org}/datafiles/{uuid}: the complete JSON array, serialised once when the
  job was created (a snapshot of the estate at that moment, as on a real PCE).
* GET /api/v2/orgs/{org}/workloads/{id}: one workload; 404 once it is deleted (a soft-deleted
  one answers with `deleted: true`).
* GET /api/v2/orgs/{org}/events: the audit events (docs/protocols.md#pce-events), newest first, filtered by
  `timestamp[gte]`, `timestamp[lte]` (RFC 3339), `event_type`, `severity`, `status` (`nil` for
  null) and `max_results` (default 100, cut to 10,000). Event hrefs are usually
  `/orgs/{org}/events/{uuid}` but some are `/system_events/{uuid}`, as in captures.

Error bodies are `[{"token": "…_error", "message": "…"}]`, the real PCE's shape (tokens such as
`not_found_error`, `too_many_requests_error`). Time comes from `clock` (epoch seconds, default
the wall clock): event timestamps, indexing delay, retention and the rate limit all read it, so
tests move time without sleeping.

State tests can change between runs: `workloads` (list of workload dicts), `labels` (href ->
label dict), `label_mode` ("inline" or "href": workloads then carry `[{href}]` only, like a PCE
older than 22.3). The constructor and load_estate set the estate as it already was; every other
helper changes it and writes the events a real PCE would:

* set_workloads (one create, update or delete event per workload that differs), upsert_workload
  (`workload.create`, `workload.undelete` or an update), delete_workload (`workload.delete`,
  `workload.soft_delete`), relabel (`workload.update`), bulk_relabel (one
  `workloads.bulk_update` naming every workload), set_addresses (`workload_interfaces.update`
  from the VEN of a managed workload, `workload.update` for an unmanaged one), add_label
  (`label.create`), rename_label (`label.update`), update_label_dimension
  (`label_dimension.update`) and churn (estate.churn, with its events).
* Noise and the unexpected: emit_user_session (sign-in, login, logout, session end),
  emit_link_local_churn (an interface event whose only change is an `fe80::` address) and
  emit_event (any type, unknown ones included, optionally naming a workload).

Changing `workloads` or an estate directly writes no events, like a feed that missed them.
`events` lists every event written, oldest first.

Behaviour and fault injection (plain attributes; counters decrement as requests consume them):

* `reset_next`: drop the connection of the next N requests.
* `rate_limit_next`: answer the next N requests 429 `too_many_requests_error`. Like the real PCE
  as far as anyone has seen, without Retry-After; set `rate_limit_retry_after` to add one.
* `requests_per_minute`: when set, a rolling minute of at most this many requests (per API key,
  docs/protocols.md#pce-rate-limits); beyond it, the same 429. Every authenticated request
  counts, the events API's included and the rejected ones too (whether a real PCE counts
  rejected requests is undocumented: the hard case).
* `fail_next`: answer the next N requests `fail_status` (default 503).
* `fault_path`: when set, only requests whose path contains it consume the three faults above
  (`"/events"` makes them faults of the events API alone).
* `event_index_delay`: seconds after its timestamp an event first shows on the events API
  (docs/protocols.md#pce-events: events are indexed with some delay).
* `event_retention`: seconds of history the events API keeps; older events are dropped for good.
* `job_outcome`: "done" (default), "failed" or "cancelled" after `running_polls`, or
  "running" to stay running forever. Captured when a job is created. A failed or cancelled job
  carries `result.message` (`job_message`, or a message naming the outcome).
* `retry_after` / `poll_retry_after`: Retry-After seconds on the 202 / on job polls (None: absent).
* `location_style`: "relative" (`/orgs/...`), "api" (`/api/v2/orgs/...`) or "absolute".
* `ignore_prefer`: answer async requests synchronously (200, at most 500 objects).
* `datafile_truncate_at`: send only this many datafile body bytes, then reset the connection.
* `datafile_body`: serve these bytes instead of every datafile (b"not json", b'{"a":1}', ...).
* `compress_datafiles`: gzip datafiles for clients that accept it.
* `max_jobs`: how many jobs (and their datafiles) are kept; older ones answer 404. 0 makes
  every job vanish right after it is accepted.

Defaults keep a run short but realistic: Retry-After 1 on the 202, one "running" poll, no rate
limit, events visible at once and kept for ever. Tests that use real time can set
`retry_after = 0` and `running_polls = 0`.

Records: `requests` (LoggedRequest: method, path, query, headers without Authorization,
status), `jobs_created`, `datafiles_served`, `events`, and count(path_fragment).
"""

import base64
import binascii
import gzip
import hmac
import ipaddress
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal

from emulators.estate import ChurnReport, Estate, churn
from emulators.server import Request, Response

Json = dict[str, Any]
JobOutcome = Literal["done", "failed", "cancelled", "running"]
LocationStyle = Literal["relative", "api", "absolute"]
LabelMode = Literal["inline", "href"]

SYNC_LIMIT = 500
_ORG_PATH = re.compile(r"^/api/v2/orgs/(\d+)/(.+)$")
_JSON = {"Content-Type": "application/json"}
# `not_acceptable_error` and `too_many_requests_error` are seen in captures (docs/protocols.md#pce-errors); the
# others follow the same `<reason>_error` pattern [unverified].
_ERROR_TOKENS = {
    401: "authentication_failed_error",
    403: "forbidden_error",
    404: "not_found_error",
    405: "method_not_allowed_error",
    406: "not_acceptable_error",
    429: "too_many_requests_error",
    500: "internal_server_error",
    502: "bad_gateway_error",
    503: "service_unavailable_error",
    504: "gateway_timeout_error",
}
_JOB_MESSAGES = {"failed": "Async collection job failed", "cancelled": "Async collection job was cancelled"}
RATE_WINDOW_SECONDS = 60.0
_ORG_COLLECTIONS = frozenset({"workloads", "labels", "events", "datafiles"})
EVENTS_DEFAULT_PAGE = 100  # docs 22.2: default max_results of GET /events
EVENTS_MAX_PAGE = 10_000  # docs 22.2: the largest max_results accepted
_USER: Json = {"user": {"href": "/users/1", "username": "admin@example.com"}}
_SYSTEM: Json = {"system": {}}
_SYSTEM_ACTION: Json = {
    "api_endpoint": None,
    "api_method": None,
    "http_status_code": None,
    "src_ip": "FILTERED",
}


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names, Authorization removed
    status: int


@dataclass
class _Job:
    id: str
    collection: str
    datafile_id: str
    datafile: bytes
    outcome: JobOutcome
    running_polls: int
    requested_at: str
    message: str
    polls: int = 0


@dataclass
class _Event:
    record: Json
    at: datetime  # the record's timestamp, to the millisecond like the record
    visible_at: float  # epoch seconds from which the events API shows it


class _EventLog:
    """Audit events in the order written; the API shows those already indexed, newest first."""

    def __init__(self) -> None:
        self._events: list[_Event] = []

    def append(self, record: Json, *, visible_at: float) -> None:
        self._events.append(_Event(record, _parse_timestamp(record["timestamp"]), visible_at))

    def prune(self, cutoff: float) -> None:
        """Drop events older than the cutoff (epoch seconds): the PCE's retention window."""
        oldest = datetime.fromtimestamp(cutoff, UTC)
        self._events = [event for event in self._events if event.at >= oldest]

    def visible(self, now: float) -> list[_Event]:
        indexed = [event for event in self._events if event.visible_at <= now]
        return sorted(reversed(indexed), key=lambda event: event.at, reverse=True)  # stable: later first

    def records(self) -> list[Json]:
        return [event.record for event in self._events]


@dataclass(frozen=True)
class _EventFilter:
    """The events API's query: timestamp[gte]/[lte] (RFC 3339), event_type, severity, status, max_results."""

    limit: int
    since: datetime | None
    until: datetime | None
    event_type: str | None
    severity: str | None
    status: str | None

    @classmethod
    def parse(cls, query: dict[str, list[str]]) -> "_EventFilter":
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

    def matches(self, event: _Event) -> bool:
        record = event.record
        wanted_status = None if self.status == "nil" else self.status
        return (
            (self.since is None or event.at >= self.since)
            and (self.until is None or event.at <= self.until)
            and (self.event_type is None or record["event_type"] == self.event_type)
            and (self.severity is None or record["severity"] == self.severity)
            and (self.status is None or record["status"] == wanted_status)
        )


class PceEmulator:
    """The App for LoopbackServer; thread-safe, one lock around each request."""

    DEFAULT_USERNAME = "api_1a2b3c4d5e6f7a8b9"
    DEFAULT_SECRET = "emulated-pce-secret-0123456789abcdef0123456789abcdef"  # noqa: S105

    def __init__(
        self,
        *,
        org_id: int = 1,
        auth_username: str = DEFAULT_USERNAME,
        secret: str = DEFAULT_SECRET,
        workloads: list[Json] | None = None,
        labels: dict[str, Json] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.org_id = org_id
        self.clock = clock
        self.auth_username = auth_username
        self.secret = secret
        self.workloads: list[Json] = workloads if workloads is not None else []
        self.labels: dict[str, Json] = labels if labels is not None else {}
        self.tombstones: list[Json] = []  # deleted workloads, served only with include_deleted=true
        self.label_mode: LabelMode = "inline"
        self._estate: Estate | None = None
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._datafiles: dict[str, str] = {}  # datafile id -> job id
        self.max_jobs = 8
        # Behaviour and faults (see the module docstring).
        self.running_polls = 1
        self.job_outcome: JobOutcome = "done"
        self.job_message: str | None = None
        self.retry_after: int | None = 1
        self.poll_retry_after: int | None = None
        self.location_style: LocationStyle = "relative"
        self.public_url: str | None = None  # base of absolute Locations; default http://<Host header>
        self.ignore_prefer = False
        self.compress_datafiles = False
        self.reset_next = 0
        self.rate_limit_next = 0
        self.rate_limit_retry_after: str | None = None
        self.requests_per_minute: int | None = None
        self._request_times: deque[float] = deque()
        self.fail_next = 0
        self.fail_status = 503
        self.fault_path: str | None = None
        self.datafile_truncate_at: int | None = None
        self.datafile_body: bytes | None = None
        # The events API (see the module docstring).
        self.pce_fqdn = "pce.example.internal"
        self.event_index_delay = 0.0
        self.event_retention: float | None = None
        self._event_log = _EventLog()
        self._soft_deleted: set[str] = set()
        self._dimension_names: dict[str, str] = {}
        self._link_local_churns = 0
        # Records.
        self.requests: list[LoggedRequest] = []
        self.jobs_created = 0
        self.datafiles_served = 0

    # -- state helpers ---------------------------------------------------------------------
    # Every helper that changes the estate writes the events a real PCE would (see `_record_change`);
    # the constructor and load_estate set the estate as it already was, with no events.

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

    def set_label_mode(self, mode: LabelMode) -> None:
        if mode not in ("inline", "href"):
            raise ValueError(f"label mode must be 'inline' or 'href', not {mode!r}")
        self.label_mode = mode

    def add_label(self, key: str, value: str) -> Json:
        """The label object for key/value, created in the label table if missing (`label.create`)."""
        with self._lock:
            for label in self.labels.values():
                if label["key"] == key and label["value"] == value:
                    return label
            if self._estate is not None:
                created = self._estate.label(key, value)
            else:
                numbers = [
                    int(href.rsplit("/", 1)[1]) for href in self.labels if href.rsplit("/", 1)[1].isdigit()
                ]
                href = f"/orgs/{self.org_id}/labels/{max(numbers, default=0) + 1}"
                created = {"href": href, "key": key, "value": value}
                self.labels[href] = created
            made = {"key": {"before": None, "after": key}, "value": {"before": None, "after": value}}
            self._write("label.create", _USER, [_resource_change("create", {"label": dict(created)}, made)])
            return created

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

    def _by_href(self) -> dict[str, Json]:
        return {workload["href"]: workload for workload in self.workloads}

    def workload(self, href: str) -> Json:
        for existing in self.workloads:
            if existing["href"] == href:
                return existing
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
                    _resource_change(
                        "update", _workload_resource(workload), _label_changes(before, workload["labels"])
                    )
                )
            action = _action("PUT", f"/orgs/{self.org_id}/workloads/bulk_update", 204)
            return self._write("workloads.bulk_update", _USER, changes if itemised else [], action=action)

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

    def rename_label(self, href: str, value: str) -> Json:
        """Change a label's value everywhere it is used (`label.update`, naming no workload)."""
        with self._lock:
            old = self.labels[href]
            renamed = {**old, "value": value}
            self.labels[href] = renamed
            for workload in self.workloads:
                labels = workload.get("labels") or ()
                if any(label.get("href") == href for label in labels):
                    workload["labels"] = [renamed if label.get("href") == href else label for label in labels]
            changes = {"value": {"before": old["value"], "after": value}}
            action = _action("PUT", href, 204)
            return self._write(
                "label.update",
                _USER,
                [_resource_change("update", {"label": renamed}, changes)],
                action=action,
            )

    def update_label_dimension(self, key: str, display_name: str) -> Json:
        """Rename a label dimension's display name (`label_dimension.update`); no tag changes."""
        with self._lock:
            before = self._dimension_names.get(key, key.title())
            self._dimension_names[key] = display_name
            dimension = {
                "href": f"/orgs/{self.org_id}/label_dimensions/{uuid.uuid5(uuid.NAMESPACE_URL, key)}",
                "key": key,
                "display_name": display_name,
            }
            changes = {"display_name": {"before": before, "after": display_name}}
            return self._write(
                "label_dimension.update",
                _USER,
                [_resource_change("update", {"label_dimension": dimension}, changes)],
            )

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

    def emit_user_session(self, username: str = "admin@example.com") -> list[Json]:
        """A user signs in and out: four events, one with a /system_events href, one with status null."""
        with self._lock:
            user = {"href": "/users/1", "username": username}
            actor = {"user": user}
            sign_in = _resource_change(
                "update",
                {"user": {**user, "type": "local"}},
                {"sign_in_attempts_count": {"before": 0, "after": 1}},
            )
            return [
                self._write(
                    "user.sign_in", actor, [sign_in], action=_action("POST", "/login/users/sign_in", 302)
                ),
                self._write(
                    "user.login", actor, [], notification=("user.pce_session_created", {"user": user})
                ),
                self._write("user.logout", _SYSTEM, [], system_href=True),
                self._write(
                    "user.pce_session_terminated",
                    _SYSTEM,
                    [],
                    status=None,
                    action=None,
                    notification=("user.pce_session_terminated", {"reason": "timeout", "user": user}),
                ),
            ]

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
                changes.append(
                    _resource_change("update", _workload_resource(self.workload(workload_href)), {})
                )
            return self._write(
                event_type, _SYSTEM, changes, status=status, severity=severity, system_href=system_href
            )

    @property
    def events(self) -> list[Json]:
        """Every event written, oldest first, whether or not the API shows it yet."""
        with self._lock:
            return self._event_log.records()

    # -- writing events --------------------------------------------------------------------

    def _record_change(self, before: Json | None, after: Json) -> Json | None:
        """The event of one workload going from `before` (None: it is new) to `after`; None if equal."""
        href = after["href"]
        if before is None:
            revived = self._revive(href)
            created = {
                "hostname": {"before": None, "after": after.get("hostname")},
                **_label_changes([], after.get("labels") or []),
            }
            kind = "workload.undelete" if revived else "workload.create"
            action = (
                _action("PUT", f"{href}/undelete", 204)
                if revived
                else _action("POST", f"/orgs/{self.org_id}/workloads", 201)
            )
            return self._write(
                kind, _USER, [_resource_change("create", _workload_resource(after), created)], action=action
            )
        changes = _workload_changes(before, after)
        if not changes:
            return None
        ven = _ven_actor(after)
        if set(changes) == {"interfaces"} and ven is not None:
            interface_changes = {"workload_interfaces": changes["interfaces"]}
            resource = [_resource_change("update", _workload_resource(after), interface_changes)]
            return self._write(
                "workload_interfaces.update", ven, resource, action=_action("PUT", "FILTERED", 200)
            )
        resource = [_resource_change("update", _workload_resource(after), changes)]
        return self._write("workload.update", _USER, resource, action=_action("PUT", href, 204))

    def _bury(self, workload: Json, *, soft: bool) -> Json:
        """Keep a deleted workload as a tombstone and write its delete event."""
        stamp = _event_timestamp(self.clock())
        self.tombstones.append(
            {**workload, "deleted": True, "deleted_at": stamp, "deleted_by": {"href": "/users/1"}}
        )
        if soft:
            self._soft_deleted.add(workload["href"])
        changes = {"deleted": {"before": False, "after": True}} if soft else {}
        resource = [_resource_change("delete", _workload_resource(workload), changes)]
        kind = "workload.soft_delete" if soft else "workload.delete"
        return self._write(kind, _USER, resource, action=_action("DELETE", workload["href"], 204))

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

    def _write(
        self,
        event_type: str,
        created_by: Json,
        resource_changes: list[Json],
        *,
        status: str | None = "success",
        severity: str = "info",
        action: Json | None = _SYSTEM_ACTION,
        notification: tuple[str, Json] | None = None,
        system_href: bool = False,
    ) -> Json:
        now = self.clock()
        root = "/system_events" if system_href else f"/orgs/{self.org_id}/events"
        record: Json = {
            "href": f"{root}/{uuid.uuid4()}",
            "timestamp": _event_timestamp(now),
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

    # -- records ---------------------------------------------------------------------------

    def count(self, path_fragment: str = "") -> int:
        """Requests so far whose path contains the fragment."""
        with self._lock:
            return sum(1 for logged in self.requests if path_fragment in logged.path)

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- App -------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self._lock:
            response = self._route(request)
            headers = {name: value for name, value in request.headers.items() if name != "authorization"}
            status = 0 if response.reset else response.status
            self.requests.append(LoggedRequest(request.method, request.path, request.query, headers, status))
            response.headers.setdefault("X-Request-Id", str(uuid.uuid4()))
            return response

    def _route(self, request: Request) -> Response:
        if not request.path.startswith("/api/v2/"):
            return _error(404, "Not Found")
        if not self._authorized(request.headers.get("authorization", "")):
            response = _error(401, "Authentication required")
            response.headers["WWW-Authenticate"] = 'Basic realm="PCE"'
            return response
        if self._over_rate_limit():
            return self._too_many_requests()
        fault = self._fault(request.path)
        if fault is not None:
            return fault
        if request.path == "/api/v2/health":
            return _json(200, [{"status": "normal", "type": "emulator"}])
        match = _ORG_PATH.match(request.path)
        if match is None:
            return _error(404, "Not Found")
        if int(match.group(1)) != self.org_id:
            # [unverified] what a real PCE answers for an org the key does not belong to; 403
            # is what the reference's /settings/workloads probe note implies.
            return _error(403, "Not authorized for this organization")
        return self._org_route(request, match.group(2).rstrip("/"))

    def _org_route(self, request: Request, rest: str) -> Response:
        """The org-scoped paths; all but jobs are read-only."""
        parts = rest.split("/")
        if request.method != "GET" and parts[0] != "jobs":
            known = parts[0] in _ORG_COLLECTIONS
            return _error(405, "Method Not Allowed") if known else _error(404, "Not Found")
        if rest in ("workloads", "labels"):
            return self._collection(request, rest)
        if rest == "events":
            return self._events_page(request)
        if len(parts) == 2 and parts[0] == "workloads":
            return self._workload_instance(parts[1])
        if len(parts) == 2 and parts[0] == "jobs":
            return self._job(request, parts[1])
        if len(parts) == 2 and parts[0] == "datafiles":
            return self._datafile(request, parts[1])
        return _error(404, "Not Found")

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, _, password = decoded.partition(":")
        expected_user = hmac.compare_digest(username.encode(), self.auth_username.encode())
        expected_secret = hmac.compare_digest(password.encode(), self.secret.encode())
        return expected_user and expected_secret

    def _fault(self, path: str) -> Response | None:
        if self.fault_path is not None and self.fault_path not in path:
            return None
        if self.reset_next > 0:
            self.reset_next -= 1
            return Response(reset=True)
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return self._too_many_requests()
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(self.fail_status, _phrase(self.fail_status))
        return None

    def _over_rate_limit(self) -> bool:
        """Counts this request in the rolling minute; true when it is one too many."""
        if self.requests_per_minute is None:
            return False
        now = self.clock()
        times = self._request_times
        while times and times[0] <= now - RATE_WINDOW_SECONDS:
            times.popleft()
        times.append(now)
        return len(times) > self.requests_per_minute

    def _too_many_requests(self) -> Response:
        response = _error(429, "Too many requests")
        if self.rate_limit_retry_after is not None:
            response.headers["Retry-After"] = self.rate_limit_retry_after
        return response

    def _collection(self, request: Request, collection: str) -> Response:
        items = self._items(collection, request.query)
        if "respond-async" in request.headers.get("prefer", "") and not self.ignore_prefer:
            return self._create_job(request, collection, items)
        raw_limit = request.query.get("max_results", [str(SYNC_LIMIT)])[0]
        try:
            limit = int(raw_limit)
        except ValueError:
            return _error(406, "max_results must be an integer")
        page = items[: max(0, min(limit, SYNC_LIMIT))]
        response = _json(200, page)
        response.headers["X-Total-Count"] = str(len(items))
        return response

    def _items(self, collection: str, query: dict[str, list[str]]) -> list[Json]:
        if collection == "labels":
            return [self._label_object(label) for label in self.labels.values()]
        workloads = list(self.workloads)
        if query.get("include_deleted", ["false"])[0] == "true":
            workloads.extend(self.tombstones)
        if self.label_mode == "href":
            workloads = [self._as_served(workload) for workload in workloads]
        return workloads

    def _as_served(self, workload: Json) -> Json:
        """The workload as the PCE answers it: labels as bare hrefs in "href" label mode."""
        if self.label_mode == "href" and workload.get("labels"):
            return {**workload, "labels": [{"href": label["href"]} for label in workload["labels"]]}
        return workload

    def _workload_instance(self, workload_id: str) -> Response:
        href = f"/orgs/{self.org_id}/workloads/{workload_id}"
        found = next((workload for workload in self.workloads if workload["href"] == href), None)
        if found is None and href in self._soft_deleted:
            found = next(tombstone for tombstone in self.tombstones if tombstone["href"] == href)
        if found is None:
            return _error(404, "Workload not found")
        return _json(200, self._as_served(found))

    def _events_page(self, request: Request) -> Response:
        """GET /orgs/{org}/events: visible events, newest first, filtered, at most max_results."""
        try:
            events_filter = _EventFilter.parse(request.query)
        except ValueError as error:
            return _error(406, str(error))
        now = self.clock()
        if self.event_retention is not None:
            self._event_log.prune(now - self.event_retention)
        page = [event.record for event in self._event_log.visible(now) if events_filter.matches(event)]
        return _json(200, page[: events_filter.limit])

    @staticmethod
    def _label_object(label: Json) -> Json:
        return {
            "created_at": "2026-01-05T10:00:00.000000Z",
            "updated_at": "2026-01-05T10:00:00.000000Z",
            "created_by": {"href": "/users/1"},
            "updated_by": {"href": "/users/1"},
            "deleted": False,
            "external_data_set": None,
            "external_data_reference": None,
            **label,
        }

    def _create_job(self, request: Request, collection: str, items: list[Json]) -> Response:
        job = _Job(
            id=str(uuid.uuid4()),
            collection=collection,
            datafile_id=str(uuid.uuid4()),
            datafile=json.dumps(items, separators=(",", ":")).encode(),
            outcome=self.job_outcome,
            running_polls=self.running_polls,
            requested_at=self._job_time(),
            message=self.job_message or _JOB_MESSAGES.get(self.job_outcome, ""),
        )
        self._jobs[job.id] = job
        self._datafiles[job.datafile_id] = job.id
        while len(self._jobs) > self.max_jobs:
            oldest = next(iter(self._jobs))
            self._datafiles.pop(self._jobs.pop(oldest).datafile_id, None)
        self.jobs_created += 1
        response = Response(status=202, headers={"Location": self._location(request, job.id)})
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(self.retry_after)
        return response

    def _job_time(self) -> str:
        """Job timestamps in the docs' example format (`2016-01-14 23:16:52.303166`)."""
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _location(self, request: Request, job_id: str) -> str:
        href = f"/orgs/{self.org_id}/jobs/{job_id}"
        if self.location_style == "api":
            return f"/api/v2{href}"
        if self.location_style == "absolute":
            base = self.public_url or f"http://{request.headers.get('host', '127.0.0.1')}"
            return f"{base.rstrip('/')}/api/v2{href}"
        return href

    def _job(self, request: Request, job_id: str) -> Response:
        job = self._jobs.get(job_id)
        if job is None:
            return _error(404, "Job not found")
        if request.method == "DELETE":
            del self._jobs[job_id]
            self._datafiles.pop(job.datafile_id, None)
            return Response(status=204)
        if request.method != "GET":
            return _error(405, "Method Not Allowed")
        job.polls += 1
        body: Json = {
            "href": f"/orgs/{self.org_id}/jobs/{job.id}",
            "job_type": ":illumio/async_requests",
            "description": f"/orgs/{self.org_id}/{job.collection}",
            "result": {},
            "status": "running",
            "requested_at": job.requested_at,
            "requested_by": {"href": "/users/1"},
        }
        if job.outcome != "running" and job.polls > job.running_polls:
            body["status"] = job.outcome
            body["terminated_at"] = self._job_time()
            if job.outcome == "done":
                body["result"] = {"href": f"/orgs/{self.org_id}/datafiles/{job.datafile_id}"}
            else:
                # illumio-py reads result.message of a failed job (docs/protocols.md#pce-errors); the text is ours.
                body["result"] = {"message": job.message}
        response = _json(200, body)
        if self.poll_retry_after is not None:
            response.headers["Retry-After"] = str(self.poll_retry_after)
        return response

    def _datafile(self, request: Request, datafile_id: str) -> Response:
        job_id = self._datafiles.get(datafile_id)
        job = self._jobs.get(job_id) if job_id else None
        if job is None or job.outcome != "done":
            return _error(404, "Datafile not found")
        payload = job.datafile if self.datafile_body is None else self.datafile_body
        headers = dict(_JSON)
        if self.compress_datafiles and "gzip" in request.headers.get("accept-encoding", ""):
            payload = gzip.compress(payload, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self.datafiles_served += 1
        return Response(status=200, body=payload, headers=headers, truncate_at=self.datafile_truncate_at)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def _json(status: int, body: object) -> Response:
    return Response(status=status, body=json.dumps(body, separators=(",", ":")).encode(), headers=dict(_JSON))


def _error(status: int, message: str) -> Response:
    """The PCE's error body: a list of {token, message} (tokens from captures where known)."""
    return _json(status, [{"token": _ERROR_TOKENS.get(status, "unexpected_error"), "message": message}])


# -- event records ---------------------------------------------------------------------------------
# Shapes follow the captures cited in docs/protocols.md#pce-events (illumio-py's events.json, illumio-ops'
# events_viewer.json). Where no capture shows a workload event's `changes` (labels, a new or
# deleted workload), they follow the captured patterns: collections as {"created", "updated",
# "deleted"} lists, fields as {"before", "after"} [unverified].


def _event_timestamp(now: float) -> str:
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


def _action(method: str, path: str, status: int) -> Json:
    endpoint = path if path == "FILTERED" else f"/api/v2{path}"
    return {
        "api_endpoint": endpoint,
        "api_method": method,
        "http_status_code": status,
        "src_ip": "192.0.2.10",
    }


def _resource_change(change_type: str, resource: Json, changes: Json) -> Json:
    return {"uuid": str(uuid.uuid4()), "resource": resource, "changes": changes, "change_type": change_type}


def _workload_resource(workload: Json) -> Json:
    return {
        "workload": {
            "href": workload["href"],
            "hostname": workload.get("hostname"),
            "name": workload.get("name"),
            "labels": [dict(label) for label in workload.get("labels") or ()],
        }
    }


def _ven_actor(workload: Json) -> Json | None:
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


def _workload_changes(before: Json, after: Json) -> Json:
    """What differs between two versions of a workload, in the events' `changes` form."""
    changes: Json = {}
    if before.get("labels") != after.get("labels"):
        labels = _label_changes(before.get("labels") or [], after.get("labels") or [])
        changes.update(labels or {"labels": {"before": before.get("labels"), "after": after.get("labels")}})
    if before.get("interfaces") != after.get("interfaces"):
        changes["interfaces"] = _interface_changes(
            after["href"], before.get("interfaces") or [], after.get("interfaces") or []
        )
    for key in sorted((before.keys() | after.keys()) - {"labels", "interfaces"}):
        if before.get(key) != after.get(key):
            changes[key] = {"before": before.get(key), "after": after.get(key)}
    return changes


def _label_changes(before: list[Json], after: list[Json]) -> Json:
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
