"""PceClient's change-feed reads: one page of events, and one workload by href.

The emulator's events API is built elsewhere; these tests serve canned answers shaped like the
real PCE's (href, timestamp, event_type, status, severity, resource_changes) from the loopback
server, and the workload endpoint from the emulator's own estate.
"""

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dagsync.core.errors import PceError
from dagsync.core.models import PceEvent, Workload
from dagsync.net.credentials import PceCredentials
from dagsync.net.pacing import Pacer
from dagsync.net.retry import Retrier
from dagsync.pce.client import PCE_RETRY, PceClient
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer, Request, Response
from tests.support.clock import FakeClock
from tests.support.pce import Canned, CurrentApp, json_answer, pce_error, workload

MakeClient = Callable[..., PceClient]
SINCE = datetime(2026, 8, 3, 6, 0, 0, tzinfo=UTC)
UNTIL = datetime(2026, 8, 3, 6, 20, 0, 123456, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def make_client(server: LoopbackServer, pce: PceEmulator, clock: FakeClock) -> Iterator[MakeClient]:
    clients: list[PceClient] = []

    def make(**options: Any) -> PceClient:
        options.setdefault(
            "retrier",
            Retrier(replace(PCE_RETRY, jitter=lambda: 0.5), sleep=clock.sleep, clock=clock.monotonic),
        )
        clients.append(
            PceClient(
                server.url, 1, PceCredentials(auth_username=pce.auth_username, secret=pce.secret), **options
            )
        )
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def event(
    href: str,
    event_type: str,
    timestamp: str = "2026-08-03T06:17:59.499Z",
    *resources: dict[str, Any],
    status: str | None = "success",
    severity: str | None = "info",
) -> dict[str, Any]:
    """An event as the PCE writes it; each resource is one resource change."""
    return {
        "href": href,
        "timestamp": timestamp,
        "pce_fqdn": "pce.lab.local",
        "created_by": {"user": {"href": "/users/1", "username": "admin@example.com"}},
        "event_type": event_type,
        "status": status,
        "severity": severity,
        "action": {"api_method": "PUT", "http_status_code": 204, "src_ip": "192.0.2.7"},
        "resource_changes": [
            {"uuid": f"rc-{n}", "change_type": "update", "resource": resource, "changes": {}}
            for n, resource in enumerate(resources)
        ],
        "notifications": [],
    }


def workload_resource(href: str) -> dict[str, Any]:
    return {"workload": {"href": href, "hostname": "web-01", "labels": [{"href": "/orgs/1/labels/53"}]}}


class EventsAnswer:
    """Serves one events page and remembers the query each request asked for."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.queries: list[dict[str, list[str]]] = []

    def __call__(self, request: Request) -> Response:
        self.queries.append(request.query)
        return json_answer(200, self.events)


@pytest.fixture
def events_page(current: CurrentApp) -> Callable[[list[dict[str, Any]]], EventsAnswer]:
    def serve(events: list[dict[str, Any]]) -> EventsAnswer:
        answer = EventsAnswer(events)
        current.canned.append(Canned(answer, path="/orgs/1/events"))
        return answer

    return serve


# -- events ----------------------------------------------------------------------------------


def test_events_are_asked_for_from_since_to_until_with_max_results(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient
) -> None:
    answer = events_page([])

    make_client().fetch_events(SINCE, until=UNTIL, max_results=500)

    assert answer.queries == [
        {
            "timestamp[gte]": ["2026-08-03T06:00:00.000Z"],
            "timestamp[lte]": ["2026-08-03T06:20:00.123Z"],
            "max_results": ["500"],
        }
    ]


def test_without_until_no_upper_bound_is_sent(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient
) -> None:
    answer = events_page([])

    make_client().fetch_events(SINCE.astimezone(timezone(timedelta(hours=2))), max_results=100)

    assert answer.queries[0] == {"timestamp[gte]": ["2026-08-03T06:00:00.000Z"], "max_results": ["100"]}


def test_an_event_is_read_with_its_type_time_status_severity_and_the_workloads_it_names(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient
) -> None:
    events_page(
        [
            event(
                "/orgs/1/events/d66cae5a",
                "workload_interfaces.update",
                "2026-08-03T06:17:59.499Z",
                workload_resource("/orgs/1/workloads/4716377d"),
            )
        ]
    )

    events = make_client().fetch_events(SINCE, max_results=100)

    assert events == [
        PceEvent(
            href="/orgs/1/events/d66cae5a",
            event_type="workload_interfaces.update",
            timestamp=datetime(2026, 8, 3, 6, 17, 59, 499000, tzinfo=UTC),
            status="success",
            severity="info",
            workload_hrefs=("/orgs/1/workloads/4716377d",),
            label_hrefs=(),
        )
    ]


def test_events_come_back_newest_first_as_the_pce_sent_them(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient
) -> None:
    events_page(
        [
            event("/orgs/1/events/3", "workload.update", "2026-08-03T06:03:00Z"),
            event("/orgs/1/events/2", "user.login", "2026-08-03T06:02:00Z"),
            event("/system_events/1", "user.logout", "2026-08-03T06:01:00Z"),
        ]
    )

    events = make_client().fetch_events(SINCE, max_results=100)

    assert [e.href for e in events] == ["/orgs/1/events/3", "/orgs/1/events/2", "/system_events/1"]


def test_workload_hrefs_that_are_not_org_relative_are_normalised(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient
) -> None:
    events_page(
        [
            event(
                "/system_events/9",
                "workloads.bulk_update",
                "2026-08-03T06:05:00Z",
                workload_resource("https://pce.lab.local:8443/api/v2/orgs/1/workloads/aaa"),
                workload_resource("/api/v2/orgs/1/workloads/bbb"),
                {"workload_interface": {"href": "/orgs/1/workloads/ccc/interfaces/eth0"}},
                workload_resource("/orgs/1/workloads/aaa"),
            )
        ]
    )

    (only,) = make_client().fetch_events(SINCE, max_results=100)

    assert only.workload_hrefs == ("/orgs/1/workloads/aaa", "/orgs/1/workloads/bbb", "/orgs/1/workloads/ccc")


def test_label_events_name_their_labels(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient
) -> None:
    events_page(
        [
            event(
                "/orgs/1/events/l1",
                "label.update",
                "2026-08-03T06:05:00Z",
                {"label": {"href": "/orgs/1/labels/53", "key": "env", "value": "Quarantine"}},
            ),
            event(
                "/orgs/1/events/d1",
                "label_dimension.update",
                "2026-08-03T06:04:00Z",
                {"label_dimension": {"href": "/orgs/1/label_dimensions/8b5b"}},
            ),
        ]
    )

    label, dimension = make_client().fetch_events(SINCE, max_results=100)

    assert (label.label_hrefs, label.workload_hrefs) == (("/orgs/1/labels/53",), ())
    assert (dimension.label_hrefs, dimension.workload_hrefs) == ((), ())


def test_an_event_without_status_or_severity_reads_them_as_none(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient
) -> None:
    events_page([event("/orgs/1/events/1", "workload.update", status=None, severity=None)])

    (only,) = make_client().fetch_events(SINCE, max_results=100)

    assert (only.status, only.severity) == (None, None)


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        ({"events": []}, "it is an object, not an array"),
        ([42], "element 0 is a number, not an event object"),
        ([{"timestamp": "2026-08-03T06:00:00Z", "event_type": "x"}], "element 0 has no string href"),
        ([event("/orgs/1/events/1", "")], "event /orgs/1/events/1 has no string event_type"),
        ([event("/orgs/1/events/1", "workload.update", "yesterday")], "has no RFC 3339 timestamp"),
        (
            [{**event("/orgs/1/events/1", "workload.update"), "resource_changes": [{"resource": None}]}],
            "a resource change without a resource object",
        ),
    ],
    ids=["object", "number", "no-href", "no-type", "bad-timestamp", "no-resource"],
)
def test_an_events_answer_with_an_unexpected_shape_raises(
    current: CurrentApp, make_client: MakeClient, answer: object, detail: str
) -> None:
    current.canned.append(Canned(json_answer(200, answer), path="/events"))

    with pytest.raises(PceError) as caught:
        make_client().fetch_events(SINCE, max_results=100)

    assert str(caught.value).startswith("the PCE's events answer has an unexpected shape: ")
    assert detail in str(caught.value)


def test_an_events_api_that_keeps_failing_raises(current: CurrentApp, make_client: MakeClient) -> None:
    current.canned.append(Canned(pce_error(503, "service_unavailable", "Try later"), path="/events"))

    with pytest.raises(
        PceError, match=r"HTTP 503 \(a server error: service_unavailable: Try later\); gave up"
    ):
        make_client().fetch_events(SINCE, max_results=100)


def test_event_reads_are_retried_on_rate_limiting_like_every_request(
    current: CurrentApp, events_page: Callable[..., EventsAnswer], make_client: MakeClient, clock: FakeClock
) -> None:
    limited = Canned(pce_error(429, "too_many_requests_error", "Slow down"), path="/events")
    current.canned.insert(0, limited)
    limited.active = lambda: limited.served < 1
    events_page([event("/orgs/1/events/1", "workload.update")])

    events = make_client().fetch_events(SINCE, max_results=100)

    assert len(events) == 1
    assert clock.sleeps == [12.5]


def test_event_reads_share_the_runs_pacer(
    events_page: Callable[..., EventsAnswer], make_client: MakeClient, clock: FakeClock
) -> None:
    events_page([])
    pacer = Pacer(2, clock=clock.monotonic, sleep=clock.sleep)
    client = make_client(pacer=pacer)

    for _ in range(3):
        client.fetch_events(SINCE, max_results=100)

    assert clock.sleeps == [60.0]


@pytest.mark.parametrize("bad", [0, 10_001])
def test_max_results_outside_what_the_pce_accepts_is_refused(make_client: MakeClient, bad: int) -> None:
    with pytest.raises(ValueError, match="max_results"):
        make_client().fetch_events(SINCE, max_results=bad)


def test_a_naive_since_is_refused(make_client: MakeClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_client().fetch_events(datetime(2026, 8, 3, 6, 0), max_results=100)


# -- one workload ----------------------------------------------------------------------------


def serve_workloads(current: CurrentApp, pce: PceEmulator, *, label_mode: str = "inline") -> Canned:
    """GET /orgs/1/workloads/{id} from the emulator's estate: 404 when it has no such workload."""

    def answer(request: Request) -> Response:
        href = request.path.removeprefix("/api/v2")
        try:
            body = pce.workload(href)
        except KeyError:
            return pce_error(404, "not_found", "Not Found")
        if label_mode == "href":
            body = {**body, "labels": [{"href": label["href"]} for label in body.get("labels") or ()]}
        return json_answer(200, body)

    canned = Canned(answer, path="/orgs/1/workloads/")
    current.canned.append(canned)
    return canned


def test_one_workload_reads_exactly_as_it_does_in_the_inventory(
    pce: PceEmulator, current: CurrentApp, make_client: MakeClient
) -> None:
    pce.set_workloads(
        [
            workload(pce, "w1", "10.0.0.1", "fe80::1", labels={"role": "Web", "env": "Production"}),
            workload(pce, "u1", "192.168.30.153", hostname="", name="APV1", managed=False),
        ]
    )
    inventory = {w.href: w for w in make_client().fetch_workloads()}
    serve_workloads(current, pce)

    client = make_client()

    assert client.fetch_workload("/orgs/1/workloads/w1") == inventory["/orgs/1/workloads/w1"]
    assert client.fetch_workload("/orgs/1/workloads/u1") == Workload(
        "/orgs/1/workloads/u1", (), ("192.168.30.153",), "APV1", (("managed", "no"),)
    )


def test_a_workload_the_pce_no_longer_has_is_none(
    pce: PceEmulator, current: CurrentApp, make_client: MakeClient
) -> None:
    serve_workloads(current, pce)

    assert make_client().fetch_workload("/orgs/1/workloads/gone") is None


def test_a_deleted_workload_is_none(pce: PceEmulator, current: CurrentApp, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", deleted=True)])
    serve_workloads(current, pce)

    assert make_client().fetch_workload("/orgs/1/workloads/w1") is None


@pytest.mark.parametrize(
    "href",
    [
        "/orgs/1/workloads/w1",
        "/api/v2/orgs/1/workloads/w1",
        "https://pce.lab.local:8443/api/v2/orgs/1/workloads/w1",
        "/orgs/1/workloads/w1/interfaces/eth0",
    ],
)
def test_a_workload_is_fetched_by_its_org_relative_href_whatever_form_it_came_in(
    pce: PceEmulator, current: CurrentApp, make_client: MakeClient, href: str
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    served = serve_workloads(current, pce)

    fetched = make_client().fetch_workload(href)

    assert fetched is not None
    assert fetched.href == "/orgs/1/workloads/w1"
    assert served.served == 1


@pytest.mark.parametrize("href", ["/orgs/2/workloads/w1", "/orgs/1/labels/3", "w1"])
def test_an_href_that_is_not_a_workload_of_our_org_raises_without_a_request(
    current: CurrentApp, make_client: MakeClient, href: str
) -> None:
    client = make_client()

    with pytest.raises(PceError, match="is not a workload of org 1"):
        client.fetch_workload(href)
    assert client.requests_made == 0


def test_href_only_labels_are_resolved_with_one_label_read_per_client(
    pce: PceEmulator, current: CurrentApp, make_client: MakeClient
) -> None:
    pce.set_workloads(
        [
            workload(pce, "w1", "10.0.0.1", labels={"env": "Production"}),
            workload(pce, "w2", "10.0.0.2", labels={"env": "Quarantine"}),
        ]
    )
    serve_workloads(current, pce, label_mode="href")
    client = make_client()

    first, second = (
        client.fetch_workload("/orgs/1/workloads/w1"),
        client.fetch_workload("/orgs/1/workloads/w2"),
    )

    assert first is not None and first.labels == (("env", "Production"),)
    assert second is not None and second.labels == (("env", "Quarantine"),)
    assert pce.count("/labels") == 1


def test_an_answer_for_another_workload_raises(
    current: CurrentApp, pce: PceEmulator, make_client: MakeClient
) -> None:
    current.canned.append(Canned(json_answer(200, workload(pce, "other", "10.0.0.9")), path="/workloads/w1"))

    with pytest.raises(PceError, match="with another workload"):
        make_client().fetch_workload("/orgs/1/workloads/w1")


def test_a_workload_answer_with_an_unexpected_shape_raises(
    current: CurrentApp, make_client: MakeClient
) -> None:
    body = {"href": "/orgs/1/workloads/w1", "interfaces": "10.0.0.1"}
    current.canned.append(Canned(json_answer(200, body), path="/workloads/w1"))

    with pytest.raises(PceError) as caught:
        make_client().fetch_workload("/orgs/1/workloads/w1")

    assert str(caught.value) == (
        "the PCE's answer for workload /orgs/1/workloads/w1 has an unexpected shape: "
        "workload /orgs/1/workloads/w1 has interfaces that are a string, not a list"
    )


def test_workload_reads_are_retried_like_every_request(
    pce: PceEmulator, current: CurrentApp, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    failing = Canned(pce_error(503, "service_unavailable", "Try later"), path="/workloads/w1")
    failing.active = lambda: failing.served < 2
    current.canned.append(failing)
    serve_workloads(current, pce)

    fetched = make_client().fetch_workload("/orgs/1/workloads/w1")

    assert fetched is not None
    assert failing.served == 2
