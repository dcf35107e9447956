"""PceClient against the PCE emulator over loopback HTTP."""

import base64
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
import trustme

from dagsync.core.errors import PceError
from dagsync.core.models import Workload
from dagsync.net.credentials import PceCredentials
from dagsync.net.pacing import Pacer
from dagsync.net.retry import Retrier, RetryPolicy
from dagsync.pce.client import PCE_RETRY, PceClient, PceLimits
from emulators.estate import generate_estate
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer, Response
from tests.support.clock import FakeClock
from tests.support.pce import ORG, Canned, CurrentApp, interface, json_answer, pce_error, workload

MakeClient = Callable[..., PceClient]
WRONG_SECRET = "wrong-secret-5f2e9a0c7d1b4e3f"
TOO_MANY_REQUESTS = pce_error(429, "too_many_requests_error", "Too Many Requests")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def make_client(server: LoopbackServer, pce: PceEmulator, clock: FakeClock) -> Iterator[MakeClient]:
    clients: list[PceClient] = []

    def make(**overrides: Any) -> PceClient:
        credentials = overrides.pop(
            "credentials", PceCredentials(auth_username=pce.auth_username, secret=pce.secret)
        )
        base_url = overrides.pop("base_url", server.url)
        org_id = overrides.pop("org_id", ORG)
        policy = overrides.pop("retry", replace(PCE_RETRY, jitter=lambda: 0.5))
        deadline = overrides.pop("deadline", None)
        retrier = Retrier(policy, sleep=clock.sleep, clock=clock.monotonic, deadline=deadline)
        options: dict[str, Any] = {"retrier": retrier, "timeout": 5.0}
        options.update(overrides)
        clients.append(PceClient(base_url, org_id, credentials, **options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _fetch_error(client: PceClient) -> PceError:
    with pytest.raises(PceError) as caught:
        client.fetch_workloads()
    return caught.value


# -- the async collection flow -------------------------------------------------------------


def test_reads_workload_labels_and_addresses(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads(
        [
            workload(pce, "w1", "10.0.0.1", "fe80::1", labels={"role": "Web", "env": "Production"}),
            workload(pce, "w2", "10.0.0.2", labels={"app": "Payments"}),
        ]
    )

    workloads = make_client().fetch_workloads()

    assert workloads == [
        Workload(
            "/orgs/1/workloads/w1",
            (("role", "Web"), ("env", "Production")),
            ("10.0.0.1", "fe80::1"),
            "w1.example.internal",
            (("managed", "yes"), ("online", "yes")),
        ),
        Workload(
            "/orgs/1/workloads/w2",
            (("app", "Payments"),),
            ("10.0.0.2",),
            "w2.example.internal",
            (("managed", "yes"), ("online", "yes")),
        ),
    ]


def test_requests_follow_the_async_job_protocol(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.running_polls = 2

    make_client().fetch_workloads()

    steps = [(logged.path.split("/")[5], logged.status) for logged in pce.requests]
    assert steps == [("workloads", 202), ("jobs", 200), ("jobs", 200), ("jobs", 200), ("datafiles", 200)]
    submit = pce.requests[0]
    assert submit.headers["prefer"] == "respond-async"
    assert all(logged.headers["accept"] == "application/json" for logged in pce.requests)


def test_reads_an_estate_larger_than_the_synchronous_limit(pce: PceEmulator, make_client: MakeClient) -> None:
    estate = generate_estate(2000, seed=7)
    pce.load_estate(estate)

    workloads = make_client().fetch_workloads()

    assert len(workloads) == 2000
    assert {w.href for w in workloads} == {raw["href"] for raw in estate.workloads}


def test_estate_projection_keeps_every_label_and_non_loopback_address(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    estate = generate_estate(600, seed=3)
    pce.load_estate(estate)

    by_href = {w.href: w for w in make_client().fetch_workloads()}

    for raw in estate.workloads:
        expected_labels = tuple((label["key"], label["value"]) for label in raw.get("labels") or ())
        expected_addresses = tuple(
            iface["address"] for iface in raw.get("interfaces") or () if not iface["loopback"]
        )
        expected_name = raw.get("hostname") or raw.get("name") or ""
        read = by_href[raw["href"]]
        assert (read.labels, read.addresses, read.hostname) == (
            expected_labels,
            expected_addresses,
            expected_name,
        )


def test_href_only_labels_are_resolved_through_the_labels_job(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    pce.load_estate(generate_estate(300, seed=5))
    inline = make_client().fetch_workloads()
    pce.set_label_mode("href")
    pce.clear_log()

    resolved = make_client().fetch_workloads()

    assert resolved == inline
    label_requests = [logged for logged in pce.requests if logged.path.endswith("/labels")]
    assert [(logged.status, logged.headers.get("prefer")) for logged in label_requests] == [
        (202, "respond-async")
    ]


def test_labels_are_not_fetched_when_every_label_is_inline(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})])

    make_client().fetch_workloads()

    assert pce.count("/labels") == 0


def test_label_href_missing_from_the_label_table_raises(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})])
    pce.set_label_mode("href")
    pce.labels.clear()

    error = _fetch_error(make_client())

    assert "/orgs/1/labels/1" in str(error)
    assert "w1" in str(error)


def test_labels_may_be_a_mix_of_inline_and_href_only(pce: PceEmulator, make_client: MakeClient) -> None:
    env = pce.add_label("env", "Production")
    role = pce.add_label("role", "Web")
    pce.set_workloads(
        [workload(pce, "w1", "10.0.0.1", labels=None) | {"labels": [env, {"href": role["href"]}]}]
    )

    workloads = make_client().fetch_workloads()

    assert workloads[0].labels == (("env", "Production"), ("role", "Web"))


@pytest.mark.parametrize("style", ["relative", "api", "absolute"])
def test_each_job_location_form_is_followed(pce: PceEmulator, make_client: MakeClient, style: Any) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.location_style = style

    workloads = make_client().fetch_workloads()

    assert [w.href for w in workloads] == ["/orgs/1/workloads/w1"]


def test_absolute_location_on_another_host_is_read_from_the_configured_pce(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.location_style = "absolute"
    pce.public_url = "https://pce-node-2.invalid:8443"

    workloads = make_client().fetch_workloads()

    assert [w.href for w in workloads] == ["/orgs/1/workloads/w1"]


def test_async_request_answered_synchronously_raises(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.ignore_prefer = True

    error = _fetch_error(make_client())

    assert "HTTP 200 instead of 202" in str(error)


# -- polling --------------------------------------------------------------------------------


def test_first_poll_waits_the_retry_after_of_the_accepted_job(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.retry_after = 3

    make_client().fetch_workloads()

    assert clock.sleeps[0] == 3.0


def test_polls_honour_retry_after_on_the_job(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.retry_after = 1
    pce.poll_retry_after = 4
    pce.running_polls = 3

    make_client().fetch_workloads()

    assert clock.sleeps == [1.0, 4.0, 4.0, 4.0]


def test_polls_back_off_without_retry_after(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.retry_after = None
    pce.running_polls = 4

    make_client().fetch_workloads()

    assert clock.sleeps == sorted(clock.sleeps)
    assert clock.sleeps[-1] > clock.sleeps[0]
    assert max(clock.sleeps) <= 10.0


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_job_that_does_not_complete_raises(pce: PceEmulator, make_client: MakeClient, outcome: Any) -> None:
    pce.job_outcome = outcome

    error = _fetch_error(make_client())

    assert repr(outcome) in str(error)
    assert pce.count("/datafiles/") == 0


def test_job_still_running_at_the_deadline_raises(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.job_outcome = "running"

    error = _fetch_error(make_client(limits=PceLimits(job_deadline=60.0)))

    assert "did not finish within 60 s" in str(error)
    assert clock.now == pytest.approx(60.0)
    assert pce.count("/datafiles/") == 0


def test_job_that_vanishes_raises_with_the_status(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.max_jobs = 0

    error = _fetch_error(make_client())

    assert "HTTP 404" in str(error)


# -- retries --------------------------------------------------------------------------------


def test_rate_limit_retry_after_is_honoured(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.rate_limit_next = 1
    pce.rate_limit_retry_after = "7"

    workloads = make_client().fetch_workloads()

    assert len(workloads) == 1
    assert clock.sleeps[0] == 7.0


def test_rate_limit_without_retry_after_waits_ten_to_fifteen_seconds(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.rate_limit_next = 2
    pce.rate_limit_retry_after = None

    workloads = make_client().fetch_workloads()

    assert len(workloads) == 1
    assert clock.sleeps[:2] == [12.5, 12.5]


def test_rate_limit_retry_after_is_honoured_up_to_sixty_seconds(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.rate_limit_next = 1
    pce.rate_limit_retry_after = "300"

    make_client().fetch_workloads()

    assert clock.sleeps[0] == 60.0


def test_rate_limiting_without_retry_after_for_40_seconds_then_success_reads_the_inventory(
    pce: PceEmulator, current: CurrentApp, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    limited = Canned(TOO_MANY_REQUESTS, active=lambda: clock.now < 40.0)
    current.canned.append(limited)

    workloads = make_client(deadline=900.0).fetch_workloads()

    assert [w.href for w in workloads] == ["/orgs/1/workloads/w1"]
    assert limited.served == 4
    assert clock.sleeps[:4] == [12.5, 12.5, 12.5, 12.5]


def test_rate_limiting_that_never_ends_fails_before_the_deadline_naming_the_wait(
    current: CurrentApp, make_client: MakeClient, clock: FakeClock
) -> None:
    current.canned.append(Canned(TOO_MANY_REQUESTS))

    error = _fetch_error(make_client(deadline=120.0))

    assert clock.now <= 120.0
    assert str(error) == (
        "the PCE answered GET /api/v2/orgs/1/workloads with HTTP 429 (rate limiting: "
        "too_many_requests_error: Too Many Requests); gave up after 10 attempts, having waited "
        "112.5 s: the run's time is nearly out"
    )


def test_pacing_spaces_requests_beyond_the_per_minute_budget(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pacer = Pacer(3, clock=clock.monotonic, sleep=clock.sleep)

    make_client(pacer=pacer).fetch_workloads()

    assert pce.count() == 4
    assert pacer.waited > 0
    assert clock.now == 60.0  # the fourth request waits until the first is a minute old


def test_pacing_that_would_wait_past_the_deadline_sends_nothing_more(
    pce: PceEmulator, make_client: MakeClient, clock: FakeClock
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pacer = Pacer(2, clock=clock.monotonic, sleep=clock.sleep, deadline=30.0)

    error = _fetch_error(make_client(pacer=pacer, deadline=30.0))

    assert "pacing to 2 requests per minute would wait" in str(error)
    assert pce.count() == 2


def test_server_errors_are_retried_then_succeed(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.fail_next = 3

    workloads = make_client().fetch_workloads()

    assert len(workloads) == 1
    assert [logged.status for logged in pce.requests[:4]] == [503, 503, 503, 202]


def test_server_errors_on_the_datafile_are_retried(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.fault_path = "/datafiles/"
    pce.fail_next = 2

    workloads = make_client().fetch_workloads()

    assert len(workloads) == 1


def test_persistent_server_errors_raise_after_the_retry_budget(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    pce.fail_next = 100

    error = _fetch_error(make_client(retry=RetryPolicy(attempts=3, base_delay=0)))

    assert "HTTP 503" in str(error)
    assert pce.count() == 3


def test_server_error_body_token_and_message_are_in_the_error(
    current: CurrentApp, make_client: MakeClient
) -> None:
    current.canned.append(Canned(pce_error(500, "internal_server_error", "Database is read-only")))

    error = _fetch_error(make_client(retry=RetryPolicy(attempts=2, base_delay=0)))

    assert "HTTP 500 (a server error: internal_server_error: Database is read-only)" in str(error)


def test_client_error_body_token_and_message_are_in_the_error(
    current: CurrentApp, make_client: MakeClient
) -> None:
    current.canned.append(Canned(pce_error(406, "not_acceptable_error", "Accept header not supported")))

    error = _fetch_error(make_client())

    assert str(error).endswith("HTTP 406: not_acceptable_error: Accept header not supported")


def test_an_error_page_that_is_not_the_pces_is_never_quoted(
    current: CurrentApp, make_client: MakeClient
) -> None:
    page = b"<html>Bad request. You sent: Authorization: Basic YXBpXzE6c2VjcmV0</html>"
    current.canned.append(Canned(Response(status=400, body=page, headers={"Content-Type": "text/html"})))

    error = _fetch_error(make_client())

    assert str(error) == "the PCE answered GET /api/v2/orgs/1/workloads with HTTP 400"


def test_a_failed_job_names_its_result_message(current: CurrentApp, make_client: MakeClient) -> None:
    failed = {"href": "/orgs/1/jobs/j1", "status": "failed", "result": {"message": "Export exceeded 2 GB"}}
    current.canned.append(Canned(json_answer(200, failed), path="/jobs/"))

    error = _fetch_error(make_client())

    assert "ended with status 'failed' (Export exceeded 2 GB)" in str(error)


def test_connection_reset_is_retried(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.reset_next = 1

    workloads = make_client().fetch_workloads()

    assert len(workloads) == 1
    assert pce.requests[0].status == 0


def test_bad_credentials_raise_without_retry(pce: PceEmulator, make_client: MakeClient) -> None:
    client = make_client(credentials=PceCredentials(auth_username=pce.auth_username, secret=WRONG_SECRET))

    error = _fetch_error(client)

    assert "HTTP 401" in str(error)
    assert "auth_username" in str(error)
    assert pce.count() == 1


def test_wrong_org_raises_naming_missing_permission(pce: PceEmulator, make_client: MakeClient) -> None:
    error = _fetch_error(make_client(org_id=2))

    assert "HTTP 403" in str(error)
    assert "permission" in str(error)
    assert pce.count() == 1


def test_connection_refused_raises_naming_the_url(make_client: MakeClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    error = _fetch_error(make_client(base_url=url))

    assert url in str(error)
    assert "connection refused" in str(error)


# -- datafile integrity ---------------------------------------------------------------------


def test_truncated_datafile_raises(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.load_estate(generate_estate(50, seed=2))
    pce.datafile_truncate_at = 2000

    error = _fetch_error(make_client())

    assert "datafile is truncated or not valid JSON" in str(error)


def test_datafile_ending_early_inside_complete_http_raises(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.datafile_body = b'[{"href": "/orgs/1/workloads/w1", "labels": [], "interfaces": []},'

    error = _fetch_error(make_client())

    assert "datafile is truncated or not valid JSON" in str(error)


@pytest.mark.parametrize("body", [b"not json", b"", b"   ", b'[{"href": "/orgs/1/workloads/w1"}] trailing'])
def test_datafile_that_is_not_json_raises(pce: PceEmulator, make_client: MakeClient, body: bytes) -> None:
    pce.datafile_body = body

    error = _fetch_error(make_client())

    assert "datafile is truncated or not valid JSON" in str(error)


@pytest.mark.parametrize(
    "items",
    [
        {"a": 1},
        [1],
        [["/orgs/1/workloads/w1"]],
        [{"hostname": "no-href"}],
        [{"href": 17}],
        [{"href": "/orgs/1/workloads/w1", "labels": {"env": "Production"}}],
        [{"href": "/orgs/1/workloads/w1", "labels": [{"key": "env", "value": "Production"}]}],
        [{"href": "/orgs/1/workloads/w1", "labels": [{"href": "/orgs/1/labels/1", "key": "env"}]}],
        [
            {
                "href": "/orgs/1/workloads/w1",
                "labels": [{"href": "/orgs/1/labels/1", "key": "env", "value": 3}],
            }
        ],
        [{"href": "/orgs/1/workloads/w1", "interfaces": "10.0.0.1"}],
        [{"href": "/orgs/1/workloads/w1", "interfaces": ["10.0.0.1"]}],
        [{"href": "/orgs/1/workloads/w1", "interfaces": [{"address": 167772161}]}],
    ],
    ids=[
        "top-level-object",
        "element-number",
        "element-array",
        "no-href",
        "href-not-string",
        "labels-object",
        "label-without-href",
        "label-key-without-value",
        "label-value-not-string",
        "interfaces-string",
        "interface-string",
        "address-number",
    ],
)
def test_datafile_with_unexpected_shape_raises(
    pce: PceEmulator, make_client: MakeClient, items: object
) -> None:
    pce.datafile_body = json.dumps(items).encode()

    error = _fetch_error(make_client())

    assert "datafile has an unexpected shape" in str(error)


def test_unexpected_shape_after_valid_workloads_returns_nothing(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    valid = [workload(pce, f"w{n}", f"10.0.0.{n}") for n in range(1, 50)]
    pce.datafile_body = json.dumps([*valid, 42]).encode()

    error = _fetch_error(make_client())

    assert "element 49" in str(error)


def test_gzip_encoded_datafile_is_decoded(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.load_estate(generate_estate(200, seed=4))
    pce.compress_datafiles = True

    workloads = make_client().fetch_workloads()

    assert len(workloads) == 200


# -- projection -----------------------------------------------------------------------------


def test_deleted_workloads_are_skipped(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads(
        [
            workload(pce, "gone", "10.0.0.1", deleted=True),
            workload(pce, "kept", "10.0.0.2", deleted=False),
        ]
    )

    workloads = make_client().fetch_workloads()

    assert [w.href for w in workloads] == ["/orgs/1/workloads/kept"]


def test_loopback_interfaces_are_skipped(pce: PceEmulator, make_client: MakeClient) -> None:
    body = workload(pce, "w1")
    body["interfaces"] = [interface("127.0.0.1", name="lo", loopback=True), interface("10.0.0.1")]
    pce.set_workloads([body])

    workloads = make_client().fetch_workloads()

    assert workloads[0].addresses == ("10.0.0.1",)


def test_interfaces_without_an_address_are_skipped(pce: PceEmulator, make_client: MakeClient) -> None:
    body = workload(pce, "w1")
    without_key = interface("10.0.0.9")
    del without_key["address"]
    body["interfaces"] = [interface(None), without_key, interface("10.0.0.1")]
    pce.set_workloads([body])

    workloads = make_client().fetch_workloads()

    assert workloads[0].addresses == ("10.0.0.1",)


@pytest.mark.parametrize("field", ["interfaces", "labels"])
@pytest.mark.parametrize("absent", ["missing", "null"])
def test_missing_or_null_interfaces_and_labels_read_as_empty(
    pce: PceEmulator, make_client: MakeClient, field: str, absent: str
) -> None:
    body = workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})
    if absent == "missing":
        del body[field]
    else:
        body[field] = None
    pce.set_workloads([body])

    workloads = make_client().fetch_workloads()

    assert getattr(workloads[0], "addresses" if field == "interfaces" else "labels") == ()


def test_workload_public_ip_is_not_an_address(pce: PceEmulator, make_client: MakeClient) -> None:
    body = workload(pce, "w1", "10.0.0.1", public_ip="203.0.113.10")
    body["interfaces"][0]["public_ip"] = "203.0.113.11"
    pce.set_workloads([body])

    workloads = make_client().fetch_workloads()

    assert workloads[0].addresses == ("10.0.0.1",)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"hostname": "web-01.example.internal", "name": "web-01"}, "web-01.example.internal"),
        ({"hostname": "", "name": "APV1"}, "APV1"),
        ({"hostname": None, "name": None}, ""),
        ({"hostname": 42, "name": ["not", "a", "name"]}, ""),
    ],
    ids=["hostname", "name-when-no-hostname", "neither", "not-strings"],
)
def test_the_hostname_is_the_hostname_else_the_name(
    pce: PceEmulator, make_client: MakeClient, names: dict[str, Any], expected: str
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", **names)])

    workloads = make_client().fetch_workloads()

    assert workloads[0].hostname == expected


def test_inline_label_values_are_kept_unchanged(pce: PceEmulator, make_client: MakeClient) -> None:
    value = ' The "Big"   Ledger\'s '
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"app": value})])

    workloads = make_client().fetch_workloads()

    assert workloads[0].labels == (("app", value),)


def test_unmanaged_workloads_are_read(pce: PceEmulator, make_client: MakeClient) -> None:
    body = workload(pce, "u1", "192.168.30.153", hostname="", name="APV1", managed=False, ven=None)
    pce.set_workloads([body])

    workloads = make_client().fetch_workloads()

    assert workloads == [
        Workload("/orgs/1/workloads/u1", (), ("192.168.30.153",), "APV1", (("managed", "no"),))
    ]


# -- counters, TLS and secrets ---------------------------------------------------------------


def test_counts_requests_and_bytes_received(pce: PceEmulator, make_client: MakeClient) -> None:
    estate = generate_estate(100, seed=9)
    pce.load_estate(estate)
    client = make_client()

    client.fetch_workloads()

    datafile_size = len(json.dumps(estate.workloads, separators=(",", ":")))
    assert client.requests_made == pce.count() == 4
    assert datafile_size < client.bytes_received < datafile_size + 2000


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(current: CurrentApp, tls_ca: trustme.CA) -> Iterator[LoopbackServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    with LoopbackServer(current, ssl_context=context) as running:
        yield running


def test_untrusted_certificate_raises_with_a_ca_bundle_hint(
    tls_server: LoopbackServer, make_client: MakeClient
) -> None:
    error = _fetch_error(make_client(base_url=tls_server.url))

    assert "TLS verification of the PCE failed" in str(error)
    assert "ca_bundle" in str(error)


def test_ca_bundle_from_the_secret_is_trusted(
    pce: PceEmulator, tls_server: LoopbackServer, tls_ca: trustme.CA, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    credentials = PceCredentials(
        auth_username=pce.auth_username, secret=pce.secret, ca_bundle=tls_ca.cert_pem.bytes().decode()
    )

    workloads = make_client(base_url=tls_server.url, credentials=credentials).fetch_workloads()

    assert len(workloads) == 1


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_verification_can_be_turned_off(
    pce: PceEmulator, tls_server: LoopbackServer, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])

    workloads = make_client(base_url=tls_server.url, verify_tls=False).fetch_workloads()

    assert len(workloads) == 1


def _error_texts(error: BaseException) -> str:
    texts = []
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


@pytest.mark.parametrize(
    "fault",
    [
        "bad-secret",
        "server-error",
        "rate-limit",
        "job-failed",
        "truncated",
        "not-json",
        "bad-shape",
        "refused",
    ],
)
def test_secret_never_appears_in_errors(
    pce: PceEmulator, make_client: MakeClient, server: LoopbackServer, fault: str
) -> None:
    secret = pce.secret if fault != "bad-secret" else WRONG_SECRET
    credentials = PceCredentials(auth_username=pce.auth_username, secret=secret)
    base_url = server.url
    pce.load_estate(generate_estate(20, seed=1))
    match fault:
        case "server-error":
            pce.fail_next = 100
        case "rate-limit":
            pce.rate_limit_next = 100
            pce.rate_limit_retry_after = secret
        case "job-failed":
            pce.job_outcome = "failed"
        case "truncated":
            pce.datafile_truncate_at = 100
        case "not-json":
            pce.datafile_body = secret.encode()
        case "bad-shape":
            pce.datafile_body = json.dumps([{"href": secret, "labels": secret}]).encode()
        case "refused":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                base_url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    error = _fetch_error(make_client(credentials=credentials, base_url=base_url, deadline=60.0))

    assert secret not in _error_texts(error)


@pytest.mark.parametrize("spelling", ["url-encoded", "basic-header"])
def test_a_secret_echoed_in_another_spelling_is_masked_in_errors(
    pce: PceEmulator, make_client: MakeClient, spelling: str
) -> None:
    secret = "s3cret/with+signs&more=9f1c"
    echoed = {
        "url-encoded": quote(secret, safe=""),
        "basic-header": base64.b64encode(f"{pce.auth_username}:{secret}".encode()).decode(),
    }[spelling]
    pce.secret = secret
    pce.load_estate(generate_estate(5, seed=1))
    pce.datafile_body = json.dumps([{"href": echoed, "labels": echoed}]).encode()
    credentials = PceCredentials(auth_username=pce.auth_username, secret=secret)

    error = _fetch_error(make_client(credentials=credentials, deadline=60.0))

    assert echoed not in _error_texts(error)
