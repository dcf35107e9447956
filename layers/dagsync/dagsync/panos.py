"""PAN-OS XML API client: register/unregister IP tags and read the registered-IP table.

One client talks to one target (the device at PANOS_URL, or one firewall behind Panorama through
`target=<serial>`). The caller chunks; every register/unregister call is exactly one request.
"""

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests

from dagsync.errors import PanosAuthError, PanosError, SecretError
from dagsync.http import new_session, tls_verify
from dagsync.models import TagMap
from dagsync.panos_xml import (
    PAGE_LIMIT,
    ParsedResponse,
    RegisteredIp,
    Verb,
    build_show_registered_ip,
    build_uid_message,
    entry_messages_by_ip,
    parse_keygen,
    parse_registered_ips,
    parse_response,
)
from dagsync.retry import RetryPolicy, Sleep

__all__ = [
    "PanosClient",
    "PanosCredentials",
    "RegisteredIp",
    "UidOutcome",
    "clear_key_cache",
]

# Keys generated from username/password, shared by every client in this process (a warm Lambda
# container), so several targets behind one Panorama cost one keygen per cold start.
_KEY_CACHE: dict[tuple[str, str], str] = {}
_KEY_LOCK = threading.Lock()
keygen_calls = 0  # keygen requests sent by this process; read it as dagsync.panos.keygen_calls
_MAX_PAGES = 10_000  # 5,000,000 entries: far above any platform's table; stops a device that ignores paging


def clear_key_cache() -> None:
    """Forget generated keys (and the keygen count), as a cold start would."""
    global keygen_calls  # noqa: PLW0603
    with _KEY_LOCK:
        _KEY_CACHE.clear()
        keygen_calls = 0


@dataclass(frozen=True)
class PanosCredentials:
    """The PAN-OS secret: an API key, or a username and password to generate one."""

    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_bundle: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret(cls, data: Mapping[str, object], secret_id: str) -> "PanosCredentials":
        """Validate the secret's JSON; errors name the secret and the field, never a value."""

        def text(name: str) -> str | None:
            # Values are kept exactly as stored: a password may begin or end with a space.
            value = data.get(name)
            if value is None or value == "":
                return None
            if not isinstance(value, str) or not value.strip():
                raise SecretError(f"secret {secret_id}: field {name!r} must be a non-empty string")
            return value

        api_key = text("api_key")
        username = text("username")
        password = text("password")
        ca_bundle = text("ca_bundle")
        if api_key is None:
            if username is None and password is None:
                raise SecretError(f"secret {secret_id}: needs field 'api_key', or 'username' and 'password'")
            if username is None:
                raise SecretError(f"secret {secret_id}: field 'username' is missing (needed with 'password')")
            if password is None:
                raise SecretError(f"secret {secret_id}: field 'password' is missing (needed with 'username')")
        return cls(api_key=api_key, username=username, password=password, ca_bundle=ca_bundle)


@dataclass(frozen=True)
class UidOutcome:
    """Result of one register/unregister message, per IP entry."""

    verb: Verb
    sent: int  # IP entries in the message
    failed: Mapping[str, str] = field(default_factory=dict)  # ip -> device message
    benign: int = 0  # per-entry messages "already exists" / "does not exist": counted as done

    @property
    def done(self) -> int:
        return self.sent - len(self.failed)


class PanosClient:
    """Talks to one PAN-OS target through the XML API at `{base_url}/api/`.

    `api_calls` and `bytes_sent` count every HTTP request this client sent (retries and a keygen
    included) and their form-body bytes.
    """

    def __init__(
        self,
        base_url: str,
        credentials: PanosCredentials,
        *,
        verify_tls: bool = True,
        vsys: str | None = None,
        target_serial: str | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  (frozen, so sharing the default is safe)
        timeout: float = 30.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not credentials.api_key and not (credentials.username and credentials.password):
            raise ValueError("PAN-OS credentials need api_key, or username and password")
        self.base_url = base_url.rstrip("/")
        self._url = f"{self.base_url}/api/"
        self._credentials = credentials
        self.vsys = vsys
        self.target_serial = target_serial
        self._retry = retry
        self._timeout = timeout
        self._sleep = sleep
        self._session = new_session(tls_verify(verify_tls, credentials.ca_bundle))
        self._active_key: str | None = None  # masked in every error message
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
            page = parse_registered_ips(self._request("show registered-ip", {"type": "op", "cmd": cmd}))
            new = 0
            for address, record in page.entries.items():
                previous = found.get(address)
                if previous is None:
                    new += 1
                    found[address] = record
                else:
                    found[address] = RegisteredIp(
                        tags=previous.tags | record.tags,
                        persistent=previous.persistent and record.persistent,
                        from_agent=previous.from_agent or record.from_agent,
                    )
            if page.raw_count < PAGE_LIMIT:
                return found
            if new == 0:
                raise PanosError(
                    f"PAN-OS returned the same registered IPs again at start-point {start}: "
                    "the device does not page `show object registered-ip`"
                )
            start += page.raw_count
        raise PanosError(f"PAN-OS registered-IP listing did not end after {_MAX_PAGES} pages")

    # -- internals -----------------------------------------------------------------------------

    def _uid(self, verb: Verb, entries: TagMap, *, persistent: bool = True) -> UidOutcome:
        cmd = build_uid_message(verb, entries, persistent=persistent)
        parsed = self._request(verb, {"type": "user-id", "cmd": cmd})
        failed = entry_messages_by_ip(parsed.entries, entries)
        benign = sum(1 for entry in parsed.entries if entry.outcome == "done")
        return UidOutcome(verb=verb, sent=len(entries), failed=failed, benign=benign)

    def _request(self, what: str, params: dict[str, str]) -> ParsedResponse:
        """An authenticated request to this client's target (vsys and target passed through)."""
        key, generated = self._key()
        self._active_key = key
        if self.vsys:
            params["vsys"] = self.vsys
        if self.target_serial:
            params["target"] = self.target_serial
            what = f"{what} [target {self.target_serial}]"
        try:
            return self._send(what, params, headers={"X-PAN-KEY": key})
        except PanosAuthError as exc:
            if generated:
                self._forget_key(key)
                hint = "the generated API key was refused; the next run generates a new one"
            else:
                hint = "check api_key in the PAN-OS secret and the admin role's XML API permissions"
            raise PanosAuthError(f"{exc} ({hint})", code=exc.code) from None

    def _key(self) -> tuple[str, bool]:
        """The API key and whether it was generated (and so may be regenerated after a 403)."""
        global keygen_calls  # noqa: PLW0603
        creds = self._credentials
        if creds.api_key:
            return creds.api_key, False
        if creds.username is None or creds.password is None:
            raise PanosAuthError("PAN-OS credentials need api_key, or username and password")
        cache_key = (self.base_url, creds.username)
        with _KEY_LOCK:
            cached = _KEY_CACHE.get(cache_key)
            if cached is not None:
                return cached, True
            keygen_calls += 1
            try:
                parsed = self._send(
                    "PAN-OS keygen",
                    {"type": "keygen", "user": creds.username, "password": creds.password},
                    headers={},
                )
            except PanosAuthError:
                raise PanosAuthError(
                    "PAN-OS keygen refused the username/password from the PAN-OS secret (HTTP 403)",
                    code="403",
                ) from None
            key = parse_keygen(parsed)
            _KEY_CACHE[cache_key] = key
            return key, True

    def _forget_key(self, key: str) -> None:
        cache_key = (self.base_url, self._credentials.username or "")
        with _KEY_LOCK:
            if _KEY_CACHE.get(cache_key) == key:
                del _KEY_CACHE[cache_key]

    def _send(self, what: str, params: dict[str, str], *, headers: dict[str, str]) -> ParsedResponse:
        """POST a form body, retrying transport errors, 5xx and code 22 with backoff."""
        body = urlencode(params).encode()
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        attempts = max(self._retry.attempts, 1)
        for attempt in range(1, attempts + 1):
            try:
                parsed = self._attempt(body, headers)
            except PanosError as exc:
                if not exc.retryable:
                    raise self._clean(exc, what) from None
                if attempt == attempts:
                    plural = "s" if attempts != 1 else ""
                    suffix = f" (gave up after {attempts} attempt{plural})"
                    raise self._clean(exc, what, suffix=suffix, retryable=True) from None
                self._sleep(self._retry.delay(attempt))
            else:
                return parsed
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, body: bytes, headers: dict[str, str]) -> ParsedResponse:
        self.api_calls += 1
        self.bytes_sent += len(body)
        try:
            response = self._session.post(self._url, data=body, headers=headers, timeout=self._timeout)
        except requests.exceptions.SSLError as exc:
            raise PanosError(
                f"TLS verification of PANOS_URL {self.base_url} failed ({_reason(exc)}); set ca_bundle in "
                "the PAN-OS secret to the CA that signed the device certificate"
            ) from None
        except requests.exceptions.Timeout:
            raise PanosError(
                f"PAN-OS at {self.base_url} did not answer within {self._timeout:g}s", retryable=True
            ) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise PanosError(
                f"connection to PAN-OS at {self.base_url} failed ({_reason(exc)})", retryable=True
            ) from None
        except requests.exceptions.RequestException as exc:
            raise PanosError(f"request to PAN-OS at {self.base_url} failed ({_reason(exc)})") from None
        return parse_response(response.content, response.status_code)

    def _clean(
        self, exc: PanosError, what: str, *, suffix: str = "", retryable: bool | None = None
    ) -> PanosError:
        """The same error with context, and with any secret value masked, whatever the device echoed."""
        message = _redact(f"{what} failed: {exc}{suffix}", self._secrets())
        kind = PanosAuthError if isinstance(exc, PanosAuthError) else PanosError
        return kind(message, code=exc.code, retryable=exc.retryable if retryable is None else retryable)

    def _secrets(self) -> list[str]:
        creds = self._credentials
        values = [creds.api_key, creds.password, self._active_key]
        return [value for value in values if value]


def _reason(exc: BaseException) -> str:
    """The underlying cause of a requests error, short: the outer text repeats the pool and URL."""
    inner: BaseException = exc
    if exc.args and isinstance(exc.args[0], BaseException):
        inner = exc.args[0]
    reason = getattr(inner, "reason", None)
    if isinstance(reason, BaseException):
        inner = reason
    text = str(inner) or type(inner).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
