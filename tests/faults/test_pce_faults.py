"""docs/sync.md#reading-the-inventory, fault matrix, PCE side: a fault that keeps the inventory from
being read completely stops the run before any device call; transient faults are retried; the next
run converges."""

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app import RunFailed
from dagsync.net.http import READ_CHUNK, TransferLimits
from dagsync.pce.client import PCE_RETRY
from dagsync.pce.transport import PceLimits
from tests.faults.harness import assert_exact, desired_of, load_snapshot
from tests.integration.conftest import ClientSetup, large_estate, workload

Inject = Callable[[pytest.MonkeyPatch, Any, dict[str, str], ClientSetup], None]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections (through the kernel backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def attributes(**values: Any) -> Inject:
    def inject(patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup) -> None:
        for name, value in values.items():
            patch.setattr(pce, name, value)

    return inject


def unreachable(patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup) -> None:
    patch.setenv("PCE_URL", closed_port())


def not_answering(patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup) -> None:
    clients.configure(timeout=0.2)
    patch.setenv("PCE_URL", urls["black_hole"])


def job_never_finishes(
    patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup
) -> None:
    patch.setattr(pce, "job_outcome", "running")


def rate_limited_until_the_deadline(retry_after: str | None) -> Inject:
    """The PCE answers 429 for longer than the run has left (about two minutes here)."""

    def inject(patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup) -> None:
        clients.configure(pce_retry=PCE_RETRY, deadline=clients.clock.now + 125.0)
        patch.setattr(pce, "rate_limit_next", 1_000_000)
        patch.setattr(pce, "rate_limit_retry_after", retry_after)

    return inject


def limited(limits: PceLimits) -> Inject:
    def inject(patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup) -> None:
        clients.configure(pce_limits=limits)

    return inject


def slow_datafile(transfer: TransferLimits) -> Inject:
    """A datafile of eight read chunks, each a second after the last: every read of the run's
    clock moves it on a second."""

    def inject(patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup) -> None:
        def ticking() -> float:
            clients.clock.advance(1.0)
            return clients.clock.now

        clients.configure(clock=ticking, pce_limits=PceLimits(transfer=transfer))
        patch.setattr(pce, "datafile_body", b"[" + b" " * (8 * READ_CHUNK) + b"]")

    return inject


def wrong_org(patch: pytest.MonkeyPatch, pce: Any, urls: dict[str, str], clients: ClientSetup) -> None:
    patch.setenv("PCE_ORG_ID", "2")


BAD_INVENTORY = [
    pytest.param(
        unreachable, r"could not reach the PCE .*: connection refused; gave up after 3", id="refused"
    ),
    pytest.param(not_answering, r"could not reach the PCE .*: timed out; gave up after 3", id="timeout"),
    pytest.param(attributes(secret="rotated-elsewhere"), r"rejected the API key \(HTTP 401\)", id="401"),
    pytest.param(wrong_org, r"refused access \(HTTP 403\)", id="403"),
    pytest.param(
        rate_limited_until_the_deadline("30"),
        r"HTTP 429 \(rate limiting: too_many_requests_error: Too many requests\); gave up after 5 attempts, "
        r"having waited 120.0 s: the run's time is nearly out",
        id="429-retry-after",
    ),
    pytest.param(
        rate_limited_until_the_deadline(None),
        r"HTTP 429 \(rate limiting: too_many_requests_error: Too many requests\); gave up after \d+ attempts, "
        r"having waited \d+\.\d s: the run's time is nearly out",
        id="429-no-retry-after",
    ),
    pytest.param(
        attributes(fail_next=10, fail_status=500),
        r"HTTP 500 \(a server error: internal_server_error: Internal Server Error\); gave up after 3 attempts, having waited",
        id="500",
    ),
    pytest.param(
        job_never_finishes, r"did not finish within 300 s \(last status 'running'\)", id="job-running"
    ),
    pytest.param(attributes(job_outcome="failed"), r"ended with status 'failed'", id="job-failed"),
    pytest.param(attributes(job_outcome="cancelled"), r"ended with status 'cancelled'", id="job-cancelled"),
    pytest.param(
        attributes(datafile_truncate_at=200),
        r"truncated or not valid JSON: the connection broke after \d+ bytes \(connection reset by peer\); gave up after 3 attempts",
        id="datafile-cut",
    ),
    pytest.param(
        attributes(datafile_body=b'[{"href": "/orgs/1/workloads/a", "labels": ['),
        r"truncated or not valid JSON",
        id="datafile-truncated",
    ),
    pytest.param(
        attributes(datafile_body=b"<html>Bad gateway</html>"), r"does not start with '\['", id="not-json"
    ),
    pytest.param(attributes(datafile_body=b""), r"the body is empty", id="empty-body"),
    pytest.param(
        attributes(datafile_body=b'{"workloads": []}'), r"top level is an object", id="shape-object"
    ),
    pytest.param(attributes(datafile_body=b"[1, 2]"), r"element 0 is a number", id="shape-numbers"),
    pytest.param(
        attributes(datafile_body=b'[{"name": "no-href", "labels": []}]'),
        r"element 0 has no string href",
        id="shape-no-href",
    ),
    pytest.param(
        attributes(
            datafile_body=b'[{"href": "/orgs/1/workloads/a", "labels": [{"href": "/l/1", "key": "env", "value": null}]}]'
        ),
        r"neither \{href, key, value\} nor \{href\}",
        id="shape-null-label-value",
    ),
    pytest.param(
        attributes(
            datafile_body=b'[{"href": "/orgs/1/workloads/a", "interfaces": [{"address": 167772161}]}]'
        ),
        r"interface address that is a number",
        id="shape-numeric-address",
    ),
    pytest.param(limited(PceLimits(max_answer_bytes=64)), r"is larger than 64 bytes", id="answer-over-cap"),
    pytest.param(
        slow_datafile(TransferLimits(window=2.0, min_rate=1024 * 1024)),
        r"datafile was abandoned .*under the floor of 1 MiB/s",
        id="datafile-trickles",
    ),
    pytest.param(
        slow_datafile(TransferLimits(deadline=4.0)),
        r"datafile was abandoned .*still arriving after \d+ s",
        id="datafile-past-deadline",
    ),
]


@pytest.mark.parametrize(("inject", "message"), BAD_INVENTORY)
def test_an_incomplete_inventory_stops_the_run_before_any_device_call(
    deployment, pce, panos, clock, black_hole, monkeypatch, fast_retries, inject: Inject, message: str
):
    deployment.invoke({})
    before, snapshot_before = panos.table(), load_snapshot(deployment)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    panos.clear_log()
    options = fast_retries.options
    with monkeypatch.context() as patch:
        inject(patch, pce, {"black_hole": black_hole}, fast_retries)
        with pytest.raises(RunFailed, match=message):
            deployment.invoke({})
    fast_retries.options = options
    assert panos.requests == []
    assert (panos.table(), load_snapshot(deployment)) == (before, snapshot_before)
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"rate_limit_next": 2, "rate_limit_retry_after": "1"}, id="429-retry-after"),
        pytest.param({"rate_limit_next": 2, "rate_limit_retry_after": None}, id="429-no-retry-after"),
        pytest.param({"fail_next": 2, "fail_status": 500}, id="500"),
        pytest.param({"reset_next": 2}, id="connection-reset"),
    ],
)
def test_a_transient_pce_fault_is_retried_and_the_run_converges(deployment, pce, panos, clock, fault):
    deployment.invoke({})
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    for name, value in fault.items():
        setattr(pce, name, value)
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_a_pce_rate_limiting_for_40_seconds_without_retry_after_ends_ok(
    deployment, pce, panos, clock, fast_retries
):
    deployment.invoke({})
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    pce.rate_limit_next, pce.rate_limit_retry_after = 4, None  # 4 waits of 10-15 s
    fast_retries.configure(pce_retry=PCE_RETRY)
    started = fast_retries.clock.now
    assert deployment.invoke({})["status"] == "ok"
    assert fast_retries.clock.now - started >= 40.0
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_a_run_whose_pce_requests_exceed_the_per_minute_budget_is_spaced_and_ends_ok(
    deployment, pce, panos, clock, fast_retries, monkeypatch
):
    monkeypatch.setenv("PCE_MAX_REQUESTS_PER_MINUTE", "2")
    started = fast_retries.clock.now
    assert deployment.invoke({})["status"] == "ok"
    assert pce.count() == 3  # submit, one poll, the datafile
    assert fast_retries.clock.now - started >= 60.0  # the third request waited for the first to age
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


class TestEmptyInventory:
    @pytest.fixture
    def pce(self, pce):
        pce.set_workloads(large_estate(2000))
        return pce

    def test_an_empty_inventory_after_thousands_of_pairs_is_blocked_by_the_guard(
        self, deployment, pce, panos, clock
    ):
        deployment.invoke({})
        desired = desired_of(pce)
        snapshot_before = load_snapshot(deployment)
        pce.set_workloads([])
        panos.clear_log()
        summary = deployment.invoke({})
        assert summary["status"] == "blocked"
        assert "4000 of 4000 pairs would be unregistered" in summary["targets"][0]["error"]
        assert panos.calls("user-id") == []
        assert load_snapshot(deployment) == snapshot_before
        assert_exact(deployment, panos, desired, {}, now=clock.now)


NULLS = [
    {"href": "/orgs/1/workloads/n1", "labels": None, "interfaces": [{"address": "10.5.0.1"}]},
    {"href": "/orgs/1/workloads/n2", "labels": [{"href": "/orgs/1/labels/9", "key": "app", "value": "A"}]},
    {"href": "/orgs/1/workloads/n3", "labels": [], "interfaces": None},
    {
        "href": "/orgs/1/workloads/n4",
        "deleted": None,
        "labels": [{"href": "/orgs/1/labels/9", "key": "app", "value": "A"}],
        "interfaces": [{"address": None}, {"name": "eth1"}, {"address": ""}, {"address": "10.5.0.4"}],
    },
    {"href": "/orgs/1/workloads/n5", "name": None, "hostname": None, "public_ip": None},
]


def test_workloads_with_missing_or_null_fields_map_to_what_they_carry(deployment, pce, panos, clock):
    pce.set_workloads([*NULLS, workload("ok", {"app": "B"}, ["10.5.0.9"])])
    summary = deployment.invoke({})
    assert (summary["status"], summary["workloads"]) == ("ok", 6)
    assert_exact(
        deployment,
        panos,
        {"10.5.0.4": frozenset({"illumio.app.A"}), "10.5.0.9": frozenset({"illumio.app.B"})},
        {},
        now=clock.now,
    )
