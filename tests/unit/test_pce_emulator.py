"""The PCE emulator answers like the reference says a PCE does (plain requests, no client code)."""

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators.estate import generate_estate
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer
from tests.support.clock import FakeClock
from tests.support.pce import ORG, workload


@pytest.fixture
def http(pce: PceEmulator) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        session.auth = (pce.auth_username, pce.secret)
        session.headers["Accept"] = "application/json"
        yield session


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _api(server: LoopbackServer, path: str) -> str:
    return f"{server.url}/api/v2{path}"


def _run_job(http: requests.Session, server: LoopbackServer, collection: str) -> requests.Response:
    """Submit, poll until done and download, the way every client in the reference does."""
    accepted = http.get(_api(server, f"/orgs/{ORG}/{collection}"), headers={"Prefer": "respond-async"})
    job_href = accepted.headers["Location"]
    while (job := http.get(_api(server, job_href)).json())["status"] == "running":
        pass
    return http.get(_api(server, job["result"]["href"]))


def test_synchronous_collection_stops_at_500_with_the_total_count(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.load_estate(generate_estate(700, seed=1))

    response = http.get(_api(server, f"/orgs/{ORG}/workloads"), params={"max_results": 1000})

    assert len(response.json()) == 500
    assert response.headers["X-Total-Count"] == "700"


def test_async_request_is_accepted_with_a_job_location(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.retry_after = 5

    response = http.get(_api(server, f"/orgs/{ORG}/workloads"), headers={"Prefer": "respond-async"})

    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["Location"].startswith(f"/orgs/{ORG}/jobs/")
    assert response.headers["Retry-After"] == "5"


def test_job_runs_for_the_configured_polls_then_names_its_datafile(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.running_polls = 2
    job_href = http.get(_api(server, f"/orgs/{ORG}/workloads"), headers={"Prefer": "respond-async"}).headers[
        "Location"
    ]

    bodies = [http.get(_api(server, job_href)).json() for _ in range(3)]

    assert [body["status"] for body in bodies] == ["running", "running", "done"]
    assert bodies[2]["result"]["href"].startswith(f"/orgs/{ORG}/datafiles/")
    assert bodies[0]["href"] == job_href


def test_datafile_is_the_complete_estate(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    estate = generate_estate(1200, seed=2)
    pce.load_estate(estate)

    datafile = _run_job(http, server, "workloads")

    assert datafile.json() == estate.workloads


def test_datafile_is_a_snapshot_taken_when_the_job_was_created(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    job_href = http.get(_api(server, f"/orgs/{ORG}/workloads"), headers={"Prefer": "respond-async"}).headers[
        "Location"
    ]
    pce.upsert_workload(workload(pce, "w2", "10.0.0.2"))
    http.get(_api(server, job_href))
    done = http.get(_api(server, job_href)).json()

    datafile = http.get(_api(server, done["result"]["href"])).json()

    assert [item["href"] for item in datafile] == ["/orgs/1/workloads/w1"]


def test_href_label_mode_serves_label_hrefs_only(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production"})])
    pce.set_label_mode("href")

    datafile = _run_job(http, server, "workloads").json()

    assert datafile[0]["labels"] == [{"href": "/orgs/1/labels/1"}]


def test_labels_collection_lists_label_objects(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.add_label("env", "Production")

    labels = _run_job(http, server, "labels").json()

    assert [(label["href"], label["key"], label["value"]) for label in labels] == [
        ("/orgs/1/labels/1", "env", "Production")
    ]


def test_bad_credentials_get_401(pce: PceEmulator, server: LoopbackServer) -> None:
    response = requests.get(
        _api(server, f"/orgs/{ORG}/workloads"), auth=(pce.auth_username, "nope"), timeout=5
    )

    assert response.status_code == 401


def test_other_org_gets_403(server: LoopbackServer, http: requests.Session) -> None:
    response = http.get(_api(server, "/orgs/2/workloads"))

    assert response.status_code == 403


@pytest.mark.parametrize(
    "path", ["/api/v2/orgs/1/widgets", "/api/v2/orgs/1/jobs/unknown", "/orgs/1/workloads"]
)
def test_unknown_paths_get_404(server: LoopbackServer, http: requests.Session, path: str) -> None:
    response = http.get(f"{server.url}{path}")

    assert response.status_code == 404


def test_request_log_keeps_headers_but_not_authorization(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    http.get(_api(server, f"/orgs/{ORG}/workloads"), headers={"Prefer": "respond-async"})

    logged = pce.requests[0]
    assert (logged.method, logged.path, logged.status) == ("GET", "/api/v2/orgs/1/workloads", 202)
    assert logged.headers["prefer"] == "respond-async"
    assert "authorization" not in logged.headers


def test_errors_are_a_list_of_token_and_message(server: LoopbackServer, http: requests.Session) -> None:
    response = http.get(_api(server, f"/orgs/{ORG}/widgets"))

    assert response.json() == [{"token": "not_found_error", "message": "Not Found"}]


def test_rate_limit_fault_answers_429_for_the_next_requests(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.rate_limit_next = 2

    responses = [http.get(_api(server, f"/orgs/{ORG}/labels")) for _ in range(3)]

    assert [response.status_code for response in responses] == [429, 429, 200]


def test_rate_limited_answer_has_no_retry_after_and_the_real_token(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.rate_limit_next = 1

    response = http.get(_api(server, f"/orgs/{ORG}/labels"))

    assert "Retry-After" not in response.headers
    assert [error["token"] for error in response.json()] == ["too_many_requests_error"]


def test_rate_limited_answer_carries_retry_after_when_a_test_asks(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.rate_limit_next = 1
    pce.rate_limit_retry_after = "9"

    response = http.get(_api(server, f"/orgs/{ORG}/labels"))

    assert response.headers["Retry-After"] == "9"


def test_per_minute_limit_answers_429_beyond_the_budget(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session, clock: FakeClock
) -> None:
    pce.clock = clock
    pce.requests_per_minute = 3

    statuses = []
    for _ in range(4):
        statuses.append(http.get(_api(server, f"/orgs/{ORG}/labels")).status_code)
        clock.advance(1)

    assert statuses == [200, 200, 200, 429]


def test_per_minute_limit_frees_a_request_a_minute_after_it_was_made(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session, clock: FakeClock
) -> None:
    pce.clock = clock
    pce.requests_per_minute = 2
    http.get(_api(server, f"/orgs/{ORG}/labels"))
    clock.advance(30)
    http.get(_api(server, f"/orgs/{ORG}/labels"))
    clock.advance(30)

    statuses = [http.get(_api(server, f"/orgs/{ORG}/labels")).status_code for _ in range(2)]

    assert statuses == [200, 429]


def test_rejected_requests_count_toward_the_minute(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session, clock: FakeClock
) -> None:
    pce.clock = clock
    pce.requests_per_minute = 1
    http.get(_api(server, f"/orgs/{ORG}/labels"))
    clock.advance(50)
    http.get(_api(server, f"/orgs/{ORG}/labels"))  # rejected, yet counted
    clock.advance(20)

    response = http.get(_api(server, f"/orgs/{ORG}/labels"))

    assert response.status_code == 429


def test_per_minute_limit_answers_without_retry_after(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session, clock: FakeClock
) -> None:
    pce.clock = clock
    pce.requests_per_minute = 1
    http.get(_api(server, f"/orgs/{ORG}/labels"))

    response = http.get(_api(server, f"/orgs/{ORG}/labels"))

    assert "Retry-After" not in response.headers
    assert response.json()[0]["token"] == "too_many_requests_error"


def test_no_rate_limit_by_default(pce: PceEmulator, server: LoopbackServer, http: requests.Session) -> None:
    statuses = {http.get(_api(server, f"/orgs/{ORG}/labels")).status_code for _ in range(150)}

    assert statuses == {200}


def test_fault_path_limits_faults_to_matching_requests(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.fail_next = 1
    pce.fault_path = "/datafiles/"

    datafile = _run_job(http, server, "workloads")

    assert [logged.status for logged in pce.requests] == [202, 200, 200, 503]
    assert datafile.status_code == 503


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_job_outcome_fault_ends_the_job_with_a_message_and_no_datafile(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session, outcome: Any
) -> None:
    pce.job_outcome = outcome
    job_href = http.get(_api(server, f"/orgs/{ORG}/workloads"), headers={"Prefer": "respond-async"}).headers[
        "Location"
    ]

    bodies = [http.get(_api(server, job_href)).json() for _ in range(2)]

    assert bodies[1]["status"] == outcome
    assert set(bodies[1]["result"]) == {"message"}
    assert outcome in bodies[1]["result"]["message"]


def test_failed_job_carries_the_configured_message(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.job_outcome = "failed"
    pce.job_message = "datafile generation ran out of disk"
    job_href = http.get(_api(server, f"/orgs/{ORG}/workloads"), headers={"Prefer": "respond-async"}).headers[
        "Location"
    ]

    bodies = [http.get(_api(server, job_href)).json() for _ in range(2)]

    assert bodies[1]["result"] == {"message": "datafile generation ran out of disk"}


def test_datafile_body_fault_replaces_the_datafile(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.datafile_body = b"not json"

    datafile = _run_job(http, server, "workloads")

    assert datafile.content == b"not json"


def test_truncate_fault_breaks_the_datafile_download(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.load_estate(generate_estate(50, seed=3))
    pce.datafile_truncate_at = 100

    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        _run_job(http, server, "workloads")


def test_compressed_datafile_is_gzip_encoded(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.compress_datafiles = True

    datafile = _run_job(http, server, "workloads")

    assert datafile.headers["Content-Encoding"] == "gzip"
    assert datafile.json()[0]["href"] == "/orgs/1/workloads/w1"


def test_deleted_workloads_are_listed_only_with_include_deleted(
    pce: PceEmulator, server: LoopbackServer, http: requests.Session
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1"), workload(pce, "w2", "10.0.0.2")])
    pce.delete_workload("/orgs/1/workloads/w1")

    listed = http.get(_api(server, f"/orgs/{ORG}/workloads")).json()
    with_deleted = http.get(_api(server, f"/orgs/{ORG}/workloads"), params={"include_deleted": "true"}).json()

    assert [item["href"] for item in listed] == ["/orgs/1/workloads/w2"]
    assert {(item["href"], item["deleted"]) for item in with_deleted} == {
        ("/orgs/1/workloads/w1", True),
        ("/orgs/1/workloads/w2", False),
    }


def test_relabel_replaces_the_label_of_that_key(pce: PceEmulator) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"env": "Production", "role": "Web"})])

    pce.relabel("/orgs/1/workloads/w1", "env", "Quarantine")

    labels = pce.workload("/orgs/1/workloads/w1")["labels"]
    assert sorted((label["key"], label["value"]) for label in labels) == [
        ("env", "Quarantine"),
        ("role", "Web"),
    ]
