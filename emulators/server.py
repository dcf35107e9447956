"""A small threaded HTTP server on loopback that hands each request to an application object."""

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Fault injection: drop the connection instead of answering, or after sending this many body bytes.
    reset: bool = False
    truncate_at: int | None = None


class App(Protocol):
    def handle(self, request: Request) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes; avoid the 40 ms delay

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests assert on the emulators' own request logs."""

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.app.handle(request)
        if response.reset:
            self._reset()
            return
        payload = response.body if isinstance(response.body, bytes) else b"".join(response.body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if response.truncate_at is not None:
            self.wfile.write(payload[: response.truncate_at])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(payload)

    def _reset(self) -> None:
        """Close the socket abruptly (RST), as a dropped connection looks to the client."""
        with contextlib.suppress(OSError):
            linger_zero = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    do_GET = _dispatch  # noqa: N815
    do_POST = _dispatch  # noqa: N815
    do_DELETE = _dispatch  # noqa: N815
    do_PUT = _dispatch  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App


class LoopbackServer:
    """Serves `app` on 127.0.0.1 (an ephemeral port), over HTTPS when given an SSL context."""

    def __init__(self, app: App, *, ssl_context: ssl.SSLContext | None = None, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.app = app
        self._tls = ssl_context is not None
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host!s}:{port}"

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
