"""Resilience around calls to a backend: a circuit breaker and the retry plan of one call."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

from wink_middleware._clock import Clock
from wink_middleware._config import WinkConfig
from wink_middleware._engine.stats import VerifierStats
from wink_middleware._exceptions import WinkUnavailable
from wink_middleware._logging import logger

__all__ = ["CircuitBreaker", "RetryPlan"]


# Backoff between attempts: base * 2**n, jittered to 50-150%, capped.
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 2.0
# An attempt shorter than this is not worth starting.
_MIN_ATTEMPT = 0.05


class CircuitBreaker:
    """Stops calling a backend after ``threshold`` consecutive transient failures, for ``cooldown`` s.

    When the cool-down ends, one probe call is let through: an answer closes the breaker, a transient
    failure opens it again. A probe whose outcome never comes back (its call was lost) is replaced by
    another after one more cool-down. Thread-safe. ``name`` is the backend's, for log lines;
    ``counters`` prefixes the names of its counters in ``stats``; ``on_change(state)`` hears every
    transition ("open", "half_open", "closed").
    """

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        stats: VerifierStats,
        clock: Clock,
        *,
        name: str = "Wink",
        counters: str = "",
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._stats = stats
        self._clock = clock
        self._name = name
        self._opened = stats.counter(counters + "breaker_opened")
        self._short_circuits = stats.counter(counters + "breaker_short_circuits")
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        if self._open_until is None:
            return "closed"
        if self._probing or self._clock.monotonic() >= self._open_until:
            return "half-open"
        return "open"

    def allow(self) -> float | None:
        """``None`` if the backend may be called now, else the seconds until it may be (>= 1)."""
        if self._open_until is None:
            return None
        with self._lock:
            if self._open_until is None:
                return None
            now = self._clock.monotonic()
            remaining = self._open_until - now
            if remaining <= 0:
                # Re-armed, so that a probe which never reports back costs one cool-down, not
                # an open breaker for good.
                self._open_until = now + self._cooldown
                self._probing = True
                logger.info("circuit breaker half-open: probing %s", self._name)
                self._changed("half_open")
                return None
            return 1 if self._probing else max(1, math.ceil(remaining))

    def check(self) -> None:
        """Raise :class:`WinkUnavailable` if the backend must not be called now."""
        retry_after = self.allow()
        if retry_after is not None:
            self._short_circuits()
            raise WinkUnavailable(
                f"{self._name} is unavailable (circuit breaker open)", retry_after=int(retry_after)
            )

    def success(self) -> None:
        """The backend answered (yes, no or nonsense): close the breaker."""
        if self._failures or self._open_until is not None:
            with self._lock:
                was_open = self._open_until is not None
                self._failures = 0
                self._open_until = None
                self._probing = False
            if was_open:
                logger.info("circuit breaker closed: %s answered again", self._name)
                self._changed("closed")

    def failure(self) -> None:
        """The backend could not be asked: count it, open at the threshold or on a failed probe."""
        with self._lock:
            self._failures += 1
            opened = self._probing or (
                self._open_until is None and self._failures >= self._threshold
            )
            if opened:
                self._open_until = self._clock.monotonic() + self._cooldown
                self._probing = False
        if opened:
            self._opened()
            logger.warning(
                "circuit breaker open after %d consecutive failures: not calling %s for %.1fs",
                self._failures,
                self._name,
                self._cooldown,
            )
            self._changed("open")

    def _changed(self, state: str) -> None:
        if self._on_change is not None:
            self._on_change(state)


class RetryPlan:
    """The attempts of one call to Wink: each at most ``timeout``, all inside one deadline."""

    __slots__ = ("_attempt", "_clock", "_config", "deadline")

    def __init__(self, config: WinkConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._attempt = 0
        self.deadline = clock.monotonic() + config.timeout * (config.retries + 1)

    def attempt_timeout(self) -> float:
        """How long the next attempt may take."""
        return max(0.0, min(self._config.timeout, self.deadline - self._clock.monotonic()))

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when no attempt is left."""
        self._attempt += 1
        if self._attempt > self._config.retries:
            return None
        delay: float = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (self._attempt - 1))
        delay *= random.uniform(0.5, 1.5)
        if self.deadline - self._clock.monotonic() - delay < _MIN_ATTEMPT:
            return None
        return delay
