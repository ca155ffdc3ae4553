"""VerifierStats: the counters of a verifier, and the one place they change."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["VerifierStats"]

_COUNTERS = (
    "hits",
    "negative_hits",
    "misses",
    "coalesced",
    "wink_calls",
    "local_rejections",
    "stale_served",
    "breaker_opened",
    "breaker_short_circuits",
    "overloaded",
    "shared_hits",
    "shared_misses",
    "shared_errors",
    "integrity_failures",
    "leases_won",
    "leases_waited",
    "invalidations_sent",
    "invalidations_received",
    "shared_breaker_opened",
    "shared_breaker_short_circuits",
    "session_calls",
    "sessions_created",
)
_FAILURES = ("rejected", "unavailable", "bad_response")


class _Counter:
    """A counter attribute: reads the current value of one of the verifier's counts."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, stats: VerifierStats | None, owner: type) -> int:
        if stats is None:
            return 0
        return stats._read(self.name)


class VerifierStats:
    """Counters of what a verifier did. Read them; the verifier counts through :meth:`counter`.

    Exact under threads without a lock on the counting side: each counter is an
    ``itertools.count``, whose step is one atomic C call, so concurrent WSGI threads lose no
    increment and a cache hit pays ~30 ns for it. A count cannot be read without advancing it
    (its pickling hook is deprecated since 3.12), so a read *is* a step: it takes the next value
    under a lock and subtracts the steps earlier reads took. Only reads pay for the lock.
    """

    hits = _Counter()
    negative_hits = _Counter()
    misses = _Counter()
    coalesced = _Counter()
    wink_calls = _Counter()
    local_rejections = _Counter()
    stale_served = _Counter()
    breaker_opened = _Counter()
    breaker_short_circuits = _Counter()
    overloaded = _Counter()
    #: With the shared tier: answers found in Redis, not found, and Redis failures.
    shared_hits = _Counter()
    shared_misses = _Counter()
    shared_errors = _Counter()
    #: Shared entries that failed to decrypt or parse (deleted, never trusted).
    integrity_failures = _Counter()
    #: Fleet single-flight: leases this process won (it asked Wink), and waits on another's lease.
    leases_won = _Counter()
    leases_waited = _Counter()
    #: Invalidations and revocations this process published, and those it applied from others.
    invalidations_sent = _Counter()
    invalidations_received = _Counter()
    shared_breaker_opened = _Counter()
    shared_breaker_short_circuits = _Counter()
    #: Attempts at Wink's session endpoint, and the sessions it gave (``create_session``).
    session_calls = _Counter()
    sessions_created = _Counter()

    def __init__(self) -> None:
        self._counts = {name: itertools.count(0) for name in (*_COUNTERS, *_FAILURES)}
        # How many steps reads have taken from each count (see the class docstring).
        self._reads = dict.fromkeys(self._counts, 0)
        self._lock = threading.Lock()

    def _read(self, name: str) -> int:
        with self._lock:
            taken = self._reads[name]
            self._reads[name] = taken + 1
            return next(self._counts[name]) - taken

    def counter(self, name: str) -> Callable[[], int]:
        """The step of counter ``name``: call it to add one (bind it once on a hot path)."""
        return self._counts[name].__next__

    def add(self, name: str) -> None:
        """Add one to counter ``name``."""
        next(self._counts[name])

    def failure(self, kind: str) -> None:
        """Count a failed call to Wink of ``kind`` (rejected, unavailable, bad_response)."""
        next(self._counts[kind])

    @property
    def wink_failures(self) -> dict[str, int]:
        """Failed calls to Wink by class: rejected, unavailable, bad_response."""
        return {kind: self._read(kind) for kind in _FAILURES}

    def as_dict(self) -> dict[str, Any]:
        """A plain copy, e.g. for a metrics endpoint."""
        data: dict[str, Any] = {name: self._read(name) for name in _COUNTERS}
        data["wink_failures"] = self.wink_failures
        return data

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.as_dict().items())
        return f"VerifierStats({fields})"
