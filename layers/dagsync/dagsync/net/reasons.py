"""Why a request failed, in a few words an operator can act on, for both clients.

requests wraps urllib3, which wraps the socket error: the words that matter (refused, reset,
timed out, the certificate's verify message) sit several causes down, under object reprs that
name pools and URLs. These walk the causes and say the one that matters.
"""

import socket
import ssl
from collections.abc import Iterator

import requests
import urllib3.exceptions


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (requests -> urllib3 -> socket), each once."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(nested, BaseException):
                stack.append(nested)


def transport_reason(exc: BaseException) -> str:
    """A short reason for a transport failure, without the library's object reprs."""
    found = list(causes(exc))
    for cause in found:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(cause, socket.gaierror):
            return f"name resolution failed ({cause.strerror or cause})"
    for cause in found:
        if isinstance(cause, requests.Timeout | TimeoutError | urllib3.exceptions.TimeoutError):
            return "timed out"
        if isinstance(cause, urllib3.exceptions.IncompleteRead | urllib3.exceptions.ProtocolError):
            return "connection closed before the response was complete"
    return type(exc).__name__


def tls_reason(exc: BaseException) -> str:
    """The certificate's verify message, or the TLS error's reason."""
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or cause.reason or "certificate verify failed"
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or cause.strerror or "TLS handshake failed")
    return "TLS handshake failed"
