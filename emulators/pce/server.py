"""The PCE emulator as one App: every concern's state, the request log and the dispatch of paths."""

import re
import threading
import time
import uuid
from collections.abc import Callable

from emulators.pce.collections import Collections
from emulators.pce.faults import Faults
from emulators.pce.state import LoggedRequest
from emulators.pce.wire import Json, error, json_response
from emulators.pce.workloads import WorkloadChanges
from emulators.server import Request, Response

_ORG_PATH = re.compile(r"^/api/v2/orgs/(\d+)/(.+)$")
_ORG_COLLECTIONS = frozenset({"workloads", "labels", "events", "datafiles", "sec_policy"})
_COLLECTIONS = ("workloads", "labels", "sec_policy/active/label_groups", "sec_policy/draft/label_groups")


class PceEmulator(WorkloadChanges, Collections, Faults):
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
        self.workloads = workloads if workloads is not None else []
        self.labels = labels if labels is not None else {}
        self.tombstones = []
        self.label_mode = "inline"
        self._estate = None
        self._lock = threading.RLock()
        self._soft_deleted = set()
        self._init_faults(auth_username, secret)
        self._init_collections()
        self._init_events()
        self._init_labels()
        self._init_workloads()
        self.requests: list[LoggedRequest] = []

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
            return error(404, "Not Found")
        if not self._authorized(request.headers.get("authorization", "")):
            response = error(401, "Authentication required")
            response.headers["WWW-Authenticate"] = 'Basic realm="PCE"'
            return response
        if self._over_rate_limit():
            return self._too_many_requests()
        fault = self._fault(request.path)
        if fault is not None:
            return fault
        if request.path == "/api/v2/health":
            return json_response(200, [{"status": "normal", "type": "emulator"}])
        match = _ORG_PATH.match(request.path)
        if match is None:
            return error(404, "Not Found")
        if int(match.group(1)) != self.org_id:
            # [unverified] what a real PCE answers for an org the key does not belong to; 403
            # is what the reference's /settings/workloads probe note implies.
            return error(403, "Not authorized for this organization")
        return self._org_route(request, match.group(2).rstrip("/"))

    def _org_route(self, request: Request, rest: str) -> Response:
        """The org-scoped paths; all but jobs are read-only."""
        parts = rest.split("/")
        if request.method != "GET" and parts[0] != "jobs":
            known = parts[0] in _ORG_COLLECTIONS
            return error(405, "Method Not Allowed") if known else error(404, "Not Found")
        if rest in _COLLECTIONS:
            return self._collection(request, rest)
        if rest == "events":
            return self._events_page(request)
        if len(parts) == 2 and parts[0] == "workloads":
            return self._workload_instance(parts[1])
        if len(parts) == 2 and parts[0] == "jobs":
            return self._job(request, parts[1])
        if len(parts) == 2 and parts[0] == "datafiles":
            return self._datafile(request, parts[1])
        return error(404, "Not Found")
