"""VerifierStats: the counters of a verifier, and the one place they change."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["VerifierStats"]


@dataclass(eq=False)
class VerifierStats:
    """Counters of what a verifier did. Read them; :meth:`add` is the verifier's.

    Exact under threads: every change takes a lock, so concurrent WSGI threads lose no increment.
    """

    hits: int = 0
    negative_hits: int = 0
    misses: int = 0
    coalesced: int = 0
    wink_calls: int = 0
    wink_failures: dict[str, int] = field(
        default_factory=lambda: {"rejected": 0, "unavailable": 0, "bad_response": 0}
    )
    local_rejections: int = 0
    stale_served: int = 0
    breaker_opened: int = 0
    breaker_short_circuits: int = 0
    overloaded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def failure(self, kind: str) -> None:
        """Count a failed call to Wink of ``kind`` (rejected, unavailable, bad_response)."""
        with self._lock:
            self.wink_failures[kind] += 1

    def as_dict(self) -> dict[str, Any]:
        """A plain copy, e.g. for a metrics endpoint."""
        with self._lock:
            return {
                f.name: dict(value) if isinstance(value := getattr(self, f.name), dict) else value
                for f in fields(self)
                if f.name != "_lock"
            }
