"""Illumio PCE client: reads the complete workload inventory through the async collection job.

A synchronous collection GET stops silently at 500 objects, so every read goes through
`Prefer: respond-async` (job, poll, datafile). The datafile is streamed and parsed
incrementally, keeping only the Workload projection, and any defect in it fails the whole
read: the engine computes deletions from this list, so partial data must never come back.
"""

import json
import logging
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import ijson
import requests
import urllib3.exceptions

from dagsync import __version__
from dagsync.core.errors import PceError
from dagsync.core.models import Workload
from dagsync.net.credentials import PceCredentials
from dagsync.net.http import (
    READ_CHUNK,
    BodyReader,
    TransferAborted,
    TransferLimits,
    TransportBroken,
    new_session,
    parse_retry_after,
    tls_verify,
)
from dagsync.net.pacing import Pacer, PacingPastDeadline
from dagsync.net.redact import mask
from dagsync.net.retry import Retrier, RetriesExhausted, Retryable, RetryPolicy
from dagsync.pce.parse import (
    LabelRef,
    LabelTable,
    PceEvent,
    ShapeError,
    WorkloadProjector,
    kind,
    parse_events,
    parse_label,
    resolve_labels,
    rfc3339,
    workload_href,
)

__all__ = [
    "DEFAULT_REQUESTS_PER_MINUTE",
    "PCE_RETRY",
    "PceClient",
    "PceEvent",
    "PceLimits",
]

log = logging.getLogger(__name__)

try:
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the C backend ships in the ijson wheels we deploy
    _ijson = ijson

# The PCE counts its rate limit per minute, so a 429 is no case for a 2-second backoff: it waits
# the PCE's Retry-After (up to 60 s), or 10-15 s without one, and is tried again for as long as
# the run's time allows. See docs/sync.md#retries and docs/protocols.md#pce-rate-limits.
PCE_RETRY = RetryPolicy(max_retry_after=60.0, rate_limited_wait=(10.0, 15.0), rate_limited_attempts=None)
DEFAULT_REQUESTS_PER_MINUTE = 100  # PCE_MAX_REQUESTS_PER_MINUTE, docs/sync.md#pacing
_ERROR_BODY_LIMIT = 64 * 1024
_FIRST_POLL_DELAY = 1.0
_MIN_POLL_DELAY = 0.2
_MAX_BACKOFF_POLL_DELAY = 10.0
_POLL_BACKOFF = 1.5
_BODY_EXCERPT = 200
_MAX_EVENTS = 10_000  # the most one events GET returns (docs/protocols.md#pce-events)


T = TypeVar("T")


@dataclass(frozen=True)
class PceLimits:
    """How much and how long the client reads from the PCE before it gives up, as named data.

    See docs/sync.md#reading-the-inventory.
    """

    job_deadline: float = 300.0  # an async collection job must be done within this
    max_answer_bytes: int = 16 * 1024 * 1024  # any JSON answer but a datafile, decompressed
    transfer: TransferLimits = field(default_factory=TransferLimits)  # every body, the datafile's too


@dataclass(frozen=True)
class _Answer:
    """A PCE answer: read whole into `body`, or, when streamed, left open for the caller to read."""

    response: requests.Response
    body: bytes = b""

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers


class PceClient:
    """Reads the workloads of one org. Counters feed the run summary and the benchmarks.

    `retrier` carries the run's retry policy, clock, sleep and deadline: every wait of the
    client (retries, pacing and job polls) goes through them, so a fake clock makes a test
    instant. `pacer` is the run's one PCE pacer, passed to every request before it is sent.
    """

    def __init__(
        self,
        base_url: str,
        org_id: int,
        credentials: PceCredentials,
        *,
        verify_tls: bool = True,
        retrier: Retrier | None = None,
        pacer: Pacer | None = None,
        timeout: float = 30.0,
        limits: PceLimits = PceLimits(),
    ) -> None:
        self._base = base_url.rstrip("/")
        self._api = f"{self._base}/api/v2"
        self._org = org_id
        self._secret = credentials.secret.get_secret_value()
        self._retrier = retrier or Retrier(PCE_RETRY)
        self._pacer = pacer or Pacer(
            DEFAULT_REQUESTS_PER_MINUTE,
            clock=self._retrier.clock,
            sleep=self._retrier.sleep,
            deadline=self._retrier.deadline,
        )
        self._timeout = timeout
        self._limits = limits
        self._session = new_session(tls_verify(verify_tls, credentials.ca_bundle))
        self._username = credentials.auth_username
        self._session.auth = (self._username, self._secret)
        self._session.headers["Accept"] = "application/json"
        self._session.headers["User-Agent"] = f"dagsync/{__version__}"
        self._label_table: LabelTable | None = None
        self.requests_made = 0
        self.bytes_received = 0

    def close(self) -> None:
        self._session.close()

    def fetch_workloads(self) -> list[Workload]:
        """Every non-deleted workload, labels resolved; raises PceError unless the read is complete."""
        datafile = self._run_job("workloads")
        workloads, pending = self._download(datafile, "workloads", self._parse_workloads)
        if pending:
            table = self._labels()
            for index, refs in pending:
                workloads[index] = resolve_labels(workloads[index], refs, table)
        log.info(
            "read %d workloads from the PCE (%d requests, %d bytes)",
            len(workloads),
            self.requests_made,
            self.bytes_received,
        )
        return workloads

    def fetch_workload(self, href: str) -> Workload | None:
        """One workload by href (any form the PCE writes), or None when it is gone (404 or deleted).

        Parsed and labelled exactly as the inventory's workloads are.
        """
        wanted = workload_href(href)
        if wanted is None or not wanted.startswith(f"/orgs/{self._org}/"):
            raise PceError(f"{self._scrub(href)[:_BODY_EXCERPT]} is not a workload of org {self._org}")
        what = f"workload {wanted}"
        answer = self._get(f"{self._api}{quote(wanted)}", what=what, answers=frozenset({404}))
        if answer.status == 404:
            return None
        item = self._json(answer, what)
        projected = self._parsed(
            f"the PCE's answer for {what}", lambda: WorkloadProjector().project(item, what)
        )
        if projected is None:
            return None
        workload, refs = projected
        if workload_href(workload.href) != wanted:
            raise PceError(f"the PCE answered for {what} with another workload")
        return resolve_labels(workload, refs, self._labels()) if refs else workload

    def fetch_events(
        self, since: datetime, *, until: datetime | None = None, max_results: int
    ) -> list[PceEvent]:
        """The events from `since` (to `until`), newest first as the PCE sends them.

        One request for at most `max_results` events (the PCE accepts up to 10,000): a page that
        full may not be the last, and the caller decides what that means
        (docs/change-feed.md#decision). Raises PceError unless the page is read whole.
        """
        if not 1 <= max_results <= _MAX_EVENTS:
            raise ValueError(f"max_results must be between 1 and {_MAX_EVENTS}, got {max_results}")
        query = {"timestamp[gte]": rfc3339(since), "max_results": str(max_results)}
        if until is not None:
            query["timestamp[lte]"] = rfc3339(until)
        answer = self._get(f"{self._api}/orgs/{self._org}/events?{urlencode(query)}", what="the events")
        return self._parsed("the PCE's events answer", lambda: parse_events(self._json(answer, "the events")))

    def fetch_label_table(self) -> LabelTable:
        """Label href -> (key, value) for every label; older PCEs give workloads only label hrefs."""
        datafile = self._run_job("labels")
        return self._download(datafile, "labels", self._parse_labels)

    def _labels(self) -> LabelTable:
        """The label table, read once per client (one client serves one run)."""
        if self._label_table is None:
            self._label_table = self.fetch_label_table()
        return self._label_table

    # -- async collection job -------------------------------------------------------------

    def _run_job(self, collection: str) -> str:
        """Submit an async collection job, wait for it within the deadline, return the datafile URL."""
        url = f"{self._api}/orgs/{self._org}/{collection}"
        response = self._get(
            url, what=f"the async request for {collection}", headers={"Prefer": "respond-async"}
        )
        if response.status != 202:
            # A synchronous answer holds at most 500 objects with no sign of truncation, so it is
            # never taken as the inventory.
            raise PceError(
                f"the PCE answered the async request for {collection} with HTTP {response.status} "
                "instead of 202 Accepted; a synchronous answer may be silently truncated at 500 objects"
            )
        location = response.headers.get("Location")
        if not location:
            raise PceError(f"the PCE accepted the async request for {collection} but sent no Location header")
        job_url = self._absolute(location)
        clock = self._retrier.clock
        run_left = self._retrier.remaining()
        budget = round(
            self._limits.job_deadline if run_left is None else min(self._limits.job_deadline, run_left), 1
        )
        deadline = clock() + budget
        delay = parse_retry_after(response.headers.get("Retry-After"))
        if delay is None:
            delay = _FIRST_POLL_DELAY
        status: object = "submitted"
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise PceError(
                    f"the PCE job for {collection} ({urlsplit(job_url).path}) did not finish within "
                    f"{budget:g} s (last status {status!r})"
                )
            self._retrier.sleep(min(max(delay, _MIN_POLL_DELAY), remaining))
            poll = self._get(job_url, what=f"the job for {collection}")
            job = self._json(poll, f"the job for {collection}")
            if not isinstance(job, dict):
                raise PceError(f"the PCE job for {collection} answered with {kind(job)}, not a job object")
            status = job.get("status")
            if status == "done":
                result = job.get("result")
                href = result.get("href") if isinstance(result, dict) else None
                if not isinstance(href, str) or not href:
                    raise PceError(f"the PCE job for {collection} is done but names no result datafile")
                return self._absolute(href)
            # Any other status ("running", "pending", ...) means keep polling, as the reference's
            # clients do; the deadline bounds it.
            if status == "failed" or (isinstance(status, str) and status.startswith("cancel")):
                raise PceError(
                    f"the PCE job for {collection} ended with status {status!r}"
                    f"{self._job_detail(job)}; the inventory was not read"
                )
            retry_after = parse_retry_after(poll.headers.get("Retry-After"))
            if retry_after is not None:
                delay = retry_after
            else:
                delay = min(max(delay * _POLL_BACKOFF, _FIRST_POLL_DELAY), _MAX_BACKOFF_POLL_DELAY)

    def _job_detail(self, job: dict[str, Any]) -> str:
        result = job.get("result")
        message = result.get("message") if isinstance(result, dict) else None
        return f" ({self._scrub(str(message))[:_BODY_EXCERPT]})" if message else ""

    def _absolute(self, href: str) -> str:
        """Job and datafile hrefs are relative to /api/v2; some PCEs send /api/v2 paths or full URLs.

        [unverified] For an absolute URL only its path is kept, on the configured PCE URL: the
        credentials then never travel to a host the operator did not configure.
        """
        if href.startswith(("http://", "https://")):
            parts = urlsplit(href)
            href = parts.path + (f"?{parts.query}" if parts.query else "")
        if href.startswith("/api/"):
            return self._base + href
        return self._api + (href if href.startswith("/") else f"/{href}")

    # -- datafile streaming ----------------------------------------------------------------

    def _download(self, url: str, what: str, parse: Callable[[Iterator[object]], T]) -> T:
        """GET a datafile and parse it as a stream; a connection that breaks is read again from the start."""

        def attempt() -> T:
            response = self._get(url, what=f"the {what} datafile", stream=True).response
            reader = self._reader(response)
            try:
                return self._parsed(f"the PCE {what} datafile", lambda: parse(self._items(reader, what)))
            except TransportBroken as exc:
                raise Retryable(
                    PceError(
                        f"the PCE {what} datafile is truncated or not valid JSON: the connection broke "
                        f"after {reader.count} bytes ({_transport_reason(exc)})"
                    )
                ) from exc.__cause__
            except TransferAborted as exc:
                raise PceError(
                    f"the PCE {what} datafile was abandoned after {reader.count} bytes: {exc}"
                ) from None
            finally:
                self.bytes_received += reader.count
                response.close()

        return self._retried(attempt)

    def _items(self, reader: BodyReader, what: str) -> Iterator[object]:
        """The top-level array's elements, one at a time; anything else raises PceError."""
        first = reader.peek_first_byte()
        if first is None:
            raise PceError(f"the PCE {what} datafile is truncated or not valid JSON: the body is empty")
        if first == ord("{"):
            raise PceError(
                f"the PCE {what} datafile has an unexpected shape: the top level is an object, not an array"
            )
        if first != ord("["):
            raise PceError(
                f"the PCE {what} datafile is truncated or not valid JSON: it does not start with '['"
            )
        try:
            yield from _ijson.items(reader, "item", use_float=True, buf_size=READ_CHUNK)
        except ijson.JSONError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PceError(
                f"the PCE {what} datafile is truncated or not valid JSON: {self._scrub(detail)} "
                f"(after {reader.count} bytes)"
            ) from None

    @staticmethod
    def _parse_workloads(
        items: Iterator[object],
    ) -> tuple[list[Workload], list[tuple[int, tuple[LabelRef, ...]]]]:
        """Project each workload as it streams by; href-only labels are returned to resolve later."""
        projector = WorkloadProjector()
        workloads: list[Workload] = []
        pending: list[tuple[int, tuple[LabelRef, ...]]] = []
        for position, item in enumerate(items):
            projected = projector.project(item, f"element {position}")
            if projected is None:
                continue
            workload, refs = projected
            if refs:
                pending.append((len(workloads), refs))
            workloads.append(workload)
        return workloads, pending

    @staticmethod
    def _parse_labels(items: Iterator[object]) -> LabelTable:
        return dict(parse_label(item, f"element {position}") for position, item in enumerate(items))

    def _parsed(self, source: str, parse: Callable[[], T]) -> T:
        """`parse()`, a ShapeError turned into a PceError naming `source`, the secret masked.

        The PceError is raised outside the handler, so the unmasked ShapeError is not chained to it.
        """
        try:
            return parse()
        except ShapeError as exc:
            detail = str(exc)
        raise PceError(f"{source} has an unexpected shape: {self._scrub(detail)}")

    # -- HTTP ------------------------------------------------------------------------------

    def _get(
        self,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        answers: frozenset[int] = frozenset(),
        stream: bool = False,
    ) -> _Answer:
        """Every PCE request: one GET, retried by the policy, read whole (at most `max_answer_bytes`).

        A streamed answer is left open for the caller (the datafile). Error statuses in
        `answers` come back as answers instead of raising.
        """
        path = urlsplit(url).path

        def attempt() -> _Answer:
            response = self._send(url, path, headers, answers)
            if stream:
                return _Answer(response)
            reader = self._reader(response)
            try:
                body = reader.read_all(self._limits.max_answer_bytes)
            except TransportBroken as exc:
                raise Retryable(
                    PceError(
                        f"the connection to the PCE at {self._base} broke while GET {path} was answered "
                        f"({_transport_reason(exc)})"
                    )
                ) from exc.__cause__
            except TransferAborted as exc:
                raise PceError(
                    f"the PCE's answer for {what} (GET {path}) was abandoned after {reader.count} bytes: {exc}"
                ) from None
            finally:
                self.bytes_received += reader.count
                response.close()
            return _Answer(response, body)

        return self._retried(attempt)

    def _retried(self, attempt: Callable[[], T]) -> T:
        try:
            return self._retrier.call(
                attempt,
                on_retry=lambda retry, _attempt, delay: log.warning(
                    "%s; retrying in %.1f s", retry.error, delay
                ),
            )
        except RetriesExhausted as exhausted:
            raise PceError(f"{exhausted.error}; {exhausted.summary}") from exhausted.error

    def _reader(self, response: requests.Response) -> BodyReader:
        return BodyReader(
            response.raw,
            limits=self._limits.transfer,
            clock=self._retrier.clock,
            deadline=self._retrier.deadline,
        )

    def _send(
        self, url: str, path: str, headers: Mapping[str, str] | None, answers: frozenset[int]
    ) -> requests.Response:
        """One paced request; its status is checked, its body is not read yet."""
        try:
            self._pacer.wait()
        except PacingPastDeadline as exc:
            raise PceError(f"GET {path} was not sent to the PCE: {exc}") from None
        self.requests_made += 1
        try:
            response = self._session.get(
                url, headers=headers, timeout=self._timeout, stream=True, allow_redirects=False
            )
        except requests.exceptions.SSLError as exc:
            raise PceError(
                f"TLS verification of the PCE failed for {self._base}: {_tls_reason(exc)} "
                "(set ca_bundle in the PCE secret)"
            ) from exc
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            error = PceError(
                f"could not reach the PCE at {self._base} (GET {path}): {_transport_reason(exc)}"
            )
            error.__cause__ = exc
            raise Retryable(error) from exc
        status = response.status_code
        if status < 300 or status in answers:
            return response
        if status < 400:
            response.close()
            raise PceError(self._redirect_message(status, path, response.headers.get("Location")))
        # [unverified] Whether a PCE 429 carries Retry-After is undocumented: it is honoured when
        # present (within the policy's bounds), otherwise the policy's rate-limited wait applies.
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            cause = "rate limiting" if status == 429 else "a server error"
            said = _suffix(self._error_detail(response))
            raise Retryable(
                PceError(f"the PCE answered GET {path} with HTTP {status} ({cause}{said})"),
                retry_after=retry_after,
                rate_limited=status == 429,
            )
        if status in (401, 403):
            said = _suffix(self._error_detail(response), " (the PCE said: ", ")")
            raise PceError(self._auth_message(status, path) + said)
        said = _suffix(self._error_detail(response))
        raise PceError(f"the PCE answered GET {path} with HTTP {status}{said}")

    def _redirect_message(self, status: int, path: str, location: str | None) -> str:
        """Redirects are never followed (docs/sync.md#redirects): no credential leaves for another host."""
        target = self._scrub(location)[:_BODY_EXCERPT] if location else "no Location"
        return (
            f"the PCE answered GET {path} with a redirect (HTTP {status}) to {target}; redirects are "
            "never followed, so that no credential leaves for another host: set PCE_URL to the "
            "address that answers"
        )

    def _auth_message(self, status: int, path: str) -> str:
        if status == 401:
            return (
                f"the PCE rejected the API key (HTTP 401) on GET {path}: check auth_username "
                "(the key's authentication username, not its Key ID) and secret in the PCE secret"
            )
        return (
            f"the PCE refused access (HTTP 403) on GET {path}: the API key lacks read permission "
            f"on org {self._org}, or PCE_ORG_ID is not the key's org"
        )

    def _error_detail(self, response: requests.Response) -> str:
        """The PCE's own words from an error body `[{"token": ..., "message": ...}]`, scrubbed.

        Any other body (a proxy's or load balancer's page) is never quoted: it may echo the
        request, and with it the Authorization header.
        """
        reader = self._reader(response)
        try:
            errors = json.loads(reader.read_all(_ERROR_BODY_LIMIT))
        except (TransportBroken, TransferAborted, ValueError):
            return ""
        finally:
            self.bytes_received += reader.count
            response.close()
        if isinstance(errors, dict):
            errors = [errors]
        if not isinstance(errors, list):
            return ""
        parts = []
        for error in errors[:3]:
            if isinstance(error, dict):
                words = [error.get(name) for name in ("token", "message")]
                parts.append(": ".join(word for word in words if isinstance(word, str) and word))
        return self._scrub("; ".join(part for part in parts if part))[:_BODY_EXCERPT]

    @staticmethod
    def _json(answer: _Answer, what: str) -> object:
        try:
            return json.loads(answer.body)
        except ValueError:
            raise PceError(f"the PCE answered for {what} with a body that is not JSON") from None

    def _scrub(self, text: str) -> str:
        """Text from the server or the parser, with the secret masked should it ever echo it."""
        return mask(text, [self._secret], basic_pairs=[(self._username, self._secret)])


def _suffix(detail: str, before: str = ": ", after: str = "") -> str:
    """`detail` framed for a message, or nothing when there is no detail."""
    return f"{before}{detail}{after}" if detail else ""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (requests -> urllib3 -> socket), each once."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _transport_reason(exc: BaseException) -> str:
    """A short reason for a transport failure, without the library's object reprs."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(cause, socket.gaierror):
            return f"name resolution failed ({cause.strerror or cause})"
    for cause in causes:
        if isinstance(cause, requests.Timeout | TimeoutError | urllib3.exceptions.TimeoutError):
            return "timed out"
        if isinstance(cause, urllib3.exceptions.IncompleteRead | urllib3.exceptions.ProtocolError):
            return "connection closed before the response was complete"
    return type(exc).__name__


def _tls_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or cause.reason or "certificate verify failed"
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or cause.strerror or "TLS handshake failed")
    return "TLS handshake failed"
