"""FakeClock: wall and monotonic clocks that move only when a test says so."""

from __future__ import annotations

__all__ = ["FakeClock"]

#: A fixed wall-clock instant (2027-01-15) that tests can start from.
DEFAULT_NOW = 1_800_000_000.0


class FakeClock:
    """A :class:`wink_middleware.Clock` for tests: ``advance(seconds)`` moves both clocks.

    ``sleep(seconds)`` advances instead of waiting, so the sync verifier's backoff between retries
    costs a test no time. Pass it as ``clock=`` to a verifier and as ``clock=`` to
    :class:`~wink_middleware.testing.WinkEmulator` to move Wink's notion of time along.
    """

    def __init__(self, now: float = DEFAULT_NOW) -> None:
        self.wall = now
        self.mono = 1000.0

    def time(self) -> float:
        """Seconds since the epoch."""
        return self.wall

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return self.mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self.wall += seconds
        self.mono += seconds

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        self.advance(seconds)
