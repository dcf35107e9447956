"""One simulated clock for the function, the emulators and the world: waiting costs no real time."""

import threading


class SimClock:
    """Epoch seconds that move only when the simulation moves them or something sleeps.

    The function's wall clock and monotonic clock, the PCE emulator's clock and the PAN-OS
    emulator's costs all read this one value, so an event indexed 90 s late is late by the same
    90 s for everyone. Sleeping (a retry's back-off, a job poll, a device's ingest time) advances it.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)
            self.slept += max(0.0, seconds)

    def move_to(self, moment: float) -> None:
        """Move forward to `moment`; never back (a long run may have carried time past it)."""
        with self._lock:
            self.now = max(self.now, moment)
