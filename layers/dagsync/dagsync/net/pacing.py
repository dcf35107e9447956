"""Request pacing: at most a given number of requests in any one minute.

The PCE limits requests per API key per minute (docs/protocols.md#pce-rate-limits). One Pacer
per run is shared by every PCE request of that run, so the run itself never exceeds its budget
and a 429 can only mean that someone else spends the same key. See docs/sync.md#pacing.
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from dagsync.core.clocks import Clock, Sleep

WINDOW_SECONDS = 60.0


class PacingPastDeadline(Exception):
    """The next request would have to wait past the run's deadline; `delay` is how long."""

    def __init__(self, delay: float, per_minute: int) -> None:
        super().__init__(
            f"pacing to {per_minute} requests per minute would wait {delay:.1f} s, past the run's deadline"
        )
        self.delay = delay


@dataclass
class Pacer:
    """Spaces requests so that no 60-second window holds more than `per_minute` of them."""

    per_minute: int
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    deadline: float | None = None
    waited: float = field(default=0.0, init=False)
    _sent: deque[float] = field(default_factory=deque, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ValueError(f"a pacer needs at least one request per minute, got {self.per_minute}")

    def wait(self) -> float:
        """Block until one more request fits the budget, and count it; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            delay = 0.0
            if len(self._sent) >= self.per_minute:
                delay = max(self._sent[0] + WINDOW_SECONDS - now, 0.0)
                if self.deadline is not None and now + delay > self.deadline:
                    raise PacingPastDeadline(delay, self.per_minute)
                if delay:
                    self.sleep(delay)
                    self.waited += delay
                    now = self.clock()
                self._sent.popleft()
            self._sent.append(now)
            return delay
