"""PCE JSON to our models: workloads, labels and events, checked for the shape we rely on.

Pure: no HTTP. A shape we do not expect raises ShapeError naming where it is (the client adds
which answer, masking any secret); the client never guesses past one. See
docs/protocols.md#pce-events and docs/mapping.md#addresses.
"""

import re
import sys
from datetime import UTC, datetime
from typing import NoReturn, cast

from dagsync.core.errors import PceError
from dagsync.core.models import LabelGroup, PceEvent, Workload
from dagsync.core.workload_tags import STATE_VALUES, GroupIndex

LabelRef = tuple[str, str] | str  # an inline (key, value), or a label href still to resolve
LabelTable = dict[str, tuple[str, str]]  # label href -> (key, value)

# Hrefs are not always org-relative (/api/v2/..., absolute URLs, /system_events/...): these find
# the org-relative part wherever it sits, and an interface's href names its workload too.
_WORKLOAD_HREF = re.compile(r"/orgs/(\d+)/workloads/([^/?#\s]+)")
_LABEL_HREF = re.compile(r"/orgs/(\d+)/labels/([^/?#\s]+)")


class ShapeError(Exception):
    """A PCE answer lacks the shape we rely on; the message says where."""


def workload_href(href: str) -> str | None:
    """The org-relative workload href inside `href` (`/orgs/N/workloads/ID`), or None."""
    match = _WORKLOAD_HREF.search(href)
    return f"/orgs/{match.group(1)}/workloads/{match.group(2)}" if match else None


def label_href(href: str) -> str | None:
    """The org-relative label href inside `href` (`/orgs/N/labels/ID`), or None."""
    match = _LABEL_HREF.search(href)
    return f"/orgs/{match.group(1)}/labels/{match.group(2)}" if match else None


def rfc3339(moment: datetime) -> str:
    """A timezone-aware datetime as the PCE's filters take it, in UTC with milliseconds."""
    if moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WorkloadProjector:
    """Projects PCE workload objects to Workloads, sharing one (key, value) tuple per label, one
    state tuple per state.

    One projector per read: the shared tuples keep 100,000 workloads' labels small. With a
    `groups` index, each workload carries the names of the label groups holding its labels.
    """

    def __init__(self, groups: GroupIndex | None = None) -> None:
        self._pairs: dict[tuple[str, str], tuple[str, str]] = {}
        self._states: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        self._groups = groups

    def project(self, item: object, where: str) -> tuple[Workload, tuple[LabelRef, ...]] | None:
        """The workload, or None when it is deleted.

        When some labels are only hrefs (PCEs before 22.3), the Workload carries no labels and
        the refs come back to be resolved with `resolve_labels`; otherwise refs are empty.
        """
        if not isinstance(item, dict):
            _shape(f"{where} is {kind(item)}, not a workload object")
        href = item.get("href")
        if not isinstance(href, str) or not href:
            _shape(f"{where} has no string href")
        if item.get("deleted") is True:
            return None
        raw_labels = item.get("labels")
        refs = self._label_refs(raw_labels, href)
        addresses = _addresses(item.get("interfaces"), href)
        hostname = _hostname(item)
        state = read_state(item)
        state = self._states.setdefault(state, state)
        groups = self._label_groups(self._groups, raw_labels) if self._groups is not None else ()
        if all(isinstance(ref, tuple) for ref in refs):
            labels = cast("tuple[tuple[str, str], ...]", refs)
            return Workload(href, labels, addresses, hostname, state, groups), ()
        return Workload(href, (), addresses, hostname, state, groups), refs

    @staticmethod
    def _label_groups(index: GroupIndex, raw: object) -> tuple[str, ...]:
        """The names of the groups holding the workload's labels (already checked by _label_refs)."""
        return index.names(label["href"] for label in raw) if isinstance(raw, list) else ()

    def _label_refs(self, raw: object, href: str) -> tuple[LabelRef, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            _shape(f"workload {href} has labels that are {kind(raw)}, not a list")
        refs: list[LabelRef] = []
        for label in raw:
            if not isinstance(label, dict) or not isinstance(label.get("href"), str):
                _shape(f"workload {href} has a label without a string href")
            key, value = label.get("key"), label.get("value")
            if isinstance(key, str) and isinstance(value, str):
                pair = self._pairs.get((key, value))
                if pair is None:
                    pair = self._pairs[(key, value)] = (sys.intern(key), sys.intern(value))
                refs.append(pair)
            elif "key" not in label and "value" not in label:
                refs.append(label["href"])
            else:
                _shape(
                    f"workload {href} has label {label['href']} that is neither {{href, key, value}} nor {{href}}"
                )
        return tuple(refs)


def resolve_labels(workload: Workload, refs: tuple[LabelRef, ...], table: LabelTable) -> Workload:
    """`workload` with every label, href-only ones looked up in `table`."""
    labels = []
    for ref in refs:
        if isinstance(ref, tuple):
            labels.append(ref)
        elif ref in table:
            labels.append(table[ref])
        else:
            raise PceError(
                f"workload {workload.href} carries label {ref}, which GET /labels does not list; "
                "the inventory cannot be mapped"
            )
    return Workload(
        workload.href,
        tuple(labels),
        workload.addresses,
        workload.hostname,
        workload.state,
        workload.label_groups,
    )


def read_state(item: dict[str, object]) -> tuple[tuple[str, str], ...]:
    """The states the PCE reports with certainty (docs/mapping.md#state-tags); anything else is left out.

    Managed means a VEN or an agent with an href: unmanaged workloads carry an `agent` object
    without one, and `ven: null`. An unmanaged workload gets no enforcement and no online state:
    the PCE reports placeholders for them (`enforcement_mode: visibility_only`, `online: true`,
    as in a PCE 25 capture), which say nothing about the host.
    """
    managed = item.get("managed") is True or any(
        isinstance(agent := item.get(field), dict) and isinstance(agent.get("href"), str) and agent["href"]
        for field in ("ven", "agent")
    )
    if not managed:
        known = any(field in item for field in ("ven", "agent", "managed"))
        return (("managed", "no"),) if known else ()
    state: list[tuple[str, str]] = []
    mode = item.get("enforcement_mode")
    if isinstance(mode, str) and mode in STATE_VALUES["enforcement"]:
        state.append(("enforcement", mode))
    state.append(("managed", "yes"))
    online = item.get("online")
    if isinstance(online, bool):
        state.append(("online", "yes" if online else "no"))
    return tuple(state)


def parse_label_group(item: object, where: str) -> LabelGroup:
    """A label group object; its labels and sub-groups may be bare `{href}` objects."""
    if not isinstance(item, dict):
        _shape(f"{where} is {kind(item)}, not a label group object")
    href, name = item.get("href"), item.get("name")
    if not (isinstance(href, str) and href and isinstance(name, str)):
        _shape(f"{where} lacks a string href or name")
    return LabelGroup(
        href,
        name,
        _hrefs(item.get("labels"), href, "labels"),
        _hrefs(item.get("sub_groups"), href, "sub_groups"),
    )


def _hrefs(raw: object, group: str, field: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        _shape(f"label group {group} has {field} that are {kind(raw)}, not a list")
    hrefs = []
    for member in raw:
        if not isinstance(member, dict) or not isinstance(member.get("href"), str):
            _shape(f"label group {group} has {field} without a string href")
        hrefs.append(member["href"])
    return tuple(hrefs)


def parse_label(item: object, where: str) -> tuple[str, tuple[str, str]]:
    """A label object as (href, (key, value))."""
    if not isinstance(item, dict):
        _shape(f"{where} is {kind(item)}, not a label object")
    href, key, value = item.get("href"), item.get("key"), item.get("value")
    if not (isinstance(href, str) and isinstance(key, str) and isinstance(value, str)):
        _shape(f"{where} lacks a string href, key or value")
    return href, (sys.intern(key), sys.intern(value))


def parse_events(items: object) -> list[PceEvent]:
    """An events answer (a JSON array of event objects), in the order the PCE sent it."""
    if not isinstance(items, list):
        _shape(f"it is {kind(items)}, not an array")
    return [parse_event(item, f"element {position}") for position, item in enumerate(items)]


def parse_event(item: object, where: str) -> PceEvent:
    """An event object as a PceEvent; the workloads and labels it names come from its resource changes."""
    if not isinstance(item, dict):
        _shape(f"{where} is {kind(item)}, not an event object")
    href, event_type = item.get("href"), item.get("event_type")
    if not isinstance(href, str) or not href:
        _shape(f"{where} has no string href")
    if not isinstance(event_type, str) or not event_type:
        _shape(f"event {href} has no string event_type")
    status, severity = item.get("status"), item.get("severity")
    workloads, labels = _named_resources(item.get("resource_changes"), href)
    workloads = tuple(dict.fromkeys((*workloads, *_notified_workloads(item.get("notifications")))))
    return PceEvent(
        href=href,
        event_type=event_type,
        timestamp=_timestamp(item.get("timestamp"), href),
        status=status if isinstance(status, str) else None,
        severity=severity if isinstance(severity, str) else None,
        workload_hrefs=workloads,
        label_hrefs=labels,
    )


def _named_resources(raw: object, event: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The workload and label hrefs of `resource_changes[].resource.<type>.href`, each once."""
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        _shape(f"event {event} has resource_changes that are {kind(raw)}, not a list")
    workloads: dict[str, None] = {}
    labels: dict[str, None] = {}
    for change in raw:
        resource = change.get("resource") if isinstance(change, dict) else None
        if not isinstance(resource, dict):
            _shape(f"event {event} has a resource change without a resource object")
        for named in resource.values():
            href = named.get("href") if isinstance(named, dict) else None
            if not isinstance(href, str):
                continue
            if (workload := workload_href(href)) is not None:
                workloads[workload] = None
            elif (label := label_href(href)) is not None:
                labels[label] = None
    return tuple(workloads), tuple(labels)


def _notified_workloads(raw: object) -> tuple[str, ...]:
    """Workloads named by `notifications[].info.workload.href` (how `workload.online` names one)."""
    if not isinstance(raw, list):
        return ()
    found = []
    for notification in raw:
        info = notification.get("info") if isinstance(notification, dict) else None
        named = info.get("workload") if isinstance(info, dict) else None
        href = named.get("href") if isinstance(named, dict) else None
        if isinstance(href, str) and (workload := workload_href(href)) is not None:
            found.append(workload)
    return tuple(found)


def _timestamp(raw: object, event: str) -> datetime:
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            # [unverified] Every PCE timestamp seen carries a zone (Z); one without is read as UTC.
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    _shape(f"event {event} has no RFC 3339 timestamp")


def _addresses(raw: object, href: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        _shape(f"workload {href} has interfaces that are {kind(raw)}, not a list")
    addresses: list[str] = []
    for interface in raw:
        if not isinstance(interface, dict):
            _shape(f"workload {href} has an interface that is {kind(interface)}")
        if interface.get("loopback") is True:
            continue
        address = interface.get("address")
        if address is None or address == "":
            continue
        if not isinstance(address, str):
            _shape(f"workload {href} has an interface address that is {kind(address)}")
        addresses.append(address)
    return tuple(addresses)


def _hostname(item: dict[str, object]) -> str:
    """`hostname`, else `name` (unmanaged workloads have only a name), else "": display only."""
    for field in ("hostname", "name"):
        value = item.get(field)
        if isinstance(value, str) and value:
            return value
    return ""


def _shape(detail: str) -> NoReturn:
    raise ShapeError(detail)


def kind(value: object) -> str:
    """A JSON type name for messages; values themselves are never quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"
