"""Faults a test queues for the next requests: HTTP errors, codes, resets, delays, hostile XML."""

from emulators.panos.state import PanosState, _Fault
from emulators.panos.wire import (
    _XML_HEADERS,
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    NOT_XML,
    REDIRECT_STATUSES,
    MaliciousVariant,
    UnauthCode,
    _http_error,
    _unauth,
    _xml_error,
)
from emulators.server import Response


class Faults(PanosState):
    """Faults a test queues for the next requests: HTTP errors, codes, resets, delays, hostile XML."""

    def fail_next(
        self, count: int = 1, *, status: int = 503, type: str | None = None, after: int = 0
    ) -> None:
        """Answer HTTP `status` to `count` requests, once `after` matching requests went through."""
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("http", type=type, status=status))

    def error_code_next(
        self, count: int = 1, *, code: str = "22", type: str | None = None, after: int = 0
    ) -> None:
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("code", type=type, code=code))

    def unauth_next(
        self, count: int = 1, *, code: UnauthCode = "16", type: str | None = None, after: int = 0
    ) -> None:
        """Answer the `status="unauth"` form (docs/protocols.md#pan-os-errors) with HTTP 200, applying nothing.

        Code 16 ("Unauthorized request") is a role without the needed permission; code 22
        ("Session timed out") is an expired key or session. Both forms come from other projects'
        code, not from a device capture [unverified].
        """
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("unauth", type=type, code=code))

    def redirect_next(
        self,
        count: int = 1,
        *,
        location: str,
        status: int = 302,
        type: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer a 3xx pointing at `location`, as a proxy or a wrong URL would (docs/sync.md#redirects)."""
        if status not in REDIRECT_STATUSES:
            raise ValueError(f"{status} is not a redirect status")
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("redirect", type=type, status=status, location=location))

    def reset_next(
        self, count: int = 1, *, after_apply: bool = False, type: str | None = None, after: int = 0
    ) -> None:
        """Drop the connection; with after_apply the request takes effect first (a lost answer)."""
        self._queue(after, _Fault("pass", type=type))
        self._queue(count, _Fault("reset-after" if after_apply else "reset", type=type))

    def delay_next(self, count: int = 1, *, seconds: float, type: str | None = None) -> None:
        self._queue(count, _Fault("delay", type=type, seconds=seconds))

    def not_xml_next(self, count: int = 1, *, type: str | None = None) -> None:
        self._queue(count, _Fault("not-xml", type=type))

    def malicious_next(
        self,
        count: int = 1,
        *,
        variant: MaliciousVariant = "billion-laughs",
        type: str | None = None,
    ) -> None:
        self._queue(count, _Fault("malicious", type=type, variant=variant))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._revoke_after = None

    def _queue(self, count: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend(fault for _ in range(count))

    def _take_fault(self, request_type: str | None) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.type is None or fault.type == request_type:
                    del self._faults[index]
                    return fault
        return None

    def _apply_fault(self, fault: _Fault) -> Response | None:
        match fault.kind:
            case "pass" | "reset-after":
                return None
            case "http":
                return _http_error(fault.status)
            case "code":
                return _xml_error(fault.code, "Session timed out" if fault.code == "22" else "Error")
            case "unauth":
                return _unauth("22" if fault.code == "22" else "16")
            case "redirect":
                body = f'<html><body><a href="{fault.location}">Moved</a></body></html>'.encode()
                return Response(fault.status, body, {"Location": fault.location, "Content-Type": "text/html"})
            case "reset":
                return Response(reset=True)
            case "delay":
                self._sleep(fault.seconds)
                return None
            case "not-xml":
                return Response(200, NOT_XML, {"Content-Type": "text/plain"})
            case "malicious":
                body = BILLION_LAUGHS if fault.variant == "billion-laughs" else EXTERNAL_ENTITY
                return Response(200, body, dict(_XML_HEADERS))
