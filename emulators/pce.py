"""An Illumio PCE emulator (REST API v2 subset) for emulators.server.LoopbackServer.

Faithful to reference/illumio-pce-api.md where it matters to DAG Sync:

* HTTP Basic auth with the API key's auth_username and secret (401 otherwise); every path is
  under /api/v2; an org other than the emulated one answers 403.
* GET /api/v2/orgs/{org}/workloads and /labels: synchronously at most 500 objects, silently
  truncated, with X-Total-Count; with `Prefer: respond-async` a 202 with
  `Location: /orgs/{org}/jobs/{uuid}` and Retry-After.
* GET /api/v2/orgs/{org}/jobs/{uuid}: "running" for `running_polls` polls, then "done" with
  result.href `/orgs/{org}/datafiles/{uuid}`; DELETE removes the job.
* GET /api/v2/orgs/{org}/datafiles/{uuid}: the complete JSON array, serialised once when the
  job was created (a snapshot of the estate at that moment, as on a real PCE).

State tests can change between runs: `workloads` (list of workload dicts), `labels` (href ->
label dict), `label_mode` ("inline" or "href": workloads then carry `[{href}]` only, like a PCE
older than 22.3), and the helpers set_workloads, load_estate, upsert_workload, delete_workload,
relabel, set_addresses.

Fault injection (plain attributes; counters decrement as requests consume them):

* `reset_next`: drop the connection of the next N requests.
* `rate_limit_next`: answer the next N requests 429 `too_many_requests_error`. Like the real PCE
  as far as anyone has seen, without Retry-After; set `rate_limit_retry_after` to add one.
* `requests_per_minute`: when set, a rolling minute of at most this many requests (per API key,
  as docs 23.5 "REST API Limits" put it); beyond it, the same 429. Every authenticated request
  counts, the rejected ones too (whether a real PCE counts them is undocumented: the hard case).
* `fail_next`: answer the next N requests `fail_status` (default 503).
* `fault_path`: when set, only requests whose path contains it consume the three faults above.
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
limit. Tests
that use real time can set `retry_after = 0` and `running_polls = 0`.

Error bodies are `[{"token": "…_error", "message": "…"}]`, the real PCE's shape (tokens such as
`not_found_error`, `too_many_requests_error`). Time comes from `clock` (epoch seconds, default
the wall clock), so tests move it without sleeping.

Records: `requests` (LoggedRequest: method, path, query, headers without Authorization,
status), `jobs_created`, `datafiles_served`, and count(path_fragment).
"""

import base64
import binascii
import gzip
import hmac
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

from emulators.estate import Estate, set_label
from emulators.server import Request, Response

Json = dict[str, Any]
JobOutcome = Literal["done", "failed", "cancelled", "running"]
LocationStyle = Literal["relative", "api", "absolute"]
LabelMode = Literal["inline", "href"]

SYNC_LIMIT = 500
_ORG_PATH = re.compile(r"^/api/v2/orgs/(\d+)/(.+)$")
_JSON = {"Content-Type": "application/json"}
# `not_acceptable_error` and `too_many_requests_error` are seen in captures (reference §5); the
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
        # Records.
        self.requests: list[LoggedRequest] = []
        self.jobs_created = 0
        self.datafiles_served = 0

    # -- state helpers ---------------------------------------------------------------------

    def set_workloads(self, workloads: Iterable[Json]) -> None:
        with self._lock:
            self.workloads = list(workloads)

    def load_estate(self, estate: Estate) -> None:
        """Serve this estate; its lists are shared, so churn(estate, ...) shows on the next job."""
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
        """The label object for key/value, created in the label table if missing."""
        with self._lock:
            for label in self.labels.values():
                if label["key"] == key and label["value"] == value:
                    return label
            numbers = [
                int(href.rsplit("/", 1)[1]) for href in self.labels if href.rsplit("/", 1)[1].isdigit()
            ]
            href = f"/orgs/{self.org_id}/labels/{max(numbers, default=0) + 1}"
            created: Json = {"href": href, "key": key, "value": value}
            self.labels[href] = created
            return created

    def upsert_workload(self, workload: Json) -> None:
        with self._lock:
            for index, existing in enumerate(self.workloads):
                if existing["href"] == workload["href"]:
                    self.workloads[index] = workload
                    return
            self.workloads.append(workload)

    def delete_workload(self, href: str) -> None:
        with self._lock:
            for index, existing in enumerate(self.workloads):
                if existing["href"] == href:
                    del self.workloads[index]
                    self.tombstones.append({**existing, "deleted": True})
                    return
            raise KeyError(href)

    def workload(self, href: str) -> Json:
        for existing in self.workloads:
            if existing["href"] == href:
                return existing
        raise KeyError(href)

    def relabel(self, href: str, key: str, value: str) -> None:
        """Give a workload the label key=value, replacing its label of that key."""
        with self._lock:
            workload = self.workload(href)
            if self._estate is not None:
                set_label(self._estate, workload, key, value)
                return
            label = self.add_label(key, value)
            others = [existing for existing in workload.get("labels") or () if existing.get("key") != key]
            workload["labels"] = [*others, label]

    def set_addresses(self, href: str, addresses: Iterable[str]) -> None:
        """Replace a workload's interfaces with one interface per address."""
        with self._lock:
            workload = self.workload(href)
            workload["interfaces"] = [
                {"name": f"eth{n}", "address": address, "cidr_block": None, "loopback": False}
                for n, address in enumerate(addresses)
            ]

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
        rest = match.group(2).rstrip("/")
        if rest in ("workloads", "labels"):
            if request.method != "GET":
                return _error(405, "Method Not Allowed")
            return self._collection(request, rest)
        parts = rest.split("/")
        if len(parts) == 2 and parts[0] == "jobs":
            return self._job(request, parts[1])
        if len(parts) == 2 and parts[0] == "datafiles" and request.method == "GET":
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
            workloads = [
                {**workload, "labels": [{"href": label["href"]} for label in workload.get("labels") or ()]}
                if workload.get("labels")
                else workload
                for workload in workloads
            ]
        return workloads

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
                # illumio-py reads result.message of a failed job (reference §5); the text is ours.
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
    """The PCE's error body: a list of {token, message} (tokens from reference captures where known)."""
    return _json(status, [{"token": _ERROR_TOKENS.get(status, "unexpected_error"), "message": message}])
