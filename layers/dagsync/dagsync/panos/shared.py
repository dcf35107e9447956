"""What every PAN-OS client of one process shares: generated keys, and the in-flight limit per
management address. Both are locked, since targets are synced from several threads at once."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

DEFAULT_MAX_CONCURRENCY = 5  # PANOS_MAX_CONCURRENCY's default


class KeyCache:
    """API keys generated from a username and password, one per management address and user.

    The composition root keeps one per process (a warm Lambda container) and hands it to every
    client, so several targets behind one Panorama cost one keygen per cold start, and threads
    syncing targets in parallel never generate a key twice. `keygens` counts keygen requests sent.
    """

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.keygens = 0

    def get(self, address: str, username: str, generate: Callable[[], str]) -> str:
        """The cached key, or one from `generate()`; one keygen at a time, so never two for one user."""
        with self._lock:
            cached = self._keys.get((address, username))
            if cached is not None:
                return cached
            self.keygens += 1
            key = generate()
            self._keys[(address, username)] = key
            return key

    def forget(self, address: str, username: str, key: str) -> None:
        """Drop `key` if it is still the cached one (another thread may have replaced it already)."""
        with self._lock:
            if self._keys.get((address, username)) == key:
                del self._keys[(address, username)]

    def clear(self) -> None:
        """Forget every key and the count, as a cold start would."""
        with self._lock:
            self._keys.clear()
            self.keygens = 0


class InFlightLimit:
    """At most `limit` requests in flight to one management address, from every client and thread.

    PAN-OS asks for at most five concurrent API calls per management plane, which serves the API
    and the web interface alike (docs/protocols.md#pan-os-concurrency). The composition root makes
    one for the run with PANOS_MAX_CONCURRENCY and hands it to every client, so targets synced in
    parallel behind one Panorama share its five slots whatever the number of serials.
    """

    def __init__(self, limit: int = DEFAULT_MAX_CONCURRENCY) -> None:
        if limit < 1:
            raise ValueError("the in-flight limit must be at least 1")
        self.limit = limit
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextmanager
    def slot(self, address: str) -> Iterator[None]:
        """Hold one of `address`'s slots for the duration of a request, waiting for one if need be."""
        with self._lock:
            slots = self._slots.setdefault(address_key(address), threading.BoundedSemaphore(self.limit))
        with slots:
            yield


def address_key(url: str) -> str:
    """One management address, however the URL spells it (case, default port, path)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or default}"
