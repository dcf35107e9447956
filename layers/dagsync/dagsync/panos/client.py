"""PAN-OS XML API client: register/unregister IP tags, read the registered-IP table and the DAGs.

One client talks to one target (the device at PANOS_URL, or one firewall behind Panorama through
`target=<serial>`). The client cuts a change into batches (`batches`); every register/unregister
call is exactly one request.
"""

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Literal, cast
from urllib.parse import urlencode

import requests

from dagsync.core.clocks import Clock, Sleep
from dagsync.core.device import DagDefinition, RegisteredIp, UidOutcome, Verb
from dagsync.core.errors import PanosAuthError, PanosError
from dagsync.core.models import TagMap
from dagsync.net.credentials import PanosCredentials
from dagsync.net.http import (
    BodyReader,
    TransferAborted,
    TransferLimits,
    TransportBroken,
    new_session,
    tls_verify,
)
from dagsync.net.reasons import tls_reason, transport_reason
from dagsync.net.redact import mask
from dagsync.net.retry import Retrier, RetriesExhausted, Retryable, RetryPolicy
from dagsync.panos.ha import build_ha_state_query, parse_ha_state
from dagsync.panos.messages import (
    DEVICE_GROUP_ADDRESS_GROUPS,
    PAGE_LIMIT,
    SHARED_ADDRESS_GROUPS,
    build_show_registered_ip,
    build_uid_message,
    chunk_entries,
    split_sendable,
    vsys_address_groups,
)
from dagsync.panos.responses import (
    ParsedResponse,
    entry_messages_by_ip,
    is_permanent_refusal,
    is_table_full,
    parse_address_groups,
    parse_keygen,
    parse_registered_ips,
    parse_response,
)
from dagsync.panos.shared import InFlightLimit, KeyCache

__all__ = ["InFlightLimit", "KeyCache", "PanosClient"]

RequestType = Literal["user-id", "op", "config"]
# The XML API permission each request type needs on the admin role (docs/protocols.md#pan-os-errors).
PERMISSIONS: Mapping[RequestType, str] = {
    "user-id": "User-ID Agent",
    "op": "Operational Requests",
    "config": "Configuration (read)",
}
# A page of 500 registered IPs with 32 tags each is well under 5 MB; a config read of every
# device group's address groups is smaller still. Anything larger is not an answer we asked for.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# Transfers that broke on the way: the device may answer the same request if asked again.
_BROKEN_TRANSFER = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_MAX_PAGES = 10_000  # 5,000,000 entries: far above any platform's table; stops a device that ignores paging
DEFAULT_BATCH_SIZE = 500  # BATCH_SIZE's default: IP entries per uid-message


class PanosClient:
    """Talks to one PAN-OS target through the XML API at `{base_url}/api/`.

    Safe to use from worker threads: it holds one HTTP session, and what it shares with other
    clients (generated keys, the in-flight limit) is locked. One client per target and thread is
    the intended use; the counters stay exact even when threads share one.

    `api_calls` and `bytes_sent` count every HTTP request this client sent (retries and a keygen
    included) and their form-body bytes.
    """

    def __init__(
        self,
        base_url: str,
        credentials: PanosCredentials,
        *,
        key_cache: KeyCache | None = None,
        in_flight: InFlightLimit | None = None,
        verify_tls: bool = True,
        vsys: str | None = None,
        target_serial: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  (frozen, so sharing the default is safe)
        timeout: float = 30.0,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        deadline: float | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._url = f"{self.base_url}/api/"
        self._credentials = credentials
        # Without a shared cache this client keeps its own: one keygen for its lifetime.
        self._keys = key_cache if key_cache is not None else KeyCache()
        self._in_flight = in_flight if in_flight is not None else InFlightLimit()
        self.vsys = vsys
        self.target_serial = target_serial
        self._batch_size = batch_size
        self._retrier = Retrier(policy=retry, sleep=sleep, clock=clock, deadline=deadline)
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._session = new_session(tls_verify(verify_tls, credentials.ca_bundle))
        self._active_key: str | None = None  # masked in every error message
        self._key_renewed = False  # a generated key is replaced after "unauth" once per client
        self._counters = threading.Lock()  # one client may serve several threads
        self.api_calls = 0
        self.bytes_sent = 0

    def __repr__(self) -> str:
        return (
            f"PanosClient(base_url={self.base_url!r}, vsys={self.vsys!r}, "
            f"target_serial={self.target_serial!r})"
        )

    def close(self) -> None:
        self._session.close()

    # -- public operations ---------------------------------------------------------------------

    def batches(self, entries: TagMap) -> Iterator[dict[str, frozenset[str]]]:
        """`entries` cut into the messages this client sends: IP order, at most `batch_size` IPs
        each and well under the device's 5 MB request limit (docs/sync.md#order-and-batching)."""
        return chunk_entries(entries, self._batch_size)

    def register(self, entries: TagMap, *, persistent: bool = True) -> UidOutcome:
        """Register every (ip, tag) in `entries` in one uid-message; persistent unless told otherwise."""
        return self._uid("register", entries, persistent=persistent)

    def unregister(self, entries: TagMap) -> UidOutcome:
        """Unregister exactly the listed tags of each IP, in one uid-message."""
        return self._uid("unregister", entries)

    def registered_ips(self, *, ip: str | None = None, tag: str | None = None) -> dict[str, RegisteredIp]:
        """The device's registered IPs (optionally filtered), read 500 per call until a short page.

        Pages can shift if the table changes between calls (there is no snapshot token), so entries
        are merged by IP rather than trusted to be unique.
        """
        found: dict[str, RegisteredIp] = {}
        start = 1
        for _ in range(_MAX_PAGES):
            cmd = build_show_registered_ip(start=start, limit=PAGE_LIMIT, ip=ip, tag=tag)
            answer = self._request("op", "show registered-ip", {"type": "op", "cmd": cmd})
            page = parse_registered_ips(answer)
            new = 0
            for address, record in page.entries.items():
                previous = found.get(address)
                if previous is None:
                    new += 1
                    found[address] = record
                else:
                    found[address] = previous.merged(record)
            if page.raw_count < PAGE_LIMIT:
                return found
            if new == 0:
                raise PanosError(
                    f"PAN-OS returned the same registered IPs again at start-point {start}: "
                    "the device does not page `show object registered-ip`"
                )
            start += page.raw_count
        raise PanosError(f"PAN-OS registered-IP listing did not end after {_MAX_PAGES} pages")

    def ha_state(self) -> str:
        """This management address's own HA state (docs/protocols.md#pan-os-high-availability);
        asked of the device itself, never relayed with `target=`."""
        cmd = build_ha_state_query()
        answer = self._request("op", "show high-availability state", {"type": "op", "cmd": cmd}, routed=False)
        return parse_ha_state(answer)

    def address_groups(self) -> list[DagDefinition]:
        """The dynamic address groups the device defines, from the running configuration.

        Read from the device at `base_url` itself (no `target`): shared and every device group
        on a Panorama, shared and the vsys on a firewall (docs/dag-awareness.md#tags-in-use). A
        device that is not of a location's kind answers it with nothing. A 403 or code 16 is a
        PanosAuthError naming the XML API permission 'Configuration (read)'.
        """
        locations = [("shared", SHARED_ADDRESS_GROUPS), ("device-group", DEVICE_GROUP_ADDRESS_GROUPS)]
        if not self.target_serial:
            vsys = self.vsys or "vsys1"
            locations.append((f"vsys:{vsys}", vsys_address_groups(vsys)))
        found: list[DagDefinition] = []
        for location, xpath in locations:
            found.extend(self._address_groups_at(location, xpath))
        return found

    def _address_groups_at(self, location: str, xpath: str) -> list[DagDefinition]:
        params = {"type": "config", "action": "show", "xpath": xpath}
        try:
            answer = self._request("config", f"read address groups ({location})", params, routed=False)
        except PanosError as exc:
            # Code 7 "Object not present": nothing defined there. Code 6 "Bad Xpath" from a device
            # of the other kind (a firewall has no device groups, a Panorama no vsys) [unverified].
            if exc.code == "7" or (exc.code == "6" and location != "shared"):
                return []
            raise
        return parse_address_groups(answer, location)

    # -- internals -----------------------------------------------------------------------------

    def _uid(self, verb: Verb, entries: TagMap, *, persistent: bool = True) -> UidOutcome:
        sendable, refused = split_sendable(entries)
        if not sendable:
            return UidOutcome(
                verb=verb, sent=0, failed=refused, unsent=len(refused), rejected=frozenset(refused)
            )
        cmd = build_uid_message(verb, sendable, persistent=persistent)
        parsed = self._request("user-id", verb, {"type": "user-id", "cmd": cmd})
        failed = {**refused, **entry_messages_by_ip(parsed.entries, sendable)}
        benign = sum(1 for entry in parsed.entries if entry.outcome == "done")
        rejected = frozenset(refused) | {
            ip for ip, message in failed.items() if is_permanent_refusal(message)
        }
        return UidOutcome(
            verb=verb,
            sent=len(sendable),
            failed=failed,
            benign=benign,
            unsent=len(refused),
            rejected=rejected,
            table_full=frozenset(ip for ip, message in failed.items() if is_table_full(message)),
        )

    def _request(
        self, kind: RequestType, what: str, params: dict[str, str], *, routed: bool = True
    ) -> ParsedResponse:
        """An authenticated request to this client's target (vsys and target passed through), or
        to the device at `base_url` itself when not `routed`.

        A generated key the device refuses is dropped from the cache; when the answer says the key
        or its session expired, one new key is generated and the request sent once more, once per
        client (so once per target and run), never in a loop (docs/protocols.md#pan-os-keygen).
        """
        if routed and self.vsys:
            params["vsys"] = self.vsys
        if routed and self.target_serial:
            params["target"] = self.target_serial
            what = f"{what} [target {self.target_serial}]"
        while True:
            key, generated = self._key()
            self._active_key = key
            try:
                return self._send(what, params, headers={"X-PAN-KEY": key})
            except PanosAuthError as exc:
                if generated:
                    self._forget_key(key)
                if not (generated and exc.key_expired and not self._key_renewed):
                    raise _with_hint(exc, kind, generated=generated) from None
                self._key_renewed = True

    def _key(self) -> tuple[str, bool]:
        """The API key and whether it was generated (and so may be regenerated after a 403)."""
        creds = self._credentials
        if creds.api_key is not None:
            return creds.api_key.get_secret_value(), False
        if creds.username is None or creds.password is None:
            raise PanosAuthError("PAN-OS credentials need api_key, or username and password")
        username, password = creds.username, creds.password.get_secret_value()
        return self._keys.get(self.base_url, username, lambda: self._keygen(username, password)), True

    def _keygen(self, username: str, password: str) -> str:
        try:
            parsed = self._send(
                "PAN-OS keygen", {"type": "keygen", "user": username, "password": password}, headers={}
            )
        except PanosAuthError:
            raise PanosAuthError(
                "PAN-OS keygen refused the username/password from the PAN-OS secret (HTTP 403)",
                code="403",
            ) from None
        return parse_keygen(parsed)

    def _forget_key(self, key: str) -> None:
        self._keys.forget(self.base_url, self._credentials.username or "", key)

    def _send(self, what: str, params: dict[str, str], *, headers: dict[str, str]) -> ParsedResponse:
        """POST a form body; transport errors, 5xx and code 22 are retried (docs/sync.md#retries)."""
        body = urlencode(params).encode()
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}

        def attempt() -> ParsedResponse:
            try:
                return self._attempt(body, headers)
            except PanosError as exc:
                if exc.retryable:
                    raise Retryable(exc) from None
                raise

        try:
            return self._retrier.call(attempt)
        except RetriesExhausted as gave_up:
            last = cast(PanosError, gave_up.error)  # attempt() retries PanosError only
            raise self._clean(last, what, suffix=f" ({gave_up.summary})") from None
        except PanosError as exc:
            raise self._clean(exc, what) from None

    def _attempt(self, body: bytes, headers: dict[str, str]) -> ParsedResponse:
        """One POST and its answer; whatever goes wrong, the caller gets a PanosError."""
        with self._counters:
            self.api_calls += 1
            self.bytes_sent += len(body)
        try:
            with self._in_flight.slot(self.base_url):
                status, content = self._exchange(body, headers)
            return parse_response(content, status)
        except PanosError:
            raise
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc) from None
        except Exception as exc:
            # A RecursionError from a deeply nested answer, or any other failure below us, still
            # ends as this target's error, reported in the run's summary (docs/sync.md#crash-rules).
            raise PanosError(
                f"request to PAN-OS at {self.base_url} failed unexpectedly ({type(exc).__name__})"
            ) from None

    def _exchange(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST without following redirects, reading at most `max_response_bytes` of the answer."""
        response = self._session.post(
            self._url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False, stream=True
        )
        with response:
            if 300 <= response.status_code < 400:
                # Never followed: requests would carry X-PAN-KEY to the new host and re-post the
                # keygen body with the password (docs/sync.md#redirects).
                location = response.headers.get("Location", "")[:200] or "no Location"
                raise PanosError(
                    f"PAN-OS at {self.base_url} answered HTTP {response.status_code} redirecting to "
                    f"{location}; redirects are never followed: set PANOS_URL to the management "
                    "address itself"
                )
            return response.status_code, self._read_body(response)

    def _read_body(self, response: requests.Response) -> bytes:
        """The body, abandoned as soon as it passes `max_response_bytes` or arrives too slowly."""
        limit = self._max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PanosError(
                f"PAN-OS answer of {int(declared)} bytes is over the {limit}-byte limit; not read"
            )
        reader = BodyReader(
            response.raw, limits=TransferLimits(), clock=self._retrier.clock, deadline=self._retrier.deadline
        )
        try:
            return reader.read_all(limit)
        except TransportBroken as exc:
            raise PanosError(
                f"connection to PAN-OS at {self.base_url} broke while it answered ({transport_reason(exc)})",
                retryable=True,
            ) from None
        except TransferAborted as exc:
            raise PanosError(f"PAN-OS answer was abandoned after {reader.count} bytes: {exc}") from None

    def _transport_error(self, exc: requests.exceptions.RequestException) -> PanosError:
        if isinstance(exc, requests.exceptions.SSLError):
            return PanosError(
                f"TLS verification of PANOS_URL {self.base_url} failed ({tls_reason(exc)}); set ca_bundle in "
                "the PAN-OS secret to the CA that signed the device certificate"
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return PanosError(
                f"PAN-OS at {self.base_url} did not answer within {self._timeout:g}s", retryable=True
            )
        if isinstance(exc, _BROKEN_TRANSFER):
            return PanosError(
                f"connection to PAN-OS at {self.base_url} failed ({transport_reason(exc)})", retryable=True
            )
        return PanosError(f"request to PAN-OS at {self.base_url} failed ({transport_reason(exc)})")

    def _clean(self, exc: PanosError, what: str, *, suffix: str = "") -> PanosError:
        """The same error with context, and with any secret value masked, whatever the device echoed."""
        creds = self._credentials
        pairs = [(creds.username, secret) for secret in self._secrets() if creds.username]
        message = mask(f"{what} failed: {exc}{suffix}", self._secrets(), basic_pairs=pairs)
        if isinstance(exc, PanosAuthError):
            return PanosAuthError(message, code=exc.code, key_expired=exc.key_expired)
        return PanosError(message, code=exc.code, retryable=exc.retryable)

    def _secrets(self) -> list[str]:
        creds = self._credentials
        values = [secret.get_secret_value() for secret in (creds.api_key, creds.password) if secret]
        return [value for value in (*values, self._active_key) if value]


def _with_hint(exc: PanosAuthError, kind: RequestType, *, generated: bool) -> PanosAuthError:
    """The refusal with what the operator should check: the key, or the role's permission."""
    permission = PERMISSIONS[kind]
    if exc.code == "16" or kind == "config":
        hint = (
            f"the admin role of the PAN-OS account lacks a permission: grant it the XML API "
            f"permission '{permission}'"
        )
    elif exc.key_expired and generated:
        hint = "a freshly generated API key was refused too; check the account in the PAN-OS secret"
    elif exc.key_expired:
        hint = "the configured API key has expired or was revoked; put a valid api_key in the PAN-OS secret"
    elif generated:
        hint = "the generated API key was refused; the next run generates a new one"
    else:
        hint = f"check api_key in the PAN-OS secret and the admin role's XML API permission '{permission}'"
    return PanosAuthError(f"{exc} ({hint})", code=exc.code, key_expired=exc.key_expired)
