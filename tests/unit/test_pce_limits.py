"""What the PCE client will not do: follow redirects, read unbounded answers, wait on a trickle."""

import gzip
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dagsync.core.errors import PceError
from dagsync.net.credentials import PceCredentials
from dagsync.net.http import TransferLimits
from dagsync.net.retry import Retrier
from dagsync.pce.client import PCE_RETRY, PceClient, PceLimits
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer, Response
from tests.support.clock import FakeClock
from tests.support.pce import Canned, CurrentApp, json_answer, workload

MakeClient = Callable[..., PceClient]
KIB = 1024


class TickingClock(FakeClock):
    """Time moves `tick` seconds whenever it is read, as if each read of a body took that long."""

    def __init__(self, tick: float) -> None:
        super().__init__(0.0)
        self.tick = tick

    def monotonic(self) -> float:
        self.now += self.tick
        return self.now


def client_for(url: str, pce: PceEmulator, clock: FakeClock, **options: Any) -> PceClient:
    options.setdefault(
        "retrier", Retrier(replace(PCE_RETRY, attempts=1), sleep=clock.sleep, clock=clock.monotonic)
    )
    return PceClient(url, 1, PceCredentials(auth_username=pce.auth_username, secret=pce.secret), **options)


@pytest.fixture
def make_client(server: LoopbackServer, pce: PceEmulator) -> Iterator[MakeClient]:
    clients: list[PceClient] = []

    def make(clock: FakeClock | None = None, **options: Any) -> PceClient:
        clients.append(client_for(server.url, pce, clock or FakeClock(0.0), **options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def elsewhere() -> Iterator[PceEmulator]:
    """Another PCE-like host a redirect may point at; it must never hear from the client."""
    other = PceEmulator()
    with LoopbackServer(other) as running:
        other.public_url = running.url
        yield other


# -- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_naming_its_location_and_is_not_followed(
    current: CurrentApp, make_client: MakeClient, elsewhere: PceEmulator, status: int
) -> None:
    location = f"{elsewhere.public_url}/api/v2/orgs/1/workloads"
    redirect = Canned(Response(status=status, headers={"Location": location}))
    current.canned.append(redirect)

    with pytest.raises(PceError) as caught:
        make_client().fetch_workloads()

    assert f"a redirect (HTTP {status}) to {location}" in str(caught.value)
    assert "never followed" in str(caught.value)
    assert redirect.served == 1  # not retried
    assert elsewhere.requests == []


def test_a_redirect_on_a_job_poll_is_not_followed(
    pce: PceEmulator, current: CurrentApp, make_client: MakeClient, elsewhere: PceEmulator
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    location = f"{elsewhere.public_url}/api/v2/orgs/1/jobs/elsewhere"
    current.canned.append(Canned(Response(status=307, headers={"Location": location}), path="/jobs/"))

    with pytest.raises(PceError, match=r"redirect \(HTTP 307\)"):
        make_client().fetch_workloads()

    assert elsewhere.requests == []
    assert pce.count("/datafiles/") == 0


# -- the size of an answer -------------------------------------------------------------------


def test_a_json_answer_larger_than_the_cap_is_abandoned(current: CurrentApp, make_client: MakeClient) -> None:
    running = {"href": "/orgs/1/jobs/j", "status": "running", "padding": "x" * 4 * KIB}
    current.canned.append(Canned(json_answer(200, running), path="/jobs/"))

    with pytest.raises(PceError) as caught:
        make_client(limits=PceLimits(max_answer_bytes=KIB)).fetch_workloads()

    assert "the PCE's answer for the job for workloads" in str(caught.value)
    assert "is larger than 1 KiB" in str(caught.value)


def test_the_cap_counts_the_decompressed_bytes(current: CurrentApp, make_client: MakeClient) -> None:
    bomb = gzip.compress(json.dumps({"status": "running", "padding": "0" * 17 * KIB * KIB}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    current.canned.append(Canned(Response(status=200, body=bomb, headers=headers), path="/jobs/"))

    with pytest.raises(PceError, match="is larger than 16 MiB"):
        make_client().fetch_workloads()

    assert len(bomb) < 100 * KIB


def test_the_datafile_is_not_capped_by_the_answer_limit(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, f"w{n}", f"10.0.{n // 250}.{n % 250}") for n in range(40)])

    workloads = make_client(limits=PceLimits(max_answer_bytes=KIB)).fetch_workloads()

    assert len(workloads) == 40


# -- a datafile that trickles ----------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up on a trickle is what the tests expect."""


class TricklingPce:
    """A tiny PCE on loopback: the job is done at once, the datafile comes in small chunks."""

    def __init__(self, datafile: bytes, chunk: int) -> None:
        self.datafile, self.chunk = datafile, chunk
        self.chunks_sent = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                if self.path.endswith("/workloads"):
                    self._answer(202, b"", {"Location": "/orgs/1/jobs/j", "Retry-After": "0"})
                elif "/jobs/" in self.path:
                    done = {
                        "href": "/orgs/1/jobs/j",
                        "status": "done",
                        "result": {"href": "/orgs/1/datafiles/d"},
                    }
                    self._answer(200, json.dumps(done).encode(), {"Content-Type": "application/json"})
                else:
                    self._trickle()

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for start in range(0, len(owner.datafile), owner.chunk):
                        piece = owner.datafile[start : start + owner.chunk]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.flush()
                        owner.chunks_sent += 1
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    self.close_connection = True  # the client hung up

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> "TricklingPce":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def datafile(count: int) -> bytes:
    body = [{"href": f"/orgs/1/workloads/w{n}", "hostname": "x" * 900, "labels": []} for n in range(count)]
    return json.dumps(body).encode()


def trickled(pce: PceEmulator, body: bytes, chunk: int, clock: FakeClock, **options: Any) -> PceClient:
    server = TricklingPce(body, chunk)
    with server:
        client = client_for(server.url, pce, clock, **options)
        try:
            client.fetch_workloads()
        finally:
            client.close()
    return client


def test_a_datafile_that_trickles_under_the_rate_floor_is_abandoned(pce: PceEmulator) -> None:
    body = datafile(200)  # about 190 KiB, in 1 KiB chunks a second: 1 KiB/s
    clock = TickingClock(tick=1.0)

    with pytest.raises(PceError) as caught:
        trickled(pce, body, KIB, clock)

    message = str(caught.value)
    assert message.startswith("the PCE workloads datafile was abandoned after ")
    assert re.search(r"it arrived at \d+ bytes/s over the last 30 s, under the floor of 64 KiB/s$", message)


def test_a_datafile_that_arrives_fast_enough_is_read(pce: PceEmulator) -> None:
    body = datafile(200)
    clock = TickingClock(tick=0.01)  # 1 KiB per 10 ms: 100 KiB/s

    client = trickled(pce, body, KIB, clock)

    assert client.bytes_received >= len(body)


def test_a_datafile_still_arriving_at_the_transfer_deadline_is_abandoned(pce: PceEmulator) -> None:
    body = datafile(200)
    limits = PceLimits(transfer=TransferLimits(deadline=20.0, min_rate=0.0))

    with pytest.raises(
        PceError, match=r"datafile was abandoned after \d+ bytes: it was still arriving after 2\d s"
    ):
        trickled(pce, body, KIB, TickingClock(tick=1.0), limits=limits)


def test_the_run_deadline_cuts_the_transfer_deadline_short(pce: PceEmulator) -> None:
    body = datafile(200)
    clock = TickingClock(tick=1.0)
    retrier = Retrier(PCE_RETRY, sleep=clock.sleep, clock=clock.monotonic, deadline=25.0)
    limits = PceLimits(transfer=TransferLimits(min_rate=0.0))

    with pytest.raises(PceError, match="it was still arriving after"):
        trickled(pce, body, KIB, clock, limits=limits, retrier=retrier)
    assert clock.now < 30.0
