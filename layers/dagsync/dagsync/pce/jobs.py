"""The PCE's async collection job and its datafile (docs/protocols.md#pce-async-export).

A synchronous collection GET stops silently at 500 objects, so every collection is read through
`Prefer: respond-async`: submit, poll within the job deadline, then stream the datafile and
parse it incrementally. Any defect fails the whole read; nothing partial ever comes back.
"""

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import ijson

from dagsync.core.errors import PceError
from dagsync.net.http import READ_CHUNK, BodyReader, TransferAborted, TransportBroken, parse_retry_after
from dagsync.net.reasons import transport_reason
from dagsync.net.retry import Retryable
from dagsync.pce.parse import kind
from dagsync.pce.transport import BODY_EXCERPT, PceTransport

try:
    _ijson: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the C backend ships in the ijson wheels we deploy
    _ijson = ijson


def run_job(http: PceTransport, collection: str) -> str:
    """Submit an async collection job, wait for it within the deadline, return the datafile URL."""
    response = http.get(
        f"{http.api}/orgs/{http.org}/{collection}",
        what=f"the async request for {collection}",
        headers={"Prefer": "respond-async"},
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
    job_url = http.absolute(location)
    polling, clock = http.limits.polling, http.retrier.clock
    run_left = http.retrier.remaining()
    budget = round(
        http.limits.job_deadline if run_left is None else min(http.limits.job_deadline, run_left), 1
    )
    deadline = clock() + budget
    delay = parse_retry_after(response.headers.get("Retry-After"))
    if delay is None:
        delay = polling.first_delay
    status: object = "submitted"
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            raise PceError(
                f"the PCE job for {collection} ({urlsplit(job_url).path}) did not finish within "
                f"{budget:g} s (last status {status!r})"
            )
        http.retrier.sleep(min(max(delay, polling.min_delay), remaining))
        poll = http.get(job_url, what=f"the job for {collection}")
        job = http.json(poll, f"the job for {collection}")
        if not isinstance(job, dict):
            raise PceError(f"the PCE job for {collection} answered with {kind(job)}, not a job object")
        status = job.get("status")
        if status == "done":
            result = job.get("result")
            href = result.get("href") if isinstance(result, dict) else None
            if not isinstance(href, str) or not href:
                raise PceError(f"the PCE job for {collection} is done but names no result datafile")
            return http.absolute(href)
        # Any other status ("running", "pending", ...) means keep polling, as the reference's
        # clients do; the deadline bounds it.
        if status == "failed" or (isinstance(status, str) and status.startswith("cancel")):
            raise PceError(
                f"the PCE job for {collection} ended with status {status!r}"
                f"{_job_detail(http, job)}; the inventory was not read"
            )
        retry_after = parse_retry_after(poll.headers.get("Retry-After"))
        if retry_after is not None:
            delay = retry_after
        else:
            delay = min(max(delay * polling.backoff, polling.first_delay), polling.max_delay)


def download[T](http: PceTransport, url: str, what: str, parse: Callable[[Iterator[object]], T]) -> T:
    """GET a datafile and parse it as a stream; a connection that breaks is read again from the start."""

    def attempt() -> T:
        response = http.get(url, what=f"the {what} datafile", stream=True).response
        reader = http.reader(response)
        try:
            return http.parsed(f"the PCE {what} datafile", lambda: parse(_items(http, reader, what)))
        except TransportBroken as exc:
            raise Retryable(
                PceError(
                    f"the PCE {what} datafile is truncated or not valid JSON: the connection broke "
                    f"after {reader.count} bytes ({transport_reason(exc)})"
                )
            ) from exc.__cause__
        except TransferAborted as exc:
            raise PceError(
                f"the PCE {what} datafile was abandoned after {reader.count} bytes: {exc}"
            ) from None
        finally:
            http.bytes_received += reader.count
            response.close()

    return http.retried(attempt)


def _items(http: PceTransport, reader: BodyReader, what: str) -> Iterator[object]:
    """The top-level array's elements, one at a time; anything else raises PceError."""
    first = reader.peek_first_byte()
    if first is None:
        raise PceError(f"the PCE {what} datafile is truncated or not valid JSON: the body is empty")
    if first == ord("{"):
        raise PceError(
            f"the PCE {what} datafile has an unexpected shape: the top level is an object, not an array"
        )
    if first != ord("["):
        raise PceError(f"the PCE {what} datafile is truncated or not valid JSON: it does not start with '['")
    try:
        yield from _ijson.items(reader, "item", use_float=True, buf_size=READ_CHUNK)
    except ijson.JSONError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PceError(
            f"the PCE {what} datafile is truncated or not valid JSON: {http.scrub(detail)} "
            f"(after {reader.count} bytes)"
        ) from None


def _job_detail(http: PceTransport, job: dict[str, Any]) -> str:
    result = job.get("result")
    message = result.get("message") if isinstance(result, dict) else None
    return f" ({http.scrub(str(message))[:BODY_EXCERPT]})" if message else ""
