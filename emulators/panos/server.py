"""The composed PanosEmulator: every concern's mixin, and the dispatch of one request."""

from urllib.parse import urlencode

from emulators.panos.auth import Auth, _find_key
from emulators.panos.config import ConfigReads
from emulators.panos.dags import Dags
from emulators.panos.faults import Faults
from emulators.panos.ha import HighAvailability
from emulators.panos.log import RequestLog
from emulators.panos.op import Operations
from emulators.panos.state import Device, LoggedRequest
from emulators.panos.user_id import UserId
from emulators.panos.wire import (
    _XML_HEADERS,
    INVALID_CREDENTIAL,
    KeyCarrier,
    _http_error,
    _merge_params,
    _unauth,
    _xml_error,
)
from emulators.server import Request, Response


class PanosEmulator(HighAvailability, UserId, Operations, ConfigReads, Dags, Auth, Faults, RequestLog):
    """A PAN-OS firewall or Panorama, served through emulators.server.LoopbackServer.

    Fault knobs (each applies to the next matching requests, in the order they were queued):
    fail_next (HTTP 5xx), error_code_next (status="error" code=22 by default), unauth_next
    (status="unauth", code 16 or 22), redirect_next (a 3xx with a Location), reset_next
    (connection reset, before or after applying the request), delay_next, not_xml_next,
    malicious_next (billion laughs / external entity), revoke_keys_after (403 after N calls).
    Lasting conditions: deny_permission (a role without the permission a request type needs),
    set_unreachable (a Panorama child that errors or times out), set_capacity (table full),
    refuse_ips (addresses the device answers `Invalid IP address` for), set_slowness (a device
    N times slower), concurrency_limit (plain HTTP 503 above N in flight), max_request_bytes
    (HTTP 400 above it), and `delay` (every response slowed: a real device's response time,
    docs/protocols.md#pan-os-response-time).

    Time: `sleep` and `now` default to the real clock; a test may pass its fake clock's so the
    device's costs move fake time instead. `time_scale` (default 0: free) scales `ingest_cost`.
    """

    def handle(self, request: Request) -> Response:
        with self._in_flight_changed:
            self._in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self._in_flight)
            over_limit = self.concurrency_limit is not None and self._in_flight > self.concurrency_limit
            self._in_flight_changed.notify_all()
        try:
            if self.delay and not over_limit:  # a refused request is answered at once
                self._sleep(self.delay)
            return self._handle(request, over_limit)
        finally:
            with self._in_flight_changed:
                self._in_flight -= 1
                self._in_flight_changed.notify_all()

    def _handle(self, request: Request, over_limit: bool) -> Response:
        if request.path.rstrip("/") != "/api":
            return Response(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})
        params = _merge_params(request)
        key, carrier, carriers = _find_key(request, params)
        entry = LoggedRequest(
            method=request.method,
            params=params,
            key_carrier=carrier,
            key_carriers=carriers,
            type=params.get("type"),
            target=params.get("target"),
            vsys=params.get("vsys"),
            body_bytes=len(request.body),
            started=self._now(),
        )
        with self._lock:
            self._log.append(entry)
        if over_limit:
            # What a real device does past five concurrent calls is undocumented (docs/protocols.md#pan-os-concurrency);
            # the emulator answers a plain HTTP 503 (no XML body), the hardest case for a client.
            entry.fault = "over-limit"
            response = _http_error(503)
        else:
            response = self._respond(request, params, key, carrier, entry)
        entry.status = response.status
        entry.finished = self._now()
        return response

    def _respond(
        self,
        request: Request,
        params: dict[str, str],
        key: str | None,
        carrier: KeyCarrier | None,
        entry: LoggedRequest,
    ) -> Response:
        size = len(request.body) + len(urlencode(request.query, doseq=True))
        if size > self.max_request_bytes:
            return _xml_error("400", "Request exceeds the maximum request size", http_status=400)
        fault = self._take_fault(entry.type)
        if fault is not None:
            entry.fault = fault.kind
            early = self._apply_fault(fault)
            if early is not None:
                return early
        if entry.type == "keygen":
            return self._keygen(params, carrier)
        if not self._authorised(key, carrier, request):
            return Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
        denial = self._denied.get(entry.type or "")
        if denial is not None:
            return (
                _unauth("16") if denial == "unauth" else Response(403, INVALID_CREDENTIAL, dict(_XML_HEADERS))
            )
        response = self._dispatch(params, entry)
        if fault is not None and fault.kind == "reset-after":
            return Response(reset=True)
        return response

    def _dispatch(self, params: dict[str, str], entry: LoggedRequest) -> Response:
        device = self._device
        if entry.target:
            relayed = self._relay(entry.target)
            if isinstance(relayed, Response):
                return relayed
            device = relayed
        vsys = params.get("vsys")
        if device.kind == "firewall" and vsys and vsys not in device.vsys:
            return _xml_error("400", f"vsys {vsys} does not exist on {device.serial}")
        # The device's management plane does one request's work at a time; a Panorama relaying
        # `target=` requests hands them to each firewall's own plane.
        with device.plane:
            match params.get("type"):
                case "user-id":
                    return self._user_id(device, vsys, params.get("cmd"), entry)
                case "op":
                    return self._op(device, vsys, params.get("cmd"))
                case "config":
                    return self._config(device, params)
                case None:
                    return _xml_error("400", "Missing parameter: type")
                case other:
                    return _xml_error("400", f"Request type {other} is not emulated")

    def _relay(self, target: str) -> Device | Response:
        """The managed firewall a `target=` request goes to, or the error Panorama answers."""
        if self.kind != "panorama":
            return _xml_error("17", f"target {target}: only Panorama relays requests to other devices")
        with self._lock:
            child = self._children.get(target)
        if child is None:
            # The real text and code are not captured (docs/protocols.md#pan-os-errors) [unverified].
            return _xml_error("17", f"Target device {target} is not a managed device")
        if child.unreachable is not None:
            if child.unreachable == "timeout":
                self._sleep(self.unreachable_delay)
            # Text and code [unverified]; no code, so a client cannot mistake it for code 22.
            return _xml_error(None, f"Failed to redirect request: device {target} is not connected")
        return child
