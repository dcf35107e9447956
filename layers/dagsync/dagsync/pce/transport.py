"""Every request to the PCE: paced, retried by the policy, bounded in size and time, and turned
into a PceError an operator can act on, with the secret masked wherever the server echoed it.

Redirects are never followed (docs/sync.md#redirects), and a 429 waits the PCE's Retry-After or
the policy's rate-limited wait (docs/sync.md#retries).
"""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from dagsync import __version__
from dagsync.core.errors import PceError
from dagsync.net.credentials import PceCredentials
from dagsync.net.http import (
    BodyReader,
    TransferAborted,
    TransferLimits,
    TransportBroken,
    new_session,
    parse_retry_after,
    tls_verify,
)
from dagsync.net.pacing import Pacer, PacingPastDeadline
from dagsync.net.reasons import tls_reason, transport_reason
from dagsync.net.redact import mask
from dagsync.net.retry import Retrier, RetriesExhausted, Retryable
from dagsync.pce.parse import ShapeError

log = logging.getLogger(__name__)

_ERROR_BODY_LIMIT = 64 * 1024
BODY_EXCERPT = 200  # the most of any server text a message quotes


@dataclass(frozen=True)
class JobPolling:
    """How often an async collection job is polled: a first wait, then growing by `backoff` up to
    `max_delay`, never under `min_delay`; the PCE's Retry-After on a poll replaces the wait."""

    first_delay: float = 1.0
    min_delay: float = 0.2
    max_delay: float = 10.0
    backoff: float = 1.5


@dataclass(frozen=True)
class PceLimits:
    """How much and how long the client reads from the PCE before it gives up, as named data.

    See docs/sync.md#reading-the-inventory.
    """

    job_deadline: float = 300.0  # an async collection job must be done within this
    max_answer_bytes: int = 16 * 1024 * 1024  # any JSON answer but a datafile, decompressed
    transfer: TransferLimits = field(default_factory=TransferLimits)  # every body, the datafile's too
    polling: JobPolling = field(default_factory=JobPolling)


@dataclass(frozen=True)
class Answer:
    """A PCE answer: read whole into `body`, or, when streamed, left open for the caller to read."""

    response: requests.Response
    body: bytes = b""

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers


class PceTransport:
    """GETs on one PCE org's API; counts requests and bytes for the run summary and the benchmarks."""

    def __init__(
        self,
        base_url: str,
        org_id: int,
        credentials: PceCredentials,
        *,
        verify_tls: bool,
        retrier: Retrier,
        pacer: Pacer,
        timeout: float,
        limits: PceLimits,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.api = f"{self.base}/api/v2"
        self.org = org_id
        self.retrier = retrier
        self.limits = limits
        self._secret = credentials.secret.get_secret_value()
        self._username = credentials.auth_username
        self._pacer = pacer
        self._timeout = timeout
        self._session = new_session(tls_verify(verify_tls, credentials.ca_bundle))
        self._session.auth = (self._username, self._secret)
        self._session.headers["Accept"] = "application/json"
        self._session.headers["User-Agent"] = f"dagsync/{__version__}"
        self.requests_made = 0
        self.bytes_received = 0

    def close(self) -> None:
        self._session.close()

    def get(
        self,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        answers: frozenset[int] = frozenset(),
        stream: bool = False,
    ) -> Answer:
        """One GET, retried by the policy, read whole (at most `max_answer_bytes`).

        A streamed answer is left open for the caller (the datafile). Error statuses in
        `answers` come back as answers instead of raising.
        """
        path = urlsplit(url).path

        def attempt() -> Answer:
            response = self._send(url, path, headers, answers)
            if stream:
                return Answer(response)
            reader = self.reader(response)
            try:
                body = reader.read_all(self.limits.max_answer_bytes)
            except TransportBroken as exc:
                raise Retryable(
                    PceError(
                        f"the connection to the PCE at {self.base} broke while GET {path} was answered "
                        f"({transport_reason(exc)})"
                    )
                ) from exc.__cause__
            except TransferAborted as exc:
                raise PceError(
                    f"the PCE's answer for {what} (GET {path}) was abandoned after {reader.count} bytes: {exc}"
                ) from None
            finally:
                self.bytes_received += reader.count
                response.close()
            return Answer(response, body)

        return self.retried(attempt)

    def retried[T](self, attempt: Callable[[], T]) -> T:
        """`attempt()` under the run's retry policy; giving up is a PceError saying how often and how long."""
        try:
            return self.retrier.call(
                attempt,
                on_retry=lambda retry, _attempt, delay: log.warning(
                    "%s; retrying in %.1f s", retry.error, delay
                ),
            )
        except RetriesExhausted as exhausted:
            raise PceError(f"{exhausted.error}; {exhausted.summary}") from exhausted.error

    def reader(self, response: requests.Response) -> BodyReader:
        return BodyReader(
            response.raw,
            limits=self.limits.transfer,
            clock=self.retrier.clock,
            deadline=self.retrier.deadline,
        )

    def absolute(self, href: str) -> str:
        """Job and datafile hrefs are relative to /api/v2; some PCEs send /api/v2 paths or full URLs.

        [unverified] For an absolute URL only its path is kept, on the configured PCE URL: the
        credentials then never travel to a host the operator did not configure.
        """
        if href.startswith(("http://", "https://")):
            parts = urlsplit(href)
            href = parts.path + (f"?{parts.query}" if parts.query else "")
        if href.startswith("/api/"):
            return self.base + href
        return self.api + (href if href.startswith("/") else f"/{href}")

    def parsed[T](self, source: str, parse: Callable[[], T]) -> T:
        """`parse()`, a ShapeError turned into a PceError naming `source`, the secret masked.

        The PceError is raised outside the handler, so the unmasked ShapeError is not chained to it.
        """
        try:
            return parse()
        except ShapeError as exc:
            detail = str(exc)
        raise PceError(f"{source} has an unexpected shape: {self.scrub(detail)}")

    @staticmethod
    def json(answer: Answer, what: str) -> object:
        try:
            return json.loads(answer.body)
        except ValueError:
            raise PceError(f"the PCE answered for {what} with a body that is not JSON") from None

    def scrub(self, text: str) -> str:
        """Text from the server or the parser, with the secret masked should it ever echo it."""
        return mask(text, [self._secret], basic_pairs=[(self._username, self._secret)])

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
                f"TLS verification of the PCE failed for {self.base}: {tls_reason(exc)} "
                "(set ca_bundle in the PCE secret)"
            ) from exc
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            error = PceError(f"could not reach the PCE at {self.base} (GET {path}): {transport_reason(exc)}")
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
        target = self.scrub(location)[:BODY_EXCERPT] if location else "no Location"
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
            f"on org {self.org}, or PCE_ORG_ID is not the key's org"
        )

    def _error_detail(self, response: requests.Response) -> str:
        """The PCE's own words from an error body `[{"token": ..., "message": ...}]`, scrubbed.

        Any other body (a proxy's or load balancer's page) is never quoted: it may echo the
        request, and with it the Authorization header.
        """
        reader = self.reader(response)
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
        return self.scrub("; ".join(part for part in parts if part))[:BODY_EXCERPT]


def _suffix(detail: str, before: str = ": ", after: str = "") -> str:
    """`detail` framed for a message, or nothing when there is no detail."""
    return f"{before}{detail}{after}" if detail else ""
