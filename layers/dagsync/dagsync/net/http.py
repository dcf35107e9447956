"""HTTP plumbing shared by the clients: sessions, TLS trust, Retry-After, and bounded body reads."""

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3.exceptions

from dagsync.core.clocks import Clock

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds; it may be a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


# -- TLS trust -------------------------------------------------------------------------------


def tls_verify(verify: bool, ca_bundle_pem: str | None, *, parent: str | None = None) -> bool | str:
    """The `verify` argument for requests: False, True (system CAs) or a CA bundle file.

    requests only takes a path, so a PEM from a secret is written to a file in a directory
    private to this user (`private_directory`), and an existing file there is used only when it
    is ours, private, and holds exactly this PEM. Nothing planted in a shared /tmp is trusted.
    """
    if not verify:
        return False
    if not ca_bundle_pem:
        return True
    directory = private_directory(parent)
    digest = hashlib.sha256(ca_bundle_pem.encode()).hexdigest()[:16]
    path = os.path.join(directory, f"ca-{digest}.pem")
    if not _holds_exactly(path, ca_bundle_pem.encode()):
        fd, written = tempfile.mkstemp(dir=directory, prefix="ca-", suffix=".tmp")  # mode 0600
        with os.fdopen(fd, "w") as handle:
            handle.write(ca_bundle_pem)
        os.replace(written, path)
    return path


def private_directory(parent: str | None = None) -> str:
    """`dagsync-<uid>` under the temp directory, made with mode 0700 and checked before use.

    An existing entry of that name is used only when it is a real directory (not a link), owned
    by this user, with mode 0700. Anything else may have been planted by another user of a shared
    /tmp: it is left alone and a fresh private directory is made instead.
    """
    parent = parent or tempfile.gettempdir()
    path = os.path.join(parent, f"dagsync-{os.geteuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o700:
        return path
    log.warning("%s is not a private directory of this user; using a fresh one instead", path)
    return tempfile.mkdtemp(prefix="dagsync-", dir=parent)


def _holds_exactly(path: str, content: bytes) -> bool:
    """Whether `path` is a regular file of ours, readable by us alone, holding exactly `content`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return False
        return handle.read(len(content) + 1) == content


def new_session(verify: bool | str) -> requests.Session:
    """A session that ignores proxy and CA settings from the environment, so `verify` is exact."""
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    return session


# -- bounded body reads -----------------------------------------------------------------------


@dataclass(frozen=True)
class TransferLimits:
    """How slowly and how long a response body may arrive before it is abandoned, as named data.

    A body still arriving `deadline` seconds after it started is abandoned, and so is one that,
    once `window` seconds have passed, averaged under `min_rate` bytes a second over the last
    `window` seconds: a server that trickles cannot hold the run until its end.
    """

    deadline: float = 600.0
    min_rate: float = 64 * 1024
    window: float = 30.0


class TransportBroken(Exception):
    """The connection broke while the body was read; the request may be tried again."""


class TransferAborted(Exception):
    """The body arrived too slowly, too late, or was larger than allowed; it is not read further."""


class BodyReader:
    """A file-like view of a streamed body within TransferLimits, on the run's clock.

    It reads what has arrived (never waiting for a full buffer, so a trickle is seen as one),
    counts the bytes after decompression, and lets the first byte be sniffed. `deadline` (a
    value of `clock`) cuts the transfer's own deadline short when the run ends sooner.
    """

    def __init__(
        self, raw: Any, *, limits: TransferLimits, clock: Clock, deadline: float | None = None
    ) -> None:
        self._raw = raw
        self._limits = limits
        self._clock = clock
        started = self._started = clock()
        ends = started + limits.deadline
        self._ends = ends if deadline is None else min(ends, deadline)
        self._samples: deque[tuple[float, int]] = deque([(started, 0)])
        self._buffer = b""
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        if self._buffer:
            data, self._buffer = self._buffer, b""
            return data
        return self._read_raw(size if size > 0 else READ_CHUNK)

    def read_all(self, cap: int) -> bytes:
        """The whole body; TransferAborted once it grows beyond `cap` bytes."""
        chunks = []
        while chunk := self.read(READ_CHUNK):
            chunks.append(chunk)
            if self.count > cap:
                raise TransferAborted(f"it is larger than {_size(cap)}")
        return b"".join(chunks)

    def peek_first_byte(self) -> int | None:
        """The first non-whitespace byte (kept for the next read), or None for an empty body."""
        while True:
            chunk = self._read_raw(READ_CHUNK)
            if not chunk:
                return None
            stripped = chunk.lstrip()
            if stripped:
                self._buffer = stripped
                return stripped[0]

    def _read_raw(self, size: int) -> bytes:
        try:
            chunk: bytes = self._raw.read1(size, decode_content=True)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise TransportBroken(str(exc)) from exc
        self.count += len(chunk)
        if chunk:
            self._check_pace()
        return chunk

    def _check_pace(self) -> None:
        now = self._clock()
        if now > self._ends:
            raise TransferAborted(f"it was still arriving after {now - self._started:.0f} s")
        samples, window = self._samples, self._limits.window
        samples.append((now, self.count))
        while len(samples) > 2 and samples[1][0] <= now - window:
            samples.popleft()  # samples[0] stays the latest sample at least a window old
        since, count_then = samples[0]
        elapsed = now - since
        if elapsed >= window and (self.count - count_then) / elapsed < self._limits.min_rate:
            rate = (self.count - count_then) / elapsed
            raise TransferAborted(
                f"it arrived at {_size(rate)}/s over the last {elapsed:.0f} s, "
                f"under the floor of {_size(self._limits.min_rate)}/s"
            )


def _size(count: float) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:g} {unit}" if count % scale == 0 else f"{count / scale:.1f} {unit}"
    return f"{count:.0f} bytes"
