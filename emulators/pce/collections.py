"""Collections (workloads, labels) served synchronously or as async jobs, their jobs and datafiles."""

import gzip
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from emulators.pce.labels import LabelTable
from emulators.pce.state import JobOutcome, LocationStyle
from emulators.pce.wire import JSON_HEADERS, SYNC_LIMIT, Json, error, json_response
from emulators.server import Request, Response

_JOB_MESSAGES = {"failed": "Async collection job failed", "cancelled": "Async collection job was cancelled"}


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


class Collections(LabelTable):
    """GET of a collection, its async job, the job's polls and the datafile (see the package docstring)."""

    max_jobs: int
    running_polls: int
    job_outcome: JobOutcome
    job_message: str | None
    retry_after: int | None
    poll_retry_after: int | None
    location_style: LocationStyle
    public_url: str | None  # base of absolute Locations; default http://<Host header>
    ignore_prefer: bool
    compress_datafiles: bool
    datafile_truncate_at: int | None
    datafile_body: bytes | None
    jobs_created: int
    datafiles_served: int
    _jobs: dict[str, _Job]
    _datafiles: dict[str, str]  # datafile id -> job id

    def _init_collections(self) -> None:
        self._jobs = {}
        self._datafiles = {}
        self.max_jobs = 8
        self.running_polls = 1
        self.job_outcome = "done"
        self.job_message = None
        self.retry_after = 1
        self.poll_retry_after = None
        self.location_style = "relative"
        self.public_url = None
        self.ignore_prefer = False
        self.compress_datafiles = False
        self.datafile_truncate_at = None
        self.datafile_body = None
        self.jobs_created = 0
        self.datafiles_served = 0

    def _collection(self, request: Request, collection: str) -> Response:
        items = self._items(collection, request.query)
        if "respond-async" in request.headers.get("prefer", "") and not self.ignore_prefer:
            return self._create_job(request, collection, items)
        raw_limit = request.query.get("max_results", [str(SYNC_LIMIT)])[0]
        try:
            limit = int(raw_limit)
        except ValueError:
            return error(406, "max_results must be an integer")
        page = items[: max(0, min(limit, SYNC_LIMIT))]
        response = json_response(200, page)
        response.headers["X-Total-Count"] = str(len(items))
        return response

    def _items(self, collection: str, query: dict[str, list[str]]) -> list[Json]:
        if collection == "labels":
            return [self._label_object(label) for label in self.labels.values()]
        if collection == "sec_policy/active/label_groups":
            return list(self.label_groups.values())
        if collection == "sec_policy/draft/label_groups":
            return list(self.draft_label_groups.values())
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
            return error(404, "Workload not found")
        return json_response(200, self._as_served(found))

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
            return error(404, "Job not found")
        if request.method == "DELETE":
            del self._jobs[job_id]
            self._datafiles.pop(job.datafile_id, None)
            return Response(status=204)
        if request.method != "GET":
            return error(405, "Method Not Allowed")
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
        response = json_response(200, body)
        if self.poll_retry_after is not None:
            response.headers["Retry-After"] = str(self.poll_retry_after)
        return response

    def _datafile(self, request: Request, datafile_id: str) -> Response:
        job_id = self._datafiles.get(datafile_id)
        job = self._jobs.get(job_id) if job_id else None
        if job is None or job.outcome != "done":
            return error(404, "Datafile not found")
        payload = job.datafile if self.datafile_body is None else self.datafile_body
        headers = dict(JSON_HEADERS)
        if self.compress_datafiles and "gzip" in request.headers.get("accept-encoding", ""):
            payload = gzip.compress(payload, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self.datafiles_served += 1
        return Response(status=200, body=payload, headers=headers, truncate_at=self.datafile_truncate_at)
