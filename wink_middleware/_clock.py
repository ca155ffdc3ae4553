"""Where the engine reads and spends time: one seam for both twins, replaced by a fake in tests."""

from __future__ import annotations

import time as _time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Wall clock for expiry, monotonic clock for deadlines and the cache.

    The sync verifier also sleeps through ``sleep`` between attempts when the clock has one
    (:class:`wink_middleware.testing.FakeClock` moves itself instead of waiting).
    """

    def time(self) -> float:
        """Seconds since the epoch (wall clock)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""


class SystemClock:
    """The real clocks."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)
    sleep = staticmethod(_time.sleep)
