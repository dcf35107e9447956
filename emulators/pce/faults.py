"""Authentication, the rate limit and injected faults: what a request meets before it is routed."""

import base64
import binascii
import hmac
from collections import deque

from emulators.pce.state import PceState
from emulators.pce.wire import error, phrase
from emulators.server import Response

RATE_WINDOW_SECONDS = 60.0


class Faults(PceState):
    """HTTP Basic auth, a rolling-minute rate limit and counters of faults to inject (package docstring)."""

    auth_username: str
    secret: str
    reset_next: int
    rate_limit_next: int
    rate_limit_retry_after: str | None
    requests_per_minute: int | None
    fail_next: int
    fail_status: int
    fault_path: str | None
    _request_times: deque[float]

    def _init_faults(self, auth_username: str, secret: str) -> None:
        self.auth_username = auth_username
        self.secret = secret
        self.reset_next = 0
        self.rate_limit_next = 0
        self.rate_limit_retry_after = None
        self.requests_per_minute = None
        self._request_times = deque()
        self.fail_next = 0
        self.fail_status = 503
        self.fault_path = None

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
            return error(self.fail_status, phrase(self.fail_status))
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
        response = error(429, "Too many requests")
        if self.rate_limit_retry_after is not None:
            response.headers["Retry-After"] = self.rate_limit_retry_after
        return response
