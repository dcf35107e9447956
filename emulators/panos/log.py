"""What the device saw: the request log and the counts tests assert on."""

from collections import Counter

from emulators.panos.ha import _is_ha_query
from emulators.panos.state import LoggedRequest, PanosState


class RequestLog(PanosState):
    """What the device saw: the request log and the counts tests assert on."""

    def non_ha_requests(self) -> list[LoggedRequest]:
        """Every logged request but the HA state query: what a passive member must never see."""
        return [entry for entry in self.requests if not _is_ha_query(entry.params)]

    def ha_queries(self) -> int:
        return len(self.requests) - len(self.non_ha_requests())

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def calls(
        self,
        type: str | None = None,
        *,
        verb: str | None = None,
        target: str | None = None,
    ) -> list[LoggedRequest]:
        """Logged requests, optionally only one `type=`, one uid-message verb, or one target."""
        return [
            entry
            for entry in self.requests
            if (type is None or entry.type == type)
            and (verb is None or verb in entry.uid)
            and (target is None or entry.target == target)
        ]

    def entries_received(self, verb: str, *, serial: str | None = None) -> Counter[str]:
        """How many times each IP (as sent) arrived in a `verb` section the device processed.

        Requests refused before the device read them (faults, 403, over the limit) do not count;
        a request applied and then reset does. `serial` limits it to one firewall behind this
        Panorama (this device's own serial: requests without `target`). A count above one is an
        entry sent twice.
        """
        own = serial is not None and serial == self.serial
        counts: Counter[str] = Counter()
        for entry in self.calls("user-id", verb=verb, target=None if own else serial):
            if not own or entry.target is None:
                counts.update(entry.uid_ips.get(verb, ()))
        return counts

    @property
    def in_flight(self) -> int:
        """Requests this management address is handling now (peak: `max_concurrency`)."""
        with self._lock:
            return self._in_flight

    def wait_for_in_flight(self, count: int, *, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests are in flight (False if `timeout` passes first)."""
        with self._in_flight_changed:
            return self._in_flight_changed.wait_for(lambda: self._in_flight >= count, timeout)

    @property
    def clear_sent(self) -> bool:
        """Whether any request carried `<clear>` (our client must never send it)."""
        return any("clear" in entry.uid for entry in self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
            self.max_concurrency = self._in_flight
