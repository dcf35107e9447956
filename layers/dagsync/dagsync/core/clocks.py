"""The clocks and the sleep every layer is handed, so that a test can hand it fake ones.

A Clock reads seconds: `time.monotonic` for waits and deadlines, `time.time` (epoch) for what the
table records (leases, histories, the watermark). RemainingTime reads the seconds an invocation
has left, as the Lambda context counts them down.
"""

from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]
RemainingTime = Callable[[], float]
